"""Status of long jobs (division and demo loads, imports)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.engine import Connection

from api.deps import acting_principal, conn, current_principal
from api.openapi import errors, ok
from api.schemas import Job, JobList
from citygrid import jobs
from citygrid.errors import E
from citygrid.security import rules
from citygrid.security.principal import Principal
from citygrid.security.scope import scoped_engine

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("", summary="Your recent jobs with progress (admins: everyone's)", responses=ok(JobList))
def list_jobs(limit: int = Query(50, ge=1, le=500), c: Connection = Depends(conn),
              p: Principal = Depends(current_principal)) -> dict[str, Any]:
    items = jobs.list_jobs(c, rules.job_owner(p), limit)
    return {"items": items, "count": len(items)}


@router.get("/{job_id}", summary="One job: state, done/total, stage, result", responses=ok(Job) | errors(404))
def get_job(job_id: str, c: Connection = Depends(conn), p: Principal = Depends(current_principal)) -> dict[str, Any]:
    j = jobs.get_job(c, job_id, rules.job_owner(p))
    if j is None:
        raise E.job_not_found("job_id", job=job_id)
    return j


@router.post("/{job_id}/cancel", summary="Cancel a job: a running one stops at its next progress write, an "
                                        "interrupted or failed one is cancelled at once",
             responses=ok(Job) | errors(404, 409))
def cancel_job(job_id: str, request: Request, p: Principal = Depends(acting_principal)) -> dict[str, Any]:
    return jobs.cancel(scoped_engine(request.app.state.engine, p), job_id, rules.job_owner(p))
