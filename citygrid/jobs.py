"""Long jobs (loads, imports, bulk allocation, batch geocoding): their progress and outcome in the `job` table,
and the threads that run them in the background.

A job is recorded the same way whether it runs in the caller (`run`, the CLI) or in a background thread
(`start`, the API's `/address/batch`), so `/jobs` reports both alike. Background work lives here rather than in
the routers so that one place owns the threads (and, later, worker processes) and knows which jobs are running.

**Jobs whose process died.** Each row names the process that runs it (`worker`: host, pid and the process's
start time, so a reused pid is not mistaken for it). A process that is killed (kill -9, a crash, a reboot)
cannot record anything, so at start-up the API and the `citygrid jobs` commands call `mark_interrupted`: every
`running` job of this host whose process is gone becomes `interrupted` (a persisted state), and the job kind's
settle hook makes its output agree with its record (a batch's result file is cut back to the last row the job
recorded, `citygrid/address/batch.py`). Interrupted jobs can be resumed or retried (per kind) or cancelled.

**States.** running → done | failed | cancelled (a `cancelling` request is seen at the job's next progress
write) | interrupted (its process died) → running again when resumed or retried, or cancelled.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from citygrid.db import failures
from citygrid.errors import E
from citygrid.progress import Progress as Progress  # re-exported: job runners name the callback from here

FINISHED = frozenset({"done", "failed", "cancelled"})
STOPPED = frozenset({"failed", "cancelled", "interrupted"})  # may be resumed or retried (kinds that can)


class JobCancelled(Exception):
    """Raised in a job's thread at its next progress write once someone asked to cancel it."""


def _start_ticks(pid: int) -> str:
    """When process `pid` started (clock ticks since boot, /proc/<pid>/stat field 22); '' where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rindex(")") + 2:].split()[19]


def _worker(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def worker_alive(worker: str | None) -> bool | None:
    """Whether the process a job row names still runs: None when it is another host's (not ours to judge)."""
    if not worker:
        return False  # rows from before workers were recorded: their process cannot be found
    host, _, rest = worker.partition(":")
    pid, _, ticks = rest.partition(":")
    if host != socket.gethostname():
        return None
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's
    return _start_ticks(int(pid)) == ticks


class JobRecorder:
    """Wraps a progress callback: forwards it (CLI bar) and writes it to the job row at most every 0.5 s."""

    def __init__(self, engine: Engine, kind: str, forward: Progress | None = None, detail: dict[str, Any] | None = None,
                 owner: str = "system", job_id: uuid.UUID | None = None) -> None:
        self.engine, self.forward, self.kind = engine, forward, kind
        self.id = job_id or uuid.uuid4()
        self._last = 0.0
        self._stage: str | None = None  # the last stage heard: `finish` records it
        self._final: tuple[int, int] | None = None  # the complete count already written
        if job_id is not None:  # an existing job taken up again (resume, retry): see `attach`
            return
        # the owner (a principal's name) is who may see the job and its result besides admins (rules.job_owner)
        with engine.begin() as c:
            c.execute(text("INSERT INTO job (id, kind, detail, worker) VALUES (:i, :k, CAST(:d AS jsonb), :w)"),
                      {"i": self.id, "k": kind, "w": _worker(),
                       "d": json.dumps((detail or {}) | {"owner": owner}, ensure_ascii=False)})

    @classmethod
    def attach(cls, engine: Engine, job_id: str, kind: str, fresh: bool, forward: Progress | None = None
               ) -> JobRecorder:
        """Take up a stopped job in this process: running again, from its checkpoint (`fresh`: from nothing).
        Only one caller wins when several try at once (the state is checked in the same statement)."""
        job = cls(engine, kind, forward, job_id=uuid.UUID(job_id))
        reset = ", done = 0, total = NULL, detail = detail - 'checkpoint' - 'result'" if fresh else \
            ", detail = detail - 'result'"
        with engine.begin() as c:
            won = c.execute(text(f"UPDATE job SET state = 'running', finished_at = NULL, worker = :w{reset} "
                                 "WHERE id = :i AND kind = :k AND state = ANY(:stopped) RETURNING id"),
                            {"w": _worker(), "i": job.id, "k": kind, "stopped": sorted(STOPPED)}).first()
            if won is None:
                state = c.execute(text("SELECT state FROM job WHERE id = :i"), {"i": job.id}).scalar()
                raise E.job_state("job_id", state=state, action_zh="继续或重新运行", action_en="resumed or retried")
        return job

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        """Written at most every 0.5 s, and once when the count is complete: the stages after that (a small job
        says several at done == total) reach the row with `finish`, so a one-row job costs two writes, not five."""
        if self.forward:
            self.forward(stage, done, total)
        self._stage = stage
        now = time.monotonic()
        final = (done, total) if total is not None and done >= total else None
        if now - self._last >= 0.5 or final is not None and final != self._final:
            self._last = now
            self._final = final or self._final
            self._write(done, total, {"stage": stage})

    def checkpoint(self, done: int, data: dict[str, Any], total: int | None = None) -> None:
        """Record that `done` units are safely written, with what a resume needs (`data`) in the same statement,
        so the record never claims more than the output holds."""
        if self.forward:
            self.forward("checkpoint", done, total)
        self._write(done, total, {"checkpoint": data})

    def _write(self, done: int, total: int | None, extra: dict[str, Any]) -> None:
        with self.engine.begin() as c:
            state = c.execute(text("UPDATE job SET done = :d, total = :t, detail = detail || CAST(:x AS jsonb) "
                                   "WHERE id = :i RETURNING state"),
                              {"d": done, "t": total, "x": json.dumps(extra, ensure_ascii=False), "i": self.id}
                              ).scalar()
        if state == "cancelling":
            raise JobCancelled(str(self.id))

    def finish(self, state: str = "done", result: dict[str, Any] | None = None) -> None:
        extra: dict[str, Any] = ({"result": result} if result else {}) | (
            {"stage": self._stage} if self._stage is not None else {})
        with self.engine.begin() as c:
            c.execute(text("UPDATE job SET state=:s, finished_at=now(), detail = detail || CAST(:r AS jsonb) "
                           "WHERE id=:i"),
                      {"s": state, "r": json.dumps(extra, ensure_ascii=False, default=str), "i": self.id})


