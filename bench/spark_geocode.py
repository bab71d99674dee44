"""Geocoding an address file: the in-process batch job against the Spark job in local mode (`local[2]`), same
rows, same resolver (citygrid/export/spark.py). Prints rows/s for both (Spark with and without its start-up and
the per-worker index loads), the load average and whether both gave the same answers. Figures are printed, never
asserted.

The rows are the demo county's standard addresses (door plates, buildings, rooms), repeated to `--rows`; this
measures throughput, not accuracy (bench/geocode_eval.py measures that on a frozen split).
Runs against DATABASE_URL or the private cluster, in its own scratch database (divisions and the demo county
are loaded first, a few minutes; `--reuse` keeps the database of an earlier run).

    .venv/bin/python bench/spark_geocode.py [--rows 100000] [--master local[2]] [--reuse]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from coding import scratch_url  # noqa: E402  (bench/ is on the path when a bench runs)
from sqlalchemy import text  # noqa: E402

DB = "citygrid_bench_spark"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--reuse", action="store_true", help="keep the scratch database of an earlier run")
    args = ap.parse_args()

    import pyarrow.parquet as pq

    from citygrid.address import batch
    from citygrid.address.resolve import AddressIndex
    from citygrid.db.bootstrap import prepare
    from citygrid.db.engine import engine_for
    from citygrid.demo.load import load_address_base, load_demo
    from citygrid.export import spark
    from citygrid.regions.load import load_divisions

    url = scratch_url(DB) if not args.reuse else _reuse()
    engine = engine_for(url)
    with engine.connect() as c:
        ready = c.execute(text("SELECT to_regclass('addr_node') IS NOT NULL")).scalar()
        ready = ready and c.execute(text("SELECT count(*) FROM addr_node")).scalar()
    if not ready:
        t = time.perf_counter()
        prepare(url)
        load_divisions(engine)
        load_demo(engine, seed=42, scale=0.3)
        load_address_base(engine, "420281", seed=42)
        print(f"scratch database loaded in {time.perf_counter() - t:.0f} s", flush=True)
    with engine.connect() as c:
        names = list(c.execute(text("SELECT full_name FROM addr_node WHERE status = 'active' AND level IN "
                                    "('door', 'building', 'room') ORDER BY code")).scalars())
        t = time.perf_counter()
        index = AddressIndex.load(c)
        load_s = time.perf_counter() - t
    tmp = Path(tempfile.mkdtemp(prefix="citygrid-bench-spark-"))
    src = tmp / "addresses.csv"
    with src.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "address"])
        w.writerows((i, names[i % len(names)]) for i in range(args.rows))
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    counts = batch.run(index, src, "address", tmp / "inproc.csv")
    inproc = time.perf_counter() - t
    print(f"in process: {counts['rows']:,} rows in {inproc:.1f} s = {counts['rows'] / inproc:,.0f} rows/s "
          f"(index load {load_s:.1f} s, not counted; load1 {load0:.2f} → {os.getloadavg()[0]:.2f})", flush=True)

    load1 = os.getloadavg()[0]
    t0 = time.perf_counter()
    s = spark.session(args.master, "citygrid-bench")
    started = time.perf_counter() - t0
    try:
        t = time.perf_counter()
        sc = spark.geocode(s, src, tmp / "spark", url, "address")
        job = time.perf_counter() - t
    finally:
        s.stop()
    print(f"Spark {args.master}: {sc['rows']:,} rows in {job:.1f} s = {sc['rows'] / job:,.0f} rows/s including "
          f"each Python worker's index load; session start {started:.1f} s more (load1 {load1:.2f} → "
          f"{os.getloadavg()[0]:.2f})", flush=True)
    with (tmp / "inproc.csv").open(encoding="utf-8") as f:
        mine = sorted((r["input"], r["status"], r["address_code"]) for r in csv.DictReader(f))
    theirs = sorted((r["input"], r["status"], r["address_code"] or "")
                    for r in pq.read_table(tmp / "spark").to_pylist())
    print(f"same answers for every row: {mine == theirs}; matched in process {counts['matched']:,}, in Spark "
          f"{sc['matched']:,}; {os.cpu_count()} cores")


def _reuse() -> str:
    from citygrid.db.cluster import Cluster
    from citygrid.settings import get_settings

    given = get_settings().database_url
    if given:
        return given.replace("postgresql://", "postgresql+psycopg://", 1)
    c = Cluster(get_settings().data_dir)
    c.start()
    return f"postgresql+psycopg://citygrid@127.0.0.1:{c.port}/{DB}"


if __name__ == "__main__":
    main()
