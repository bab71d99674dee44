"""The change feed: ordered entries with a cursor that never skips or repeats (citygrid/sharing/changes.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.engine import Connection

from api.deps import polling_conn, polling_principal
from api.openapi import ok
from api.schemas import ChangePage
from citygrid.security.principal import Principal
from citygrid.sharing import changes

router = APIRouter(prefix="/changes", tags=["changes"])


@router.get("", summary="Changes after a cursor, in order; long polling with `wait`", responses=ok(ChangePage))
def feed(since: str | None = Query(None, max_length=50, description="the `cursor` of the previous answer; "
                                   "empty: from the start; `now`: only what comes next"),
         class_code: str | None = Query(None, alias="class", pattern=r"^\d{6}$"),
         division: str | None = Query(None, pattern=r"^\d{6,12}$"),
         kinds: str | None = Query(None, max_length=200, description="comma list: " + ", ".join(changes.OPS)),
         limit: int = Query(100, ge=1, le=changes.MAX_LIMIT),
         wait: float = Query(0, ge=0, le=300, description="seconds to wait for a change when there is none"),
         c: Connection = Depends(polling_conn), p: Principal = Depends(polling_principal)) -> dict[str, Any]:
    return changes.follow(c, p, changes.parse_cursor(since), wait=wait, class_code=class_code, division=division,
                          ops=changes.parse_kinds(kinds), limit=limit)