log = logging.getLogger(__name__)
_running: dict[uuid.UUID, threading.Thread] = {}  # background jobs still running, by job id
_running_lock = threading.Lock()


def _execute(job: JobRecorder, fn: Callable[[Progress], dict[str, Any]]) -> dict[str, Any]:
    """Run `fn` with the job as its progress callback; record done with the result or failed with the error."""
    try:
        result = fn(job)
    except JobCancelled:
        job.finish("cancelled")
        return {"cancelled": True}
    except BaseException as exc:
        # a known failure (a full disk, the database away) in its own words: an OSError's text names server paths
        known = failures.as_error(exc) if isinstance(exc, Exception) else None
        job.finish("failed", {"error": known.message_en, "error_code": known.error_code} if known else
                   {"error": str(exc)})
        raise
    job.finish("done", result)
    return result


def run(engine: Engine, kind: str, fn: Callable[[Progress], dict[str, Any]], forward: Progress | None = None,
        owner: str = "system") -> dict[str, Any]:
    """Run a job in the calling thread and return its result (the error is recorded, then raised)."""
    return _execute(JobRecorder(engine, kind, forward, owner=owner), fn)


def run_recorded(job: JobRecorder, fn: Callable[[Progress], dict[str, Any]]) -> dict[str, Any]:
    """Run `fn` in the calling thread as the job `job` (one taken up again, `JobRecorder.attach`)."""
    return _execute(job, fn)


def start(engine: Engine, owner: str, kind: str, fn: Callable[[Progress], dict[str, Any]],
          detail: dict[str, Any] | None = None, job: JobRecorder | None = None) -> JobRecorder:
    """Run a job of `owner`'s (a principal's name) in a named daemon thread and return at once; its row says when
    it is done or failed. `job`: an existing job taken up again (`JobRecorder.attach`) instead of a new one.

    An error is recorded on the job (and logged) and goes no further: nobody waits for the thread.
    """
    job = job or JobRecorder(engine, kind, detail=detail, owner=owner)

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


_lanes: dict[str, queue.Queue[Callable[[], None]]] = {}  # lane → its queue, drained by one daemon thread


def queue_job(lane: str, engine: Engine, owner: str, kind: str, fn: Callable[[Progress], dict[str, Any]],
              detail: dict[str, Any] | None = None) -> None:
    """Run a job later, after the lane's earlier ones, in the lane's one worker thread (started at the first
    job): for many small jobs that arrive together (ODK submissions, one instance each), which a thread each
    would pile onto the connection pool. The job's row is written when it starts, so a job whose process dies
    while it waits has no row: what it works on must be found again without one (`survey.intake.resume_pending`
    takes up stored submissions that no job processed)."""
    with _running_lock:
        q = _lanes.get(lane)
        if q is None:
            q = _lanes[lane] = queue.Queue()

            def work() -> None:
                while True:
                    task = q.get()
                    try:
                        task()
                    except Exception as exc:  # recorded on the job already; the lane goes on
                        log.warning("job in lane %s failed: %s", lane, exc)
                    finally:
                        q.task_done()

            threading.Thread(target=work, name=f"lane-{lane}", daemon=True).start()

    def task() -> None:
        _execute(JobRecorder(engine, kind, detail=detail, owner=owner), fn)

    q.put(task)


def drain(lane: str) -> None:
    """Wait until every job queued in `lane` so far has run (tests, benchmarks, a graceful stop)."""
    with _running_lock:
        q = _lanes.get(lane)
    if q is not None:
        q.join()


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


