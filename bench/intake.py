"""Survey intake throughput: a 10,000-row Excel file received, read and validated; approval with coding of
1,000 of its rows (one registry create per row, as a reviewer's approval does); ODK submissions end to end
(stored, parsed, validated). Figures are printed, never asserted.

Targets (issue 11): validation >= 2,000 rows/s, approval >= 1,000 rows/s.
ODK: 1,000 instances are stored (committed before Collect's 201) and queued; the figure is accepted/s and, once
their jobs have drained, processed/s.
Runs against DATABASE_URL or the private cluster; uses its own scratch database (divisions and a small demo
county are loaded first, which takes a few minutes; `--reuse` keeps a scratch database from an earlier run).

    .venv/bin/python bench/intake.py [--rows 10000] [--approve 1000] [--odk 300] [--reuse] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from coding import scratch_url  # noqa: E402  (bench/ is on the path when a bench runs)

from citygrid import jobs  # noqa: E402
from citygrid.catalog import get_catalog  # noqa: E402
from citygrid.db.bootstrap import prepare  # noqa: E402
from citygrid.db.cluster import Cluster  # noqa: E402
from citygrid.demo.load import load_demo  # noqa: E402
from citygrid.regions.load import load_divisions  # noqa: E402
from citygrid.security.principal import Grant, Principal  # noqa: E402
from citygrid.settings import get_settings  # noqa: E402
from citygrid.survey import intake, template  # noqa: E402

DB = "citygrid_bench_intake"
CLS = "010101"


def _reused_url() -> str:
    """The scratch database of an earlier run, created when missing (its loads are idempotent)."""
    if os.environ.get("DATABASE_URL"):
        return scratch_url(DB)
    c = Cluster(get_settings().data_dir)
    c.start()
    with psycopg.connect(f"host=127.0.0.1 port={c.port} user=citygrid dbname=postgres", autocommit=True) as k:
        if k.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone() is None:
            k.execute(f"CREATE DATABASE {DB}")
    return f"postgresql+psycopg://citygrid@127.0.0.1:{c.port}/{DB}"


def workbook(points: list[tuple[float, float]]) -> bytes:
    wb = load_workbook(io.BytesIO(template.build(get_catalog().classes[CLS])))
    ws = wb["数据"]
    headers = [str(c.value) for c in ws[1]]
    col = {h.lstrip("*").split("（")[0]: i for i, h in enumerate(headers, start=1)}
    states = ["完好", "破损", "丢失", "占用"]
    for i, (x, y) in enumerate(points, start=2):
        for label, v in (("名称", f"井盖{i}"), ("经度", x), ("纬度", y), ("状态", states[i % 4]),
                         ("井盖尺寸", 600 + i % 200), ("防坠落装置", "是" if i % 2 else "否"),
                         ("启用日期", f"2024年{1 + i % 12}月{1 + i % 28}日")):
            ws.cell(i, col[label], v)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000, help="rows in the Excel file (10,000 for the figure)")
    ap.add_argument("--approve", type=int, default=1000, help="rows approved and coded")
    ap.add_argument("--odk", type=int, default=1000, help="ODK submissions (1,000 for the figure)")
    ap.add_argument("--reuse", action="store_true", help="keep the scratch database of an earlier run")
    ap.add_argument("--profile", action="store_true", help="print where validation spends its time (cProfile)")
    args = ap.parse_args()
    rows_n, approve_n, odk_n = args.rows, min(args.approve, args.rows), args.odk
    url = _reused_url() if args.reuse else scratch_url(DB)
    t = time.perf_counter()
    engine: Engine = prepare(url)
    load_divisions(engine)
    load_demo(engine, seed=7, scale=0.02)
    print(f"setup (divisions, demo county at 2 %): {time.perf_counter() - t:.0f} s")
    with engine.connect() as c:
        v = c.execute(text("SELECT code, parent_code FROM division WHERE level = 5 AND code LIKE '420281%' "
                           "AND geom IS NOT NULL ORDER BY code LIMIT 1")).one()
        pts = [(p.x, p.y) for p in c.execute(text(
            "SELECT ST_X(g) x, ST_Y(g) y FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, :n, 7))).geom g "
            "FROM division WHERE code = :v) s"), {"n": rows_n, "v": v.code})]
        # the phones' points: spread over the village like the file's, not one spot (each instance is compared with
        # the open rows near it, as dedupe does)
        odk_pts = [(p.x, p.y) for p in c.execute(text(
            "SELECT ST_X(g) x, ST_Y(g) y FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, :n, 8))).geom g "
            "FROM division WHERE code = :v) s"), {"n": max(odk_n, 1), "v": v.code})]
    with engine.begin() as c:  # earlier runs' submissions (--reuse) closed: each run is one file in an empty intake
        c.execute(text("UPDATE submission SET status = 'coded' WHERE submitter = 'bench-cadre'"))
    cadre = Principal(kind="user", name="bench-cadre", grants=(Grant("cadre", v.code),))
    reviewer = Principal(kind="user", name="bench-reviewer", grants=(Grant("reviewer", v.parent_code),))

    @contextmanager
    def tx() -> Iterator[Session]:
        with Session(engine) as s, s.begin():
            yield s

    data = workbook(pts)
    prof = cProfile.Profile() if args.profile else None
    t = time.perf_counter()
    if prof is not None:
        prof.enable()
    out = intake.submit(tx, cadre, CLS, v.code, data, source="xlsx", filename="bench.xlsx")
    dt = time.perf_counter() - t
    if prof is not None:
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    print(f"validation: {out['rows']} rows ({len(data) >> 10} KiB xlsx) stored, read, validated and placed in "
          f"{dt:.2f} s = {out['rows'] / dt:,.0f} rows/s (target 2,000); {out['invalid']} invalid")
    with tx() as s:  # the cadre hands it in
        intake.hand_in(s, cadre, out["id"])
    decisions = [{"row": n, "decision": "approve"} for n in range(2, 2 + approve_n)]
    t = time.perf_counter()
    with tx() as s:
        res = intake.review(s, reviewer, out["id"], decisions)
    dt = time.perf_counter() - t
    coded = sum(1 for r in res["results"] if r["object_code"])
    print(f"approval: {coded} rows registered with codes in one transaction in {dt:.2f} s = {coded / dt:,.0f} rows/s "
          "(target 1,000)")
    if not odk_n:
        return
    run = f"{time.time_ns():x}"  # instance ids of their own, so a --reuse run is not taken for resends
    xmls = [(f'<data id="citygrid_{CLS}"><name>odk{i}</name><cg_location>{y} {x} 20 4</cg_location>'
             f"<state>完好</state><meta><instanceID>uuid:bench-{run}-{i}</instanceID></meta></data>").encode()
            for i, (x, y) in enumerate(odk_pts[:odk_n])]
    photo = [("p.jpg", "image/jpeg", b"\xff\xd8" + bytes(2000))]
    t = time.perf_counter()
    for xml in xmls:  # what the route does after reading the multipart body: store, commit, queue the job
        created, _ = intake.submit_odk(engine, cadre, xml, photo)
        assert created
    accepted = time.perf_counter() - t
    jobs.drain(intake.ODK_LANE)
    processed = time.perf_counter() - t
    with engine.connect() as c:
        states = dict(c.execute(text("SELECT status, count(*) FROM submission WHERE source = 'odk' AND filename LIKE "
                                     ":p GROUP BY status"), {"p": f"uuid:bench-{run}-%"}).all())
    print(f"ODK: {odk_n} submissions (instance + a 2 KB photo) stored and committed in {accepted:.2f} s = "
          f"{odk_n / accepted:,.0f} accepted/s (what Collect waits for: its 201); processed as survey-intake jobs "
          f"(validated, placed, valid ones handed in) by {processed:.2f} s = {odk_n / processed:,.0f} processed/s; "
          f"states {states} (the HTTP layer and Basic authentication's argon2 check come on top)")
    print(f"load average: {os.getloadavg()}")

if __name__ == "__main__":
    main()
