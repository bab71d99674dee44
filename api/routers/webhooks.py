"""Webhooks: citygrid follows the change feed for a principal and POSTs each batch, signed
(citygrid/sharing/webhooks.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from api.deps import acting_principal, conn, writing
from api.openapi import errors, ok
from api.schemas import DeadLetters, Webhook, WebhookCreated, WebhookList
from citygrid.security.principal import Principal
from citygrid.sharing import webhooks

router = APIRouter(prefix="/webhooks", tags=["changes"])


class WebhookIn(BaseModel):
    url: str = Field(..., max_length=2000, pattern=r"^https?://", description="where batches are POSTed")
    class_code: str | None = Field(None, alias="class", pattern=r"^\d{6}$")
    division: str | None = Field(None, pattern=r"^\d{6,12}$")
    kinds: str | None = Field(None, max_length=200)
    since: str | None = Field(None, max_length=50, description="a feed cursor; default: from now on")


@router.post("", status_code=201, summary="Make a webhook for the caller; the answer shows its secret once",
             responses=ok(WebhookCreated, 201))
def create(body: WebhookIn, request: Request, p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    filters = {k: v for k, v in (("class", body.class_code), ("division", body.division), ("kinds", body.kinds)) if v}
    with writing(request) as s:
        return webhooks.create(s.connection(), p, body.url, filters, body.since)


@router.get("", summary="The caller's webhooks (admins: all), without secrets", responses=ok(WebhookList))
def list_webhooks(c: Connection = Depends(conn), p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    return {"webhooks": webhooks.list_own(c, p)}


@router.get("/{hook_id}/dead", summary="Batches given up on after the last retry", responses=ok(DeadLetters) | errors(404))
def dead(hook_id: int, c: Connection = Depends(conn), p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    return {"webhook": hook_id, "dead": webhooks.dead_letters(c, p, hook_id)}


@router.delete("/{hook_id}", summary="Stop a webhook", responses=ok(Webhook) | errors(404))
def remove(hook_id: int, request: Request, p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    with writing(request) as s:
        return webhooks.remove(s.connection(), p, hook_id)
