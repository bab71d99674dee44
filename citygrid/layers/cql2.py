"""CQL2 filters (OGC API – Features Part 3) compiled to a parameterised SQL WHERE fragment.

Both encodings are supported: CQL2 text is parsed by the small recursive-descent parser below into the
CQL2 JSON tree, and the JSON tree (from either encoding) is compiled to SQL. Every literal becomes a bind
parameter; the only text copied into SQL is from this module's own tables (column expressions, operators,
function names) and catalog field names that are plain identifiers. Property names are checked against the
collection's queryables: catalog attributes except personal data (L4) plus a few columns.

Supported subset:
  * comparisons = <> < <= > >= on strings, numbers, booleans, dates and timestamps (property–property too),
  * AND, OR, NOT, parentheses, TRUE/FALSE,
  * LIKE (% and _; backslash escapes), BETWEEN, IN (...), IS [NOT] NULL, NOT LIKE/BETWEEN/IN,
  * CASEI(...) for case-insensitive comparison,
  * S_INTERSECTS, S_DISJOINT, S_EQUALS, S_TOUCHES, S_CROSSES, S_WITHIN, S_CONTAINS, S_OVERLAPS with WKT or
    GeoJSON geometries and BBOX(...) / {"bbox": [...]}, whose coordinates are in `filter-crs` (default CRS84)
    in that CRS's axis order.

SQL NULL semantics apply: a comparison with a missing attribute is unknown, so neither `x > 1` nor
`NOT x > 1` matches an object without `x`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import shapely
from pyproj import CRS, Transformer
from shapely.geometry import shape

from citygrid.catalog import get_catalog
from citygrid.errors import CitygridError

MAX_FILTER_CHARS = 20_000
MAX_DEPTH = 60
MAX_PARAMS = 5_000
PARAM_PREFIX = "cql_"
FIELD = "filter"

COMPARISONS = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
SPATIAL = {
    "s_intersects": "ST_Intersects", "s_disjoint": "ST_Disjoint", "s_equals": "ST_Equals",
    "s_touches": "ST_Touches", "s_crosses": "ST_Crosses", "s_within": "ST_Within",
    "s_contains": "ST_Contains", "s_overlaps": "ST_Overlaps",
}
GEOMETRY_TYPES = {"point": "Point", "linestring": "LineString", "polygon": "Polygon", "multipoint": "MultiPoint",
                  "multilinestring": "MultiLineString", "multipolygon": "MultiPolygon",
                  "geometrycollection": "GeometryCollection"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Conformance classes this module implements (the router adds them to /conformance).
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
]


def _err(code: str, zh: str, en: str, field: str = FIELD) -> CitygridError:
    return CitygridError.one(code, zh, en, field)


def _invalid(zh: str, en: str) -> CitygridError:
    return _err("filter_invalid", f"过滤条件无效：{zh}", f"invalid filter: {en}")


# --------------------------------------------------------------------------------------------------------------
# Queryables


@dataclass(frozen=True)
class Queryable:
    name: str
    kind: str  # text | num | bool | date | ts | geom
    sql: str
    schema: dict[str, Any]


_COLUMN_SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    "code": ("text", {"type": "string", "title": "对象编码 / object code"}),
    "name": ("text", {"type": "string", "title": "名称 / name"}),
    "class_code": ("text", {"type": "string", "title": "分类代码 / class code"}),
    "division_code": ("text", {"type": "string", "title": "县级区划代码 / county code"}),
    "township_code": ("text", {"type": "string", "title": "乡镇代码 / township code"}),
    "village_code": ("text", {"type": "string", "title": "村社区代码 / village code"}),
    "valid_from": ("ts", {"type": "string", "format": "date-time", "title": "生效时间 / valid from"}),
    "version": ("num", {"type": "integer", "title": "版本 / version"}),
}
_DIVISION_SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    "code": ("text", {"type": "string", "title": "区划代码 / division code"}),
    "name": ("text", {"type": "string", "title": "名称 / name"}),
    "level": ("num", {"type": "integer", "minimum": 1, "maximum": 5, "title": "级别 / level"}),
    "kind": ("text", {"type": "string", "title": "类型 / kind"}),
    "parent_code": ("text", {"type": "string", "title": "上级代码 / parent code"}),
}
_GEOM_FORMAT = {"Point": "geometry-point", "LineString": "geometry-linestring", "Polygon": "geometry-polygon",
                "MultiPoint": "geometry-multipoint", "MultiLineString": "geometry-multilinestring",
                "MultiPolygon": "geometry-multipolygon"}


_GRID_SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    "code": ("text", {"type": "string", "title": "网格编码 / grid code"}),
    "name": ("text", {"type": "string", "title": "名称 / name"}),
    "kind": ("text", {"type": "string", "enum": ["unit", "governance", "thematic"], "title": "网格类型 / kind"}),
    "division_code": ("text", {"type": "string", "title": "区划代码 / division code"}),
    "township_code": ("text", {"type": "string", "title": "乡镇代码 / township code"}),
    "households": ("num", {"type": "integer", "title": "户数 / households"}),
}
_DOORPLATE_SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    "code": ("text", {"type": "string", "title": "地址编码 / address code"}),
    "name": ("text", {"type": "string", "title": "门牌 / door plate"}),
    "full_name": ("text", {"type": "string", "title": "标准地址 / standard address"}),
    "number": ("num", {"type": "integer", "title": "门牌号 / number"}),
    "township_code": ("text", {"type": "string", "title": "乡镇代码 / township code"}),
    "village_code": ("text", {"type": "string", "title": "村社区代码 / village code"}),
    "object_code": ("text", {"type": "string", "title": "建筑物编码 / building object code"}),
    "unit_grid": ("text", {"type": "string", "title": "单元网格 / unit grid"}),
    "gov_grid": ("text", {"type": "string", "title": "治理网格 / governance grid"}),
}


def _geom_queryable(geometry_type: str | None, alias: str, sql: str = "o.geom") -> Queryable:
    return Queryable(alias, "geom", sql, {"title": "几何 / geometry", "x-ogc-role": "primary-geometry",
                                          "format": _GEOM_FORMAT.get(geometry_type or "", "geometry-any")})


@lru_cache(maxsize=256)
def object_queryables(class_code: str) -> dict[str, Queryable]:
    """Queryables of a class collection: non-L4 catalog attributes, object columns and the geometry."""
    cls = get_catalog().get(class_code)
    out: dict[str, Queryable] = {k: Queryable(k, kind, f"o.{k}", sch) for k, (kind, sch) in _COLUMN_SCHEMAS.items()}
    for a in cls.attributes if cls else []:
        if a.level == "L4" or not _IDENT.match(a.field):
            continue  # personal data is never filterable; odd names are never pasted into SQL
        ref = f"o.attrs->'{a.field}'"
        sch: dict[str, Any] = {"title": a.label}
        if a.description:
            sch["description"] = a.description
        if a.type in ("number", "integer"):
            kind = "num"
            sql = f"(CASE WHEN jsonb_typeof({ref}) = 'number' THEN CAST(o.attrs->>'{a.field}' AS numeric) END)"
            sch["type"] = a.type
            if a.min is not None:
                sch["minimum"] = a.min
            if a.max is not None:
                sch["maximum"] = a.max
            if a.unit:
                sch["x-unit"] = a.unit
        elif a.type == "boolean":
            kind = "bool"
            sql = f"(CASE WHEN jsonb_typeof({ref}) = 'boolean' THEN CAST(o.attrs->>'{a.field}' AS boolean) END)"
            sch["type"] = "boolean"
        else:
            kind = "date" if a.type == "date" else "text"
            sql = f"(CASE WHEN jsonb_typeof({ref}) = 'string' THEN o.attrs->>'{a.field}' END)"
            sch["type"] = "string"
            if a.type == "date":
                sch["format"] = "date"
            if a.enum:
                sch["enum"] = list(a.enum)
            if a.max_length:
                sch["maxLength"] = a.max_length
        out[a.field] = Queryable(a.field, kind, sql, sch)
    gt = cls.geometry if cls else None
    out["geom"] = _geom_queryable(gt, "geom")
    out["geometry"] = _geom_queryable(gt, "geometry")
    return out


def _column_queryables(schemas: dict[str, tuple[str, dict[str, Any]]], geometry_type: str,
                       geom_sql: str = "o.geom") -> dict[str, Queryable]:
    """Queryables of a table whose filterable properties are plain columns, plus its geometry."""
    out = {k: Queryable(k, kind, f"o.{k}", sch) for k, (kind, sch) in schemas.items()}
    out["geom"] = _geom_queryable(geometry_type, "geom", geom_sql)
    out["geometry"] = _geom_queryable(geometry_type, "geometry", geom_sql)
    return out


@lru_cache(maxsize=1)
def division_queryables() -> dict[str, Queryable]:
    return _column_queryables(_DIVISION_SCHEMAS, "MultiPolygon")


@lru_cache(maxsize=1)
def grid_queryables() -> dict[str, Queryable]:
    return _column_queryables(_GRID_SCHEMAS, "MultiPolygon")


@lru_cache(maxsize=1)
def doorplate_queryables() -> dict[str, Queryable]:
    return _column_queryables(_DOORPLATE_SCHEMAS, "Point", "o.point")


def queryables_schema(qs: dict[str, Queryable], schema_id: str, title: str) -> dict[str, Any]:
    """JSON Schema of the queryables (Part 3 §6): what a filter may name, with types."""
    props = {k: q.schema for k, q in qs.items() if k != "geometry"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_id, "type": "object",
            "title": title, "properties": props, "additionalProperties": False}


# --------------------------------------------------------------------------------------------------------------
# CQL2 text → CQL2 JSON


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
                    raise _invalid(f"第 {i + 1} 个字符开始的字符串没有结束引号", f"unterminated string at {i + 1}")
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
                raise _invalid(f"第 {i + 1} 个字符开始的属性名没有结束引号", f"unterminated quoted name at {i + 1}")
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
            raise _invalid(f"第 {i + 1} 个字符 {c!r} 无法识别", f"unexpected character {c!r} at {i + 1}")
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
        return _invalid(f"{where}处应为{zh}", f"expected {en}, found {at}")

    def expect_op(self, op: str) -> None:
        if not self.is_op(op):
            raise self.fail(f" {op}", repr(op))
        self.next()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _invalid(f"嵌套超过 {MAX_DEPTH} 层", f"nested deeper than {MAX_DEPTH} levels")

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
            raise _invalid("不支持空几何或带 M 值的几何", "EMPTY and M geometries are not supported")
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
        parse = {"Point": self.point_text, "LineString": self.line_text, "Polygon": self.polygon_text,
                 "MultiPoint": self.multipoint_text, "MultiLineString": lambda: self.list_of(self.line_text),
                 "MultiPolygon": lambda: self.list_of(self.polygon_text)}[gtype]
        return {"type": gtype, "coordinates": parse()}

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


# --------------------------------------------------------------------------------------------------------------
# CQL2 JSON → SQL


@dataclass
class _Val:
    kind: str  # text | num | bool | date | ts | geom, or for literals: string | number | boolean | dateLit | tsLit
    sql: str | None = None
    lit: Any = None

    @property
    def literal(self) -> bool:
        return self.sql is None


_LIT_NATURAL = {"string": "text", "number": "num", "boolean": "bool", "dateLit": "date", "tsLit": "ts"}
_KIND_ZH = {"text": "文本", "num": "数值", "bool": "布尔值", "date": "日期", "ts": "时间戳", "geom": "几何"}
_KIND_EN = {"text": "a string", "num": "a number", "bool": "a boolean", "date": "a date", "ts": "a timestamp",
            "geom": "a geometry"}


class _Compiler:
    def __init__(self, queryables: dict[str, Queryable], srid: int | None, swap_axes: bool, collection: str) -> None:
        self.q = queryables
        self.srid = srid
        self.swap = swap_axes
        self.collection = collection
        self.params: dict[str, Any] = {}
        self.depth = 0

    def param(self, value: Any, cast: str) -> str:
        if len(self.params) >= MAX_PARAMS:
            raise _invalid(f"字面值超过 {MAX_PARAMS} 个", f"more than {MAX_PARAMS} literals")
        name = f"{PARAM_PREFIX}{len(self.params)}"
        self.params[name] = value
        return f"CAST(:{name} AS {cast})"

    # predicates
    def predicate(self, node: Any) -> str:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _invalid(f"嵌套超过 {MAX_DEPTH} 层", f"nested deeper than {MAX_DEPTH} levels")
        try:
            return self._predicate(node)
        finally:
            self.depth -= 1

    def _predicate(self, node: Any) -> str:
        if isinstance(node, bool):
            return "TRUE" if node else "FALSE"
        if not isinstance(node, dict) or not isinstance(node.get("op"), str):
            raise _invalid("此处应为条件（含 op 与 args 的对象）", "expected a predicate (an object with op and args)")
        op = node["op"]
        lop = op.lower()
        args = node.get("args")
        if not isinstance(args, list):
            raise _invalid(f"{op} 缺少 args 数组", f"{op} needs an args array")
        if lop in ("and", "or"):
            if not args:
                raise _invalid(f"{op} 至少需要一个条件", f"{op} needs at least one argument")
            return "(" + f" {lop.upper()} ".join(self.predicate(a) for a in args) + ")"
        if lop == "not":
            self.arity(op, args, 1)
            return f"(NOT {self.predicate(args[0])})"
        if op in COMPARISONS:
            self.arity(op, args, 2)
            a, b = self.scalar(args[0]), self.scalar(args[1])
            kind = self.common(a, b, op)
            if kind == "geom":
                raise _invalid("几何请用 S_EQUALS 等空间函数比较", "compare geometries with S_EQUALS and the like")
            if kind == "bool" and op not in ("=", "<>"):
                raise _invalid("布尔值只能用 = 或 <> 比较", "booleans only support = and <>")
            return f"({self.bind(a, kind)} {COMPARISONS[op]} {self.bind(b, kind)})"
        if lop == "like":
            self.arity(op, args, 2)
            a, p = self.scalar(args[0]), self.scalar(self.pattern(args[1]))
            for v in (a, p):
                if self.natural(v) != "text":
                    raise _invalid("LIKE 只能用于文本", "LIKE needs strings on both sides")
            return f"({self.bind(a, 'text')} LIKE {self.bind(p, 'text')})"
        if lop == "between":
            self.arity(op, args, 3)
            a, lo, hi = (self.scalar(x) for x in args)
            kind = self.common_all(a, [lo, hi], "BETWEEN")
            if kind not in ("num", "text", "date", "ts"):
                raise _invalid("BETWEEN 只能用于数值、文本、日期和时间", "BETWEEN needs numbers, strings, dates or timestamps")
            return f"({self.bind(a, kind)} BETWEEN {self.bind(lo, kind)} AND {self.bind(hi, kind)})"
        if lop == "in":
            self.arity(op, args, 2)
            if not isinstance(args[1], list) or not args[1]:
                raise _invalid("IN 的第二个参数应为非空列表", "the second argument of IN must be a non-empty list")
            a = self.scalar(args[0])
            values = [self.scalar(x) for x in args[1]]
            kind = self.common_all(a, values, "IN")
            if kind == "geom":
                raise _invalid("IN 不能用于几何", "IN does not apply to geometries")
            return f"({self.bind(a, kind)} IN ({', '.join(self.bind(v, kind) for v in values)}))"
        if lop == "isnull":
            self.arity(op, args, 1)
            a = self.scalar(args[0])
            if a.literal:
                return "FALSE"
            return f"({a.sql} IS NULL)"
        if lop in SPATIAL:
            self.arity(op, args, 2)
            g1, g2 = (self.geometry_arg(x) for x in args)
            return f"{SPATIAL[lop]}({g1}, {g2})"
        if lop in ("casei", "accenti"):
            raise _invalid(f"{op}(…) 不是条件，应与值比较", f"{op}(…) is not a predicate; compare it with a value")
        raise _err("filter_function_unknown", f"不支持的函数或运算符：{op}",
                   f"unknown function or operator {op!r}; see the conformance classes at /ogc/conformance")

    @staticmethod
    def pattern(node: Any) -> Any:
        """A LIKE pattern is a string literal, maybe inside CASEI; a trailing lone backslash is a database error."""
        inner = node
        while isinstance(inner, dict) and str(inner.get("op", "")).lower() == "casei" and \
                isinstance(inner.get("args"), list) and len(inner["args"]) == 1:
            inner = inner["args"][0]
        if not isinstance(inner, str):
            raise _invalid("LIKE 的模式应为字符串字面值", "the pattern of LIKE must be a string literal")
        if (len(inner) - len(inner.rstrip("\\"))) % 2:
            raise _invalid("LIKE 模式不能以单个反斜杠结尾", "a LIKE pattern cannot end with a lone backslash")
        return node

    @staticmethod
    def arity(op: str, args: list[Any], n: int) -> None:
        if len(args) != n:
            raise _invalid(f"{op} 需要 {n} 个参数，实际 {len(args)} 个", f"{op} takes {n} arguments, got {len(args)}")

    # scalars
    def scalar(self, node: Any) -> _Val:
        if isinstance(node, bool):
            return _Val("boolean", lit=node)
        if isinstance(node, int | float | Decimal):
            d = node if isinstance(node, Decimal) else Decimal(repr(node)) if isinstance(node, float) else Decimal(node)
            if not d.is_finite() or abs(d.adjusted()) > 300:
                raise _invalid("数字应为有限值且不超过 1e300", "numbers must be finite and within 1e±300")
            return _Val("number", lit=d)
        if isinstance(node, str):
            return _Val("string", lit=node)
        if isinstance(node, dict):
            if "property" in node:
                return self.prop(node["property"])
            if "date" in node:
                v = node["date"]
                try:
                    d = dt.date.fromisoformat(v) if isinstance(v, str) and _DATE.match(v) else None
                except ValueError:
                    d = None
                if d is None:
                    raise _invalid(f"日期应为 YYYY-MM-DD：{str(v)[:40]}", f"dates must be YYYY-MM-DD, got {str(v)[:40]!r}")
                return _Val("dateLit", lit=d)
            if "timestamp" in node:
                v = node["timestamp"]
                try:
                    t = dt.datetime.fromisoformat(v.replace("Z", "+00:00")) if isinstance(v, str) else None
                except ValueError:
                    t = None
                if t is None or "T" not in str(v).upper():
                    raise _invalid(f"时间戳应为 RFC 3339 格式：{str(v)[:40]}",
                                   f"timestamps must be RFC 3339, got {str(v)[:40]!r}")
                return _Val("tsLit", lit=t if t.tzinfo else t.replace(tzinfo=dt.UTC))
            if "type" in node:
                return _Val("geom", sql=self.geometry_literal(node))
            if "bbox" in node:
                return _Val("geom", sql=self.geometry_literal({"bbox": node["bbox"]}))
            if isinstance(node.get("op"), str):
                return self.function(node)
        if node is None:
            raise _invalid("不支持 null 字面值，请用 IS NULL", "null literals are not supported; use isNull")
        raise _invalid("无法识别的值", f"unrecognised value {json.dumps(node, default=str)[:60]}")

    def function(self, node: dict[str, Any]) -> _Val:
        op = node["op"]
        args = node.get("args")
        if not isinstance(args, list):
            raise _invalid(f"{op} 缺少 args 数组", f"{op} needs an args array")
        if op.lower() == "casei":
            self.arity(op, args, 1)
            v = self.scalar(args[0])
            if self.natural(v) != "text":
                raise _invalid("CASEI 只能用于文本", "CASEI needs a string")
            return _Val("text", sql=f"lower({self.bind(v, 'text')})")
        known = {"and", "or", "not", "like", "between", "in", "isnull", *COMPARISONS, *SPATIAL}
        if op.lower() in known:
            raise _invalid(f"{op} 是条件，不能当作值使用", f"{op} is a predicate, not a value")
        raise _err("filter_function_unknown", f"不支持的函数：{op}", f"unknown function {op!r}")

    def prop(self, name: Any) -> _Val:
        if not isinstance(name, str):
            raise _invalid("property 应为字符串", "property must be a string")
        q = self.q.get(name)
        if q is None:
            raise _err("filter_property_unknown", f"属性 {name[:60]} 不是图层 {self.collection} 的可查询属性（见 queryables）",
                       f"{name[:60]!r} is not a queryable of {self.collection} (see its queryables)")
        return _Val(q.kind, sql=q.sql)

    @staticmethod
    def natural(v: _Val) -> str:
        return _LIT_NATURAL.get(v.kind, v.kind) if v.literal else v.kind

    def common(self, a: _Val, b: _Val, op: str) -> str:
        """The kind both operands are compared as, or a type error."""
        ka, kb = self.natural(a), self.natural(b)
        if ka == kb:
            return ka
        pair = {ka, kb}
        if pair == {"date", "text"} and (a.literal or b.literal):
            lit = a if a.literal else b
            if lit.kind == "dateLit" or (lit.kind == "string" and _DATE.match(lit.lit)):
                return "date"
        if pair == {"ts", "date"} and (a.kind == "dateLit" or b.kind == "dateLit"):
            return "ts"
        raise _err("filter_type_mismatch", f"{op} 两侧类型不一致：{_KIND_ZH.get(ka, ka)}与{_KIND_ZH.get(kb, kb)}",
                   f"{op} compares {_KIND_EN.get(ka, ka)} with {_KIND_EN.get(kb, kb)}")

    def common_all(self, a: _Val, others: list[_Val], op: str) -> str:
        kinds = {self.common(a, b, op) for b in others}
        if len(kinds) != 1:
            raise _err("filter_type_mismatch", f"{op} 的各个值类型不一致", f"the values of {op} are of different types")
        return kinds.pop()

    def bind(self, v: _Val, kind: str) -> str:
        if not v.literal:
            assert v.sql is not None
            return v.sql
        if kind == "text":
            return self.param(str(v.lit), "text")
        if kind == "num":
            return self.param(v.lit, "numeric")
        if kind == "bool":
            return self.param(bool(v.lit), "boolean")
        if kind == "date":  # catalog dates are stored as YYYY-MM-DD strings, which sort as dates
            return self.param(v.lit.isoformat() if isinstance(v.lit, dt.date) else str(v.lit), "text")
        if kind == "ts":
            return self.param(v.lit, "date" if v.kind == "dateLit" else "timestamptz")
        raise _invalid("无法比较该值", "cannot compare this value")  # pragma: no cover

    # geometry
    def geometry_arg(self, node: Any) -> str:
        v = self.scalar(node)
        if v.kind != "geom" or v.sql is None:
            raise _invalid("空间函数的参数应为几何属性或几何字面值（WKT/GeoJSON）",
                           "spatial functions take geometry properties or geometry literals (WKT/GeoJSON)")
        return v.sql

    def geometry_literal(self, node: dict[str, Any]) -> str:
        if "type" not in node:
            b = node.get("bbox")
            if not isinstance(b, list) or len(b) not in (4, 6) or not all(_finite(x) for x in b):
                raise _invalid("bbox 应为 4 或 6 个数字", "bbox must be 4 or 6 numbers")
            x0, y0, x1, y1 = (b[0], b[1], b[2], b[3]) if len(b) == 4 else (b[0], b[1], b[3], b[4])
            if x0 > x1 or y0 > y1:
                raise _invalid("bbox 的最小值不能大于最大值", "bbox minimum exceeds maximum")
            node = {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
        try:
            clean = _clean_geojson(node, self.swap, 0)
            g = shape(clean)
        except CitygridError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, shapely.errors.ShapelyError) as exc:
            raise _invalid("几何字面值格式错误", f"malformed geometry: {str(exc)[:80]}") from exc
        if g.is_empty:
            raise _invalid("几何不能为空", "empty geometries are not supported")
        if not g.is_valid:
            reason = shapely.is_valid_reason(g)
            raise _invalid(f"几何无效（{reason}）", f"invalid geometry ({reason})")
        g = shapely.force_2d(g)
        src = 4490 if self.srid is None else self.srid
        _check_coordinates(g, src)
        sql = f"ST_SetSRID(ST_GeomFromWKB({self.param(shapely.to_wkb(g), 'bytea')}), {int(src)})"
        return sql if src == 4490 else f"ST_Transform({sql}, 4490)"


def _finite(x: Any) -> bool:
    return isinstance(x, int | float | Decimal) and not isinstance(x, bool) and math.isfinite(float(x))


def _clean_geojson(node: Any, swap: bool, depth: int) -> dict[str, Any]:
    """Validate a GeoJSON geometry's structure and numbers; swap axes for northing-first CRSs."""
    if depth > 4 or not isinstance(node, dict):
        raise _invalid("几何嵌套过深或格式错误", "malformed geometry")
    t = node.get("type")
    if t == "GeometryCollection":
        gs = node.get("geometries")
        if not isinstance(gs, list) or not gs:
            raise _invalid("GeometryCollection 需要 geometries", "GeometryCollection needs geometries")
        return {"type": t, "geometries": [_clean_geojson(g, swap, depth + 1) for g in gs]}
    levels = {"Point": 0, "LineString": 1, "MultiPoint": 1, "Polygon": 2, "MultiLineString": 2, "MultiPolygon": 3}
    if t not in levels:
        raise _invalid(f"不支持的几何类型 {str(t)[:30]}", f"unsupported geometry type {str(t)[:30]!r}")

    def walk(c: Any, level: int) -> Any:
        if not isinstance(c, list):
            raise _invalid("坐标应为数组", "coordinates must be arrays")
        if level == 0:
            if len(c) not in (2, 3) or not all(_finite(x) for x in c):
                raise _invalid("坐标应为 2 或 3 个有限数字", "a position is 2 or 3 finite numbers")
            x, y = float(c[0]), float(c[1])
            return [y, x] if swap else [x, y]
        if not c:
            raise _invalid("几何不能为空", "empty geometries are not supported")
        return [walk(x, level - 1) for x in c]

    return {"type": t, "coordinates": walk(node.get("coordinates"), levels[t])}


