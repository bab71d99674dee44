"""H3 cells as bigints. Stored at resolution 12 at write time; parents are bit operations (no h3 in SQL)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import h3
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

STORED_RES = 12
_RES_SHIFT = 52


def cell_of(geom: BaseGeometry, res: int = STORED_RES) -> int:
    p = geom if isinstance(geom, Point) else geom.representative_point()
    cell: int = h3.str_to_int(h3.latlng_to_cell(p.y, p.x, res))  # h3 ships no types
    return cell


def parent_masks(res: int) -> tuple[int, int]:
    """(keep, put): a cell's parent at `res` is `cell & keep | put` — the resolution set, finer digits filled
    with 7. One formula for Python (`parent`), SQL (`parent_sql`) and Spark (`citygrid.export.spark`)."""
    return ~(15 << _RES_SHIFT), (res << _RES_SHIFT) | ((1 << (3 * (15 - res))) - 1)


def parent(cell: int, res: int) -> int:
    """Same as h3.cell_to_parent, on the integer."""
    keep, put = parent_masks(res)
    return (cell & keep) | put


def parent_sql(column: str, res: int) -> str:
    """SQL expression for the parent cell of a stored bigint cell column at `res` (0..STORED_RES)."""
    if not 0 <= res <= STORED_RES:
        raise ValueError(f"resolution must be 0..{STORED_RES}")
    keep, put = parent_masks(res)
    return f"(({column} & {keep}::bigint) | {put}::bigint)"


@lru_cache(maxsize=200_000)
def boundary_geojson(cell: int) -> dict[str, Any]:
    """Hexagon outline as GeoJSON (cached: cells never move; callers must not mutate the result)."""
    ring = [[lng, lat] for lat, lng in h3.cell_to_boundary(h3.int_to_str(cell))]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}
