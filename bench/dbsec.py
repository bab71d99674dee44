"""What the database's security costs: the scope statement each request runs, row-level security for area-scoped
callers, and the audit chain's trigger on each write (prints figures; no speed asserts).

1. A scratch database `citygrid_bench_dbsec` in the developer's private cluster (or --url, an owner's URL):
   migrations, divisions, the demo county at --scale (default 0.2) and its grids; reused when present.
2. The scope statement (`citygrid.security.scope.scoped`): a transaction with and without it, as the application
   role; then real requests through the app (an OGC items page, a vector tile, an address node) with the
   application role and its scope ("on") against the same app on the owner's engine, where no role is taken and
   no policy applies ("off"), interleaved so both see the same caches.
3. Row-level security for an area-scoped caller: the same bbox query as `citygrid_all` (policies `true`, dropped
   at planning) and as `citygrid_area` with one township.
4. The audit chain: inserts with the chain trigger against the same inserts with it switched off, in a
   transaction rolled back (the chain is untouched), and a recorded write with its own commit.

    .venv/bin/python bench/dbsec.py [--url postgresql://owner@host/db] [--scale 0.2] [--runs 300]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import make_url, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

DB = "citygrid_bench_dbsec"
URBAN = (114.96, 30.08, 114.99, 30.11)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def setup(url: str | None, scale: float) -> str:
    import psycopg

    from citygrid.db.bootstrap import prepare
    from citygrid.db.engine import database_url
    from citygrid.demo.load import load_address_base, load_demo
    from citygrid.grid.generate import generate
    from citygrid.regions.load import load_divisions

    if url is None:
        base = make_url(database_url())
        with psycopg.connect(f"host={base.host} port={base.port} user={base.username} dbname=postgres",
                             autocommit=True) as c:
            if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
                c.execute(f'CREATE DATABASE "{DB}"')
        url = base.set(database=DB).render_as_string(hide_password=False)
    engine = prepare(url)
    with engine.connect() as c:
        have = c.execute(text("SELECT count(*) FROM city_object")).scalar_one()
    if not have:
        log("loading divisions, the demo county, its grids and address base (once)…")
        load_divisions(engine)
        load_demo(engine, seed=42, scale=scale)
        generate(engine, "420281", seed=42)
        load_address_base(engine, "420281", seed=42)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("ANALYZE"))  # plans from statistics, not from an empty table's guesses
    return url


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def ms(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f}"


def scope_statement(app: Engine, runs: int) -> None:
    from citygrid.security.principal import ANONYMOUS
    from citygrid.security.scope import scoped

    def bare() -> None:
        with app.connect() as c:
            c.execute(text("SELECT 1"))

    def with_scope() -> None:
        with app.connect() as c:
            scoped(c, ANONYMOUS)
            c.execute(text("SELECT 1"))

    a, b = timed(bare, runs), timed(with_scope, runs)
    print("\n## The scope statement\n")
    print("| transaction (pooled connection, SELECT 1) | median ms |\n|---|---|")
    print(f"| without scope | {ms(a)} |\n| with `scoped()` (one `SELECT set_config(…) ×3`) | {ms(b)} |")
    print(f"\nCost of the scope statement: **{statistics.median(b) - statistics.median(a):.3f} ms** per transaction.")


def requests(url: str, owner: Engine, runs: int) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from citygrid.catalog import get_catalog

    building = next(c for c in get_catalog().classes.values() if c.name == "建筑物")
    with owner.connect() as c:
        room = c.execute(text("SELECT code FROM addr_node WHERE level = 'room' ORDER BY code LIMIT 1")).scalar()
    x0, y0, x1, y1 = URBAN
    lat = math.radians((y0 + y1) / 2)
    tx = int(((x0 + x1) / 2 + 180) / 360 * 2 ** 14)
    ty = int((1 - math.log(math.tan(lat) + 1 / math.cos(lat)) / math.pi) / 2 * 2 ** 14)
    boxes = [f"{x0 + i * 0.002:.4f},{y0 + i * 0.002:.4f},{x0 + i * 0.002 + 0.006:.4f},{y0 + i * 0.002 + 0.006:.4f}"
             for i in range(10)]
    paths = {
        "OGC items page (limit 100, bbox; cached after the first pass)":
            [f"/ogc/collections/class-{building.code}/items?limit=100&bbox={b}" for b in boxes],
        "vector tile z14 (cached after the first pass)": [f"/tiles/class-{building.code}/14/{tx}/{ty}.mvt"],
        "address node (room, not cached)": [f"/addresses/{room}"],
        "health (two counts, not cached)": ["/health"],
    }
    with TestClient(create_app(url, prepare=False)) as client:
        app_engine = client.app.state.engine  # type: ignore[attr-defined]
        rows = []
        for name, ps in paths.items():
            on: list[float] = []
            off: list[float] = []
            for i in range(runs):
                p = ps[i % len(ps)]
                pair = ((app_engine, on), (owner, off))
                for engine, bucket in pair if i % 2 else pair[::-1]:  # neither always goes first
                    client.app.state.engine = engine  # type: ignore[attr-defined]
                    t = time.perf_counter()
                    r = client.get(p)
                    bucket.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, (p, r.status_code, r.text[:200])
            client.app.state.engine = app_engine  # type: ignore[attr-defined]
            d = statistics.median(on) - statistics.median(off)
            rows.append(f"| {name} | {ms(off)} | {ms(on)} | {d:+.3f} | {100 * d / statistics.median(off):+.1f} % |")
    print("\n## Requests: application role with its scope (on) against the owner's engine (off)\n")
    print("| request | off: median ms | on: median ms | added ms | added |\n|---|---|---|---|---|")
    print("\n".join(rows))


def area_policies(app: Engine, owner: Engine, runs: int) -> None:
    from citygrid.security.principal import ANONYMOUS, Grant, Principal
    from citygrid.security.scope import scoped

    with owner.connect() as c:
        town = c.execute(text("SELECT township_code FROM city_object WHERE township_code IS NOT NULL "
                              "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")).scalar()
        leak = c.execute(text("SELECT bool_and(proleakproof) FROM pg_proc WHERE proname = 'geometry_overlaps'"
                              )).scalar()
    staff = Principal(kind="user", name="bench", grants=(Grant("department", town, "natural_resources"),))
    sql = text("SELECT count(*), sum(length(o.name)) FROM city_object o WHERE o.status = 'active' "
               "AND o.geom && ST_MakeEnvelope(:a, :b, :c, :d, 4490)")
    x0, y0, x1, y1 = 114.970, 30.090, 114.975, 30.095  # a few hundred objects: an index scan for both roles
    out = []
    for label, engine, who in (("owner (no role, no policy)", owner, ANONYMOUS),
                               ("citygrid_all (anonymous)", app, ANONYMOUS),
                               (f"citygrid_area ({town})", app, staff)):
        def q(engine: Engine = engine, who: Principal = who) -> None:
            with engine.connect() as c:
                scoped(c, who)  # nothing on the owner's engine
                c.execute(sql, {"a": x0, "b": y0, "c": x1, "d": y1}).one()
        out.append(f"| {label} | {ms(timed(q, runs))} |")
    print(f"\n## Row-level security: a bbox count in the urban area (&& LEAKPROOF: {leak})\n")
    print("| role | median ms (transaction incl. scope) |\n|---|---|")
    print("\n".join(out))


def audit_trigger(app: Engine, owner: Engine, n: int) -> None:
    from citygrid.security import audit
    from citygrid.security.principal import SYSTEM

    # seq and hashes are given for the rows written with the trigger off; with it on, the trigger overwrites them
    insert = text("INSERT INTO audit_log (principal, action, target, detail, seq, prev_hash, hash) "
                  "VALUES ('bench', 'bench', :t, '{}', -1 - :i, '\\x00', '\\x00')")

    def batch(trigger: bool) -> float:
        with owner.connect() as c:
            if not trigger:
                c.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_chain"))
            t = time.perf_counter()
            for i in range(n):
                c.execute(insert, {"t": str(i), "i": i})
            elapsed = (time.perf_counter() - t) * 1000 / n
            c.rollback()  # the chain and the trigger stay as they were
        return elapsed

    with_t, without_t = statistics.median([batch(True) for _ in range(3)]), statistics.median(
        [batch(False) for _ in range(3)])
    own = timed(lambda: audit.record_apart(app, SYSTEM, "bench", "own-transaction"), max(50, n // 10))
    print("\n## The audit chain\n")
    print(f"| insert into audit_log, {n} in one transaction (rolled back) | ms per row |\n|---|---|")
    print(f"| chain trigger off | {without_t:.3f} |\n| chain trigger on (lock head, sha256, update head) | "
          f"{with_t:.3f} |")
    print(f"\nTrigger cost: **{with_t - without_t:.3f} ms per audited write**. A recorded write in its own "
          f"transaction (scope + insert + commit, as reads of personal data and refusals are): median {ms(own)} ms "
          f"(rows written: {len(own) + 1}, left in the log).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="owner's database URL (default: a scratch database in the private cluster)")
    ap.add_argument("--scale", type=float, default=0.2)
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args()
    from citygrid.db.engine import app_database_url, app_engine_for, engine_for

    url = setup(args.url, args.scale)
    owner, app = engine_for(url), app_engine_for(app_database_url(url))
    print(f"# Database security costs ({make_url(url).database})")
    scope_statement(app, args.runs * 5)
    requests(url, owner, args.runs)
    area_policies(app, owner, args.runs)
    audit_trigger(app, owner, 2000)


if __name__ == "__main__":
    main()
