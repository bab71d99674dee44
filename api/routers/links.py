"""Links by code (一码互联): attach a department's record to an object's code, list an object's links (with those
inherited through splits and merges), find the code of a foreign record, unlink."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from api.deps import acting_principal, conn, current_principal, writing
from api.openapi import errors, ok
from api.routers.objects import _code
from api.schemas import LinkFound, LinkOut, LinksOf
from citygrid.security.principal import Principal
from citygrid.sharing import links

router = APIRouter(prefix="/links", tags=["links"])


class LinkIn(BaseModel):
    system: str = Field(..., min_length=1, max_length=100, description="the department system's name, e.g. 不动产登记")
    record_id: str = Field(..., min_length=1, max_length=200, description="the record's id in that system")
    title: str | None = Field(None, max_length=500)
    url: str | None = Field(None, max_length=2000, pattern=r"^https?://", description="the record in its system")
    payload: dict[str, Any] = Field(default_factory=dict, description="a small JSON object (CITYGRID_LINK_PAYLOAD_MAX)")
    level: Literal["L1", "L2", "L3", "L4"] = Field("L1", description="the record's classification (catalog levels)")
    valid_from: dt.datetime | None = None
    valid_to: dt.datetime | None = None


@router.post("/{code}", status_code=201, summary="Attach a department system's record to an object's code",
             responses=ok(LinkOut, 201) | errors(403, 404, 409))
def link(code: str, body: LinkIn, request: Request, p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    with writing(request) as s:
        return links.link(s, p, _code(code), links.NewLink(**body.model_dump()))


@router.get("/{code}", summary="Every link of an object the caller may see, with those its ancestors carry",
            responses=ok(LinksOf) | errors(404))
def links_of(code: str, inherited: bool = Query(True, description="include links of retired ancestors"),
             c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> dict[str, Any]:
    return links.links_of(c, p, _code(code), inherited=inherited)


@router.get("", summary="The code a foreign record is linked to", responses=ok(LinkFound) | errors(404))
def find(system: str = Query(..., min_length=1, max_length=100), record: str = Query(..., min_length=1, max_length=200),
         c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> dict[str, Any]:
    return links.find(c, p, system, record)


@router.delete("/{code}/{link_id}", summary="Unlink: the link stays on record, marked unlinked",
               responses=ok(LinkOut) | errors(403, 404, 409))
def unlink(code: str, link_id: int, request: Request, p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    with writing(request) as s:
        return links.unlink(s, p, _code(code), link_id)
