"""The CQL2 vocabulary both encodings share: operators, spatial functions, limits, and the filter's errors."""

from __future__ import annotations

import re

from citygrid.errors import CitygridError, E

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


def invalid(zh: str, en: str) -> CitygridError:
    """`filter_invalid` with what is wrong, in both languages (the parser and compiler have many such details)."""
    return E.filter_invalid(FIELD, detail_zh=zh, detail_en=en)

