"""Grids: unit grids, governance grids and imported department systems (多网合一)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from api.deps import conn
from citygrid.errors import CitygridError
from citygrid.geo import parse_bbox
from citygrid.grid import multi

router = APIRouter(prefix="/grids", tags=["grids"])


@router.get("", summary="Grid cells as GeoJSON, by system, community or bbox")
def list_grids(system: str = Query("unit", max_length=40), division: str | None = Query(None, pattern=r"^\d{6,12}$"),
               bbox: str | None = None, limit: int = Query(1000, ge=1, le=10000),
               c: Connection = Depends(conn)) -> dict[str, Any]:
    where, params = ["system = :s"], {"s": system, "l": limit}
    if division:
        where.append("(division_code LIKE :d OR code LIKE :d)")
        params["d"] = division + "%"
    box = parse_bbox(bbox)
    if box:
        where.append("geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)")
        params |= dict(zip(("x0", "y0", "x1", "y1"), box, strict=True))
    rows = c.execute(text(f"SELECT code, system, kind, name, division_code, households, attrs, ST_AsGeoJSON(geom, 7) g "
                          f"FROM grid WHERE {' AND '.join(where)} ORDER BY code LIMIT :l"), params).all()
    feats = [{"type": "Feature", "id": r.code, "geometry": json.loads(r.g),
              "properties": {"code": r.code, "system": r.system, "kind": r.kind, "name": r.name,
                             "division_code": r.division_code, "households": r.households} | dict(r.attrs)}
             for r in rows]
    return {"type": "FeatureCollection", "features": feats, "numberReturned": len(feats)}


@router.get("/systems", summary="Grid systems side by side, with cell counts")
def systems(c: Connection = Depends(conn)) -> dict[str, Any]:
    rows = c.execute(text("SELECT system, kind, count(*) n FROM grid GROUP BY system, kind ORDER BY system")).all()
    return {"items": [dict(r._mapping) for r in rows]}


@router.get("/{system}/report", summary="多网合一 report: crossing, overlaps, gaps against the base")
def get_report(system: str, c: Connection = Depends(conn)) -> dict[str, Any]:
    return multi.report(c, system)


@router.get("/{system}/{code}", summary="One cell with its mapping onto the base grid")
def get_grid(system: str, code: str, c: Connection = Depends(conn)) -> dict[str, Any]:
    r = c.execute(text("SELECT code, system, kind, name, division_code, township_code, households, attrs, "
                       "ST_AsGeoJSON(geom, 7) g FROM grid WHERE system=:s AND code=:c"), {"s": system, "c": code}).first()
    if r is None:
        raise CitygridError.one("grid_not_found", f"网格 {system}/{code} 不存在", f"grid {system}/{code} not found",
                                "code", kind="not_found")
    members = c.execute(text("SELECT base_system, base_code, overlap_ratio FROM grid_membership WHERE system=:s "
                             "AND grid_code=:c ORDER BY overlap_ratio DESC"), {"s": system, "c": code}).all()
    counts = c.execute(text("SELECT count(*) FROM city_object WHERE (unit_grid=:c OR gov_grid=:c) AND status='active'"),
                       {"c": code}).scalar()
    return {"type": "Feature", "id": r.code, "geometry": json.loads(r.g),
            "properties": {k: v for k, v in r._mapping.items() if k != "g"} | {"objects": counts},
            "base": [{"system": m.base_system, "code": m.base_code, "overlap_ratio": round(m.overlap_ratio, 4)}
                     for m in members]}


@router.post("/import", status_code=201, summary="Import a department's grid system from GeoJSON (多网合一)")
async def import_grids(request: Request, file: UploadFile = File(...), system: str = Form(...),
                       code_field: str = Form("code"), name_field: str = Form("name"), crs: str | None = Form(None),
                       base: str = Form("unit")) -> dict[str, Any]:
    raw = await file.read(64 * 1024 * 1024 + 1)
    try:
        fc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CitygridError.one("geojson_invalid", f"文件不是 GeoJSON：{exc}", f"file is not GeoJSON: {exc}",
                                "file") from exc
    with Session(bind=request.app.state.engine) as s, s.begin():
        return multi.import_system(s.connection(), system, fc, code_field, name_field, crs, base)
