"""Normalize a free-text Chinese address before parsing and matching.

`normalize_with_map(text)` returns the normalized text and, for every normalized character, the index of the
input character it came from, so callers can map parsed spans back and report which input parts were unused;
`normalize_with_offsets(text)` also gives where each normalized character's input ends (号楼 → 栋 stands for two
input characters), so a parsed span maps to exactly the caller's characters.
The rules, applied in this order (each one pure and deterministic):

1. **Validation.** Input longer than `MAX_LENGTH` (500) characters, empty or blank input, non-`str` input and
   binary-looking input (a NUL, or more than 10% control / replacement characters) raise `AddressInputError`.
   Other control and invisible format characters (C0/C1 controls, zero-width, bidi marks, BOM, private use,
   surrogates) are dropped.
2. **Full-width → half-width** for the ASCII range (what NFKC does there: U+FF01..U+FF5E → U+0021..U+007E,
   U+3000 → space), and dash variants (‐ ‑ ‒ – — ― ﹣ ~) → `-`. Other characters are left alone (no full NFKC:
   it would also rewrite ① ㈠ ㎡ and CJK compatibility ideographs).
3. **Traditional → simplified** with OpenCC's `t2s` configuration, except characters that official division
   names keep (乾 in 乾县, 於 in 於潜镇, 濛 in 濛江乡, …: `PROTECTED_CHARS`, found by running t2s over the
   civil-affairs list of every division down to township).
4. **Separators.** Whitespace and punctuation used as separators (，,、;；:：。!！?？'"“”‘’`·|/\\_) are removed.
   `-` is kept only between two ASCII letters/digits (88-1号, 47-6-746, A-3) and removed elsewhere
   (新冶大道 - 88号 → 新冶大道88号). `#` right after a letter/digit means 号 (3#楼 → 3号楼); other `#` are removed.
5. **Chinese numerals → digits where they are numbers.** A run of 零〇一二两三四五六七八九十百千 is converted
   (with `cn2an` when it has 十/百/千, digit by digit otherwise: 一〇二 → 102) only when it is directly followed
   by a unit suffix: 号楼 号院 号 栋 幢 座 单元 层 楼 室 户 组 队 期 排; and before 弄/巷 only when the run follows
   a road word or a digit (解放路三巷 → 解放路3巷). Anything else is a name and kept: 三里屯, 五一路, 十里铺,
   九堡镇, 三村村.
6. **Building and room words.** After a letter/digit, 号楼 幢 座 → 栋 (3号楼 → 3栋, 5幢 → 5栋, A座 → A栋);
   after a digit, 户 → 室 (502户 → 502室). 单元 is kept.
7. **Duplicated prefixes.** A block that ends in an administrative suffix (省 市 区 县 镇 乡 道 旗 州 盟) and is
   immediately repeated is kept once: 浙江省杭州市浙江省杭州市西湖区 → 浙江省杭州市西湖区,
   湖北省湖北省大冶市 → 湖北省大冶市, 杭州市余杭区杭州市余杭区闲林街道 → 杭州市余杭区闲林街道.

Matching must normalize both sides (the query and the standard address base) with this same function.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from citygrid.errors import CitygridError, E, ErrorEntry

if TYPE_CHECKING:
    import opencc

MAX_LENGTH = 500

# Characters OpenCC t2s would rewrite inside official division names (乾县 → 干县, 於潜镇 → 于潜镇, …).
PROTECTED_CHARS = frozenset("乾於磑鴜濛塚篢洩藉")


class AddressInputError(CitygridError, ValueError):
    """The address text cannot be normalized: too long, empty or binary."""

    def __init__(self, entry: ErrorEntry, **params: Any) -> None:
        super().__init__(entry.problem("address", **params), entry.kind)


_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffd"
    "\ue000-\uf8ff\ud800-\udfff]"
)
_BINARYISH = re.compile("[\x00-\x08\x0e-\x1f\x7f\ufffd]")

_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_WIDTH[0x3000] = 0x20
for _ch in "‐‑‒–—―﹣~～－":
    _WIDTH[ord(_ch)] = ord("-")

# A character that is neither a separator, a dash, # nor one `_CONTROL` drops (the first one ends the search).
_CONTENT = re.compile(
    "[^\\s,，、;；:：。!！?？'\"“”‘’`·|/\\\\_#\\-‐‑‒–—―﹣~～－\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffd\ue000-\uf8ff\ud800-\udfff\uff01\uff02\uff03\uff07\uff0c\uff0f\uff1a\uff1b\uff1f\uff3c\uff3f\uff40\uff5c]"
)
_SEPARATORS = re.compile(r"[\s,，、;；:：。!！?？'\"“”‘’`·|/\\_]+")
_DASH = re.compile(r"-+")
_HASH = re.compile(r"#+")
_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_DIGITS = frozenset("0123456789")

_CN_DIGIT = {"零": "0", "〇": "0", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4", "五": "5", "六": "6",
             "七": "7", "八": "8", "九": "9"}
_NUMERAL = re.compile("([零〇一二两三四五六七八九十百千]+)(号楼|号院|号|栋|幢|座|单元|层|楼|室|户|组|队|期|排|弄|巷)")
_LANE_CONTEXT = frozenset("路街道巷弄里0123456789")
_BUILDING = re.compile("(?<=[0-9A-Za-z])(?:号楼|幢|座)|(?<=[0-9])户")
_ADMIN_END = re.compile("[省市区县镇乡道旗州盟]")

# For each character of the text being normalized: the [start, end) range of input characters it stands for.
Index = list[tuple[int, int]]


def _sub(text: str, idx: Index, pattern: re.Pattern[str], fn: Callable[[re.Match[str]], str | None]) -> tuple[str, Index]:
    """Replace matches by fn(match) (None keeps the match); each new char maps into the replaced input chars.

    The k-th new character takes the span of the k-th replaced one (the last replaced one when the replacement is
    longer); the last new character also reaches to the end of the match, so 号楼 → 栋 covers both input chars.
    """
    out: list[str] = []
    new: Index = []
    pos = 0
    for m in pattern.finditer(text):
        r = fn(m)
        if r is None:
            continue
        s, e = m.span()
        out.append(text[pos:s])
        new.extend(idx[pos:s])
        out.append(r)
        if r:
            last = max(e - s - 1, 0)
            new.extend(idx[s + min(k, last)] for k in range(len(r) - 1))
            new.append((idx[s + min(len(r) - 1, last)][0], idx[e - 1][1]))
        pos = e
    if not pos and not out:
        return text, idx
    out.append(text[pos:])
    new.extend(idx[pos:])
    return "".join(out), new


@lru_cache(maxsize=1)
def _opencc() -> opencc.OpenCC:
    import opencc

    return opencc.OpenCC("t2s")


def _t2s(text: str, idx: Index) -> tuple[str, Index]:
    if text.isascii():
        return text, idx
    conv = _opencc()
    out = conv.convert(text)
    if len(out) == len(text):
        if out == text:
            return text, idx
        if not PROTECTED_CHARS.isdisjoint(text):
            out = "".join(o if c not in PROTECTED_CHARS else c for c, o in zip(text, out, strict=True))
        return out, idx
    # A phrase changed length: convert char by char so the index map stays exact.
    chars: list[str] = []
    new: Index = []
    for c, i in zip(text, idx, strict=True):
        o = c if c in PROTECTED_CHARS else conv.convert(c)
        chars.append(o)
        new.extend([i] * len(o))
    return "".join(chars), new


_FOLD: dict[str, str] = {}


def fold_char(c: str) -> str:
    """One character as the normalizer's character-wise steps see it (full-width → half-width, dash variants → -,
    traditional → simplified except `PROTECTED_CHARS`), always exactly one character: what the tagger reads, so
    that it can tag the caller's own text position by position."""
    f = _FOLD.get(c)
    if f is None:
        f = c.translate(_WIDTH)
        if len(f) == 1 and not f.isascii() and c not in PROTECTED_CHARS:
            o = _opencc().convert(f)
            f = o if len(o) == 1 else f
        _FOLD[c] = f if len(f) == 1 else c
        f = _FOLD[c]
    return f


