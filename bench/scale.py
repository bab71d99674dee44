"""How the figures grow with the data: the demo county alone, then N more objects across a city's counties.

    .venv/bin/python bench/scale.py --objects 200000 [--division 420200] [--county-scale 0.005] [--requests 40]

Issue 14 asks for 10M objects; this machine is shared (2 CPUs, load printed beside every figure), so run it at a
small N here and at 10M on a machine of one's own. The database is a copy of bench/bulk.py's template (China's
divisions, the 大冶 demo at scale 0.02 with grids) plus the 大冶 address base; then every county of `--division`
gets its demo (real townships and villages, grids) at `--county-scale`, and N objects of one Point class (兴趣点)
are bulk-registered over those counties (`registry.bulk.bulk_create`, 50k a transaction).

Measured twice, before the fill (the demo) and after, in-process through the API (FastAPI's TestClient: no
network, one client, page and tile caches off): OGC items p95 (limit 100, random 0.02° boxes), tiles p95 at
z10/z14/z16, /aggregate p95 by H3 res 8 and by unit grid, geocode p95 (door addresses of the address base), and
code allocation (one 100k block, rolled back).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("CITYGRID_RATE_LIMITS", "0")  # one client from one address: measure the work, not the limiter

from bench.bulk import database, load, log, points  # noqa: E402
from bench.layers import _synthetic_attrs  # noqa: E402
from citygrid.catalog import get_catalog  # noqa: E402
from citygrid.coding.allocator import allocate  # noqa: E402
from citygrid.db.bootstrap import prepare  # noqa: E402
from citygrid.demo.load import counties_in, load_address_base, load_demo  # noqa: E402
from citygrid.grid.generate import generate  # noqa: E402
from citygrid.registry.bulk import BulkItem, bulk_create  # noqa: E402
from citygrid.security.principal import system_as  # noqa: E402

CLASS = "兴趣点"
CHUNK = 50_000


def _tile(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2 ** z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2
    return z, int((lon + 180) / 360 * n), int(y * n)


def _p95(fn: Callable[[random.Random], str], n: int, client: Any) -> float:
    rnd = random.Random(5)
    ms = []
    client.get(fn(random.Random(1)))  # warm-up: the address index loads on the first geocode
    for _ in range(n):
        url = fn(rnd)
        t = time.perf_counter()
        r = client.get(url)
        ms.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (url, r.status_code, r.text[:200])
    return statistics.quantiles(ms, n=20)[18]


def measure(engine: Engine, url: str, code: str, requests: int) -> dict[str, float]:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from citygrid.layers import features, tiles

    tiles.CACHE.max_items = 0
    features.PAGES.max_items = 0
    with engine.connect() as c:
        pts = c.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM city_object WHERE class_code = :c "
                             "ORDER BY md5(code) LIMIT 500"), {"c": code}).all()
        addresses = list(c.execute(text("SELECT full_name FROM addr_node WHERE level = 'door' AND full_name IS NOT "
                                        "NULL ORDER BY md5(code) LIMIT 500")).scalars())
        n = c.execute(text("SELECT count(*) FROM city_object")).scalar_one()
    out: dict[str, float] = {"objects": n}
    with TestClient(create_app(url, prepare=False)) as client:
        def items(r: random.Random) -> str:
            x, y = r.choice(pts)
            return f"/ogc/collections/class-{code}/items?limit=100&bbox={x - 0.01},{y - 0.01},{x + 0.01},{y + 0.01}"

        out["OGC items p95 ms"] = _p95(items, requests, client)
        for z in (10, 14, 16):
            out[f"tile z{z} p95 ms"] = _p95(lambda r, z=z: "/tiles/class-{}/{}/{}/{}.mvt".format(
                code, *_tile(*r.choice(pts), z)), requests, client)
        out["aggregate h3:8 p95 ms"] = _p95(lambda r: f"/aggregate?by=h3:8&class={code}&geometry=false", requests,
                                            client)
        out["aggregate unit_grid p95 ms"] = _p95(lambda r: f"/aggregate?by=unit_grid&class={code}&geometry=false",
                                                 requests, client)
        out["geocode p95 ms"] = _p95(lambda r: "/address/geocode?q=" + r.choice(addresses), requests, client)
    with Session(engine) as s:
        t = time.perf_counter()
        allocate(s, system_as("bench-scale"), "420281", code, 100_000, batch="bench-scale")
        out["code allocation /s (100k block)"] = 100_000 / (time.perf_counter() - t)
        s.rollback()
    return out


def fill(engine: Engine, code: str, counties: list[str], n: int) -> float:
    """n objects spread evenly over the counties, through the bulk path; objects/s."""
    cls = get_catalog().get(code)
    assert cls is not None
    rng = np.random.default_rng(11)
    p = system_as("bench-scale")
    done, spent = 0, 0.0
    for i, county in enumerate(counties):
        k_total = n // len(counties) + (1 if i < n % len(counties) else 0)
        made = 0
        while made < k_total:
            k = min(CHUNK, k_total - made)
            items = [BulkItem(pt, at) for pt, at in zip(points(engine, k, 1000 + done, county),
                                                        _synthetic_attrs(cls, rng, k, done), strict=True)]
            t = time.perf_counter()
            with Session(engine) as s, s.begin():
                bulk_create(s, p, code, county, items, batch="bench-scale")
            spent += time.perf_counter() - t
            made += k
            done += k
            log(f"  {county}: {made:,}/{k_total:,} ({done / spent:,.0f} objects/s so far, {load()})")
    return done / spent if spent else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--division", default="420200")
    ap.add_argument("--county-scale", type=float, default=0.005)
    ap.add_argument("--requests", type=int, default=40)
    a = ap.parse_args()
    url = database("citygrid_bench_scale")
    engine = prepare(url)
    cls = get_catalog().by_name(CLASS)
    assert cls is not None
    log(f"address base of 420281 ({load()})")
    load_address_base(engine, "420281", seed=42)
    fill(engine, cls.code, ["420281"], 2_000)  # the class exists in the demo county, so both columns measure it
    log(f"measuring the demo ({load()})")
    before = measure(engine, url, cls.code, a.requests) | {"load": os.getloadavg()[0]}
    counties = counties_in(engine, a.division)
    for county in counties:
        if county != "420281":
            log(f"demo of {county} at scale {a.county_scale} ({load()})")
            load_demo(engine, seed=42, scale=a.county_scale, county=county)
            generate(engine, county, seed=42)
    log(f"filling {a.objects:,} objects over {len(counties)} counties ({load()})")
    rate = fill(engine, cls.code, counties, a.objects)
    log(f"measuring after the fill ({load()})")
    after = measure(engine, url, cls.code, a.requests) | {"bulk objects/s": rate, "load": os.getloadavg()[0]}
    print(f"\n{'figure':36} {'demo':>14} {'after fill':>14}")
    for k in after:
        b, v = before.get(k), after[k]
        print(f"{k:36} {'' if b is None else f'{b:,.1f}':>14} {v:>14,.1f}")
    print(f"\ncounties: {', '.join(counties)}; load average at the end {load()}")


if __name__ == "__main__":
    main()
