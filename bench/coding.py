"""Code allocation throughput: single codes, one 100k block, and 8 concurrent writers.

Target: 100k codes in < 5 s with zero duplicates under 8 concurrent writers.
Runs against DATABASE_URL or the private cluster; uses its own scratch database.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from citygrid.coding.allocator import allocate  # noqa: E402
from citygrid.db.cluster import Cluster  # noqa: E402
from citygrid.db.engine import engine_for  # noqa: E402
from citygrid.db.migrate import upgrade  # noqa: E402
from citygrid.security.principal import system_as  # noqa: E402
from citygrid.settings import get_settings  # noqa: E402

DB = "citygrid_bench"


def scratch_url(db: str = DB) -> str:
    """A new, empty database `db` in the developer's private cluster (or DATABASE_URL as given); other benches
    (bench/intake.py) take theirs from here."""
    base = os.environ.get("DATABASE_URL")
    if base:
        return base.replace("postgresql://", "postgresql+psycopg://", 1)
    c = Cluster(get_settings().data_dir)
    c.start()
    with psycopg.connect(f"host=127.0.0.1 port={c.port} user=citygrid dbname=postgres", autocommit=True) as k:
        k.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        k.execute(f"CREATE DATABASE {db}")
    return f"postgresql+psycopg://citygrid@127.0.0.1:{c.port}/{db}"


def _writer(url: str, cls: str, n: int, block: int, q) -> None:  # noqa: ANN001
    eng = engine_for(url)
    got = 0
    while got < n:
        with Session(eng) as s, s.begin():
            got += len(allocate(s, system_as("bench"), "420281", cls, min(block, n - got)))
    q.put(got)


def main() -> None:
    url = scratch_url()
    upgrade(url)
    eng = engine_for(url)
    # single: one transaction per code, as an interactive create does
    n_single = 2000
    t = time.perf_counter()
    for _ in range(n_single):
        with Session(eng) as s, s.begin():
            allocate(s, system_as("bench"), "420281", "010101", 1)
    single = n_single / (time.perf_counter() - t)
    # bulk: one block of 100k
    t = time.perf_counter()
    with Session(eng) as s, s.begin():
        codes = allocate(s, system_as("bench"), "420281", "010102", 100_000, batch="bench")
    bulk_s = time.perf_counter() - t
    assert len(set(codes)) == 100_000
    # 8 concurrent writers, 12,500 codes each in blocks of 500
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    t = time.perf_counter()
    procs = [ctx.Process(target=_writer, args=(url, "010201", 12_500, 500, q)) for _ in range(8)]
    for p in procs:
        p.start()
    total = sum(q.get() for _ in procs)
    for p in procs:
        p.join()
    conc_s = time.perf_counter() - t
    with eng.connect() as c:
        dup = c.execute(text("SELECT count(*) - count(DISTINCT code) FROM issued_code WHERE class_code='010201'")).scalar()
        n = c.execute(text("SELECT count(*) FROM issued_code WHERE class_code='010201'")).scalar()
    print(f"single allocation (1 code per transaction): {single:,.0f} codes/s")
    print(f"bulk allocation: 100,000 codes in {bulk_s:.2f} s = {100_000 / bulk_s:,.0f} codes/s (target < 5 s)")
    print(f"8 concurrent writers: {total:,} codes in {conc_s:.2f} s (incl. process start) = {total / conc_s:,.0f} codes/s; "
          f"ledger rows {n:,}, duplicates {dup}")


if __name__ == "__main__":
    main()
