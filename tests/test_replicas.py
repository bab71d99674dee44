"""Read replicas for real: a throwaway primary and a hot standby made from it with `pg_basebackup -R`
(`Cluster.standby_of`). Heavy reads go to the standby, writes to the primary; a caller reads its own writes
even while the standby's replay is paused (its reads go to the primary until the standby has replayed them);
a standby that falls behind the bound leaves the pool by itself and comes back when it catches up; /readyz
reports each replica's lag."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url
from sqlalchemy.engine import Engine

from citygrid.catalog import get_catalog
from citygrid.db.bootstrap import prepare
from citygrid.db.cluster import Cluster
from citygrid.db.engine import app_database_url, app_engine_for, engine_for
from citygrid.security import credentials
from citygrid.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
LAMP = next(c for c in get_catalog().classes.values() if c.name == "路灯")
SPOT = (114.9735, 30.0968)
BBOX = f"{SPOT[0] - 0.002},{SPOT[1] - 0.002},{SPOT[0] + 0.002},{SPOT[1] + 0.002}"


def _libpq(url: str) -> str:
    u = make_url(url)
    return f"host={u.host} port={u.port} user={u.username} dbname={u.database}"


def _copy_divisions(source: Engine, target_url: str) -> None:
    """The demo county's divisions (and their ancestors) from the suite's database: placing an object needs
    them, and loading all of China's would take a minute."""
    src = source.raw_connection()
    try:
        with src.cursor() as cur, psycopg.connect(_libpq(target_url)) as dst:
            sql = ("COPY (WITH RECURSIVE up AS (SELECT * FROM division WHERE code = '420281' UNION "
                   "SELECT d.* FROM division d JOIN up ON d.code = up.parent_code) "
                   "SELECT * FROM (SELECT * FROM up UNION SELECT * FROM division WHERE code LIKE '420281%') x "
                   "ORDER BY level) TO STDOUT")
            with cur.copy(sql) as out, dst.cursor().copy("COPY division FROM STDIN") as into:  # type: ignore[attr-defined]
                for chunk in out:
                    into.write(chunk)
    finally:
        src.close()


@pytest.fixture(scope="module")
def replicated(engine: Engine, demo_county: dict) -> Iterator[dict[str, Any]]:
    from api.main import create_app

    primary = Cluster(ROOT / f".citygrid-replica-primary-{os.getpid()}")
    standby = Cluster(ROOT / f".citygrid-replica-standby-{os.getpid()}")
    mp = pytest.MonkeyPatch()
    urls: list[str] = []
    try:
        purl = primary.start()
        urls.append(purl)
        prepare(purl)
        _copy_divisions(engine, purl)
        with engine_for(purl).begin() as c:
            credentials.add_principal(c, "replica-admin", kind="service", clearance="L4",
                                      grants=[credentials.parse_grant("admin")])
            key = credentials.create_api_key(c, "replica-admin", "test")["key"]
        surl = standby.standby_of(primary)
        urls.append(surl)
        replica = make_url(surl).set(username=None).render_as_string(hide_password=False)
        mp.setenv("CITYGRID_REPLICA_URLS", replica)
        mp.setenv("CITYGRID_REPLICA_MAX_LAG", "2")
        get_settings.cache_clear()
        with TestClient(create_app(purl)) as client:
            yield {"client": client, "headers": {"X-API-Key": key}, "primary": purl, "standby": surl,
                   "pool": client.app.state.replicas}  # type: ignore[attr-defined]
    finally:
        mp.undo()
        get_settings.cache_clear()
        for u in urls:
            for e in (engine_for(u), app_engine_for(app_database_url(u))):
                e.dispose()
        for cl in (standby, primary):
            cl.stop()
            shutil.rmtree(cl.root, ignore_errors=True)


def _standby(r: dict[str, Any], sql: str) -> Any:
    with psycopg.connect(_libpq(r["standby"]), autocommit=True) as c:
        return c.execute(sql).fetchone()


def _lamp(r: dict[str, Any], name: str) -> Any:
    return r["client"].post("/objects", headers=r["headers"], json={
        "class_code": LAMP.code, "name": name, "division_code": "420281",
        "geometry": {"type": "Point", "coordinates": list(SPOT)}, "attrs": {"state": "完好"}})


