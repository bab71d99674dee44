"""Progress of long jobs (loads, imports, bulk allocation) kept in the `job` table for the API to report."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

Progress = Callable[[str, int, int | None], None]


class JobRecorder:
    """Wraps a progress callback: forwards it (CLI bar) and writes it to the job row at most every 0.5 s."""

    def __init__(self, engine: Engine, kind: str, forward: Progress | None = None, detail: dict | None = None) -> None:
        self.engine, self.forward, self.id = engine, forward, uuid.uuid4()
        self._last = 0.0
        with engine.begin() as c:
            c.execute(text("INSERT INTO job (id, kind, detail) VALUES (:i, :k, CAST(:d AS jsonb))"),
                      {"i": self.id, "k": kind, "d": json.dumps(detail or {}, ensure_ascii=False)})

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


def run(engine: Engine, kind: str, fn: Callable[[Progress], dict[str, Any]], forward: Progress | None = None
        ) -> dict[str, Any]:
    job = JobRecorder(engine, kind, forward)
    try:
        result = fn(job)
    except BaseException as exc:
        job.finish("failed", {"error": str(exc)})
        raise
    job.finish("done", result)
    return result


def list_jobs(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(text("SELECT id, kind, state, done, total, detail, started_at, finished_at FROM job "
                             "ORDER BY started_at DESC LIMIT :l"), {"l": limit}).all()
    return [dict(r._mapping) | {"id": str(r.id)} for r in rows]


def get_job(conn: Connection, job_id: str) -> dict[str, Any] | None:
    try:
        uid = uuid.UUID(job_id)
    except ValueError:
        return None
    r = conn.execute(text("SELECT id, kind, state, done, total, detail, started_at, finished_at FROM job WHERE id=:i"),
                     {"i": uid}).first()
    return dict(r._mapping) | {"id": str(r.id)} if r else None
