"""Status of long jobs (division and demo loads, imports)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.engine import Connection

from api.deps import conn, current_principal
from citygrid import jobs
from citygrid.errors import E
from citygrid.security import rules
from citygrid.security.principal import Principal

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("", summary="Your recent jobs with progress (admins: everyone's)")
def list_jobs(limit: int = Query(50, ge=1, le=500), c: Connection = Depends(conn),
              p: Principal = Depends(current_principal)) -> dict[str, Any]:
    items = jobs.list_jobs(c, rules.job_owner(p), limit)
    return {"items": items, "count": len(items)}


@router.get("/{job_id}", summary="One job: state, done/total, stage, result")
def get_job(job_id: str, c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> dict[str, Any]:
    j = jobs.get_job(c, job_id, rules.job_owner(p))
    if j is None:
        raise E.job_not_found("job_id", job=job_id)
    return j