class _FoldTable(dict[int, str]):
    """str.translate table filled on first sight of a character (translate honours __missing__)."""

    def __missing__(self, code: int) -> str:
        f = self[code] = fold_char(chr(code))
        return f


_FOLD_TABLE = _FoldTable()


def fold(text: str) -> str:
    """`fold_char` over the text: same length, position i stands for input character i."""
    return text.translate(_FOLD_TABLE)


def _cn_number(run: str) -> str | None:
    if "十" in run or "百" in run or "千" in run:
        try:
            import cn2an

            return str(cn2an.cn2an(run, "normal"))
        except (ValueError, KeyError, IndexError):
            return None
    return "".join(_CN_DIGIT[c] for c in run)


def _numeral(m: re.Match[str]) -> str | None:
    run, unit = m.group(1), m.group(2)
    text = m.string
    if unit in ("弄", "巷") and (m.start() == 0 or text[m.start() - 1] not in _LANE_CONTEXT):
        return None
    digits = _cn_number(run)
    return None if digits is None else digits + unit


_NUMERAL_CHARS = frozenset("零〇一二两三四五六七八九十百千")


def numeral_runs(text: str) -> list[tuple[int, int]]:
    """[start, end) of the Chinese numeral runs `normalize` turns into digits (三 in 三号楼, 九 in 九层, 五〇二 in
    五〇二户), on a text folded per character; names like 三里屯 or 五一路 are not among them."""
    if _NUMERAL_CHARS.isdisjoint(text):
        return []
    return [m.span(1) for m in _NUMERAL.finditer(text) if _numeral(m) is not None]


