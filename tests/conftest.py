"""Tests run against a real PostGIS: DATABASE_URL when given, else a private cluster in .citygrid-test.

Loading every division of China takes most of a minute, so it is done once into a template database
(`citygrid_tmpl`, rebuilt when the migration head changes) and each test session gets a fresh copy.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid.db.bootstrap import prepare
from citygrid.db.cluster import Cluster
from citygrid.db.engine import engine_for
from citygrid.regions.load import load_divisions
from citygrid.security import credentials
from citygrid.security.principal import Grant

ROOT = Path(__file__).resolve().parents[1]
# Tests sign tokens and hash keys with their own keyring, never the developer's (.citygrid/keyring.json).
os.environ.setdefault("CITYGRID_KEYRING_FILE", str(ROOT / ".citygrid-test" / "keyring.json"))
# The session's app serves every test module from one client address: rate limits would trip over the suite's own
# logins. tests/test_security_hardening.py builds apps with limits on to test them.
os.environ.setdefault("CITYGRID_RATE_LIMITS", "0")
# Webhook tests deliver to a receiver on this machine: its loopback address is allowed (others stay refused).
os.environ.setdefault("CITYGRID_WEBHOOK_ALLOW", "127.0.0.1/32")
TEMPLATE = "citygrid_tmpl"
TEST_DB = f"citygrid_test_{os.getpid()}"  # one per pytest process, so parallel runs never clobber each other


def _head() -> str:
    from alembic.script import ScriptDirectory

    from citygrid.db.migrate import MIGRATIONS, alembic_config

    cfg = alembic_config("postgresql://unused")
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return str(ScriptDirectory.from_config(cfg).get_current_head())


def _template_ok(port: int) -> bool:
    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} user=citygrid dbname={TEMPLATE}") as c:
            v = c.execute("SELECT version_num FROM alembic_version").fetchone()
            loaded = c.execute("SELECT count(*) FROM data_source").fetchone()
            return bool(v and v[0] == _head() and loaded and loaded[0] >= 2)
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        engine = prepare(url)
        load_divisions(engine)
        yield url
        return
    cluster = Cluster(Path(os.environ.get("CITYGRID_TEST_DATA_DIR", ROOT / ".citygrid-test")))
    was_running = cluster.running()
    cluster.start()
    port = cluster.port
    admin = f"host=127.0.0.1 port={port} user=citygrid dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as lock:
        lock.execute("SELECT pg_advisory_lock(4202810)")  # one template builder at a time
        if not _template_ok(port):
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
                c.execute(f"CREATE DATABASE {TEMPLATE}")
            turl = f"postgresql+psycopg://citygrid@127.0.0.1:{port}/{TEMPLATE}"
            load_divisions(prepare(turl))
            engine_for(turl).dispose()
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {TEST_DB} WITH (FORCE)")
            c.execute(f"CREATE DATABASE {TEST_DB} TEMPLATE {TEMPLATE}")
        lock.execute("SELECT pg_advisory_unlock(4202810)")
    url = f"postgresql+psycopg://citygrid@127.0.0.1:{port}/{TEST_DB}"
    prepare(url)
    yield url
    engine_for(url).dispose()
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {TEST_DB} WITH (FORCE)")
        others = c.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'citygrid_test_%'").fetchone()
    if not was_running and others and others[0] == 0:
        cluster.stop()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Engine:
    return engine_for(database_url)


@pytest.fixture(scope="session")
def client(database_url: str) -> Iterator[TestClient]:
    from api.main import create_app

    with TestClient(create_app(database_url)) as c:
        yield c


@dataclass(frozen=True)
class Caller:
    """A principal made for a test: its name (the author history records) and the headers to call as it."""

    name: str
    headers: dict[str, str]


@pytest.fixture(scope="session")
def caller(engine: Engine) -> Callable[..., Caller]:
    """A new principal with these grants (`role[:department][@division]` or `Grant`), calling with an API key
    (no password hashing per test)."""
    def make(*grants: str | Grant, clearance: str = "L2", personal: bool = False) -> Caller:
        name = f"t-{uuid.uuid4().hex[:10]}"
        with engine.begin() as c:
            credentials.add_principal(c, name, kind="service", clearance=clearance, personal=personal,
                                      grants=[g if isinstance(g, Grant) else credentials.parse_grant(g) for g in grants])
            key = credentials.create_api_key(c, name, "test")["key"]
        return Caller(name, {"X-API-Key": key})

    return make


@pytest.fixture(scope="session")
def admin(caller: Callable[..., Caller]) -> Caller:
    return caller("admin", clearance="L4", personal=True)


@pytest.fixture(scope="session")
def admin_headers(admin: Caller) -> dict[str, str]:
    return admin.headers


@pytest.fixture(scope="session")
def dept_headers(caller: Callable[..., Caller]) -> Callable[..., dict[str, str]]:
    """Headers of a department's system: `dept_headers("housing")`, scoped to the demo county by default."""
    def make(department: str, division: str = "420281", clearance: str = "L2") -> dict[str, str]:
        return caller(f"department:{department}@{division}", clearance=clearance).headers

    return make