def _items(r: dict[str, Any], headers: dict[str, str] | None = None) -> list[str]:
    resp = r["client"].get(f"/ogc/collections/class-{LAMP.code}/items", params={"bbox": BBOX, "limit": 1000},
                           headers=headers)
    assert resp.status_code == 200, resp.text
    return sorted(f["properties"]["name"] for f in resp.json()["features"])


def _wait_replayed(r: dict[str, Any]) -> None:
    with psycopg.connect(_libpq(r["primary"]), autocommit=True) as c:
        target = c.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
    deadline = time.monotonic() + 30
    while not _standby(r, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")[0]:
        assert time.monotonic() < deadline, "the standby did not catch up"
        time.sleep(0.1)


def test_the_standby_replays_and_serves_reads(replicated: dict[str, Any]) -> None:
    r = replicated
    assert _standby(r, "SELECT pg_is_in_recovery()")[0] is True
    made = _lamp(r, "复制路灯一")
    assert made.status_code == 201, made.text
    assert "x-citygrid-lsn" in made.headers
    _wait_replayed(r)
    ready = r["client"].get("/readyz")  # may first say the index is loading
    deadline = time.monotonic() + 60
    while ready.status_code != 200:
        assert time.monotonic() < deadline, ready.text
        time.sleep(0.3)
        ready = r["client"].get("/readyz")
    (rep,) = ready.json()["replicas"]
    assert rep["in_pool"] is True and rep["lag_s"] is not None and rep["error"] is None, rep
    assert "复制路灯一" in _items(r)  # anonymous: from the standby, which has it


def test_reads_go_to_the_standby_and_the_writer_reads_its_own_writes(replicated: dict[str, Any]) -> None:
    r = replicated
    _wait_replayed(r)
    pool = r["pool"]
    pool.max_lag = 3600.0  # routing alone here: the standby stays in the pool however late it falls
    pool.refresh(force=True)
    _standby(r, "SELECT pg_wal_replay_pause()")
    try:
        made = _lamp(r, "复制路灯二")
        assert made.status_code == 201, made.text
        # the public reads from the standby, whose replay is paused: it does not have the new lamp yet
        assert "复制路灯二" not in _items(r)
        # the writer reads its own write: the standby has not replayed it, so its read goes to the primary
        assert "复制路灯二" in _items(r, r["headers"])
        # another worker knows only what the client sends back: the LSN header does the same for anyone
        assert "复制路灯二" in _items(r, {"X-Citygrid-Min-LSN": made.headers["x-citygrid-lsn"]})
        assert "复制路灯二" not in _items(r, {"X-Citygrid-Min-LSN": "not-an-lsn"})  # a bad header is ignored
    finally:
        _standby(r, "SELECT pg_wal_replay_resume()")
        pool.max_lag = 2.0
    _wait_replayed(r)
    pool.refresh(force=True)
    assert "复制路灯二" in _items(r)


def test_a_lagging_standby_leaves_the_pool_and_comes_back(replicated: dict[str, Any]) -> None:
    r = replicated
    pool = r["pool"]
    _wait_replayed(r)
    pool.refresh(force=True)
    _standby(r, "SELECT pg_wal_replay_pause()")
    try:
        assert _lamp(r, "复制路灯三").status_code == 201
        deadline = time.monotonic() + 30
        while True:  # the bound is 2 s: past it, the standby is out and everyone reads from the primary
            time.sleep(0.5)
            pool.refresh(force=True)
            (rep,) = pool.status()
            if not rep["in_pool"]:
                break
            assert time.monotonic() < deadline, rep
        assert "lags" in rep["error"] and rep["lag_s"] > 2
        assert "复制路灯三" in _items(r)  # the public too: the primary answers while the standby is out
        ready = r["client"].get("/readyz")
        assert ready.status_code == 200 and ready.json()["replicas"][0]["in_pool"] is False
    finally:
        _standby(r, "SELECT pg_wal_replay_resume()")
    _wait_replayed(r)
    pool.refresh(force=True)
    pool.refresh(force=True)  # the check before must have seen the primary where the standby now is
    (rep,) = pool.status()
    assert rep["in_pool"] is True and rep["lag_s"] == 0.0, rep
