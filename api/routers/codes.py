"""Validate any code and resolve it when it names something."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import text
from sqlalchemy.engine import Connection

from api.deps import conn
from citygrid.catalog import get_catalog
from citygrid.coding.scheme import component_scheme, unified_scheme
from citygrid.errors import CitygridError, Problem
from citygrid.regions import query as regions
from citygrid.registry import objects

router = APIRouter(prefix="/codes", tags=["codes"])


def explain(c: Connection, code: str) -> dict[str, Any]:
    scheme = unified_scheme()
    comp = component_scheme()
    if len(code) == comp.length and code.isdigit():
        obj = objects.get(c, code)
        parts = comp.describe(code)
        if obj is None:
            raise CitygridError.one("code_not_found", f"部件代码 {code} 未登记", f"component code {code} is not registered",
                                    "code", kind="not_found")
        return {"code": code, "scheme": comp.name, "standard": comp.standard, "valid": True, "segments": parts,
                "object": obj}
    problems = scheme.validate(code, known_division=lambda d: regions.get(c, d) is not None,
                               known_class=lambda k: get_catalog().get(k) is not None)
    if problems:
        raise CitygridError([Problem(p.error_code, p.message_zh, p.message_en, "code") for p in problems], "invalid")
    segs = scheme.describe(code)
    d = scheme.decode(code)
    div = regions.get(c, d["division"])
    cls = get_catalog().get(d["class"])
    issued = c.execute(text("SELECT state, issued_at, issued_by FROM issued_code WHERE code=:c"), {"c": code}).first()
    obj = objects.get(c, code)
    return {
        "code": code, "scheme": scheme.name, "standard": scheme.standard, "valid": True, "segments": segs,
        "division": {"code": div.code, "name": div.name} if div else None,
        "class": {"code": cls.code, "name": cls.name, "major": cls.major_name, "middle": cls.middle_name} if cls else None,
        "issued": {"state": issued.state, "at": issued.issued_at, "by": issued.issued_by} if issued else None,
        "status": obj["status"] if obj else ("reserved" if issued else "not_issued"),
        "object": obj,
    }


@router.get("/{code}", summary="Validate a code, explain its segments, resolve it if issued")
def get_code(code: str, c: Connection = Depends(conn)) -> dict[str, Any]:
    return explain(c, code)
