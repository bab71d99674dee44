"""The server killed (SIGKILL, for real) in the middle of writes, then restarted: a bulk code allocation under four
clients and a survey approval.

To kill *mid-way* rather than between requests, the test holds the audit chain's one-row lock (`audit_head`,
taken by every audited write as its last statement before COMMIT): the in-flight transactions have allocated their
codes, written the ledger, the objects and the rows, and wait there. The server is killed, the lock released, and
PostgreSQL rolls back what no client committed. Then: every acknowledged block is in the ledger, no in-flight one
is (not even a part of it), serials run without gap or repeat, every object's code is issued once, the approval is
all or nothing, and approving again (twice) registers the rows once."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from openpyxl import load_workbook
from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parents[1]
SERVER = """
import sys
import uvicorn
from api.main import create_app
uvicorn.run(create_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""
CLASS = "010101"  # 上水井盖, a point class the survey template covers
CLIENTS = 4
BLOCK = 2000


@dataclass
class Server:
    """`citygrid`'s app under uvicorn in a process of its own, on a fixed port across restarts."""

    url: str
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, self.url, str(self.port)], cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            assert self.proc.poll() is None, "the server exited at start"
            assert time.monotonic() < deadline, "the server did not answer within 2 minutes"
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def server(database_url: str, demo_county: dict) -> Iterator[Server]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    srv = Server(database_url, port)
    srv.start()
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        srv.proc.terminate()
        srv.proc.wait(30)


def _owner(database_url: str) -> psycopg.Connection[Any]:
    u = make_url(database_url)
    return psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database, autocommit=True)


def _kill_mid_commit(database_url: str, server: Server, waiting: int, before_kill: Callable[[], None] = lambda: None
                     ) -> None:
    """Hold the audit chain's lock until `waiting` transactions of the server wait for it, kill -9 the server, let
    go, and wait until PostgreSQL has rolled back every transaction the dead server left."""
    with _owner(database_url) as lock, _owner(database_url) as watch:
        lock.execute("BEGIN")
        lock.execute("SELECT * FROM audit_head FOR UPDATE")
        deadline = time.monotonic() + 60
        blocked = 0
        while blocked < waiting:
            assert time.monotonic() < deadline, f"only {blocked} of {waiting} transactions reached the lock"
            time.sleep(0.05)
            row = watch.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'citygrid_app' "
                                "AND wait_event_type = 'Lock' AND datname = current_database()").fetchone()
            blocked = int(row[0]) if row else 0
        before_kill()
        server.kill()
        lock.execute("COMMIT")
        while watch.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'citygrid_app' "
                            "AND datname = current_database() AND xact_start IS NOT NULL").fetchone() != (0,):
            assert time.monotonic() < deadline + 60, "the dead server's transactions did not end"
            time.sleep(0.05)


@dataclass
class Tally:
    acked: dict[str, list[str]] = field(default_factory=dict)  # batch → codes, answered 201
    sent: list[str] = field(default_factory=list)              # every batch asked for
    lock: threading.Lock = field(default_factory=threading.Lock)


def _reserve(base: str, headers: dict[str, str], who: int, tally: Tally, stop: threading.Event) -> None:
    with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
        i = 0
        while not stop.is_set():
            batch = f"kill-{os.getpid()}-{who}-{i}"
            i += 1
            with tally.lock:
                tally.sent.append(batch)
            try:
                r = c.post("/codes/blocks", json={"division_code": "420281", "class_code": CLASS, "count": BLOCK,
                                                  "batch": batch})
            except httpx.HTTPError:
                return  # the server died under this request: no answer, so nothing was promised
            assert r.status_code == 201, r.text
            with tally.lock:
                tally.acked[batch] = list(r.json()["codes"])


