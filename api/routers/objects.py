"""City objects: create with automatic code, read, query, update, retire, split, merge, history, lineage."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from api.deps import acting_principal, conn, current_principal, writing
from api.openapi import errors, ok
from api.schemas import AreaConfirmed, CityObject, History, Lineage, MergeOut, ObjectExpanded, ObjectPage, SplitOut
from api.web import render
from citygrid.errors import E
from citygrid.geo import parse_bbox_in
from citygrid.registry import objects
from citygrid.security.principal import Principal
from citygrid.sharing import view

router = APIRouter(prefix="/objects", tags=["objects"])
CRS_DOC = ("CGCS2000 = EPSG:4490 (default), gcj02 (Amap, Tencent), bd09 (Baidu), EPSG:4326, EPSG:4534–4554 "
           "(Gauss-Krüger), or their URIs; GCJ-02/BD-09 only inside China (else 400 crs_offset_outside)")


class ObjectIn(BaseModel):
    class_code: str = Field(..., description="6-digit class code (大类+中类+小类)", max_length=6)
    geometry: dict[str, Any] = Field(..., description="GeoJSON geometry")
    attrs: dict[str, Any] = Field(default_factory=dict)
    name: str | None = Field(None, max_length=200)
    division_code: str | None = Field(None, pattern=r"^\d{6}(\d{3}(\d{3})?)?$")
    crs: str | None = Field(None, description="CRS of the geometry: default CGCS2000 (EPSG:4490); gcj02, bd09 (China "
                                              "only), EPSG:4326, EPSG:4534–4554 or any EPSG system", max_length=100)


class ObjectPatch(BaseModel):
    attrs: dict[str, Any] | None = None
    name: str | None = Field(None, max_length=200)
    geometry: dict[str, Any] | None = None
    crs: str | None = Field(None, max_length=100)
    version: int | None = Field(None, description="expected current version (optimistic locking)")
    reason: str | None = Field(None, max_length=500)


class RetireIn(BaseModel):
    reason: str | None = Field(None, max_length=500)


class ConfirmAreaIn(BaseModel):
    division: str = Field(..., pattern=r"^\d{6}(\d{3}(\d{3})?)?$", description="county, township or village code")
    class_code: str = Field(..., pattern=r"^\d{6}$", description="6-digit class code")
    reason: str | None = Field(None, max_length=500)


class SplitIn(BaseModel):
    parts: list[dict[str, Any]] = Field(..., min_length=2, max_length=1000)
    reason: str | None = Field(None, max_length=500)


class MergeIn(BaseModel):
    codes: list[str] = Field(..., min_length=2, max_length=1000)
    result: dict[str, Any]
    reason: str | None = Field(None, max_length=500)


def _write(request: Request) -> AbstractContextManager[Session]:
    return writing(request)


def _code(code: str) -> str:
    if not code.isdigit() or len(code) not in (16, 21):
        raise E.code_format("code", code=code)
    return code


@router.post("", status_code=201, summary="Create an object; a unified code is assigned in the same transaction",
             responses=ok(CityObject, 201) | errors(403, 409))
def create(body: ObjectIn, request: Request, p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    with _write(request) as s:
        return objects.create(s, p, objects.NewObject(**body.model_dump()))


@router.get("", summary="Query by class, division and bbox; keyset paging with `after`", responses=ok(ObjectPage))
def list_objects(class_code: str | None = Query(None, pattern=r"^\d{6}$"),
                 division: str | None = Query(None, pattern=r"^\d{6,12}$"),
                 bbox: str | None = Query(None, description="minx,miny,maxx,maxy (x = lon/easting first) in bbox-crs"),
                 bbox_crs: str | None = Query(None, alias="bbox-crs", max_length=100, description=CRS_DOC),
                 crs: str | None = Query(None, max_length=100, description="CRS of the geometries: " + CRS_DOC),
                 status: str | None = Query("active", pattern="^(active|retired|all)$"),
                 limit: int = Query(100, ge=1, le=1000), after: str | None = Query(None, pattern=r"^\d{21}$"),
                 c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> dict[str, Any]:
    box = parse_bbox_in(bbox, bbox_crs)
    page = objects.query(c, p, class_code=class_code, division=division, bbox=box,
                         status=None if status == "all" else status, limit=limit, after=after, crs=crs)
    page["count"] = len(page["items"])
    return page


@router.get("/{code}", summary="One object by unified code (or component code); `expand` adds links, address, "
                               "grids, history, lineage", responses=ok(ObjectExpanded) | errors(404))
def get_object(code: str, expand: str | None = Query(None, max_length=100, description="comma list of: "
                                                     + ", ".join(view.EXPANDS)),
               crs: str | None = Query(None, max_length=100, description="CRS of the geometry: " + CRS_DOC),
               c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> dict[str, Any]:
    return view.expanded(c, p, _code(code), view.parse_expand(expand), crs)


@router.get("/{code}/page", response_class=HTMLResponse, summary="The object page: the one-page view for a person "
            "(links, addresses, grids, history, lineage), as the caller may see it", responses=errors(404))
def page(code: str, c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> HTMLResponse:
    return HTMLResponse(render("object.html", **view.page(c, p, _code(code))))


@router.patch("/{code}", summary="Update: a new version, the old one kept in history",
              responses=ok(CityObject) | errors(403, 404, 409))
def update(code: str, body: ObjectPatch, request: Request, p: Principal = Depends(acting_principal)
           ) -> dict[str, Any]:
    with _write(request) as s:
        return objects.update(s, p, _code(code), attrs=body.attrs, name=body.name, geometry=body.geometry,
                              crs=body.crs, expected_version=body.version, reason=body.reason)


@router.post("/{code}/retire", summary="Retire: the code stays resolvable with status retired",
             responses=ok(CityObject) | errors(403, 404, 409))
def retire(code: str, request: Request, body: RetireIn | None = None, p: Principal = Depends(acting_principal)
           ) -> dict[str, Any]:
    with _write(request) as s:
        return objects.retire(s, p, _code(code), reason=body.reason if body else None)


@router.post("/{code}/confirm", summary="Confirm: the owner checked the object and it is unchanged (数据鲜活性)",
             responses=ok(CityObject) | errors(403, 404, 409))
def confirm(code: str, request: Request, body: RetireIn | None = None, p: Principal = Depends(acting_principal)
            ) -> dict[str, Any]:
    with _write(request) as s:
        return objects.confirm(s, p, _code(code), reason=body.reason if body else None)


@router.post("/confirm", summary="Confirm every active object of a class in an area (the owning department; "
                                  "数据鲜活性): a history version and a feed entry each",
             responses=ok(AreaConfirmed) | errors(403, 404))
def confirm_area(body: ConfirmAreaIn, request: Request, p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    with _write(request) as s:
        return objects.confirm_area(s, p, body.division, body.class_code, reason=body.reason)


@router.post("/{code}/split", status_code=201, summary="Split into new objects with new codes",
             responses=ok(SplitOut, 201) | errors(403, 404, 409))
def split(code: str, body: SplitIn, request: Request, p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    with _write(request) as s:
        return objects.split(s, p, _code(code), body.parts, reason=body.reason)


@router.post("/merge", status_code=201, summary="Merge objects into a new one with a new code",
             responses=ok(MergeOut, 201) | errors(403, 404, 409))
def merge(body: MergeIn, request: Request, p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    with _write(request) as s:
        return objects.merge(s, p, [_code(c) for c in body.codes], body.result, reason=body.reason)


@router.get("/{code}/history", summary="Every version", responses=ok(History) | errors(404))
def history(code: str, c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> dict[str, Any]:
    return {"code": code, "versions": objects.history(c, p, _code(code))}


@router.get("/{code}/lineage", summary="Parents and children through splits and merges",
            responses=ok(Lineage) | errors(404))
def lineage(code: str, c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> dict[str, Any]:
    return objects.lineage(c, p, _code(code))
