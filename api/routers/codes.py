"""Validate any code and resolve it when it names something; reserve blocks of codes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from api.deps import acting_principal, conn, current_principal, writing
from api.openapi import errors, ok
from api.schemas import CodeBlock, CodeExplained
from citygrid.coding.allocator import reserve_block as reserve
from citygrid.registry.codes import explain
from citygrid.security.principal import Principal

router = APIRouter(prefix="/codes", tags=["codes"])


@router.get("/{code}", summary="Validate a code, explain its segments, resolve it if issued",
            responses=ok(CodeExplained) | errors(404))
def get_code(code: str, c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> dict[str, Any]:
    return explain(c, p, code)


class BlockIn(BaseModel):
    division_code: str = Field(..., pattern=r"^\d{6}$", description="county code (GB/T 2260)")
    class_code: str = Field(..., pattern=r"^\d{6}$")
    count: int = Field(..., ge=1, le=1_000_000, description="at most `code_block_max` (settings) for non-admins")
    batch: str | None = Field(None, max_length=100, description="label to find the block again")


@router.post("/blocks", status_code=201, summary="Reserve a block of codes for bulk work (one statement, with quotas)",
             responses=ok(CodeBlock, 201) | errors(403, 409, 429))
def reserve_block(body: BlockIn, request: Request, p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    with writing(request) as s:
        return reserve(s, p, body.division_code, body.class_code, body.count, body.batch)
