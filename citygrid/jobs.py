"""Long jobs (loads, imports, bulk allocation, batch geocoding): their progress and outcome in the `job` table,
and the threads that run them in the background.

A job is recorded the same way whether it runs in the caller (`run`, the CLI) or in a background thread
(`start`, the API's `/address/batch`), so `/jobs` reports both alike. Background work lives here rather than in
the routers so that one place owns the threads (and, later, worker processes) and knows which jobs are running.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

Progress = Callable[[str, int, int | None], None]


class JobRecorder:
    """Wraps a progress callback: forwards it (CLI bar) and writes it to the job row at most every 0.5 s."""

    def __init__(self, engine: Engine, kind: str, forward: Progress | None = None, detail: dict[str, Any] | None = None,
                 owner: str = "system") -> None:
        self.engine, self.forward, self.id = engine, forward, uuid.uuid4()
        self._last = 0.0
        # the owner (a principal's name) is who may see the job and its result besides admins (rules.job_owner)
        with engine.begin() as c:
            c.execute(text("INSERT INTO job (id, kind, detail) VALUES (:i, :k, CAST(:d AS jsonb))"),
                      {"i": self.id, "k": kind,
                       "d": json.dumps((detail or {}) | {"owner": owner}, ensure_ascii=False)})

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if self.forward:
            self.forward(stage, done, total)
        now = time.monotonic()
        if now - self._last >= 0.5 or (total is not None and done >= total):
            self._last = now
            with self.engine.begin() as c:
                c.execute(text("UPDATE job SET done=:d, total=:t, detail = detail || jsonb_build_object('stage', "
                               "CAST(:s AS text)) WHERE id=:i"), {"d": done, "t": total, "s": stage, "i": self.id})

    def finish(self, state: str = "done", result: dict[str, Any] | None = None) -> None:
        with self.engine.begin() as c:
            c.execute(text("UPDATE job SET state=:s, finished_at=now(), detail = detail || CAST(:r AS jsonb) "
                           "WHERE id=:i"),
                      {"s": state, "r": json.dumps({"result": result} if result else {}, ensure_ascii=False,
                                                   default=str), "i": self.id})


log = logging.getLogger(__name__)
_running: dict[uuid.UUID, threading.Thread] = {}  # background jobs still running, by job id
_running_lock = threading.Lock()


def _execute(job: JobRecorder, fn: Callable[[Progress], dict[str, Any]]) -> dict[str, Any]:
    """Run `fn` with the job as its progress callback; record done with the result or failed with the error."""
    try:
        result = fn(job)
    except BaseException as exc:
        job.finish("failed", {"error": str(exc)})
        raise
    job.finish("done", result)
    return result


def run(engine: Engine, kind: str, fn: Callable[[Progress], dict[str, Any]], forward: Progress | None = None,
        owner: str = "system") -> dict[str, Any]:
    """Run a job in the calling thread and return its result (the error is recorded, then raised)."""
    return _execute(JobRecorder(engine, kind, forward, owner=owner), fn)


def start(engine: Engine, owner: str, kind: str, fn: Callable[[Progress], dict[str, Any]],
          detail: dict[str, Any] | None = None) -> JobRecorder:
    """Run a job of `owner`'s (a principal's name) in a named daemon thread and return at once; its row says when it is done or failed.

    An error is recorded on the job (and logged) and goes no further: nobody waits for the thread.
    """
    job = JobRecorder(engine, kind, detail=detail, owner=owner)

    def target() -> None:
        try:
            _execute(job, fn)
        except Exception as exc:
            log.warning("job %s (%s) failed: %s", job.id, kind, exc)
        finally:
            with _running_lock:
                _running.pop(job.id, None)

    thread = threading.Thread(target=target, name=f"job-{kind}-{job.id.hex[:8]}", daemon=True)
    with _running_lock:
        _running[job.id] = thread
    thread.start()
    return job


def running() -> dict[str, threading.Thread]:
    """Background jobs of this process that have not finished yet, by job id."""
    with _running_lock:
        return {str(k): t for k, t in _running.items()}


def wait(job_id: str, timeout: float | None = None) -> bool:
    """Wait for a background job of this process; True when it is no longer running."""
    with _running_lock:
        thread = _running.get(uuid.UUID(job_id))
    if thread is not None:
        thread.join(timeout)
        return not thread.is_alive()
    return True


def list_jobs(conn: Connection, owner: str | None, limit: int = 50) -> list[dict[str, Any]]:
    """Recent jobs of `owner`, newest first; None: everyone's. Who may see whose is `rules.job_owner`."""
    mine = "TRUE" if owner is None else "detail->>'owner' = :owner"
    rows = conn.execute(text("SELECT id, kind, state, done, total, detail, started_at, finished_at FROM job "
                             f"WHERE {mine} ORDER BY started_at DESC LIMIT :l"), {"l": limit, "owner": owner}).all()
    return [dict(r._mapping) | {"id": str(r.id)} for r in rows]


def get_job(conn: Connection, job_id: str, owner: str | None) -> dict[str, Any] | None:
    """One job of `owner`'s (None: anyone's), or None when there is none or it is someone else's (the same
    answer)."""
    try:
        uid = uuid.UUID(job_id)
    except ValueError:
        return None
    r = conn.execute(text("SELECT id, kind, state, done, total, detail, started_at, finished_at FROM job WHERE id=:i"),
                     {"i": uid}).first()
    if r is None or (owner is not None and (r.detail or {}).get("owner") != owner):
        return None
    return dict(r._mapping) | {"id": str(r.id)}
