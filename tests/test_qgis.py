"""QGIS (Debian python3-qgis, its OAPIF provider, unmodified) reads a citygrid collection over HTTP:
pages through next links, gets every feature once at the right place, filters by bbox, and takes the collection's
extent as the layer's (what "zoom to layer" shows)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from shapely.geometry import Point
from sqlalchemy import text
from sqlalchemy.orm import Session

from citygrid.registry.bulk import BulkItem, bulk_create
from citygrid.security.principal import system_as

CLS = "010506"  # 邮筒: nothing else in the suite creates mailboxes
N = 120
PROBE = Path(__file__).with_name("qgis") / "oapif_probe.py"
SYSTEM_PYTHON = "/usr/bin/python3"  # python3-qgis is built for Debian's Python, not the project's venv


@pytest.fixture(scope="module")
def mailboxes(engine) -> list[str]:  # noqa: ANN001
    items = [BulkItem(Point(115.10 + (i % 12) * 0.001, 30.25 + (i // 12) * 0.001), {"state": "完好"}) for i in range(N)]
    with Session(engine) as s, s.begin():
        return bulk_create(s, system_as("test-qgis"), CLS, "420281", items, refuse_outside=False)


def test_qgis_oapif_provider_reads_pages_and_filters(live_server: str, engine, mailboxes: list[str]) -> None:  # noqa: ANN001
    bbox = "115.0995,30.2495,115.1035,30.2525"  # 4 columns × 3 rows of the 12 × 10 lattice
    run = subprocess.run([SYSTEM_PYTHON, str(PROBE), live_server, f"class-{CLS}", bbox], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["valid"], seen
    with engine.connect() as c:
        rows = c.execute(text("SELECT code, ST_X(geom), ST_Y(geom) FROM city_object WHERE class_code = :c "
                              "AND status = 'active'"), {"c": CLS}).all()
        in_box = sorted(r[0] for r in c.execute(text(
            "SELECT code FROM city_object WHERE class_code = :c AND status = 'active' AND "
            "ST_Intersects(geom, ST_MakeEnvelope(115.0995, 30.2495, 115.1035, 30.2525, 4490))"), {"c": CLS}).all())
    assert seen["n"] == seen["feature_count"] == len(rows) >= N and set(seen["xy"]) == {r[0] for r in rows}  # every feature, once
    for code, x, y in rows:
        qx, qy = seen["xy"][code]
        assert abs(qx - x) < 1e-6 and abs(qy - y) < 1e-6, code  # lon/lat where we stored them
    assert "state" in seen["fields"] and "code" in seen["fields"]
    # QGIS zooms to the collection's data, not to all of China
    xs, ys = [r[1] for r in rows], [r[2] for r in rows]
    assert seen["extent"] == pytest.approx([min(xs), min(ys), max(xs), max(ys)], abs=1e-6), seen["extent"]
    assert seen["bbox_codes"] == in_box and len(in_box) == 12
