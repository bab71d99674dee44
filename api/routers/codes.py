"""Validate any code and resolve it when it names something."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from api.deps import conn, principal, writing
from citygrid.catalog import get_catalog
from citygrid.coding.allocator import allocate, ledger_entry
from citygrid.coding.scheme import component_scheme, unified_scheme
from citygrid.errors import CitygridError, E
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
            raise E.code_not_found("code", code=code)
        return {"code": code, "scheme": comp.name, "standard": comp.standard, "valid": True, "segments": parts,
                "object": obj}
    problems = scheme.validate(code, known_division=lambda d: regions.get(c, d) is not None,
                               known_class=lambda k: get_catalog().get(k) is not None)
    if problems:
        raise CitygridError([p.problem("code") for p in problems], "invalid")
    segs = scheme.describe(code)
    d = scheme.decode(code)
    div = regions.get(c, d["division"])
    cls = get_catalog().get(d["class"])
    issued = ledger_entry(c, code)
    obj = objects.get(c, code)
    return {
        "code": code, "scheme": scheme.name, "standard": scheme.standard, "valid": True, "segments": segs,
        "division": {"code": div.code, "name": div.name} if div else None,
        "class": {"code": cls.code, "name": cls.name, "major": cls.major_name, "middle": cls.middle_name} if cls else None,
        "issued": issued,
        "status": obj["status"] if obj else ("reserved" if issued else "not_issued"),
        "object": obj,
    }


@router.get("/{code}", summary="Validate a code, explain its segments, resolve it if issued")
def get_code(code: str, c: Connection = Depends(conn)) -> dict[str, Any]:
    return explain(c, code)


class BlockIn(BaseModel):
    division_code: str = Field(..., pattern=r"^\d{6}$", description="county code (GB/T 2260)")
    class_code: str = Field(..., pattern=r"^\d{6}$")
    count: int = Field(..., ge=1, le=1_000_000)
    batch: str | None = Field(None, max_length=100, description="label to find the block again")


@router.post("/blocks", status_code=201, summary="Reserve a block of codes for bulk work (one statement)")
def reserve_block(body: BlockIn, request: Request, by: str = Depends(principal)) -> dict[str, Any]:
    with writing(request) as s:
        c = s.connection()
        if regions.get(c, body.division_code) is None:
            raise E.division_unknown("division_code", code=body.division_code, rule_zh="", rule_en="")
        if get_catalog().get(body.class_code) is None:
            raise E.class_unknown("class_code", code=body.class_code)
        batch = body.batch or f"block-{uuid.uuid4().hex[:12]}"
        codes = allocate(s, body.division_code, body.class_code, body.count, by=by, batch=batch)
    return {"batch": batch, "count": len(codes), "first": codes[0], "last": codes[-1],
            "codes": codes if len(codes) <= 10_000 else None}
