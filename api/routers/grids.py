"""Grids: unit grids, governance grids and imported department systems (多网合一)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from sqlalchemy.engine import Connection

from api.deps import acting_principal, conn, current_principal, writing
from api.openapi import errors, ok
from api.routers.objects import CRS_DOC
from api.schemas import GridCell, GridCells, GridImported, GridSystems, MultiReport
from citygrid import crs as crsmod
from citygrid.errors import E, detail
from citygrid.geo import parse_bbox_in
from citygrid.grid import multi, query
from citygrid.security.principal import Principal

router = APIRouter(prefix="/grids", tags=["grids"])
MAX_FILE = 64 * 1024 * 1024  # the body limit of the import route follows it (api/hardening.py)


@router.get("", summary="Grid cells as GeoJSON, by system, community or bbox", responses=ok(GridCells) | errors(404))
def list_grids(system: str = Query("unit", max_length=40), division: str | None = Query(None, pattern=r"^\d{6,12}$"),
               bbox: str | None = Query(None, description="minx,miny,maxx,maxy (x = lon/easting first) in bbox-crs"),
               bbox_crs: str | None = Query(None, alias="bbox-crs", max_length=100, description=CRS_DOC),
               crs: str | None = Query(None, max_length=100, description="CRS of the geometries: " + CRS_DOC),
               limit: int = Query(1000, ge=1, le=10000),
               c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> dict[str, Any]:
    out = crsmod.lookup(crs)
    feats = query.features(c, p, system, division, parse_bbox_in(bbox, bbox_crs), limit, out)
    return {"type": "FeatureCollection", "features": feats, "numberReturned": len(feats), "crs": out.uri}


@router.get("/systems", summary="Grid systems side by side, with cell counts", responses=ok(GridSystems))
def systems(c: Connection = Depends(conn)) -> dict[str, Any]:
    return {"items": query.systems(c)}


@router.get("/{system}/report", summary="多网合一 report: crossing, overlaps, gaps against the base",
            responses=ok(MultiReport) | errors(404))
def get_report(system: str, c: Connection = Depends(conn)) -> dict[str, Any]:
    return multi.report(c, system)


@router.get("/{system}/{code}", summary="One cell with its mapping onto the base grid",
            responses=ok(GridCell) | errors(404))
def get_grid(system: str, code: str, c: Connection = Depends(conn), p: Principal = Depends(current_principal)
             ) -> dict[str, Any]:
    cell = query.cell(c, p, system, code)
    if cell is None:
        raise E.grid_not_found("code", system=system, code=code)
    return {"type": "Feature", "id": cell.properties["code"], "geometry": cell.geometry,
            "properties": cell.properties | {"objects": cell.objects}, "base": cell.base}


@router.post("/import", status_code=201, summary="Import a department's grid system from GeoJSON (多网合一)",
             responses=ok(GridImported, 201) | errors(403, 404))
async def import_grids(request: Request, file: UploadFile = File(...), system: str = Form(...),
                       code_field: str = Form("code"), name_field: str = Form("name"), crs: str | None = Form(None),
                       base: str = Form("unit"), p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    raw = await file.read(MAX_FILE + 1)
    try:
        fc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise E.geojson_invalid("file", **detail(f"文件不是 JSON（{exc}）", f"the file is not JSON ({exc})")) from exc
    with writing(request) as s:
        return multi.import_system(s.connection(), p, system, fc, code_field, name_field, crs, base)
