"""GeoParquet export and the Spark jobs in local mode (a real Spark session on Java 17, local[2]): the files hold
what the database holds, cut to the level asked for; Spark aggregates them to the same counts as /aggregate and
geocodes an address file to the same answers as the in-process batch job."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from citygrid.address.answer import geocode_row
from citygrid.address.batch import result_row
from citygrid.address.resolve import AddressIndex
from citygrid.catalog import get_catalog
from citygrid.crs import CGCS2000
from citygrid.export import geoparquet
from citygrid.security import classification

BUILDING = next(c for c in get_catalog().classes.values() if c.name == "建筑物")


@pytest.fixture(scope="module")
def exported(engine: Engine, demo_county: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export")
    geoparquet.export_all(engine, out, "L1")
    return out


def test_geoparquet_files_hold_the_registry_as_the_public_sees_it(engine: Engine, exported: Path) -> None:
    path = exported / f"class-{BUILDING.code}.parquet"
    table = pq.read_table(path)
    with engine.connect() as c:
        rows = c.execute(text("SELECT code, ST_AsBinary(geom), bgc, h3 FROM city_object WHERE class_code = :c "
                              "AND status = 'active' ORDER BY code"), {"c": BUILDING.code}).all()
    assert table.column("code").to_pylist() == [r[0] for r in rows]
    assert table.column("bgc").to_pylist() == [r[2] for r in rows]
    assert table.column("h3").to_pylist() == [r[3] for r in rows]
    got = shapely.from_wkb(table.column("geometry").to_pylist())
    want = shapely.from_wkb([bytes(r[1]) for r in rows])
    assert bool(shapely.equals(got, want).all())
    geo = json.loads(pq.read_schema(path).metadata[b"geo"])
    col = geo["columns"]["geometry"]
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry" and col["encoding"] == "WKB"
    assert col["crs"]["id"] == {"authority": "EPSG", "code": 4490} and col["geometry_types"] == ["Polygon"]
    xmin, ymin, xmax, ymax = shapely.total_bounds(want)
    assert col["bbox"] == pytest.approx([xmin, ymin, xmax, ymax])
    # attributes at L1: nothing above what the public sees
    public = classification.plan(BUILDING, "L1", personal=False)
    for attrs in table.column("attrs").to_pylist()[:500]:
        assert set(json.loads(attrs)) <= public.keep | {k for k, _ in public.mask}


def test_classes_kept_off_public_layers_are_exported_only_when_asked(engine: Engine, exported: Path,
                                                                     tmp_path: Path) -> None:
    with engine.connect() as c:
        present = set(c.execute(text("SELECT DISTINCT class_code FROM city_object WHERE status = 'active'"))
                      .scalars())
    hidden = {c.code for c in get_catalog().classes.values() if not c.public} & present
    public = {c.code for c in get_catalog().classes.values() if c.public} & present
    files = {p.name.removeprefix("class-").removesuffix(".parquet") for p in exported.glob("class-*.parquet")}
    assert files == public
    if hidden:  # the demo registers 人防工事 and other restricted classes: with --restricted they come too
        more = geoparquet.export_all(engine, tmp_path, "L1", restricted=True)
        assert {w.layer.removeprefix("class-") for w in more} == public | hidden


def test_the_cli_exports_and_refuses_a_bad_level(database_url: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, demo_county: dict) -> None:
    from citygrid.cli import app
    from citygrid.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        bad = CliRunner().invoke(app, ["export", "--out", str(tmp_path), "--level", "L9"])
        assert bad.exit_code == 2 and "L9" in bad.output
        ok = CliRunner().invoke(app, ["export", "--out", str(tmp_path), "--division", "420281"])
        assert ok.exit_code == 0, ok.output
        assert (tmp_path / f"class-{BUILDING.code}.parquet").exists()
    finally:
        get_settings.cache_clear()


# ------------------------------------------------------------------------------------------------------ Spark

@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from citygrid.export.spark import session

    s = session("local[2]", "citygrid-tests")
    yield s
    s.stop()


@pytest.mark.parametrize("by", ["h3:8", "bgc:6", "township", "village"])
def test_spark_aggregates_to_the_same_counts_as_the_api(spark: Any, exported: Path, client: TestClient,
                                                        admin_headers: dict[str, str], by: str) -> None:
    from citygrid.export.spark import aggregate

    got = dict(aggregate(spark, exported, by, BUILDING.code))
    api = client.get("/aggregate", params={"by": by, "class": BUILDING.code, "geometry": "false"},
                     headers=admin_headers)
    assert api.status_code == 200, api.text
    want = {f["properties"]["key"]: f["properties"]["count"] for f in api.json()["features"]}
    assert {str(k): n for k, n in got.items()} == want and sum(got.values()) > 100


def test_spark_refuses_an_unknown_grouping(spark: Any, exported: Path) -> None:
    from citygrid.export.spark import aggregate

    with pytest.raises(ValueError, match="by must be"):
        aggregate(spark, exported, "h3:13")


def test_spark_geocodes_like_the_batch_job(spark: Any, engine: Engine, database_url: str, demo_county: dict,
                                           tmp_path: Path) -> None:
    from citygrid.export.spark import geocode

    with engine.connect() as c:
        doors = list(c.execute(text("SELECT full_name FROM addr_node WHERE level = 'door' AND status = 'active' "
                                    "ORDER BY code LIMIT 150")).scalars())
        index = AddressIndex.load(c)
    inputs = doors + [d.replace("号", "") + "附近" for d in doors[:20]] + ["", "不是地址", "北京市朝阳区建国路1号"]
    src = tmp_path / "in.csv"
    with src.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "address"])
        w.writerows([i, a] for i, a in enumerate(inputs))
    counts = geocode(spark, src, tmp_path / "out", database_url)
    assert counts["rows"] == len(inputs) and counts["matched"] >= len(doors)
    out = pq.read_table(tmp_path / "out").to_pylist()
    got = Counter((r["input"] or "", r["status"], r["address_code"] or "") for r in out)
    want = Counter()
    for a in inputs:
        _, row = result_row(0, a, geocode_row(index, a, None, 1, CGCS2000))
        want[(a, row[2], row[5] or "")] += 1
    assert got == want
