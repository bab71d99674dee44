"""The bulk path registers exactly what the single path registers, refuses what it refuses (every bad row, with
its row number) and keeps the code ledger gapless and the trigger-kept counts exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely import affinity
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from citygrid.catalog import get_catalog
from citygrid.cli import app
from citygrid.errors import CitygridError
from citygrid.geo import to_geojson
from citygrid.registry import objects
from citygrid.registry.bulk import BulkItem, bulk_create
from citygrid.security.principal import system_as
from citygrid.settings import get_settings

COUNTY = "420281"
POINT_CLASS = "路灯"
AREA_CLASS = "建筑物"


def _inputs(engine: Engine, class_name: str, n: int) -> tuple[str, list[BulkItem]]:
    """n demo objects of a class as new input (same attributes and names, geometries moved 3 m east), spread over
    the townships (ordered by code, so the input is fixed for a seed)."""
    cls = get_catalog().by_name(class_name)
    assert cls is not None
    with engine.connect() as c:
        rows = c.execute(text(
            "SELECT DISTINCT ON (township_code) name, attrs, ST_AsBinary(geom) AS g FROM city_object "
            "WHERE class_code = :c AND created_by = 'demo' AND status = 'active' ORDER BY township_code, code"),
            {"c": cls.code}).all()
    assert len(rows) >= n
    return cls.code, [BulkItem(affinity.translate(shapely.from_wkb(bytes(r.g)), 0.00003, 0.0), dict(r.attrs), r.name)
                      for r in rows[:n]]


def _state(engine: Engine, codes: list[str]) -> list[dict[str, Any]]:
    """Everything registered for these objects, by input order, without codes' serials and timestamps."""
    out = []
    with engine.connect() as c:
        for code in codes:
            o = c.execute(text(
                "SELECT uid, class_code, division_code, township_code, village_code, component_code IS NOT NULL AS comp, "
                "name, ST_AsBinary(geom) AS g, h3, unit_grid, gov_grid, bgc, attrs, status, version, created_by "
                "FROM city_object WHERE code = :c"), {"c": code}).one()
            hist = c.execute(text("SELECT version, op, name, ST_AsBinary(geom) AS g, attrs, status, division_code, "
                                  "changed_by, reason FROM city_object_history WHERE uid = :u ORDER BY version"),
                             {"u": o.uid}).all()
            feed = c.execute(text("SELECT entity, op, class_code, place, detail FROM change_log WHERE key = :c "
                                  "ORDER BY seq"), {"c": code}).all()
            aud = c.execute(text("SELECT principal, action, fields, detail, outcome FROM audit_log WHERE target = :c "
                                 "ORDER BY seq"), {"c": code}).all()
            ledger = c.execute(text("SELECT state, issued_by FROM issued_code WHERE code = :c"), {"c": code}).all()
            out.append({
                "code": (code[:12], len(code)), "object": {k: (bytes(v) if k == "g" else v)
                                                           for k, v in o._mapping.items() if k != "uid"},
                "history": [tuple(bytes(x) if isinstance(x, memoryview) else x for x in h) for h in hist],
                "feed": [tuple(f) for f in feed], "audit": [tuple(a) for a in aud], "ledger": [tuple(x) for x in ledger],
            })
    return out


def _counts(engine: Engine, class_code: str) -> dict[str, Any]:
    with engine.connect() as c:
        return {
            "h3": dict(c.execute(text("SELECT h3_9, n FROM agg_h3 WHERE class_code = :c"), {"c": class_code}).all()),
            "grid": {(s, g): n for s, g, n in c.execute(text(
                "SELECT system, code, n FROM agg_grid WHERE class_code = :c"), {"c": class_code})},
        }


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: {key: n - before[k].get(key, 0) for key, n in after[k].items() if n != before[k].get(key, 0)}
            for k in after}


@pytest.mark.parametrize("class_name", [POINT_CLASS, AREA_CLASS, "道路"])
def test_bulk_registers_what_the_single_path_registers(engine: Engine, demo_county: dict, class_name: str) -> None:
    cls_code, items = _inputs(engine, class_name, 6)
    p = system_as("test-bulk-equal")
    c0 = _counts(engine, cls_code)
    single = []
    for it in items:
        with Session(engine) as s, s.begin():
            single.append(objects.create(s, p, objects.NewObject(cls_code, to_geojson(it.geom), it.attrs, it.name,
                                                                 division_code=COUNTY))["code"])
    c1 = _counts(engine, cls_code)
    with Session(engine) as s, s.begin():
        bulk = bulk_create(s, p, cls_code, COUNTY, items)
    c2 = _counts(engine, cls_code)

    a, b = _state(engine, single), _state(engine, bulk)
    assert a == b
    assert all(x["object"]["village_code"] and x["object"]["gov_grid"] and x["object"]["bgc"] for x in a)
    assert [len(x["history"]) for x in b] == [1] * 6 and [len(x["audit"]) for x in b] == [1] * 6
    assert [len(x["feed"]) for x in b] == [1] * 6
    assert _delta(c0, c1) == _delta(c1, c2) and sum(_delta(c1, c2)["h3"].values()) == 6
    # the codes: the next serials of the class in the county, the bulk block right after the single ones
    serials = [int(c[12:20]) for c in single + bulk]
    assert serials == list(range(serials[0], serials[0] + 12))


