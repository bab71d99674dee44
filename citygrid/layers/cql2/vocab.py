"""The CQL2 vocabulary both encodings share: operators, spatial functions, limits, and the filter's errors."""

from __future__ import annotations

import re

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
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def error(code: str, zh: str, en: str, field: str = FIELD) -> CitygridError:
    return CitygridError.one(code, zh, en, field)


def invalid(zh: str, en: str) -> CitygridError:
    return error("filter_invalid", f"过滤条件无效：{zh}", f"invalid filter: {en}")

