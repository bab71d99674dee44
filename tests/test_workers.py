"""`citygrid serve --workers 2` for real: two processes behind one port, a write through either is never served
stale by the other (layer versions and credentials live in the database), liveness needs no database and
readiness says what is missing."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid.catalog import get_catalog

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def two_workers(database_url: str, demo_county: dict) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, DATABASE_URL=database_url, CITYGRID_RATE_LIMITS="0")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "citygrid"), "serve", "--no-demo", "--workers", "2",
                             "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "serve ended"
            assert time.monotonic() < deadline, "two workers did not come up"
            try:
                if httpx.get(base + "/healthz", timeout=5).status_code == 200 and len(_pids(base, 40)) == 2:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _pids(base: str, tries: int) -> set[int]:
    """Worker pids seen over `tries` fresh connections (each request its own connection, so the kernel hands it
    to whichever worker accepts first)."""
    seen = set()
    for _ in range(tries):
        with httpx.Client(base_url=base, timeout=10) as c:
            seen.add(c.get("/healthz").json()["pid"])
        if len(seen) == 2:
            break
    return seen


def _fresh_get(base: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=30) as c:
        return c.get(path, headers=headers)


def test_workers_start_with_the_index_the_master_loaded_before_forking(two_workers: str, engine: Engine) -> None:
    # No request has touched the index yet: a worker that had to build its own would answer its first readiness
    # probe 503 "loading"; forked after the master's preload, both are ready from their first probe.
    seen: dict[int, list[int]] = {}
    for _ in range(40):
        r = _fresh_get(two_workers, "/readyz")
        body = r.json()
        assert r.status_code == 200, body
        seen.setdefault(body["pid"], []).append(r.status_code)
        if len(seen) == 2:
            break
    assert len(seen) == 2
    # and both resolve from it: the door itself, whichever worker answers
    with engine.connect() as c:
        code, name = c.execute(text("SELECT code, full_name FROM addr_node WHERE level = 'door' ORDER BY code LIMIT 1")
                               ).one()
    for _ in range(8):
        with httpx.Client(base_url=two_workers, timeout=30) as client:
            assert client.get("/address/geocode", params={"q": name}).json()["candidates"][0]["address_code"] == code


def test_a_write_through_one_worker_is_never_served_stale_by_the_other(two_workers: str,
                                                                        admin_headers: dict[str, str]) -> None:
    base = two_workers
    assert len(_pids(base, 40)) == 2, "both workers answer"
    lamp = next(c for c in get_catalog().classes.values() if c.name == "路灯")
    lon, lat = 114.9735, 30.0968
    x = int((lon + 180) / 360 * 2**16)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**16)
    tile = f"/tiles/class-{lamp.code}/16/{x}/{y}.mvt"
    items = f"/ogc/collections/class-{lamp.code}/items?bbox={lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}"
    before_tags = {_fresh_get(base, tile, admin_headers).headers["etag"] for _ in range(12)}  # caches warm in both
    before = {_fresh_get(base, items, admin_headers).json()["numberMatched"] for _ in range(12)}
    assert len(before_tags) == 1 and len(before) == 1
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post("/objects", headers=admin_headers, json={
            "class_code": lamp.code, "name": "两个进程之间的路灯", "division_code": "420281",
            "geometry": {"type": "Point", "coordinates": [lon, lat]}, "attrs": {"state": "完好"}})
    assert r.status_code == 201, r.text
    after_tags = {_fresh_get(base, tile, admin_headers).headers["etag"] for _ in range(12)}
    after = {_fresh_get(base, items, admin_headers).json()["numberMatched"] for _ in range(12)}
    assert after_tags.isdisjoint(before_tags) and len(after_tags) == 1, (before_tags, after_tags)
    assert after == {before.pop() + 1}


def test_liveness_needs_no_database_and_readiness_loads_the_index(client: TestClient, demo_county: dict) -> None:
    live = client.get("/healthz")
    assert live.status_code == 200 and live.json()["status"] == "alive" and live.json()["pid"] == os.getpid()
    deadline = time.monotonic() + 120
    while True:
        r = client.get("/readyz")
        if r.status_code == 200:
            break
        assert r.status_code == 503 and r.json()["error_code"] == "not_ready", r.text
        assert "address index" in r.json()["message_en"] and r.headers["retry-after"]
        assert time.monotonic() < deadline, "the index never loaded"
        time.sleep(0.5)
    assert r.json() == {"status": "ready", "database": "ok", "address_index": "loaded", "pid": os.getpid()}
