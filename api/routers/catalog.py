"""Object classes (大类/中类/小类) and responsible departments, from `schemas/`; the catalogue of error codes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from api import errors
from api.openapi import errors as errors_doc
from api.openapi import ok
from api.schemas import Classification, ClassList, ClassOut, DepartmentList, ErrorCatalogue
from citygrid.catalog import get_catalog
from citygrid.errors import E
from citygrid.security.classification import classification_table

router = APIRouter(tags=["catalog"])


@router.get("/classes", summary="List object classes", responses=ok(ClassList))
def list_classes(major: str | None = Query(None, pattern=r"^\d{2}$"), department: str | None = None,
                 geometry: str | None = None) -> dict[str, Any]:
    cat = get_catalog()
    items = [c.to_dict() for c in cat.classes.values()
             if (major is None or c.major == major) and (department is None or c.department.id == department)
             and (geometry is None or c.geometry == geometry)]
    return {"source": cat.source, "edition": cat.edition, "majors": cat.majors, "middles": cat.middles,
            "items": items, "count": len(items)}


@router.get("/classes/{code}", summary="One class with its attribute table", responses=ok(ClassOut) | errors_doc(404))
def get_class(code: str) -> dict[str, Any]:
    cat = get_catalog()
    cls = cat.get(code) or (cat.by_component_code(code) if len(code) == 4 else None)
    if cls is None:
        raise E.class_not_found("code", code=code)
    return cls.to_dict()


@router.get("/classification", summary="Catalog levels L1–L4 against GB/T 43697-2024 and GB/T 35273 (数据分级分类)",
            responses=ok(Classification))
def get_classification() -> dict[str, Any]:
    return {"levels": get_catalog().levels, "grades": classification_table()}


@router.get("/departments", summary="Responsible departments (责任分工目录)", responses=ok(DepartmentList))
def list_departments() -> dict[str, Any]:
    cat = get_catalog()
    items = []
    for d in cat.departments.values():
        row: dict[str, Any] = d.to_dict()
        row["classes"] = [c.code for c in cat.classes.values() if c.department.id == d.id]
        items.append(row)
    return {"items": items, "count": len(items)}


@router.get("/errors", tags=["system"], summary="Every error code: HTTP status, Chinese and English templates",
            responses=ok(ErrorCatalogue))
def list_errors() -> dict[str, Any]:
    return {"errors": errors.listing()}