@lru_cache(maxsize=32)
def _to_cgcs2000(src: int) -> Transformer:
    return Transformer.from_crs(src, 4490, always_xy=True)


@lru_cache(maxsize=32)
def _geographic(src: int) -> bool:
    return bool(CRS.from_epsg(src).is_geographic)


def _check_coordinates(g: Any, src: int) -> None:
    """Reject coordinates the database could not transform (a PostGIS error would be a 500)."""
    xy = shapely.get_coordinates(g)
    if _geographic(src):
        if ((abs(xy[:, 0]) > 180) | (abs(xy[:, 1]) > 90)).any():
            raise _err("filter_invalid", "过滤条件无效：经纬度超出范围（注意 filter-crs 的轴顺序）",
                       "invalid filter: longitude/latitude out of range (mind the axis order of filter-crs)")
    if src != 4490:
        lon, lat = _to_cgcs2000(src).transform(xy[:, 0], xy[:, 1])
        ok = all(math.isfinite(v) for v in list(lon) + list(lat))
        if not ok or any(abs(v) > 180 for v in lon) or any(abs(v) > 90 for v in lat):
            raise _err("filter_invalid", "过滤条件无效：坐标无法转换到 CGCS2000（检查 filter-crs）",
                       "invalid filter: coordinates cannot be transformed to CGCS2000 (check filter-crs)")