def test_bulk_refuses_every_bad_row_as_the_single_path_does(engine: Engine, demo_county: dict) -> None:
    cls_code, items = _inputs(engine, POINT_CLASS, 5)
    cls = get_catalog().get(cls_code)
    assert cls is not None
    required = next(a.field for a in cls.attributes if a.required)
    items[1].attrs = {k: v for k, v in items[1].attrs.items() if k != required}  # a required attribute missing
    items[3].name = "名" * 201  # too long
    items[4].geom = shapely.LineString([(114.9, 30.1), (114.91, 30.1)])  # a line for a point class
    for i, it in enumerate(items):
        it.row = 10 + i  # file rows
    p = system_as("test-bulk-refuse")
    with engine.connect() as c:
        issued = c.execute(text("SELECT count(*) FROM issued_code WHERE class_code = :c"), {"c": cls_code}).scalar()
    with Session(engine) as s, s.begin(), pytest.raises(CitygridError) as bulk_err:
        bulk_create(s, p, cls_code, COUNTY, items)
    single_problems = []
    for it in items:
        with Session(engine) as s:
            try:
                objects.create(s, p, objects.NewObject(cls_code, to_geojson(it.geom), it.attrs, it.name,
                                                       division_code=COUNTY), row=it.row)
            except CitygridError as e:
                single_problems += e.problems
            s.rollback()
    got = [(x.row, x.error_code, x.field, x.message_zh, x.message_en) for x in bulk_err.value.problems]
    assert got == [(x.row, x.error_code, x.field, x.message_zh, x.message_en) for x in single_problems]
    assert sorted({x[0] for x in got}) == [11, 13, 14]
    with engine.connect() as c:  # nothing issued: the ledger has no gap where the refused import was
        assert c.execute(text("SELECT count(*) FROM issued_code WHERE class_code = :c"), {"c": cls_code}).scalar() \
            == issued


def test_bulk_refuses_rows_outside_the_county(engine: Engine, demo_county: dict) -> None:
    cls_code, items = _inputs(engine, POINT_CLASS, 3)
    items[2].geom = shapely.Point(116.39, 39.9)  # Beijing
    with Session(engine) as s, s.begin(), pytest.raises(CitygridError) as err:
        bulk_create(s, system_as("test-bulk-outside"), cls_code, COUNTY, items)
    assert [(x.row, x.error_code, x.field) for x in err.value.problems] == [(2, "geom_outside_division", "geometry")]


def _import(database_url: str, monkeypatch: pytest.MonkeyPatch, path: str, *args: str) -> Any:
    monkeypatch.setenv("DATABASE_URL", database_url.replace("postgresql+psycopg://", "postgresql://"))
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["import", path, "--class", "010402", *args])
    finally:
        monkeypatch.delenv("DATABASE_URL")
        get_settings.cache_clear()


def test_citygrid_import_registers_a_file_or_lists_every_bad_row(engine: Engine, database_url: str, demo_county: dict,
                                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    rows = [("路灯甲", 114.9601, 30.0901, "完好", "120"), ("路灯乙", 114.9602, 30.0902, "坏了", "120"),
            ("路灯丙", 114.9603, 30.0903, "破损", "很亮"), ("路灯丁", 114.9604, 30.0904, "占用", "80")]
    bad = tmp_path / "lamps.csv"
    bad.write_text("名称,经度,纬度,状态,功率\n" + "".join(",".join(map(str, r)) + "\n" for r in rows), encoding="utf-8")
    r = _import(database_url, monkeypatch, str(bad))
    assert r.exit_code == 2, r.output
    assert [line.split(":")[0] for line in r.output.splitlines() if line.startswith("row ")] == ["row 3", "row 4"]
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM city_object WHERE name LIKE '路灯_' AND created_by = "
                              "'cli:operator'")).scalar_one() == 0
    good = tmp_path / "lamps-fixed.csv"
    rows[1], rows[2] = rows[1][:3] + ("完好", "120"), rows[2][:4] + ("150",)
    good.write_text("名称,经度,纬度,状态,功率\n" + "".join(",".join(map(str, r)) + "\n" for r in rows), encoding="utf-8")
    r = _import(database_url, monkeypatch, str(good))
    assert r.exit_code == 0, r.output
    with engine.connect() as c:
        got = c.execute(text("SELECT name, code, division_code, village_code IS NOT NULL, attrs->>'state', "
                             "attrs->'power_w' FROM city_object WHERE created_by = 'cli:operator' AND name LIKE '路灯_' "
                             "ORDER BY code")).all()
    assert [(g[0], g[2], g[3], g[4]) for g in got] == [(r[0], COUNTY, True, r[3]) for r in rows]
    assert [g[1][:12] for g in got] == [COUNTY + "010402"] * 4 and got[2][5] == 150
