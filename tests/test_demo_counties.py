"""The demo in any county with an outline, and every county of a city side by side, each with its own codes,
real townships and villages, and objects inside its own outline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from citygrid.cli import app
from citygrid.demo.load import counties_in, load_demo, unload_demo
from citygrid.settings import get_settings

CITY = "420200"  # 黄石市: 黄石港区, 西塞山区, 下陆区, 铁山区, 阳新县, 大冶市
YANGXIN = "420222"


@pytest.fixture(scope="module", autouse=True)
def _unload_the_other_counties(engine: Engine) -> Iterator[None]:
    """The session shares one database: the other counties go again after this module, so the modules after it
    see 大冶 alone, as they were written for (extents, map labels, grids)."""
    yield
    for county in counties_in(engine, CITY):
        if county != "420281":
            unload_demo(engine, county)


def _objects(engine: Engine, county: str) -> dict[str, Any]:
    with engine.connect() as c:
        return dict(c.execute(text(
            "SELECT count(*) AS n, "
            "count(*) FILTER (WHERE o.code NOT LIKE :p) AS foreign_codes, "
            "count(*) FILTER (WHERE o.township_code NOT LIKE :p OR o.village_code NOT LIKE o.township_code || '%') AS misplaced, "
            "count(*) FILTER (WHERE NOT ST_Intersects(d.geom, ST_PointOnSurface(o.geom))) AS outside, "
            "count(DISTINCT o.township_code) AS townships, "
            "count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM division v WHERE v.code = o.village_code AND v.level = 5 "
            "AND v.geom IS NOT NULL)) AS unknown_villages "
            "FROM city_object o JOIN division d ON d.code = o.division_code "
            "WHERE o.created_by = 'demo' AND o.division_code = :c"), {"c": county, "p": county + "%"}).one()._mapping)


def test_a_city_is_every_county_level_division_under_it(engine: Engine) -> None:
    assert counties_in(engine, CITY) == ["420202", "420203", "420204", "420205", "420222", "420281"]
    assert counties_in(engine, YANGXIN) == [YANGXIN]


def test_load_demo_in_another_county_from_the_cli(engine: Engine, database_url: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url.replace("postgresql+psycopg://", "postgresql://"))
    get_settings.cache_clear()
    try:
        r = CliRunner().invoke(app, ["load-demo", "--division", YANGXIN, "--scale", "0.01", "--no-address",
                                     "--seed", "3"])
    finally:
        monkeypatch.delenv("DATABASE_URL")
        get_settings.cache_clear()
    assert r.exit_code == 0, r.output
    got = _objects(engine, YANGXIN)
    with engine.connect() as c:
        towns = c.execute(text("SELECT count(*) FROM division WHERE parent_code = :c AND level = 4"),
                          {"c": YANGXIN}).scalar_one()
        source = c.execute(text("SELECT detail FROM data_source WHERE name = :n"), {"n": f"demo-{YANGXIN}"}).scalar()
        grids = c.execute(text("SELECT count(*) FROM grid WHERE code LIKE :p AND system = 'governance'"),
                          {"p": YANGXIN + "%"}).scalar_one()
    assert source["county"] == YANGXIN and source["objects_total"] == got["n"] > 1000
    assert (got["foreign_codes"], got["misplaced"], got["outside"], got["unknown_villages"]) == (0, 0, 0, 0)
    assert got["townships"] == towns == source["townships"]
    assert grids >= source["villages"]  # every village has its governance grids


def test_every_county_of_a_city_side_by_side(engine: Engine, demo_county: dict) -> None:
    loaded = {}
    for county in counties_in(engine, CITY):
        if county == "420281":  # the session's demo county (conftest), loaded already
            continue
        loaded[county] = load_demo(engine, seed=4, scale=0.005, county=county)
    for county, summary in loaded.items():
        got = _objects(engine, county)
        assert got["n"] == summary["objects_total"] > 0
        assert (got["foreign_codes"], got["misplaced"], got["outside"], got["unknown_villages"]) == (0, 0, 0, 0)
    daye = _objects(engine, "420281")
    assert daye["n"] == demo_county["objects_total"] and daye["foreign_codes"] == 0  # untouched by the others
    with engine.connect() as c:  # each county's serials start at 1 for each class: its own code series
        firsts = c.execute(text("SELECT division_code, min(serial) FROM issued_code WHERE batch = 'demo-4' "
                                "GROUP BY division_code ORDER BY 1")).all()
    assert [d for d, _ in firsts] == sorted(loaded)