def test_kill_9_during_bulk_code_allocation(server: Server, database_url: str,
                                            admin_headers: dict[str, str]) -> None:
    tally, stop = Tally(), threading.Event()
    threads = [threading.Thread(target=_reserve, args=(server.base, admin_headers, i, tally, stop))
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    while len(tally.acked) < 8:  # a few blocks answered first, then every client has one in flight at the kill
        assert all(t.is_alive() for t in threads), "a client stopped before the kill"
        time.sleep(0.02)
    # with the lock held, each client's next request waits at it; once all four wait, those are their last
    _kill_mid_commit(database_url, server, CLIENTS, before_kill=stop.set)
    for t in threads:
        t.join(60)
    server.start()

    in_flight = [b for b in tally.sent if b not in tally.acked]
    assert len(in_flight) == CLIENTS
    with _owner(database_url) as c:
        ledger = {b: n for b, n in c.execute(
            "SELECT batch, count(*) FROM issued_code WHERE batch LIKE %s GROUP BY batch",
            (f"kill-{os.getpid()}-%",)).fetchall()}
        # every acknowledged block committed, whole; nothing of a block in flight at the kill
        assert ledger == {b: BLOCK for b in tally.acked}
        for batch, codes in tally.acked.items():
            got = [r[0] for r in c.execute("SELECT code FROM issued_code WHERE batch = %s ORDER BY serial",
                                           (batch,)).fetchall()]
            assert got == codes
        # no code given twice, serials of the class without gap or repeat, the counter past them
        acked = [code for codes in tally.acked.values() for code in codes]
        assert len(acked) == len(set(acked))
        serials = [r[0] for r in c.execute("SELECT serial FROM issued_code WHERE division_code = '420281' AND "
                                           "class_code = %s ORDER BY serial", (CLASS,)).fetchall()]
        assert serials == list(range(1, len(serials) + 1))
        counter = c.execute("SELECT next_serial FROM code_counter WHERE division_code = '420281' AND "
                            "class_code = %s", (CLASS,)).fetchone()
        assert counter == (len(serials) + 1,)
        # the ledger against the objects: every object's code was issued, and to one object only
        assert c.execute("SELECT count(*) FROM city_object o WHERE NOT EXISTS (SELECT 1 FROM issued_code i "
                         "WHERE i.code = o.code)").fetchone() == (0,)
        assert c.execute("SELECT count(*) - count(DISTINCT code) FROM city_object").fetchone() == (0,)
    # after the restart, allocation goes on from the next serial
    r = httpx.post(f"{server.base}/codes/blocks", headers=admin_headers, timeout=60,
                   json={"division_code": "420281", "class_code": CLASS, "count": 3})
    assert r.status_code == 201, r.text
    with _owner(database_url) as c:
        after = [r[0] for r in c.execute("SELECT serial FROM issued_code WHERE code = ANY(%s) ORDER BY serial",
                                         (r.json()["codes"],)).fetchall()]
    assert after == [len(serials) + 1, len(serials) + 2, len(serials) + 3]


def _survey(demo: dict[str, Any], n: int, village: str, x: float, y: float) -> bytes:
    from citygrid.catalog import get_catalog
    from citygrid.survey import template

    wb = load_workbook(io.BytesIO(template.build(get_catalog().classes[CLASS])))
    ws = wb["数据"]
    col = {str(h.value).lstrip("*").split("（")[0]: i for i, h in enumerate(ws[1], start=1)}
    for i in range(n):
        for label, value in (("名称", f"井K{i}"), ("经度", x + (i % 40) * 2e-6), ("纬度", y + (i // 40) * 2e-6),
                             ("状态", "完好")):
            ws.cell(2 + i, col[label], value)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_kill_9_during_a_survey_approval(server: Server, database_url: str, places: dict, demo_county: dict,
                                         caller: Callable[..., Any]) -> None:
    a = places["a"]
    cadre = caller(f"cadre@{a['village']}")
    reviewer = caller(f"reviewer@{a['township']}")
    n = 200
    data = _survey(demo_county, n, a["village"], *a["pt"])
    r = httpx.post(f"{server.base}/submissions", headers=cadre.headers, timeout=120,
                   files={"file": ("k.xlsx", data)}, data={"class_code": CLASS})
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["status"] == "validated" and sub["rows"] == n and sub["invalid"] == 0, sub
    sid = sub["id"]
    r = httpx.post(f"{server.base}/submissions/{sid}/submit", headers=cadre.headers, timeout=60)  # handed in
    assert r.status_code == 200 and r.json()["status"] == "submitted", r.text
    decisions = {"decisions": [{"row": i, "decision": "approve"} for i in range(2, n + 2)]}
    answer: list[Any] = []

    def approve() -> None:
        try:
            answer.append(httpx.post(f"{server.base}/submissions/{sid}/review", headers=reviewer.headers,
                                     json=decisions, timeout=120))
        except httpx.HTTPError as exc:
            answer.append(exc)

    t = threading.Thread(target=approve)
    t.start()
    _kill_mid_commit(database_url, server, 1)
    t.join(60)
    assert len(answer) == 1 and isinstance(answer[0], httpx.HTTPError)  # no answer: nothing was promised
    server.start()

    def state() -> tuple[Any, ...]:
        with _owner(database_url) as c:
            rows = c.execute("SELECT status, count(*), count(object_code) FROM submission_row WHERE "
                             "submission_id = %s GROUP BY status", (sid,)).fetchall()
            objects = c.execute("SELECT count(*) FROM city_object o JOIN issued_code i ON i.code = o.code "
                                "WHERE i.batch = %s", (f"submission:{sid}",)).fetchone()
            issued = c.execute("SELECT count(*) FROM issued_code WHERE batch = %s", (f"submission:{sid}",)).fetchone()
            head = c.execute("SELECT status FROM submission WHERE id = %s", (sid,)).fetchone()
        return tuple(sorted(rows)), objects, issued, head

    # nothing half-done: no row approved, no object, not one code of the rolled-back block in the ledger
    assert state() == ((("valid", n, 0),), (0,), (0,), ("submitted",))

    for _ in range(2):  # approved after the restart; approved again: the same codes, nothing new
        r = httpx.post(f"{server.base}/submissions/{sid}/review", headers=reviewer.headers, json=decisions,
                       timeout=120)
        assert r.status_code == 200, r.text
        codes = [x["object_code"] for x in r.json()["results"]]
        assert len(codes) == n and len(set(codes)) == n and all(codes)
        assert state() == ((("approved", n, n),), (n,), (n,), ("coded",))
        with _owner(database_url) as c:
            got = {r[0] for r in c.execute("SELECT object_code FROM submission_row WHERE submission_id = %s",
                                           (sid,)).fetchall()}
            assert got == set(codes)
