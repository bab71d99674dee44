"""The change feed and links by code (prints figures; no speed asserts).

1. A scratch database `citygrid_bench_changes`: with --url, that owner's URL; otherwise cloned from the test
   suite's template database (`citygrid_tmpl` in `.citygrid-test/`, migrated, divisions loaded: run any test
   once first), so no division load is needed here.
2. Feed under writers: --writers threads (default 4) create objects through the registry (`objects.create`, each
   its own transaction: code, history, audit, feed entry by trigger) for --seconds; one follower polls
   `changes.page` (1,000 a page) all along. Printed: commits/s, entries/s the follower read, and the lag from a
   writer's commit returning to the follower holding the entry (p50/p95/max). Then the same with writers that
   only insert links (the feed's own capacity: no validation, audit chain or grid assignment in the way).
3. Catching up: the follower reads the whole backlog from the start, 1,000 a page: entries/s.
4. Links at --links (default 1,000,000) on --objects objects (default 100,000, bulk-created; ten links an
   object on average): `links.links_of` by code and `links.find` by foreign record, p50/p95 over 500 random
   lookups each. The links are made by SQL (generate_series, in transactions of 250,000, each row still through
   the feed trigger), so a million cost about a minute; they stay in the scratch database for the next run.

    .venv/bin/python bench/changes.py [--url postgresql+psycopg://owner@host/db] [--writers 4] [--seconds 10]
        [--links 1000000] [--objects 100000] [--stages feed,catchup,links]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

DB = "citygrid_bench_changes"
IN_DAYE = (114.97, 30.10)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def setup(url: str | None) -> str:
    import psycopg

    from citygrid.db.bootstrap import prepare
    from citygrid.db.cluster import Cluster

    if url is None:
        cluster = Cluster(ROOT / ".citygrid-test")
        cluster.start()
        admin = f"host=127.0.0.1 port={cluster.port} user=citygrid dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as c:
            if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
                if not c.execute("SELECT 1 FROM pg_database WHERE datname = 'citygrid_tmpl'").fetchone():
                    sys.exit("no template database: run one test first (tests/test_sharing_changes.py), or pass --url")
                c.execute(f'CREATE DATABASE "{DB}" TEMPLATE citygrid_tmpl')
        url = f"postgresql+psycopg://citygrid@127.0.0.1:{cluster.port}/{DB}"
    prepare(url)
    return url


def lamp() -> object:
    from citygrid.catalog import get_catalog
    from citygrid.registry import objects

    cls = next(c for c in get_catalog().classes.values() if c.name == "路灯")
    return objects.NewObject(class_code=cls.code, geometry={"type": "Point", "coordinates": list(IN_DAYE)},
                             attrs={"state": "完好"}, division_code="420281")


def feed_under_writers(engine: Engine, writers: int, seconds: float, mode: str) -> None:
    """`mode` "registry": each transaction creates an object; "links": each inserts a link on an existing object
    (only the trigger's work, the feed's own capacity without the registry's validation, audit chain and grids)."""
    from citygrid.registry import objects
    from citygrid.security.principal import SYSTEM, system_as
    from citygrid.sharing import changes

    with engine.connect() as c:
        start = changes.page(c, SYSTEM, None)["cursor"]
    committed: dict[str, float] = {}
    seen: dict[str, float] = {}
    lock = threading.Lock()
    stop = threading.Event()
    writers_done = threading.Event()
    new = lamp()
    with Session(engine) as s:
        targets = [objects.create(s, system_as("bench-target"), new)["code"] for _ in range(writers)]  # type: ignore[arg-type]
        s.commit()

    def writer(n: int) -> None:
        who = system_as(f"bench-w{n}")
        i = 0
        while not stop.is_set():
            with Session(engine) as s:
                if mode == "registry":
                    key = objects.create(s, who, new)["code"]  # type: ignore[arg-type]
                else:
                    i += 1
                    key = f"{who.name}-{time.time_ns()}-{i}"
                    s.execute(text("INSERT INTO link (code, system, record_id, created_by) "
                                   "VALUES (:c, 'bench-feed', :r, 'bench')"), {"c": targets[n], "r": key})
                s.commit()
            with lock:
                committed[key] = time.monotonic()

    entries = 0

    def follower() -> None:
        nonlocal entries
        cursor = changes.parse_cursor(start)
        with engine.connect() as c:
            while True:
                done = writers_done.is_set()
                out = changes.page(c, SYSTEM, cursor, limit=1000)
                c.commit()
                now = time.monotonic()
                entries += len(out["entries"])
                for e in out["entries"]:
                    seen.setdefault(e["link"]["record_id"] if e["entity"] == "link" else e["code"], now)
                cursor = changes.parse_cursor(out["cursor"])
                if done and not out["more"]:
                    with lock:
                        if set(committed) <= set(seen):
                            return
                if not out["more"]:
                    time.sleep(0.002)

    f = threading.Thread(target=follower)
    ws = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    f.start()
    t0 = time.monotonic()
    for w in ws:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in ws:
        w.join()
    elapsed = time.monotonic() - t0
    writers_done.set()
    f.join(120)
    lags = [(seen[c] - t) * 1000 for c, t in committed.items() if c in seen]
    missing = len(set(committed) - set(seen))
    print(f"feed under {writers} {mode} writers, {seconds:.0f} s: {len(committed)} commits ({len(committed) / elapsed:.0f}/s), "
          f"follower read {entries} entries ({entries / elapsed:.0f}/s), missing {missing}")
    print(f"  lag commit -> in the feed: p50 {pct(lags, 0.5):.1f} ms, p95 {pct(lags, 0.95):.1f} ms, "
          f"max {max(lags, default=float('nan')):.1f} ms")


def catch_up(engine: Engine) -> None:
    from citygrid.security.principal import SYSTEM
    from citygrid.sharing import changes

    with engine.connect() as c:
        total = c.execute(text("SELECT count(*) FROM change_log")).scalar_one()
        cursor: changes.Cursor | None = changes.START
        n = 0
        t0 = time.perf_counter()
        while True:
            out = changes.page(c, SYSTEM, cursor, limit=1000)
            n += out["count"]
            cursor = changes.parse_cursor(out["cursor"])
            if not out["more"]:
                break
        dt = time.perf_counter() - t0
    print(f"catching up: {n} of {total} entries in {dt:.2f} s ({n / dt:.0f} entries/s, 1,000 a page)")


def links_at_scale(engine: Engine, n_links: int, n_objects: int) -> None:
    from shapely.geometry import Point

    from citygrid.catalog import get_catalog
    from citygrid.registry.bulk import BulkItem, bulk_create
    from citygrid.security.principal import SYSTEM, system_as
    from citygrid.sharing import links

    with engine.connect() as c:
        have = c.execute(text("SELECT count(*) FROM link WHERE system LIKE 'bench-%'")).scalar_one()
        codes = list(c.execute(text("SELECT code FROM city_object WHERE created_by = 'bench-links' ORDER BY code"))
                     .scalars())
    if have < n_links:
        cls = next(k for k in get_catalog().classes.values() if k.name == "路灯")
        t0 = time.perf_counter()
        if len(codes) < n_objects:
            log(f"bulk-creating {n_objects - len(codes)} objects …")
            with Session(engine) as s:
                rnd = random.Random(1)
                codes += bulk_create(s, system_as("bench-links"), cls.code, "420281", [
                    BulkItem(Point(114.95 + rnd.random() * 0.05, 30.08 + rnd.random() * 0.04), {"state": "完好"})
                    for _ in range(n_objects - len(codes))])
                s.commit()
        step = 250_000
        for start in range(have + 1, n_links + 1, step):  # record ids r<i> continue where the last run stopped
            end = min(start + step - 1, n_links)
            log(f"links {start:,}–{end:,} of {n_links:,} …")
            with engine.begin() as c:
                c.execute(text(
                    "INSERT INTO link (code, system, record_id, title, payload, created_by) "
                    "SELECT (CAST(:codes AS text[]))[1 + i % :n], 'bench-' || (i % 8), 'r' || i, '记录 ' || i, "
                    "jsonb_build_object('i', i), 'bench' FROM generate_series(CAST(:a AS int), CAST(:b AS int)) i"),
                    {"codes": codes, "n": len(codes), "a": start, "b": end})
        with engine.connect() as c:
            c.execute(text("ANALYZE link"))
            c.commit()
        print(f"made {n_links - have:,} links on {len(codes):,} objects in {time.perf_counter() - t0:.1f} s")
    with engine.connect() as c:
        rows = c.execute(text("SELECT code, system, record_id FROM link WHERE system LIKE 'bench-%' "
                              "ORDER BY random() LIMIT 500")).all()
        total = c.execute(text("SELECT count(*) FROM link")).scalar_one()
        by_code, by_record = [], []
        for r in rows:
            t0 = time.perf_counter()
            links.links_of(c, SYSTEM, r.code)
            by_code.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            links.find(c, SYSTEM, r.system, r.record_id)
            by_record.append((time.perf_counter() - t0) * 1000)
    print(f"links ({total} in the table): by code p50 {statistics.median(by_code):.2f} ms, p95 {pct(by_code, 0.95):.2f} ms; "
          f"by foreign record p50 {statistics.median(by_record):.2f} ms, p95 {pct(by_record, 0.95):.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--url")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--links", type=int, default=1_000_000)
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--stages", default="feed,catchup,links", help="comma list of: feed, catchup, links")
    a = ap.parse_args()
    stages = {x.strip() for x in a.stages.split(",")}
    from citygrid.db.engine import engine_for

    url = setup(a.url)
    engine = engine_for(url)
    if "feed" in stages:
        feed_under_writers(engine, a.writers, a.seconds, "registry")
        feed_under_writers(engine, a.writers, a.seconds, "links")
    if "catchup" in stages:
        catch_up(engine)
    if "links" in stages:
        links_at_scale(engine, a.links, a.objects)


if __name__ == "__main__":
    main()
