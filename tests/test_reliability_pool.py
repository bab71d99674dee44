"""More concurrent writers than the connection pool holds all get their answer (`api.deps._slot`).

A write holds its caller's pooled connection (`deps.conn`) and takes a second for its transaction. Unbounded,
30 writers at once held the whole pool (10 + 20) and each waited for a second connection until the pool timed
out: 503s and 30–60 s stalls at 128 clients in bench/load.py. Requests that may hold a connection are now at most
half the pool, waited for on the event loop."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from citygrid.db.engine import POOL_OVERFLOW, POOL_SIZE
from tests.conftest import Caller


def test_more_concurrent_writes_than_the_pool_holds_all_succeed(client: TestClient, admin: Caller) -> None:
    n = 2 * (POOL_SIZE + POOL_OVERFLOW)
    start = threading.Barrier(n)

    def write(i: int) -> int:
        start.wait()
        r = client.post("/objects", headers=admin.headers, json={
            "class_code": "030301", "division_code": "420281", "attrs": {"state": "完好", "station_name": f"P{i}"},
            "geometry": {"type": "Point", "coordinates": [114.90 + i * 1e-4, 30.06]}})
        return r.status_code

    with ThreadPoolExecutor(n) as pool:
        codes = list(pool.map(write, range(n)))
    assert codes == [201] * n