def _numeral_sub(text: str, idx: Index) -> tuple[str, Index]:
    """Like _sub but the unit suffix keeps its own index entries (only the numeral run is rewritten)."""
    out: list[str] = []
    new: Index = []
    pos = 0
    for m in _NUMERAL.finditer(text):
        r = _numeral(m)
        if r is None:
            continue
        s, e = m.span(1)
        out.append(text[pos:s])
        new.extend(idx[pos:s])
        digits = r[: len(r) - len(m.group(2))]
        out.append(digits)
        last = e - s - 1
        new.extend(idx[s + min(k, last)] for k in range(len(digits) - 1))
        new.append((idx[s + min(len(digits) - 1, last)][0], idx[e - 1][1]))
        pos = e
    if not out:
        return text, idx
    out.append(text[pos:])
    new.extend(idx[pos:])
    return "".join(out), new


def _dash(m: re.Match[str]) -> str:
    s, e = m.span()
    t = m.string
    return "-" if s > 0 and e < len(t) and t[s - 1] in _ALNUM and t[e] in _ALNUM else ""


def _hash(m: re.Match[str]) -> str:
    s = m.start()
    return "号" if s > 0 and m.string[s - 1] in _ALNUM else ""


def _building(m: re.Match[str]) -> str:
    return "室" if m.group(0) == "户" else "栋"


def _dedupe(text: str, idx: Index) -> tuple[str, Index]:
    """Drop the second copy of an immediately repeated block ending in an administrative suffix."""
    changed = True
    while changed:
        changed = False
        ends = [m.start() for m in _ADMIN_END.finditer(text)]
        if len(ends) < 2:
            break
        for a, j1 in enumerate(ends):
            for j2 in ends[a + 1:]:
                n = j2 - j1
                if n < 2 or j1 - n + 1 < 0 or text[j1] != text[j2]:
                    continue
                if text[j1 - n + 1: j1 + 1] == text[j1 + 1: j2 + 1]:
                    text = text[: j1 + 1] + text[j2 + 1:]
                    idx = idx[: j1 + 1] + idx[j2 + 1:]
                    changed = True
                    break
            if changed:
                break
    return text, idx


def _validate(text: object) -> str:
    if not isinstance(text, str):  # bytes too: decoding is the caller's business
        raise AddressInputError(E.address_not_text, type=type(text).__name__)
    if len(text) > MAX_LENGTH:
        raise AddressInputError(E.address_too_long, length=len(text), limit=MAX_LENGTH)
    if "\x00" in text or len(_BINARYISH.findall(text)) * 10 > len(text):
        raise AddressInputError(E.address_binary)
    return text


def check_input(text: object) -> str:
    """The text, when the normalizer would accept it (raises AddressInputError like `normalize`): for callers that
    work on the input itself, such as the tagger."""
    t = _validate(text)
    if _CONTENT.search(t) is None:  # nothing but separators, dashes, # and invisible characters
        raise _empty()
    return t


def _empty() -> AddressInputError:
    return AddressInputError(E.address_empty)


def _normalize(text: str) -> tuple[str, Index]:
    text = _validate(text)
    if not text.strip():
        raise _empty()
    idx: Index = [(i, i + 1) for i in range(len(text))]
    text, idx = _sub(text, idx, _CONTROL, lambda m: "")
    text = text.translate(_WIDTH)
    text, idx = _t2s(text, idx)
    text, idx = _sub(text, idx, _SEPARATORS, lambda m: "")
    if "-" in text:
        text, idx = _sub(text, idx, _DASH, _dash)
    if "#" in text:
        text, idx = _sub(text, idx, _HASH, _hash)
    if not text:
        raise _empty()
    text, idx = _numeral_sub(text, idx)
    text, idx = _sub(text, idx, _BUILDING, _building)
    text, idx = _dedupe(text, idx)
    return text, idx


def normalize_with_map(text: str) -> tuple[str, list[int]]:
    """Normalized text and, for each of its characters, the index of the input character it comes from."""
    norm, idx = _normalize(text)
    return norm, [s for s, _ in idx]


def normalize_with_offsets(text: str) -> tuple[str, list[int], list[int]]:
    """Normalized text and, for each of its characters, the [start, end) of the input characters it stands for.

    A normalized span [a, b) is the caller's text[starts[a]:ends[b - 1]]: 3栋 from 三號樓 covers all three input
    characters, and a span never reaches into separators dropped before or after it.
    """
    norm, idx = _normalize(text)
    return norm, [s for s, _ in idx], [e for _, e in idx]


def normalize(text: str) -> str:
    """The normalized address text (see the module docstring for the rules)."""
    return _normalize(text)[0]