_COLUMNS = "id, kind, state, done, total, detail, started_at, finished_at, worker"
_INTERNAL = ("worker", "stored")  # which process runs it, where its input lies: the server's business


def public(job: dict[str, Any]) -> dict[str, Any]:
    """A job as callers see it: no worker, no stored paths; any other absolute path cut to its file name."""
    def scrub(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: scrub(x) for k, x in v.items() if k not in _INTERNAL}
        if isinstance(v, list):
            return [scrub(x) for x in v]
        if isinstance(v, str) and v.startswith("/") and "/" in v[1:]:
            return Path(v).name
        return v

    return {k: scrub(v) for k, v in job.items() if k not in _INTERNAL}


def list_jobs(conn: Connection, owner: str | None, limit: int = 50) -> list[dict[str, Any]]:
    """Recent jobs of `owner`, newest first; None: everyone's. Who may see whose is `rules.job_owner`."""
    mine = "TRUE" if owner is None else "detail->>'owner' = :owner"
    rows = conn.execute(text(f"SELECT {_COLUMNS} FROM job "
                             f"WHERE {mine} ORDER BY started_at DESC LIMIT :l"), {"l": limit, "owner": owner}).all()
    return [public(dict(r._mapping) | {"id": str(r.id)}) for r in rows]


def load(conn: Connection, job_id: str, owner: str | None) -> dict[str, Any] | None:
    """One job of `owner`'s (None: anyone's) with everything the server knows about it, or None when there is
    none or it is someone else's (the same answer). Callers get `public(...)` of it."""
    try:
        uid = uuid.UUID(job_id)
    except ValueError:
        return None
    r = conn.execute(text(f"SELECT {_COLUMNS} FROM job WHERE id=:i"), {"i": uid}).first()
    if r is None or (owner is not None and (r.detail or {}).get("owner") != owner):
        return None
    return dict(r._mapping) | {"id": str(r.id)}


def get_job(conn: Connection, job_id: str, owner: str | None) -> dict[str, Any] | None:
    """One job of `owner`'s (None: anyone's) as callers see it, or None (see `load`)."""
    j = load(conn, job_id, owner)
    return None if j is None else public(j)


# kind -> what makes a job's output agree with its record after its process died (e.g. cut a file back)
_settle: dict[str, Callable[[dict[str, Any]], None]] = {}


def on_interrupted(kind: str, settle: Callable[[dict[str, Any]], None]) -> None:
    """Register how jobs of `kind` are settled when found interrupted (called with the job's full row)."""
    _settle[kind] = settle


def mark_interrupted(engine: Engine) -> list[str]:
    """Mark every running (or cancelling) job of this host whose process is gone `interrupted` (a cancelling one
    `cancelled`), settle each by its kind, and return their ids. Safe to call from several processes at once."""
    out: list[str] = []
    with engine.begin() as c:
        rows = c.execute(text(f"SELECT {_COLUMNS} FROM job WHERE state IN ('running', 'cancelling') "
                              "FOR UPDATE SKIP LOCKED")).all()
        for r in rows:
            if worker_alive(r.worker) is not False:
                continue
            state = "cancelled" if r.state == "cancelling" else "interrupted"
            c.execute(text("UPDATE job SET state = :s, finished_at = now() WHERE id = :i"), {"s": state, "i": r.id})
            job = dict(r._mapping) | {"id": str(r.id), "state": state}
            if (settle := _settle.get(r.kind)) is not None:
                try:
                    settle(job)
                except OSError as exc:  # its files are gone: the record stands, a resume will say so
                    log.warning("job %s: could not settle its output: %s", r.id, exc)
            log.warning("job %s (%s) was %s: its process %s is gone; marked %s", r.id, r.kind, r.state, r.worker,
                        state)
            out.append(str(r.id))
    return out


def cancel(engine: Engine, job_id: str, owner: str | None) -> dict[str, Any]:
    """Cancel a job: a running one is asked to stop (`cancelling`; it stops at its next progress write, its
    output as far as it got), a stopped one becomes `cancelled` at once; a finished one cannot be."""
    with engine.begin() as c:
        j = load(c, job_id, owner)
        if j is None:
            raise E.job_not_found("job_id", job=job_id)
        if j["state"] == "running" and worker_alive(j["worker"]) is False:
            j["state"] = "interrupted"  # its process died and nobody has marked it yet: settle its output first
            if (settle := _settle.get(j["kind"])) is not None:
                settle(j)
        if j["state"] in ("running", "cancelling"):
            new = "cancelling"
        elif j["state"] in ("interrupted", "failed"):
            new = "cancelled"
        else:
            raise E.job_state("job_id", state=j["state"], action_zh="取消", action_en="cancelled")
        c.execute(text("UPDATE job SET state = :s, finished_at = CASE WHEN :s = 'cancelled' THEN now() "
                       "ELSE finished_at END WHERE id = :i"), {"s": new, "i": uuid.UUID(job_id)})
        j["state"] = new
    return public(j)
