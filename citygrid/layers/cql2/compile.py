"""CQL2 JSON tree → a parameterised SQL boolean expression over alias `o`, checked against a layer's queryables.

Every literal becomes a bind parameter (`cql_N`); the only text copied into SQL is from this package's own
tables (operators, function names) and the queryables' SQL, which the layer definitions
(`citygrid/layers/sources.py`) build from plain identifiers.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from citygrid.crs import CRS84, Crs
from citygrid.errors import CitygridError, E
from citygrid.layers.cql2.vocab import (
    COMPARISONS,
    DATE,
    FIELD,
    MAX_DEPTH,
    MAX_PARAMS,
    PARAM_PREFIX,
    SPATIAL,
    invalid,
)


@dataclass(frozen=True)
class Queryable:
    name: str
    kind: str  # text | num | bool | date | ts | geom
    sql: str
    schema: dict[str, Any]


def queryables_schema(qs: dict[str, Queryable], schema_id: str, title: str) -> dict[str, Any]:
    """JSON Schema of the queryables (Part 3 §6): what a filter may name, with types."""
    props = {k: q.schema for k, q in qs.items() if k != "geometry"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_id, "type": "object",
            "title": title, "properties": props, "additionalProperties": False}



@dataclass
class _Val:
    kind: str  # text | num | bool | date | ts | geom, or for literals: string | number | boolean | dateLit | tsLit
    sql: str | None = None
    lit: Any = None

    @property
    def literal(self) -> bool:
        return self.sql is None


# GCJ-02/BD-09 literals: edges split every 0.01° (~1 km) before the offset moves them; the offset varies by
# centimetres over that length, so straight edges between the moved vertices stay true.
OFFSET_STEP = 0.01

_LIT_NATURAL = {"string": "text", "number": "num", "boolean": "bool", "dateLit": "date", "tsLit": "ts"}
_KIND_ZH = {"text": "文本", "num": "数值", "bool": "布尔值", "date": "日期", "ts": "时间戳", "geom": "几何"}
_KIND_EN = {"text": "a string", "num": "a number", "bool": "a boolean", "date": "a date", "ts": "a timestamp",
            "geom": "a geometry"}


class _Compiler:
    def __init__(self, queryables: dict[str, Queryable], crs: Crs, collection: str) -> None:
        self.q = queryables
        self.crs = crs
        self.swap = crs.northing_first
        self.collection = collection
        self.params: dict[str, Any] = {}
        self.depth = 0

    def param(self, value: Any, cast: str) -> str:
        if len(self.params) >= MAX_PARAMS:
            raise invalid(f"字面值超过 {MAX_PARAMS} 个", f"more than {MAX_PARAMS} literals")
        name = f"{PARAM_PREFIX}{len(self.params)}"
        self.params[name] = value
        return f"CAST(:{name} AS {cast})"

    # predicates
    def predicate(self, node: Any) -> str:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise invalid(f"嵌套超过 {MAX_DEPTH} 层", f"nested deeper than {MAX_DEPTH} levels")
        try:
            return self._predicate(node)
        finally:
            self.depth -= 1

    def _predicate(self, node: Any) -> str:
        if isinstance(node, bool):
            return "TRUE" if node else "FALSE"
        if not isinstance(node, dict) or not isinstance(node.get("op"), str):
            raise invalid("此处应为条件（含 op 与 args 的对象）", "expected a predicate (an object with op and args)")
        op = node["op"]
        lop = op.lower()
        args = node.get("args")
        if not isinstance(args, list):
            raise invalid(f"{op} 缺少 args 数组", f"{op} needs an args array")
        if lop in ("and", "or"):
            if not args:
                raise invalid(f"{op} 至少需要一个条件", f"{op} needs at least one argument")
            return "(" + f" {lop.upper()} ".join(self.predicate(a) for a in args) + ")"
        if lop == "not":
            self.arity(op, args, 1)
            return f"(NOT {self.predicate(args[0])})"
        if op in COMPARISONS:
            self.arity(op, args, 2)
            a, b = self.scalar(args[0]), self.scalar(args[1])
            kind = self.common(a, b, op)
            if kind == "geom":
                raise invalid("几何请用 S_EQUALS 等空间函数比较", "compare geometries with S_EQUALS and the like")
            if kind == "bool" and op not in ("=", "<>"):
                raise invalid("布尔值只能用 = 或 <> 比较", "booleans only support = and <>")
            return f"({self.bind(a, kind)} {COMPARISONS[op]} {self.bind(b, kind)})"
        if lop == "like":
            self.arity(op, args, 2)
            a, p = self.scalar(args[0]), self.scalar(self.pattern(args[1]))
            for v in (a, p):
                if self.natural(v) != "text":
                    raise invalid("LIKE 只能用于文本", "LIKE needs strings on both sides")
            return f"({self.bind(a, 'text')} LIKE {self.bind(p, 'text')})"
        if lop == "between":
            self.arity(op, args, 3)
            a, lo, hi = (self.scalar(x) for x in args)
            kind = self.common_all(a, [lo, hi], "BETWEEN")
            if kind not in ("num", "text", "date", "ts"):
                raise invalid("BETWEEN 只能用于数值、文本、日期和时间", "BETWEEN needs numbers, strings, dates or timestamps")
            return f"({self.bind(a, kind)} BETWEEN {self.bind(lo, kind)} AND {self.bind(hi, kind)})"
        if lop == "in":
            self.arity(op, args, 2)
            if not isinstance(args[1], list) or not args[1]:
                raise invalid("IN 的第二个参数应为非空列表", "the second argument of IN must be a non-empty list")
            a = self.scalar(args[0])
            values = [self.scalar(x) for x in args[1]]
            kind = self.common_all(a, values, "IN")
            if kind == "geom":
                raise invalid("IN 不能用于几何", "IN does not apply to geometries")
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
            raise invalid(f"{op}(…) 不是条件，应与值比较", f"{op}(…) is not a predicate; compare it with a value")
        raise E.filter_function_unknown(FIELD, op=op)

    @staticmethod
    def pattern(node: Any) -> Any:
        """A LIKE pattern is a string literal, maybe inside CASEI; a trailing lone backslash is a database error."""
        inner = node
        while isinstance(inner, dict) and str(inner.get("op", "")).lower() == "casei" and \
                isinstance(inner.get("args"), list) and len(inner["args"]) == 1:
            inner = inner["args"][0]
        if not isinstance(inner, str):
            raise invalid("LIKE 的模式应为字符串字面值", "the pattern of LIKE must be a string literal")
        if (len(inner) - len(inner.rstrip("\\"))) % 2:
            raise invalid("LIKE 模式不能以单个反斜杠结尾", "a LIKE pattern cannot end with a lone backslash")
        return node

    @staticmethod
    def arity(op: str, args: list[Any], n: int) -> None:
        if len(args) != n:
            raise invalid(f"{op} 需要 {n} 个参数，实际 {len(args)} 个", f"{op} takes {n} arguments, got {len(args)}")

    # scalars
    def scalar(self, node: Any) -> _Val:
        if isinstance(node, bool):
            return _Val("boolean", lit=node)
        if isinstance(node, int | float | Decimal):
            d = node if isinstance(node, Decimal) else Decimal(repr(node)) if isinstance(node, float) else Decimal(node)
            if not d.is_finite() or abs(d.adjusted()) > 300:
                raise invalid("数字应为有限值且不超过 1e300", "numbers must be finite and within 1e±300")
            return _Val("number", lit=d)
        if isinstance(node, str):
            return _Val("string", lit=node)
        if isinstance(node, dict):
            if "property" in node:
                return self.prop(node["property"])
            if "date" in node:
                v = node["date"]
                try:
                    day = dt.date.fromisoformat(v) if isinstance(v, str) and DATE.match(v) else None
                except ValueError:
                    day = None
                if day is None:
                    raise invalid(f"日期应为 YYYY-MM-DD：{str(v)[:40]}", f"dates must be YYYY-MM-DD, got {str(v)[:40]!r}")
                return _Val("dateLit", lit=day)
            if "timestamp" in node:
                v = node["timestamp"]
                try:
                    t = dt.datetime.fromisoformat(v.replace("Z", "+00:00")) if isinstance(v, str) else None
                except ValueError:
                    t = None
                if t is None or "T" not in str(v).upper():
                    raise invalid(f"时间戳应为 RFC 3339 格式：{str(v)[:40]}",
                                   f"timestamps must be RFC 3339, got {str(v)[:40]!r}")
                return _Val("tsLit", lit=t if t.tzinfo else t.replace(tzinfo=dt.UTC))
            if "type" in node:
                return _Val("geom", sql=self.geometry_literal(node))
            if "bbox" in node:
                return _Val("geom", sql=self.geometry_literal({"bbox": node["bbox"]}))
            if isinstance(node.get("op"), str):
                return self.function(node)
        if node is None:
            raise invalid("不支持 null 字面值，请用 IS NULL", "null literals are not supported; use isNull")
        raise invalid("无法识别的值", f"unrecognised value {json.dumps(node, default=str)[:60]}")

    def function(self, node: dict[str, Any]) -> _Val:
        op = node["op"]
        args = node.get("args")
        if not isinstance(args, list):
            raise invalid(f"{op} 缺少 args 数组", f"{op} needs an args array")
        if op.lower() == "casei":
            self.arity(op, args, 1)
            v = self.scalar(args[0])
            if self.natural(v) != "text":
                raise invalid("CASEI 只能用于文本", "CASEI needs a string")
            return _Val("text", sql=f"lower({self.bind(v, 'text')})")
        known = {"and", "or", "not", "like", "between", "in", "isnull", *COMPARISONS, *SPATIAL}
        if op.lower() in known:
            raise invalid(f"{op} 是条件，不能当作值使用", f"{op} is a predicate, not a value")
        raise E.filter_function_unknown(FIELD, op=op)

    def prop(self, name: Any) -> _Val:
        if not isinstance(name, str):
            raise invalid("property 应为字符串", "property must be a string")
        q = self.q.get(name)
        if q is None:
            raise E.filter_property_unknown(FIELD, name=name[:60], collection=self.collection)
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
            if lit.kind == "dateLit" or (lit.kind == "string" and DATE.match(lit.lit)):
                return "date"
        if pair == {"ts", "date"} and (a.kind == "dateLit" or b.kind == "dateLit"):
            return "ts"
        raise E.filter_type_mismatch(FIELD, op=op, kinds_zh=f"{_KIND_ZH.get(ka, ka)}与{_KIND_ZH.get(kb, kb)}",
                                     kinds_en=f"{_KIND_EN.get(ka, ka)} with {_KIND_EN.get(kb, kb)}")

    def common_all(self, a: _Val, others: list[_Val], op: str) -> str:
        kinds = {self.common(a, b, op) for b in others}
        if len(kinds) != 1:
            raise E.filter_type_mismatch(FIELD, op=op, kinds_zh="各个值不是同一类型", kinds_en="values of different types")
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
        raise invalid("无法比较该值", "cannot compare this value")  # pragma: no cover

    # geometry
    def geometry_arg(self, node: Any) -> str:
        v = self.scalar(node)
        if v.kind != "geom" or v.sql is None:
            raise invalid("空间函数的参数应为几何属性或几何字面值（WKT/GeoJSON）",
                           "spatial functions take geometry properties or geometry literals (WKT/GeoJSON)")
        return v.sql

    def geometry_literal(self, node: dict[str, Any]) -> str:
        if "type" not in node:
            b = node.get("bbox")
            if not isinstance(b, list) or len(b) not in (4, 6) or not all(_finite(x) for x in b):
                raise invalid("bbox 应为 4 或 6 个数字", "bbox must be 4 or 6 numbers")
            x0, y0, x1, y1 = (b[0], b[1], b[2], b[3]) if len(b) == 4 else (b[0], b[1], b[3], b[4])
            if x0 > x1 or y0 > y1:
                raise invalid("bbox 的最小值不能大于最大值", "bbox minimum exceeds maximum")
            node = {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
        try:
            clean = _clean_geojson(node, self.swap, 0)
            g = shape(clean)
        except CitygridError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, shapely.errors.ShapelyError) as exc:
            raise invalid("几何字面值格式错误", f"malformed geometry: {str(exc)[:80]}") from exc
        if g.is_empty:
            raise invalid("几何不能为空", "empty geometries are not supported")
        if not g.is_valid:
            reason = shapely.is_valid_reason(g)
            raise invalid(f"几何无效（{reason}）", f"invalid geometry ({reason})")
        g = shapely.force_2d(g)
        src = 4490 if self.crs.is_storage or self.crs.srid is None else self.crs.srid
        if self.crs.srid is None and not self.crs.is_storage:
            g = _offset_into_storage(g, self.crs)  # GCJ-02/BD-09: PostGIS cannot, so here, edges densified
        _check_coordinates(g, src)
        sql = f"ST_SetSRID(ST_GeomFromWKB({self.param(shapely.to_wkb(g), 'bytea')}), {int(src)})"
        return sql if src == 4490 else f"ST_Transform({sql}, 4490)"


def _finite(x: Any) -> bool:
    return isinstance(x, int | float | Decimal) and not isinstance(x, bool) and math.isfinite(float(x))


def _clean_geojson(node: Any, swap: bool, depth: int) -> dict[str, Any]:
    """Validate a GeoJSON geometry's structure and numbers; swap axes for northing-first CRSs."""
    if depth > 4 or not isinstance(node, dict):
        raise invalid("几何嵌套过深或格式错误", "malformed geometry")
    t = node.get("type")
    if t == "GeometryCollection":
        gs = node.get("geometries")
        if not isinstance(gs, list) or not gs:
            raise invalid("GeometryCollection 需要 geometries", "GeometryCollection needs geometries")
        return {"type": t, "geometries": [_clean_geojson(g, swap, depth + 1) for g in gs]}
    levels = {"Point": 0, "LineString": 1, "MultiPoint": 1, "Polygon": 2, "MultiLineString": 2, "MultiPolygon": 3}
    if t not in levels:
        raise invalid(f"不支持的几何类型 {str(t)[:30]}", f"unsupported geometry type {str(t)[:30]!r}")

    def walk(c: Any, level: int) -> Any:
        if not isinstance(c, list):
            raise invalid("坐标应为数组", "coordinates must be arrays")
        if level == 0:
            if len(c) not in (2, 3) or not all(_finite(x) for x in c):
                raise invalid("坐标应为 2 或 3 个有限数字", "a position is 2 or 3 finite numbers")
            x, y = float(c[0]), float(c[1])
            return [y, x] if swap else [x, y]
        if not c:
            raise invalid("几何不能为空", "empty geometries are not supported")
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
            raise invalid("经纬度超出范围（注意 filter-crs 的轴顺序）",
                          "longitude/latitude out of range (mind the axis order of filter-crs)")
    if src != 4490:
        lon, lat = _to_cgcs2000(src).transform(xy[:, 0], xy[:, 1])
        ok = all(math.isfinite(v) for v in list(lon) + list(lat))
        if not ok or any(abs(v) > 180 for v in lon) or any(abs(v) > 90 for v in lat):
            raise invalid("坐标无法转换到 CGCS2000（检查 filter-crs）",
                          "coordinates cannot be transformed to CGCS2000 (check filter-crs)")



def _offset_into_storage(g: BaseGeometry, crs: Crs) -> BaseGeometry:
    """A literal in a published offset (GCJ-02, BD-09) moved to storage lon/lat. Edges are split every
    OFFSET_STEP degrees first: the offset varies over a long edge, and a straight edge between two moved corners
    would cut across what the caller drew. Outside China: the coded 400 naming filter-crs."""
    def into(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = crs.into_storage(xy[:, 0], xy[:, 1], "filter-crs")
        return np.column_stack([x, y])

    return shapely.transform(shapely.segmentize(g, OFFSET_STEP), into)


def compile_tree(tree: Any, queryables: dict[str, Queryable], *, crs: Crs = CRS84,
                 collection: str = "") -> tuple[str, dict[str, Any]]:
    """SQL (over alias `o`) and bind parameters of a CQL2 JSON tree; geometry literals are in `crs` (the
    filter-crs: default CRS84), in its own axis order."""
    c = _Compiler(queryables, crs, collection)
    try:
        sql = c.predicate(tree)
    except RecursionError as exc:
        raise invalid("嵌套过深", "nested too deeply") from exc
    return sql, c.params
