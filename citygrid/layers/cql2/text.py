"""CQL2 text → the CQL2 JSON tree: a tokenizer and a recursive-descent parser; and the JSON encoding read
with the same limits. The compiler (`compile.py`) only ever sees JSON trees."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from citygrid.errors import CitygridError, E
from citygrid.layers.cql2.vocab import (
    COMPARISONS,
    GEOMETRY_TYPES,
    MAX_DEPTH,
    MAX_FILTER_CHARS,
    SPATIAL,
    invalid,
)


@dataclass
class _Tok:
    kind: str  # str | num | id | qid | op | end
    value: str
    pos: int


_NUM = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[^\W\d]\w*(?:[.:][^\W\d]\w*)*")
_OPS = ("<=", ">=", "<>", "=", "<", ">", "(", ")", ",", "-", "+")
KEYWORDS = {"and", "or", "not", "like", "between", "in", "is", "null", "true", "false"}


def _tokenize(s: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c.isspace():
            i += 1
            continue
        if c == "'":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise invalid(f"第 {i + 1} 个字符开始的字符串没有结束引号", f"unterminated string at {i + 1}")
                ch = s[j]
                if ch == "'" and j + 1 < n and s[j + 1] == "'":
                    buf.append("'")
                    j += 2
                elif ch == "\\" and j + 1 < n and s[j + 1] == "'":
                    buf.append("'")
                    j += 2
                elif ch == "'":
                    break
                else:
                    buf.append(ch)
                    j += 1
            toks.append(_Tok("str", "".join(buf), i))
            i = j + 1
            continue
        if c == '"':
            j = s.find('"', i + 1)
            if j < 0:
                raise invalid(f"第 {i + 1} 个字符开始的属性名没有结束引号", f"unterminated quoted name at {i + 1}")
            toks.append(_Tok("qid", s[i + 1:j], i))
            i = j + 1
            continue
        m = _NUM.match(s, i)
        if m:
            toks.append(_Tok("num", m.group(), i))
            i = m.end()
            continue
        m = _WORD.match(s, i)
        if m:
            toks.append(_Tok("id", m.group(), i))
            i = m.end()
            continue
        for op in _OPS:
            if s.startswith(op, i):
                toks.append(_Tok("op", op, i))
                i += len(op)
                break
        else:
            raise invalid(f"第 {i + 1} 个字符 {c!r} 无法识别", f"unexpected character {c!r} at {i + 1}")
    toks.append(_Tok("end", "", n))
    return toks


class _TextParser:
    def __init__(self, s: str) -> None:
        self.toks = _tokenize(s)
        self.i = 0
        self.depth = 0

    # helpers
    def peek(self, k: int = 0) -> _Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> _Tok:
        t = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return t

    def is_kw(self, word: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t.kind == "id" and t.value.lower() == word

    def is_op(self, op: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t.kind == "op" and t.value == op

    def fail(self, zh: str, en: str) -> CitygridError:
        t = self.peek()
        where = "结尾" if t.kind == "end" else f"第 {t.pos + 1} 个字符（{t.value}）"
        at = "end of input" if t.kind == "end" else f"{t.value!r} at {t.pos + 1}"
        return invalid(f"{where}处应为{zh}", f"expected {en}, found {at}")

    def expect_op(self, op: str) -> None:
        if not self.is_op(op):
            raise self.fail(f" {op}", repr(op))
        self.next()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise invalid(f"嵌套超过 {MAX_DEPTH} 层", f"nested deeper than {MAX_DEPTH} levels")

    # grammar
    def parse(self) -> Any:
        node = self.boolean()
        if self.peek().kind != "end":
            raise self.fail("表达式结束或 AND/OR", "end of filter or AND/OR")
        return node

    def boolean(self) -> Any:
        self.enter()
        args = [self.term()]
        while self.is_kw("or"):
            self.next()
            args.append(self.term())
        self.depth -= 1
        return args[0] if len(args) == 1 else {"op": "or", "args": args}

    def term(self) -> Any:
        args = [self.factor()]
        while self.is_kw("and"):
            self.next()
            args.append(self.factor())
        return args[0] if len(args) == 1 else {"op": "and", "args": args}

    def factor(self) -> Any:
        if self.is_kw("not"):
            self.next()
            self.enter()
            node = {"op": "not", "args": [self.factor()]}
            self.depth -= 1
            return node
        if self.is_op("("):
            self.next()
            node = self.boolean()
            self.expect_op(")")
            return node
        return self.predicate()

    def predicate(self) -> Any:
        t = self.peek()
        if t.kind == "id" and t.value.lower() in SPATIAL and self.is_op("(", 1):
            return self.call()
        left = self.scalar()
        negate = False
        if self.is_kw("not") and any(self.is_kw(w, 1) for w in ("like", "between", "in")):
            self.next()
            negate = True
        t = self.peek()
        node: Any
        if t.kind == "op" and t.value in COMPARISONS:
            self.next()
            node = {"op": t.value, "args": [left, self.scalar()]}
        elif self.is_kw("like"):
            self.next()
            node = {"op": "like", "args": [left, self.scalar()]}
        elif self.is_kw("between"):
            self.next()
            lo = self.scalar()
            if not self.is_kw("and"):
                raise self.fail(" BETWEEN … AND … 中的 AND", "AND of BETWEEN … AND …")
            self.next()
            node = {"op": "between", "args": [left, lo, self.scalar()]}
        elif self.is_kw("in"):
            self.next()
            self.expect_op("(")
            values = [self.scalar()]
            while self.is_op(","):
                self.next()
                values.append(self.scalar())
            self.expect_op(")")
            node = {"op": "in", "args": [left, values]}
        elif self.is_kw("is"):
            self.next()
            neg = False
            if self.is_kw("not"):
                self.next()
                neg = True
            if not self.is_kw("null"):
                raise self.fail(" NULL", "NULL")
            self.next()
            node = {"op": "isNull", "args": [left]}
            return {"op": "not", "args": [node]} if neg else node
        elif isinstance(left, bool):
            return left
        elif isinstance(left, dict) and "op" in left:
            return left  # a function used as a predicate; the compiler decides whether it is one
        else:
            raise self.fail("比较运算符（=、<>、<、<=、>、>=、LIKE、BETWEEN、IN、IS NULL）",
                            "a comparison operator (=, <>, <, <=, >, >=, LIKE, BETWEEN, IN, IS NULL)")
        return {"op": "not", "args": [node]} if negate else node

    def number(self) -> Decimal:
        sign = ""
        if self.is_op("-") or self.is_op("+"):
            sign = self.next().value
        t = self.peek()
        if t.kind != "num":
            raise self.fail("数字", "a number")
        self.next()
        return Decimal(sign + t.value)

    def scalar(self) -> Any:
        t = self.peek()
        if t.kind == "str":
            self.next()
            return t.value
        if t.kind == "num" or (t.kind == "op" and t.value in "-+" and self.peek(1).kind == "num"):
            return self.number()
        if t.kind == "qid":
            self.next()
            return {"property": t.value}
        if t.kind != "id":
            raise self.fail("属性名、字面值或函数", "a property, literal or function")
        word = t.value.lower()
        if word in ("true", "false"):
            self.next()
            return word == "true"
        if word in ("date", "timestamp") and self.is_op("(", 1):
            self.next()
            self.next()
            s = self.peek()
            if s.kind != "str":
                raise self.fail(f" {word.upper()}('…') 中的字符串", f"a string in {word.upper()}('…')")
            self.next()
            self.expect_op(")")
            return {word: s.value}
        if (word in GEOMETRY_TYPES or word == "bbox") and (
                self.is_op("(", 1) or any(self.is_kw(w, 1) for w in ("z", "m", "zm", "empty"))):
            return self.geometry()
        if word in KEYWORDS:
            raise self.fail("属性名、字面值或函数", "a property, literal or function")
        if self.is_op("(", 1):
            return self.call()
        self.next()
        return {"property": t.value}

    def call(self) -> dict[str, Any]:
        name = self.next().value.lower()
        self.expect_op("(")
        self.enter()
        args: list[Any] = []
        if not self.is_op(")"):
            args.append(self.scalar())
            while self.is_op(","):
                self.next()
                args.append(self.scalar())
        self.expect_op(")")
        self.depth -= 1
        return {"op": name, "args": args}

    # WKT
    def geometry(self) -> dict[str, Any]:
        word = self.next().value.lower()
        if word == "bbox":
            self.expect_op("(")
            nums = [float(self.number())]
            while self.is_op(","):
                self.next()
                nums.append(float(self.number()))
            self.expect_op(")")
            return {"bbox": nums}
        if self.is_kw("z"):
            self.next()
        elif self.is_kw("empty") or self.is_kw("m") or self.is_kw("zm"):
            raise invalid("不支持空几何或带 M 值的几何", "EMPTY and M geometries are not supported")
        gtype = GEOMETRY_TYPES[word]
        if gtype == "GeometryCollection":
            self.expect_op("(")
            self.enter()
            geoms = [self.geometry_member()]
            while self.is_op(","):
                self.next()
                geoms.append(self.geometry_member())
            self.expect_op(")")
            self.depth -= 1
            return {"type": gtype, "geometries": geoms}
        parse: dict[str, Callable[[], list[Any]]] = {
            "Point": self.point_text, "LineString": self.line_text, "Polygon": self.polygon_text,
            "MultiPoint": self.multipoint_text, "MultiLineString": lambda: self.list_of(self.line_text),
            "MultiPolygon": lambda: self.list_of(self.polygon_text)}
        return {"type": gtype, "coordinates": parse[gtype]()}

    def geometry_member(self) -> dict[str, Any]:
        t = self.peek()
        if t.kind != "id" or t.value.lower() not in GEOMETRY_TYPES:
            raise self.fail("几何类型（POINT、POLYGON 等）", "a WKT geometry")
        return self.geometry()

    def position(self) -> list[float]:
        pos = [float(self.number()), float(self.number())]
        if self.peek().kind == "num" or (self.peek().kind == "op" and self.peek().value in "-+"
                                         and self.peek(1).kind == "num"):
            pos.append(float(self.number()))
        return pos

    def point_text(self) -> list[float]:
        self.expect_op("(")
        p = self.position()
        self.expect_op(")")
        return p

    def line_text(self) -> list[list[float]]:
        return self.list_of(self.position)

    def polygon_text(self) -> list[list[list[float]]]:
        return self.list_of(self.line_text)

    def multipoint_text(self) -> list[list[float]]:
        return self.list_of(lambda: self.point_text() if self.is_op("(") else self.position())

    def list_of(self, item: Any) -> list[Any]:
        self.expect_op("(")
        out = [item()]
        while self.is_op(","):
            self.next()
            out.append(item())
        self.expect_op(")")
        return out


def parse_text(s: str) -> Any:
    """CQL2 text → the equivalent CQL2 JSON tree (numbers as Decimal)."""
    return _TextParser(s).parse()



def parse(filter_: str, lang: str | None) -> Any:
    """The CQL2 JSON tree of a filter in either encoding."""
    lang_ = (lang or "cql2-text").strip().lower()
    if lang_ not in ("cql2-text", "cql2-json"):
        raise E.filter_lang_unsupported("filter-lang", lang=lang[:40] if lang else "")
    if not filter_.strip():
        raise invalid("过滤条件为空", "empty filter")
    if len(filter_) > MAX_FILTER_CHARS:
        raise invalid(f"长度超过 {MAX_FILTER_CHARS} 个字符", f"longer than {MAX_FILTER_CHARS} characters")
    if lang_ == "cql2-text":
        return parse_text(filter_)
    try:
        return json.loads(filter_, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise invalid("JSON 嵌套过深", "JSON nested too deeply") from exc
    except ValueError as exc:
        raise invalid(f"不是合法的 JSON（{exc}）", f"not valid JSON ({exc})") from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")

