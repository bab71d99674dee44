"""Grid aggregates: /aggregate?by=h3:8|county|township|village&class=&attr=&stat=count|sum|avg."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.engine import Connection

from api.deps import conn
from citygrid.errors import CitygridError
from citygrid.grid.aggregate import aggregate

router = APIRouter(tags=["grids"])


@router.get("/aggregate", summary="Counts, sums or averages per H3 cell or division, as GeoJSON")
def get_aggregate(by: str = Query("h3:8", max_length=20), class_: str | None = Query(None, alias="class",
                                                                                       pattern=r"^\d{6}$"),
                  attr: str | None = Query(None, max_length=64), stat: str = Query("count", max_length=8),
                  region: str | None = Query(None, pattern=r"^\d{6,12}$"), bbox: str | None = None,
                  geometry: bool = True, c: Connection = Depends(conn)) -> dict[str, Any]:
    box = None
    if bbox:
        try:
            vals = tuple(float(v) for v in bbox.split(","))
        except ValueError:
            vals = ()
        if len(vals) != 4 or vals[0] > vals[2] or vals[1] > vals[3]:
            raise CitygridError.one("bbox_invalid", "bbox 应为 minx,miny,maxx,maxy", "bbox must be minx,miny,maxx,maxy",
                                    "bbox")
        box = vals
    return aggregate(c, by=by, class_code=class_, attr=attr, stat=stat, region=region, bbox=box,  # type: ignore[arg-type]
                     with_geometry=geometry)
