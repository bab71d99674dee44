"""The audit log for admins: query it and verify its hash chain (citygrid/security/audit.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.engine import Connection

from api.deps import conn, current_principal
from api.openapi import errors, ok
from api.schemas import AuditPage, AuditReport
from citygrid.errors import E
from citygrid.security import audit
from citygrid.security.principal import Principal
from citygrid.security.rules import require_admin

router = APIRouter(prefix="/audit", tags=["audit"])


def _since(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise E.datetime_invalid("since", value=value) from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


@router.get("", summary="Audit rows, newest first, by time, principal, action and target (admins)",
            responses=ok(AuditPage) | errors(403))
def list_audit(since: str | None = Query(None, description="ISO 8601 time, e.g. 2026-12-01T00:00:00+08:00"),
               principal: str | None = Query(None, max_length=64), action: str | None = Query(None, max_length=64),
               target: str | None = Query(None, max_length=200), limit: int = Query(100, ge=1, le=1000),
               p: Principal = Depends(current_principal), c: Connection = Depends(conn)) -> dict[str, Any]:
    require_admin(p, "查看审计日志", "reading the audit log")
    rows = audit.query(c, since=_since(since), principal=principal, action=action, target=target, limit=limit)
    audit.record_apart(c.engine, p, "read_audit", None, detail={"since": since, "principal": principal,
                                                                  "action": action, "target": target, "rows": len(rows)})
    return {"count": len(rows), "items": rows}


@router.get("/verify", summary="Recompute the hash chain; names the first row that does not match (admins)",
            responses=ok(AuditReport) | errors(403))
def verify(p: Principal = Depends(current_principal), c: Connection = Depends(conn)) -> dict[str, Any]:
    require_admin(p, "校验审计日志", "verifying the audit log")
    return audit.verify(c).to_dict()
