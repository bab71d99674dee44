"""CQL2 filters (OGC API – Features Part 3) compiled to a parameterised SQL WHERE fragment.

Both encodings are supported: CQL2 text is parsed (`text.py`) into the CQL2 JSON tree, and the JSON tree
(from either encoding) is compiled to SQL (`compile.py`). Every literal becomes a bind parameter; property
names are checked against the layer's queryables (`citygrid/layers/sources.py`: catalog attributes except
personal data (L4) plus a few columns).

Why our own parser and not a library. Both CQL2 libraries on PyPI were run against every filter of
tests/test_ogc_cql.py plus 100 more cases and 3,000 random token soups (2026-12): `cql2` 0.6 (Rust, what
tipg uses) failed 7 of 205 (rejects `x > .5`, accepts `POINT M(1 2 3)` and 3,000 nested parentheses, calls
`+`/`-` unknown functions) and **kills the process with a segmentation fault** on deeply nested input
(`'(' * 1600 …`, `'NOT ' * 4000 …`), a denial of service on a public endpoint; its `validate()` takes 0.1–10 s.
`pygeofilter` 0.4 failed 24 of 205 (no `TRUE`/`FALSE` predicates, no `''` escapes, no non-ASCII property
names, no `POINT Z`, crashes on BETWEEN in JSON) and costs 650 ms to import and 1.3 ms per parse. Neither
compiles to a JSONB-attribute schema with typed queryables and bilingual errors, which is most of this
package. Ours passes all 205, is bounded in depth and length, and gives a position in every syntax error.

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

from typing import Any

from citygrid.crs import CRS84, Crs
from citygrid.layers.cql2.compile import Queryable, compile_tree, queryables_schema
from citygrid.layers.cql2.text import parse

__all__ = ["CONFORMANCE", "Queryable", "compile_filter", "parse", "queryables_schema"]

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


def compile_filter(filter_: str, lang: str | None, queryables: dict[str, Queryable], *, crs: Crs = CRS84,
                   collection: str = "") -> tuple[str, dict[str, Any]]:
    """SQL boolean expression (over alias `o`) and its bind parameters for a CQL2 filter.

    `crs` is the filter-crs (default CRS84): literals are read in its axis order (latitude/northing first where
    it says so), GCJ-02 and BD-09 included.
    """
    return compile_tree(parse(filter_, lang), queryables, crs=crs, collection=collection)
