"""The async read path of OGC items and tiles (citygrid/db/aio.py): the same answers as the sync path, the caller's
scope on its statements and nowhere after them, connections that died while idle replaced unseen, and a failed
statement that leaves its connection usable."""

from __future__ import annotations

import asyncio
import math

import psycopg
import pytest
from shapely.geometry import Point
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from citygrid.db import aio, failures
from citygrid.db.engine import app_database_url, app_engine_for
from citygrid.layers import features as F
from citygrid.layers import tiles as T
from citygrid.registry.bulk import BulkItem, bulk_create
from citygrid.security.principal import ANONYMOUS, SYSTEM, Grant, Principal, system_as
from citygrid.security.scope import scoped

CLS = "010404"  # 景观灯: only this module creates them (not in the demo)
TOWN = "420281100"


@pytest.fixture(scope="module")
def app_engine(database_url: str) -> Engine:
    return app_engine_for(app_database_url(database_url))


@pytest.fixture(scope="module")
def kiosks(engine: Engine) -> list[str]:
    items = [BulkItem(Point(114.97 + (i % 6) * 0.0003, 30.09 + (i // 6) * 0.0003), {"state": "完好"}) for i in range(30)]
    with Session(engine) as s, s.begin():
        return bulk_create(s, system_as("test-aio"), CLS, "420281", items)


def _xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def _steps() -> aio.Steps[list[aio.Rows]]:
    rows = yield [("SELECT current_user::text, current_setting('citygrid.divisions', true)", {})]
    return rows


def _run(coro):  # noqa: ANN001, ANN202 - each test's own loop, whose pools are closed before it ends
    async def go():  # noqa: ANN202
        try:
            return await coro
        finally:
            await aio.close_pools()
    return asyncio.run(go())


def test_tiles_and_pages_are_those_of_the_sync_path(app_engine: Engine, kiosks: list[str]) -> None:
    layer = f"class-{CLS}"
    tiles = [(z, *_xy(114.971, 30.091, z)) for z in (10, 14, 16)]
    with app_engine.connect() as c:
        scoped(c, ANONYMOUS)
        want_tiles = [T.tile(c, ANONYMOUS, layer, z, x, y, cache=None) for z, x, y in tiles]
        want_pages = [F.items(c, ANONYMOUS, layer, limit=7, cache=None),
                      F.items(c, ANONYMOUS, layer, limit=7, cursor=sorted(kiosks)[6], cache=None),
                      F.items(c, ANONYMOUS, layer, limit=7, bbox="114.969,30.089,114.9707,30.0907", cache=None),
                      F.items(c, ANONYMOUS, layer, limit=7, cursor="9" * 21, cache=None)]  # past the end

    async def both():  # noqa: ANN202
        got_tiles = [await T.tile_async(app_engine, ANONYMOUS, layer, z, x, y, cache=None) for z, x, y in tiles]
        got_pages = [await F.items_async(app_engine, ANONYMOUS, layer, limit=7, cache=None),
                     await F.items_async(app_engine, ANONYMOUS, layer, limit=7, cursor=sorted(kiosks)[6], cache=None),
                     await F.items_async(app_engine, ANONYMOUS, layer, limit=7, bbox="114.969,30.089,114.9707,30.0907",
                                         cache=None),
                     await F.items_async(app_engine, ANONYMOUS, layer, limit=7, cursor="9" * 21, cache=None)]
        return got_tiles, got_pages

    got_tiles, got_pages = _run(both())
    assert [t.data for t in got_tiles] == [t.data for t in want_tiles]
    assert [t.etag for t in got_tiles] == [t.etag for t in want_tiles]
    assert all(t.data for t in got_tiles)  # the kiosks are in these tiles: the comparison is not of empty tiles
    assert got_pages == want_pages
    assert [p["numberReturned"] for p in got_pages] == [7, 7, 7, 0]
    assert got_pages[0]["numberMatched"] == 30 and got_pages[3]["numberMatched"] == 30
    assert got_pages[2]["numberMatched"] == 9  # 3 × 3 kiosks in that box


def test_a_cached_tile_costs_a_version_read_and_a_write_makes_it_stale(app_engine: Engine, engine: Engine,
                                                                        kiosks: list[str]) -> None:
    from citygrid.db.versions import VersionedCache

    cache: VersionedCache[T.Tile] = VersionedCache(max_items=10, max_bytes=1 << 20)
    layer, (x, y) = f"class-{CLS}", _xy(114.971, 30.091, 16)

    async def go() -> tuple[T.Tile, T.Tile, T.Tile]:
        first = await T.tile_async(app_engine, ANONYMOUS, layer, 16, x, y, cache=cache)
        again = await T.tile_async(app_engine, ANONYMOUS, layer, 16, x, y, cache=cache)
        with Session(engine) as s, s.begin():
            bulk_create(s, system_as("test-aio"), CLS, "420281", [BulkItem(Point(114.9711, 30.0911), {"state": "完好"})])
        after = await T.tile_async(app_engine, ANONYMOUS, layer, 16, x, y, cache=cache)
        return first, again, after

    first, again, after = _run(go())
    assert again is first and cache.hits == 1
    assert after.version > first.version and after.etag != first.etag and after.data != first.data


def test_the_callers_scope_holds_for_its_statements_and_not_after(app_engine: Engine) -> None:
    area = Principal(kind="user", name="t", grants=(Grant("department", TOWN, "natural_resources"),))

    async def go() -> tuple[list[aio.Rows], list[aio.Rows], list[tuple[str, str]]]:
        a = await aio.run_async(app_engine, area, _steps())
        b = await aio.run_async(app_engine, ANONYMOUS, _steps())
        async with aio.pool_for(app_engine).connection() as c:  # the same, idle connection: nothing left on it
            after = await (await c.execute("SELECT current_user::text, "
                                           "coalesce(current_setting('citygrid.divisions', true), '')")).fetchall()
        return a, b, after

    a, b, after = _run(go())
    assert a == [[("citygrid_area", TOWN)]]
    assert b == [[("citygrid_all", "*")]]
    assert after == [("citygrid_app", "")]


def test_a_connection_killed_while_idle_is_replaced_and_a_failed_statement_leaves_it_usable(
        app_engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(failures, "IDLE_PING", 0.0)  # every idle connection is pinged at checkout

    def broken() -> aio.Steps[None]:
        yield [("SELECT 1 / 0", {})]

    async def go() -> list[aio.Rows]:
        await aio.run_async(app_engine, SYSTEM, _steps())
        pool = aio.pool_for(app_engine)
        (conn, _), = pool._idle
        pid = conn.info.backend_pid
        with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as k:
            k.execute("SELECT pg_terminate_backend(%s)", (pid,))
        rows = await aio.run_async(app_engine, SYSTEM, _steps())  # the dead one is dropped at checkout
        (conn2, _), = pool._idle
        assert conn2.info.backend_pid != pid
        with pytest.raises(psycopg.errors.DivisionByZero):
            await aio.run_async(app_engine, SYSTEM, broken())
        (conn3, _), = pool._idle  # back in the pool, idle, and it answers
        assert conn3 is conn2
        return rows + await aio.run_async(app_engine, SYSTEM, _steps())

    assert _run(go()) == [[("citygrid_all", "*")], [("citygrid_all", "*")]]
