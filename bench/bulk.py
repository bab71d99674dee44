"""Bulk registration against the single path: objects/s at 100k (and more with --objects), with the load average.

    .venv/bin/python bench/bulk.py [--objects 100000] [--chunk 50000] [--single 500] [--keep] [--explain]

A scratch database in the private cluster (or DATABASE_URL) gets China's divisions, the demo county's township and
village outlines and its unit and governance grids (a small demo, scale 0.02, built once into a template database
`citygrid_bench_bulk_tmpl` and cloned per run), so every object is really placed: township and village by
outline, unit and governance grid, H3, Beidou code, history, change feed, one audit row each, trigger-kept counts.

1. The single path: `registry.objects.create`, one transaction per object (as `POST /objects` does).
2. The bulk path: `registry.bulk.bulk_create` on random points of a Point class inside the county's outline,
   township and village left to the SQL placement, one transaction per chunk; where the time goes (each statement
   kind, timed by the driver) and whether agg_h3 / agg_grid still equal a raw GROUP BY afterwards.

`--explain`: the last chunk runs under auto_explain (ANALYZE, triggers, nested statements, sent back as notices),
which prints each statement's server time and, inside it, every trigger's (per-row ones: FK checks, the audit
chain) and the generated columns' cost, which the driver's timing cannot see. Timing every plan node slows the
chunk: read the shares, not the objects/s of that chunk.

Where 50k objects went (14:04 UTC, load 1.6, --explain; before → after migration 0029 and the batch's Beidou
codes): INSERT INTO city_object 5.0 → 3.9 s (placement joins 1.2 s, heap and index entries ~2.0 s, per-row FK
checks 0.5 s, count triggers 0.2 s), audit rows 1.8 → 1.4 s (the per-row hash chain trigger 1.0 s), history 0.8
→ 0.7 s (its per-row FK check 0.3 s, change feed 0.2 s), staging index 0.35 s, outside check 0.2 s, client
Python and COPYs 2.1 → 2.0 s: 11.2 → 9.1 s, about 4,500 → 5,500 objects/s, a quarter of the 20,000 target.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import shapely
from shapely.geometry import Point
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.coding import scratch_url  # noqa: E402
from bench.layers import _synthetic_attrs  # noqa: E402
from citygrid.catalog import get_catalog  # noqa: E402
from citygrid.db.bootstrap import prepare  # noqa: E402
from citygrid.db.engine import engine_for  # noqa: E402
from citygrid.grid import h3cells  # noqa: E402
from citygrid.registry import objects  # noqa: E402
from citygrid.registry.bulk import BulkItem, bulk_create  # noqa: E402
from citygrid.security.principal import system_as  # noqa: E402

COUNTY = "420281"
CLASS = "兴趣点"
DB = "citygrid_bench_bulk"
TMPL = DB + "_tmpl"


def load() -> str:
    a, b, c = os.getloadavg()
    return f"load {a:.2f} / {b:.2f} / {c:.2f}"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def database(db: str = DB) -> str:
    """A fresh copy `db` of the template (divisions, demo outlines and grids), built on first use."""
    url = scratch_url(TMPL + "_probe")  # starts the cluster; the probe database is dropped again below
    admin = url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as k:
        k.execute(f"DROP DATABASE IF EXISTS {TMPL}_probe")
        have = k.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TMPL,)).fetchone()
    tmpl_url = url.rsplit("/", 1)[0] + "/" + TMPL
    if not have:  # built under another name and renamed when complete
        log("building the template database (divisions, demo outlines, grids: a few minutes, once)")
        with psycopg.connect(admin, autocommit=True) as k:  # an unfinished build goes on (every step is idempotent)
            if not k.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TMPL + "_new",)).fetchone():
                k.execute(f"CREATE DATABASE {TMPL}_new")
        from citygrid.demo.load import load_demo
        from citygrid.grid.generate import generate
        from citygrid.regions.load import load_divisions

        eng = prepare(tmpl_url + "_new")
        load_divisions(eng)
        load_demo(eng, seed=42, scale=0.02)
        generate(eng, COUNTY, seed=42)
        eng.dispose()
        with psycopg.connect(admin, autocommit=True) as k:
            k.execute(f"ALTER DATABASE {TMPL}_new RENAME TO {TMPL}")
    engine_for(tmpl_url).dispose()
    with psycopg.connect(admin, autocommit=True) as k:
        k.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        k.execute(f"CREATE DATABASE {db} TEMPLATE {TMPL}")
    return url.rsplit("/", 1)[0] + "/" + db


def points(engine: Engine, n: int, seed: int, county: str = COUNTY) -> list[Point]:
    """n random points inside the county's outline (uniform over its bounding box, outside ones dropped)."""
    with engine.connect() as c:
        outline = shapely.from_wkb(bytes(c.execute(text("SELECT ST_AsBinary(geom) FROM division WHERE code = :c"),
                                                   {"c": county}).scalar_one()))
    shapely.prepare(outline)
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = outline.bounds
    out: list[Point] = []
    while len(out) < n:
        xy = np.round(np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)]), 7)
        pts = shapely.points(xy)
        out += list(pts[shapely.contains(outline, pts)])
    return out[:n]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (the session's PostgreSQL backend, on this machine), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class StatementTimes:
    """Wall time per statement kind (first words of the SQL), from the driver's cursor events."""

    def __init__(self, engine: Engine) -> None:
        self.t: dict[str, float] = defaultdict(float)
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        words = statement.split()
        key = " ".join(words[:3]) if words[0].upper() == "INSERT" else " ".join(words[:2])
        self.t[key[:48]] += time.perf_counter() - conn.info.pop("bench_t0")


def explain(s: Session, into: list[str]) -> None:
    """auto_explain for this session's statements (nested ones too, > 50 ms), plans delivered as notices."""
    s.execute(text("LOAD 'auto_explain'; SET auto_explain.log_min_duration = 50; SET auto_explain.log_analyze = on; "
                   "SET auto_explain.log_triggers = on; SET auto_explain.log_nested_statements = on; "
                   "SET auto_explain.log_level = notice; SET client_min_messages = notice"))
    raw = s.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    raw.add_notice_handler(lambda d: into.append(d.message_primary or ""))


def print_plans(plans: list[str]) -> None:
    """Each explained statement: its duration, first line of SQL, and its trigger lines."""
    print("auto_explain (server side, statements > 50 ms):")
    for msg in plans:
        lines = msg.splitlines()
        head = lines[0] if lines else ""
        if not head.startswith("duration: ") or float(head.split()[1]) < 50:
            continue
        query = next((ln.strip() for ln in lines if ln.strip().startswith("Query Text:")), "")
        print(f"  {head}  {query[12:110]}")
        if float(head.split()[1]) > 1000 and os.environ.get("BENCH_PLANS"):
            with open(os.environ["BENCH_PLANS"], "a") as f:
                f.write(msg + "\n\n")
        for ln in lines:
            t = ln.strip()
            if t.startswith("Trigger") or t.startswith("Execution Time") or t.startswith("Planning Time"):
                print(f"      {t}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=50_000)
    ap.add_argument("--single", type=int, default=500, help="objects through the single path first")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    ap.add_argument("--explain", action="store_true", help="auto_explain the last chunk's statements")
    a = ap.parse_args()
    url = database()
    engine = prepare(url)
    cls = get_catalog().by_name(CLASS)
    assert cls is not None
    log(f"{load()}; class {cls.name} ({cls.code}), county {COUNTY}")
    p = system_as("bench-bulk")
    rng = np.random.default_rng(7)

    pts = points(engine, a.single, 1)
    attrs = _synthetic_attrs(cls, rng, a.single, 0)
    t = time.perf_counter()
    for pt, at in zip(pts, attrs, strict=True):
        with Session(engine) as s, s.begin():
            objects.create(s, p, objects.NewObject(cls.code, {"type": "Point", "coordinates": [pt.x, pt.y]}, at,
                                                   division_code=COUNTY))
    single = a.single / (time.perf_counter() - t)
    log(f"single path: {a.single:,} objects, one transaction each: {single:,.0f} objects/s ({load()})")

    times = StatementTimes(engine)
    done = 0
    prep_s = write_s = copy_s = client_cpu = server_cpu = 0.0
    while done < a.objects:
        k = min(a.chunk, a.objects - done)
        t0 = time.perf_counter()
        items = [BulkItem(pt, at) for pt, at in zip(points(engine, k, 100 + done), _synthetic_attrs(cls, rng, k, done),
                                                    strict=True)]
        t1 = time.perf_counter()
        c0 = time.process_time()
        with Session(engine) as s:
            backend = int(s.execute(text("SELECT pg_backend_pid()")).scalar_one())
            plans: list[str] = []
            if a.explain and done + k >= a.objects:
                explain(s, plans)
            b0 = cpu_seconds(backend)
            bulk_create(s, p, cls.code, COUNTY, items, batch="bench-bulk")
            s.commit()  # the audit rows are written just before it: counted too
            server_cpu += cpu_seconds(backend) - b0
            if plans:
                print_plans(plans)
        client_cpu += time.process_time() - c0
        t2 = time.perf_counter()
        prep_s += t1 - t0
        write_s += t2 - t1
        done += k
        log(f"  {done:,}/{a.objects:,}: {k / (t2 - t1):,.0f} objects/s this chunk ({load()})")
    copy_s = write_s - sum(times.t.values())
    print()
    print(f"bulk path: {done:,} objects in chunks of {a.chunk:,}: {write_s:.1f} s = {done / write_s:,.0f} objects/s "
          f"(target 20,000; single path {single:,.0f}/s: x{done / write_s / single:.0f}); "
          f"{done / (write_s + prep_s):,.0f}/s including making the random items; {load()}")
    per = (client_cpu + server_cpu) / done
    print(f"CPU per object: client {client_cpu / done * 1e6:,.0f} µs + server backend {server_cpu / done * 1e6:,.0f} µs "
          f"= {1 / per:,.0f} objects per CPU-second (what one otherwise idle core pair would approach: the client "
          "and its backend mostly take turns; wall time above is inflated by the other processes on the machine)")
    print("where the bulk time goes (s):")
    for k, v in sorted(times.t.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {v:7.2f}  {k}")
    print(f"  {copy_s:7.2f}  Python (validation, COPY buffers, H3, codes) and the COPYs")
    with engine.connect() as c:
        placed = c.execute(text("SELECT count(*) FILTER (WHERE village_code IS NOT NULL), "
                                "count(*) FILTER (WHERE unit_grid IS NOT NULL), count(*) FROM city_object "
                                "WHERE created_by = 'bench-bulk'")).one()
        off = c.execute(text(
            "SELECT (SELECT count(*) FROM (SELECT h3_9 AS k, n FROM agg_h3 WHERE class_code = :c AND n <> 0 "
            f"EXCEPT SELECT {h3cells.parent_sql('h3', 9)}, count(*) FROM city_object WHERE class_code = :c "
            "AND status = 'active' AND h3 IS NOT NULL GROUP BY 1) x) + (SELECT count(*) FROM (SELECT code, n "
            "FROM agg_grid WHERE class_code = :c AND system = 'unit' AND n <> 0 EXCEPT SELECT unit_grid, count(*) "
            "FROM city_object WHERE class_code = :c AND status = 'active' AND unit_grid IS NOT NULL GROUP BY 1) y)"),
            {"c": cls.code}).scalar_one()
    print(f"placed: {placed[0]:,} of {placed[2]:,} in a village, {placed[1]:,} in a unit grid; "
          f"kept counts that differ from a raw GROUP BY (agg_h3 res 9, agg_grid unit): {off}")
    if not a.keep:
        engine.dispose()
        admin = url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as k:
            k.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
