"""Administrative divisions: by code (either scheme), children, parents, search."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.engine import Connection

from api.deps import conn
from api.openapi import Feature, errors, ok
from api.schemas import DivisionChildren, DivisionDetail, DivisionParents, DivisionSearch
from citygrid.errors import E
from citygrid.regions import query as q

router = APIRouter(prefix="/divisions", tags=["divisions"])


def _require(c: Connection, code: str) -> q.DivisionOut:
    if not code.isdigit() or len(code) not in (2, 4, 6, 9, 12):
        raise E.division_code_format("code", code=code)
    d = q.get(c, code)
    if d is None:
        raise E.division_not_found("code", code=code)
    return d


@router.get("", summary="Search divisions by name, short name or alias", responses=ok(DivisionSearch))
def search(name: str = Query(..., min_length=1, max_length=50), level: int | None = Query(None, ge=1, le=5),
           within: str | None = Query(None, pattern=r"^\d{2,12}$"), limit: int = Query(20, ge=1, le=200),
           c: Connection = Depends(conn)) -> dict[str, Any]:
    items = q.search(c, name, level, within, limit)
    return {"items": [d.to_dict() for d in items], "count": len(items)}


@router.get("/{code}", summary="A division by code, with its parents and children",
            responses=ok(DivisionDetail) | errors(404))
def get_division(code: str, c: Connection = Depends(conn)) -> dict[str, Any]:
    d = _require(c, code)
    out = d.to_dict()
    out["parents"] = [p.to_dict() for p in q.ancestors(c, d.code)]
    kids = q.children(c, d.code, limit=2000)
    out["children"] = [{"code": k.code, "name": k.name, "kind": k.kind, "mca_code": k.mca_code} for k in kids]
    out["children_count"] = len(kids)
    out["also_matches"] = q.also_matches(c, code, d.code)
    out["has_boundary"] = q.has_boundary(c, d.code)
    return out


@router.get("/{code}/children", summary="Direct children, keyset-paged", responses=ok(DivisionChildren) | errors(404))
def get_children(code: str, limit: int = Query(500, ge=1, le=5000), after: str | None = None,
                 c: Connection = Depends(conn)) -> dict[str, Any]:
    d = _require(c, code)
    kids = q.children(c, d.code, limit=limit, after=after)
    return {"items": [k.to_dict() for k in kids], "next": kids[-1].code if len(kids) == limit else None}


@router.get("/{code}/parents", summary="Ancestors from province down", responses=ok(DivisionParents) | errors(404))
def get_parents(code: str, c: Connection = Depends(conn)) -> dict[str, Any]:
    d = _require(c, code)
    return {"items": [p.to_dict() for p in q.ancestors(c, d.code)]}


@router.get("/{code}/boundary", summary="Boundary as GeoJSON (EPSG:4490) when one is loaded",
            responses=ok(Feature) | errors(404))
def get_boundary(code: str, c: Connection = Depends(conn)) -> dict[str, Any]:
    d = _require(c, code)
    b = q.boundary(c, d.code)
    if b is None:
        raise E.boundary_missing("code", name_zh=d.name, code=d.code)
    return {"type": "Feature", "id": d.code, "geometry": b.geometry,
            "properties": {"code": d.code, "name": d.name, "geom_source": b.geom_source}}