# --------------------------------------------------------------------------------------------------------------
# entry point


def parse(filter_: str, lang: str | None) -> Any:
    """The CQL2 JSON tree of a filter in either encoding."""
    lang_ = (lang or "cql2-text").strip().lower()
    if lang_ not in ("cql2-text", "cql2-json"):
        raise _err("filter_lang_unsupported", f"不支持的 filter-lang：{lang[:40] if lang else ''}（可用 cql2-text、cql2-json）",
                   f"unsupported filter-lang {lang!r}; use cql2-text or cql2-json", "filter-lang")
    if not filter_.strip():
        raise _invalid("过滤条件为空", "empty filter")
    if len(filter_) > MAX_FILTER_CHARS:
        raise _invalid(f"长度超过 {MAX_FILTER_CHARS} 个字符", f"longer than {MAX_FILTER_CHARS} characters")
    if lang_ == "cql2-text":
        return parse_text(filter_)
    try:
        return json.loads(filter_, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise _invalid("JSON 嵌套过深", "JSON nested too deeply") from exc
    except ValueError as exc:
        raise _invalid(f"不是合法的 JSON（{exc}）", f"not valid JSON ({exc})") from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def compile_filter(filter_: str, lang: str | None, queryables: dict[str, Queryable], *, srid: int | None = None,
                   swap_axes: bool = False, collection: str = "") -> tuple[str, dict[str, Any]]:
    """SQL boolean expression (over alias `o`) and its bind parameters for a CQL2 filter.

    `srid` is the filter-crs (None = CRS84, numerically EPSG:4490), `swap_axes` tells whether its first axis is
    northing, so literals are given latitude/northing first.
    """
    tree = parse(filter_, lang)
    c = _Compiler(queryables, srid, swap_axes, collection)
    try:
        sql = c.predicate(tree)
    except RecursionError as exc:
        raise _invalid("嵌套过深", "nested too deeply") from exc
    return sql, c.params
