"""Data freshness (数据鲜活性): the report as JSON, village stale % as GeoJSON, and the `/freshness` page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection

from api.deps import conn, current_principal
from api.openapi import HTML, TEXT, FeatureCollection, media
from api.schemas import FreshnessReport
from api.web import maplibre_dir, render
from citygrid.registry import freshness
from citygrid.security.principal import Principal

router = APIRouter(tags=["freshness"])
DIVISION = Query(None, pattern=r"^\d{6,12}$", description="county, township or village code")
CLASS = Query(None, alias="class", pattern=r"^\d{6}$", description="6-digit class code")
DEPARTMENT = Query(None, max_length=64, description="responsible department id (`GET /departments`)")


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return accept.split(",")[0].split(";")[0].strip().lower() == "text/html"


@router.get("/freshness", summary="Per township and class: objects, coded %, stale %, last update, department; "
                                  "`Accept: text/html` (a browser) gets the page",
            responses=media({"application/json": FreshnessReport, HTML: TEXT}))
def report(request: Request, division: str | None = DIVISION, class_code: str | None = CLASS, department: str | None = DEPARTMENT,
           format: str | None = Query(None, pattern="^(json|html)$", description="json, or html (the page); "
                                      "without it, html only for callers that ask for text/html first (browsers)"),
           c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> Any:
    rows = freshness.freshness(c, p, division=division, class_code=class_code, department=department)
    if format == "html" or (format is None and _wants_html(request)):
        return HTMLResponse(render("freshness.html", rows=rows, division=division or "", class_code=class_code or "",
                                   department=department or "", maplibre_missing=maplibre_dir() is None),
                            headers={"Cache-Control": "no-cache"})
    return {"division": division, "class": class_code, "department": department, "rows": rows}


@router.get("/freshness/villages", summary="Stale % per village (GeoJSON of village outlines), for the choropleth",
            responses=media("application/json", FeatureCollection))
def villages(division: str | None = DIVISION, class_code: str | None = CLASS, department: str | None = DEPARTMENT,
             c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> dict[str, Any]:
    return freshness.by_village(c, p, division=division, class_code=class_code, department=department)
