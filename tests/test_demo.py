"""The demo county generator: partition of 大冶市, objects inside it, codes, idempotency and determinism.

Runs the generator at a small scale (the structure — townships, villages, roads — is the same at every scale;
only the density of buildings and components shrinks), against the real outline and divisions. Seed and scale
are those of the session's `demo_county` fixture, so whichever runs first loads the demo and the other reuses
it; the demo stays loaded for the rest of the session.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid.catalog import get_catalog
from citygrid.coding.scheme import unified_scheme
from citygrid.demo.load import load_demo

SEED, SCALE = 7, 0.05
COUNTY = "420281"
DEMO = "created_by = 'demo' AND division_code = '420281'"
DEMO_O = "o.created_by = 'demo' AND o.division_code = '420281'"


def _rows(engine: Engine, sql: str, **params: object) -> list:
    with engine.connect() as c:
        return list(c.execute(text(sql), params).all())


def _one(engine: Engine, sql: str, **params: object):  # noqa: ANN202
    with engine.connect() as c:
        return c.execute(text(sql), params).scalar_one()


@pytest.fixture(scope="module")
def demo(engine: Engine) -> dict:
    return load_demo(engine, seed=SEED, scale=SCALE)


def test_summary_matches_database(demo: dict, engine: Engine, count_rows) -> None:  # noqa: ANN001
    assert demo["seed"] == SEED and demo["scale"] == SCALE
    assert demo["townships"] == 18 and demo["villages"] == 431
    assert demo["objects_total"] == sum(demo["objects_by_class"].values()) > 1000
    assert count_rows(f"SELECT count(*) FROM city_object WHERE {DEMO}") == demo["objects_total"]
    cat = get_catalog()
    in_db = dict(_rows(engine, f"SELECT class_code, count(*) FROM city_object WHERE {DEMO} GROUP BY class_code"))
    expected = {cat.by_name(name).code: n for name, n in demo["objects_by_class"].items() if n}
    assert in_db == expected
    for name in ("道路", "建筑物", "门牌", "路灯", "污水井盖", "雨水井盖", "消防栓", "行道树", "宗地", "绿地"):
        assert demo["objects_by_class"].get(name, 0) > 0, name
    by_town = dict(_rows(engine, f"SELECT township_code, count(*) FROM city_object WHERE {DEMO} "
                                 "GROUP BY township_code"))
    assert by_town == {k: v for k, v in demo["objects_by_township"].items() if v}
    src = _rows(engine, "SELECT edition, detail FROM data_source WHERE name = 'demo-420281'")
    assert src and src[0][0] == f"seed={SEED}" and src[0][1]["objects_total"] == demo["objects_total"]
    assert src[0][1]["scale"] == SCALE and "elapsed_s" in src[0][1]
    # every object also has its creation in the history
    assert count_rows(f"SELECT count(*) FROM city_object_history h JOIN city_object o USING (uid) "
                      f"WHERE {DEMO_O} AND h.op = 'create'") == demo["objects_total"]


def test_townships_partition_the_county(demo: dict, engine: Engine) -> None:
    rows = _rows(engine, "SELECT code, name, geom_source, ST_IsValid(geom), ST_Area(ST_Transform(geom, 4547)) "
                         "FROM division WHERE parent_code = :c AND level = 4 ORDER BY code", c=COUNTY)
    assert len(rows) == 18
    assert all(r[2] == f"generated-demo seed={SEED}" and r[3] for r in rows), rows
    county = _one(engine, "SELECT ST_Area(ST_Transform(geom, 4547)) FROM division WHERE code = :c", c=COUNTY)
    assert 1.5e9 < county < 1.6e9
    assert abs(sum(r[4] for r in rows) / county - 1) < 1e-3
    union = _one(engine, "SELECT ST_Area(ST_Transform(ST_Union(geom), 4547)) FROM division "
                         "WHERE parent_code = :c AND level = 4", c=COUNTY)
    assert abs(union / county - 1) < 1e-3
    covered = _one(engine, "SELECT ST_Area(ST_Transform(ST_Intersection(c.geom, u.g), 4547)) FROM division c, "
                           "(SELECT ST_Union(geom) g FROM division WHERE parent_code = :c AND level = 4) u "
                           "WHERE c.code = :c", c=COUNTY)
    assert covered / county > 0.999
    overlap = _one(engine, "SELECT coalesce(sum(ST_Area(ST_Transform(ST_Intersection(a.geom, b.geom), 4547))), 0) "
                           "FROM division a JOIN division b ON a.code < b.code AND a.geom && b.geom "
                           "WHERE a.parent_code = :c AND b.parent_code = :c AND a.level = 4 AND b.level = 4", c=COUNTY)
    assert overlap < 1e-6 * county
    # 街道 are small and cluster around the county seat; towns are larger
    area = {r[0]: r[4] for r in rows}
    streets = ["420281001", "420281002", "420281003", "420281004", "420281070"]
    towns = [c for c in area if c not in streets]
    assert max(area[c] for c in streets) < sum(area[c] for c in towns) / len(towns)
    far = _rows(engine, "SELECT code, ST_Distance(ST_Transform(ST_PointOnSurface(geom), 4547), "
                        "ST_Transform(ST_SetSRID(ST_MakePoint(114.97, 30.10), 4490), 4547)) FROM division "
                        "WHERE code = ANY(:s)", s=streets)
    assert all(d < 12000 for _, d in far), far


def test_villages_partition_their_township(demo: dict, engine: Engine) -> None:
    rows = _rows(engine, "SELECT v.code, ST_IsValid(v.geom), ST_Area(v.geom), "
                         "ST_Area(ST_Difference(v.geom, t.geom)), v.geom_source FROM division v "
                         "JOIN division t ON t.code = v.parent_code WHERE t.parent_code = :c AND v.level = 5",
                 c=COUNTY)
    assert len(rows) == 431
    assert all(r[1] for r in rows)
    assert all(r[4] == f"generated-demo seed={SEED}" for r in rows)
    assert all(r[2] > 0 and r[3] <= 1e-6 * r[2] for r in rows), [r[0] for r in rows if r[3] > 1e-6 * r[2]]
    sums = _rows(engine, "SELECT t.code, ST_Area(t.geom), sum(ST_Area(v.geom)) FROM division t "
                         "JOIN division v ON v.parent_code = t.code WHERE t.parent_code = :c GROUP BY t.code, t.geom",
                 c=COUNTY)
    assert len(sums) == 18 and all(abs(s / a - 1) < 1e-3 for _, a, s in sums), sums
    overlap = _one(engine, "SELECT coalesce(sum(ST_Area(ST_Intersection(a.geom, b.geom)) / ST_Area(a.geom)), 0) "
                           "FROM division a JOIN division b ON a.code < b.code AND a.parent_code = b.parent_code "
                           "AND a.geom && b.geom WHERE a.level = 5 AND a.code LIKE :p", p=COUNTY + "%")
    assert overlap < 1e-6


def test_objects_inside_county_and_in_their_divisions(demo: dict, count_rows) -> None:  # noqa: ANN001
    assert count_rows(f"SELECT count(*) FROM city_object o, division c WHERE c.code = '420281' AND {DEMO_O} "
                      "AND NOT ST_Within(o.geom, c.geom)") == 0
    assert count_rows(f"SELECT count(*) FROM city_object WHERE {DEMO} AND NOT ST_IsValid(geom)") == 0
    assert count_rows(f"SELECT count(*) FROM city_object WHERE {DEMO} AND (township_code IS NULL "
                      "OR village_code IS NULL OR ST_SRID(geom) <> 4490)") == 0
    assert count_rows(f"SELECT count(*) FROM city_object o JOIN division t ON t.code = o.township_code "
                      f"WHERE {DEMO_O} AND NOT ST_Intersects(t.geom, ST_PointOnSurface(o.geom))") == 0
    assert count_rows(f"SELECT count(*) FROM city_object o JOIN division v ON v.code = o.village_code "
                      f"WHERE {DEMO_O} AND (v.parent_code <> o.township_code "
                      "OR NOT ST_Intersects(v.geom, ST_PointOnSurface(o.geom)))") == 0
    assert count_rows(f"SELECT count(DISTINCT township_code) FROM city_object WHERE {DEMO}") == 18


def test_codes_attributes_and_geometry_types(demo: dict, engine: Engine) -> None:
    scheme = unified_scheme()
    cat = get_catalog()
    rows = _rows(engine, f"SELECT code, class_code, attrs, GeometryType(geom), component_code FROM city_object "
                         f"WHERE {DEMO}")
    assert len({r[0] for r in rows}) == len(rows) == demo["objects_total"]
    compat = {"Point": {"POINT"}, "LineString": {"LINESTRING", "MULTILINESTRING"},
              "Polygon": {"POLYGON", "MULTIPOLYGON"}}
    for code, cls_code, attrs, gtype, comp in rows:
        assert scheme.validate(code) == [], code
        assert code.startswith(COUNTY + cls_code)
        assert attrs["generated"] is True and attrs["generator"] == f"citygrid-demo seed={SEED}"
        cls = cat.get(cls_code)
        assert gtype in compat[cls.geometry], (cls.name, gtype)
        plain = {k: v for k, v in attrs.items() if k not in ("generated", "generator") or cls.attribute(k)}
        assert cls.validate_attrs(plain) == [], (cls.name, attrs)
        assert (comp is not None) == bool(cls.component_code)
    issued = _one(engine, "SELECT count(*) FROM issued_code WHERE batch = :b", b=f"demo-{SEED}")
    assert issued >= demo["objects_total"]


def test_door_plates_numbered_odd_and_even(demo: dict, engine: Engine) -> None:
    plates = _rows(engine, f"SELECT attrs->>'road_name', (attrs->>'number')::int, attrs->>'plate_type', "
                           f"attrs->>'standard_address' FROM city_object WHERE {DEMO} AND class_code = :c",
                   c=get_catalog().by_name("门牌").code)
    assert plates
    assert len({p[3] for p in plates}) == len(plates)  # one plate per standard address
    for road, number, kind, address in plates:
        assert address.startswith("湖北省黄石市大冶市") and address.endswith(f"{road}{number}号")
        assert kind in ("街路巷门牌", "院落门牌", "村组门牌")
    street = {}
    for road, number, kind, _ in plates:
        if kind != "村组门牌":
            street.setdefault(road, set()).add(number % 2)
    assert street and any(len(p) == 2 for p in street.values())  # both sides of some roads


def test_api_lists_demo_objects(demo: dict, client: TestClient) -> None:
    code = get_catalog().by_name("路灯").code
    r = client.get("/objects", params={"class_code": code, "division": COUNTY, "limit": 50})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert items and all(i["code"].startswith(COUNTY + code) for i in items)
    assert all(i["attrs"]["generated"] is True for i in items)
    township = items[0]["township_code"]
    r = client.get("/objects", params={"class_code": code, "division": township})
    assert r.status_code == 200 and r.json()["items"]
    assert all(i["township_code"] == township for i in r.json()["items"])


def _snapshot(engine: Engine) -> tuple[list[tuple], set[str], list[tuple[str, str]]]:
    """Demo objects as generated (their first version, whatever other tests did to them since), codes, polygons."""
    geoms = _rows(engine, f"SELECT o.class_code, ST_AsText(h.geom), h.name, o.township_code, o.village_code, "
                          f"h.attrs::text FROM city_object o JOIN city_object_history h ON h.uid = o.uid "
                          f"AND h.version = 1 WHERE {DEMO_O} ORDER BY 1, 2, 6")
    codes = {r[0] for r in _rows(engine, f"SELECT code FROM city_object WHERE {DEMO}")}
    divs = _rows(engine, "SELECT code, ST_AsText(geom) FROM division WHERE code LIKE :p AND level IN (4, 5) "
                         "ORDER BY code", p=COUNTY + "%")
    return [tuple(r) for r in geoms], codes, [(a, b) for a, b in divs]


def test_rerun_without_force_changes_nothing(demo: dict, engine: Engine, count_rows) -> None:  # noqa: ANN001
    before = count_rows("SELECT count(*) FROM issued_code")
    objs = count_rows("SELECT count(*) FROM city_object")
    again = load_demo(engine, seed=SEED, scale=SCALE)
    assert again["reused"] is True
    assert {k: v for k, v in again.items() if k != "reused"} == {k: v for k, v in demo.items() if k != "reused"}
    assert count_rows("SELECT count(*) FROM issued_code") == before
    assert count_rows("SELECT count(*) FROM city_object") == objs
    # a reload of the divisions wipes the generated polygons: they come back, identical, objects untouched
    divs = _snapshot(engine)[2]
    with engine.begin() as c:
        c.execute(text("UPDATE division SET geom = NULL, geom_source = NULL WHERE code LIKE '420281%' AND level = 5"))
    assert load_demo(engine, seed=SEED, scale=SCALE)["reused"] is True
    assert _snapshot(engine)[2] == divs
    assert count_rows("SELECT count(*) FROM issued_code") == before


def test_force_regenerates_identically_with_new_codes(demo: dict, engine: Engine, count_rows) -> None:  # noqa: ANN001
    geoms, codes, divs = _snapshot(engine)
    again = load_demo(engine, seed=SEED, scale=SCALE, force=True)
    assert again["reused"] is False and again["deleted_previous"] == len(codes)
    assert again["objects_by_class"] == demo["objects_by_class"]
    geoms2, codes2, divs2 = _snapshot(engine)
    assert geoms2 == geoms  # same seed, same county: geometries, names, places and attributes
    assert divs2 == divs
    assert codes2.isdisjoint(codes)  # codes are never reissued ...
    assert count_rows("SELECT count(*) FROM issued_code WHERE code = ANY(:c)", c=list(codes)) == len(codes)
    assert count_rows("SELECT count(*) FROM city_object_history WHERE code = ANY(:c)", c=list(codes)) == 0
    assert count_rows("SELECT count(*) FROM change_log WHERE op = 'delete' AND key = ANY(:c)",
                      c=list(codes)) == len(codes)
    # the session's address base (demo_county fixture) points at object codes: rebuild it for later tests
    if count_rows("SELECT count(*) FROM data_source WHERE name = 'address-420281'"):
        from citygrid.demo.load import load_address_base

        load_address_base(engine, COUNTY, seed=SEED)
