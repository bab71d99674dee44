"""Grid aggregates: /aggregate?by=h3:8|bgc:6|unit_grid|gov_grid|county|township|village&class=&attr=&stat=count|sum|avg,
as GeoJSON, or as vector tiles (heat points per H3 cell, or counted polygons)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.engine import Connection

from api.deps import read_conn, read_principal
from api.openapi import MVT, errors, media, ok
from api.routers.objects import CRS_DOC
from api.schemas import Aggregate
from citygrid import crs as crsmod
from citygrid.geo import parse_bbox_in
from citygrid.layers.aggregate import aggregate, area_tile
from citygrid.layers.aggregate import heat_tile as heat_tile_mvt
from citygrid.layers.tiles import check_tile
from citygrid.security.principal import Principal

router = APIRouter(tags=["grids"])


@router.get("/aggregate", summary="Counts, sums or averages per H3 cell, Beidou grid cell (bgc:1–10), grid or division, as GeoJSON",
            responses=ok(Aggregate) | errors(403, 404))
def get_aggregate(by: str = Query("h3:8", max_length=20), class_: str | None = Query(None, alias="class",
                                                                                       pattern=r"^\d{6}$"),
                  attr: str | None = Query(None, max_length=64), stat: str = Query("count", max_length=8),
                  region: str | None = Query(None, pattern=r"^\d{6,12}$"),
                  bbox: str | None = Query(None, description="minx,miny,maxx,maxy (x = lon/easting first) in bbox-crs"),
                  bbox_crs: str | None = Query(None, alias="bbox-crs", max_length=100, description=CRS_DOC),
                  crs: str | None = Query(None, max_length=100, description="CRS of the geometries: " + CRS_DOC),
                  geometry: bool = True, c: Connection = Depends(read_conn),
                  p: Principal = Depends(read_principal)) -> dict[str, Any]:
    box = parse_bbox_in(bbox, bbox_crs)
    return aggregate(c, p, by=by, class_code=class_, attr=attr, stat=stat, region=region, bbox=box,
                     with_geometry=geometry, crs=crsmod.lookup(crs))


@router.get("/aggregate/tiles/{z}/{x}/{y}.mvt",
            summary="Aggregate tiles: heat points per H3 cell (by=h3, layer 'heat') or counted grid/division "
                    "polygons (by=unit_grid|gov_grid|county|township|village, layer 'aggregate')",
            response_class=Response, responses=media(MVT) | errors(404))
def heat_tile(z: int, x: int, y: int, class_: str | None = Query(None, alias="class", pattern=r"^\d{6}$"),
              by: str = Query("h3", max_length=20), c: Connection = Depends(read_conn),
              p: Principal = Depends(read_principal)) -> Response:
    check_tile(z, x, y)
    mvt = heat_tile_mvt(c, p, z, x, y, class_) if by == "h3" else area_tile(c, p, z, x, y, by, class_)
    return Response(mvt, media_type="application/vnd.mapbox-vector-tile")