@pytest.fixture(scope="session")
def run_batch(client: TestClient) -> Callable[[dict[str, str], str], str]:
    """Upload a CSV for batch geocoding as a caller and wait for its job to finish: the job's id."""
    def run(headers: dict[str, str], csv_text: str) -> str:
        r = client.post("/address/batch", files={"file": ("b.csv", csv_text.encode())}, headers=headers)
        assert r.status_code == 202, r.text
        job = str(r.json()["job"])
        for _ in range(200):
            if client.get(f"/jobs/{job}", headers=headers).json()["state"] != "running":
                break
            time.sleep(0.1)
        return job

    return run


@pytest.fixture()
def count_rows(engine: Engine):  # noqa: ANN201
    def _count(sql: str, **params: object) -> int:
        with engine.connect() as c:
            return int(c.execute(text(sql), params).scalar_one())

    return _count


@pytest.fixture(scope="session")
def demo_county(engine: Engine) -> dict:
    """The demo county at a small scale with grids and its standard address base (once per session)."""
    from citygrid.demo.load import load_address_base, load_demo
    from citygrid.grid.generate import generate

    summary = load_demo(engine, seed=7, scale=0.05)
    summary["grids"] = generate(engine, "420281", seed=7)
    summary["address"] = load_address_base(engine, "420281", seed=7)
    return summary


@pytest.fixture(scope="session")
def places(engine: Engine, demo_county: dict) -> dict:
    """Two villages of two townships of the demo county with rooms, each with a point inside it, and a room and
    a door plate in the first (for tests of scopes)."""
    with engine.connect() as c:
        rows = c.execute(text(
            "SELECT DISTINCT ON (parent_code) code, parent_code, ST_X(ST_PointOnSurface(geom)) x, "
            "ST_Y(ST_PointOnSurface(geom)) y FROM division WHERE level = 5 AND code LIKE '420281%' AND geom IS NOT NULL "
            "AND EXISTS (SELECT 1 FROM addr_node a WHERE a.village_code = division.code AND a.level = 'room') "
            "ORDER BY parent_code, code LIMIT 2")).all()
        a, b = rows
        room, door = (c.execute(text(f"SELECT code FROM addr_node WHERE level = '{level}' AND village_code = :v "
                                     "ORDER BY code LIMIT 1"), {"v": a.code}).scalar_one() for level in ("room", "door"))
        # a second point in the first village, about 100 m or more from the first, for a test that must have a
        # spot to itself (many modules register objects at "pt": duplicate lists there are full)
        quiet = c.execute(text(
            "SELECT ST_X(q), ST_Y(q) FROM (SELECT ST_PointOnSurface(ST_Difference(geom, ST_Buffer("
            "ST_PointOnSurface(geom), 0.001))) AS q FROM division WHERE code = :v) x WHERE NOT ST_IsEmpty(q)"),
            {"v": a.code}).first()
    return {"a": {"village": a.code, "township": a.parent_code, "pt": [a.x, a.y],
                  "quiet": [quiet[0], quiet[1]] if quiet else [a.x, a.y]},
            "b": {"village": b.code, "township": b.parent_code, "pt": [b.x, b.y]}, "room": room, "door": door}


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[str]:
    """The real app under uvicorn on a free localhost port, for clients that speak HTTP (OWSLib, a browser)."""
    import socket
    import threading
    import time

    import uvicorn

    from api.main import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(database_url), host="127.0.0.1", port=port, log_level="warning",
                                        lifespan="on"))
    thread = threading.Thread(target=srv.run, name="citygrid-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="session")
def login_as(client: TestClient, engine: Engine):  # noqa: ANN201
    """`login_as(username, *grant_specs, clearance=..., personal=...)` → Authorization headers of a principal with
    those roles (created on first use, e.g. `login_as("alice", "admin")`)."""
    from citygrid.security import credentials

    cache: dict[str, dict[str, str]] = {}

    def _login(username: str, *grants: str, clearance: str = "L2", personal: bool = False) -> dict[str, str]:
        if username not in cache:
            password = "test-password-" + username
            with engine.begin() as c:
                if not c.execute(text("SELECT 1 FROM principal WHERE username = :u"), {"u": username}).first():
                    credentials.add_principal(c, username, password=password, clearance=clearance, personal=personal,
                                              grants=[credentials.parse_grant(g) for g in grants])
            r = client.post("/auth/token", data={"username": username, "password": password})
            assert r.status_code == 200, r.text
            cache[username] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return cache[username]

    return _login
