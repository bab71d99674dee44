"""Aggregation matches a brute-force count; H3 parents by bit operations; k-anonymity never leaks."""

from __future__ import annotations

from collections import Counter

import h3
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import Point
from sqlalchemy import text
from sqlalchemy.orm import Session

from citygrid.grid.h3cells import STORED_RES, cell_of, parent
from citygrid.registry.bulk import BulkItem, bulk_create
from citygrid.security.principal import SYSTEM, system_as


@pytest.mark.parametrize("res", [0, 5, 8, 11, 12])
def test_parent_bit_operation_equals_h3(res: int) -> None:
    for lon, lat in [(114.97, 30.10), (114.53, 29.86), (115.17, 30.33), (-73.9, 40.7)]:
        c = cell_of(Point(lon, lat))
        assert h3.int_to_str(parent(c, res)) == h3.cell_to_parent(h3.latlng_to_cell(lat, lon, STORED_RES), res)


@pytest.fixture(scope="module")
def houses(engine) -> int:  # noqa: ANN001
    """实有房屋 (personal): a dense cluster of 30 and a sparse spread of singletons."""
    items = [BulkItem(Point(114.93 + (i % 6) * 0.00005, 30.08 + (i // 6) * 0.00005), {"house_use": "自住"})
             for i in range(30)]
    items += [BulkItem(Point(114.7 + i * 0.03, 29.95 + i * 0.01), {"house_use": "出租"}) for i in range(8)]
    with Session(engine) as s, s.begin():
        bulk_create(s, system_as("test-agg"), "050201", "420281", items)
    return len(items)


def _brute(engine, class_code: str, res: int) -> Counter:  # noqa: ANN001
    with engine.connect() as c:
        pts = c.execute(text("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM city_object "
                             "WHERE class_code=:c AND status='active'"), {"c": class_code}).all()
    # H3's hierarchy is logical, not geometric: a coarse cell is the parent of the stored fine cell.
    return Counter(h3.cell_to_parent(h3.latlng_to_cell(y, x, STORED_RES), res) for x, y in pts)


def test_h3_counts_match_brute_force(client: TestClient, engine) -> None:  # noqa: ANN001
    with engine.connect() as c:  # the bulk path, like the single one, refuses points outside the county
        outline = shapely.from_wkb(bytes(c.execute(text("SELECT ST_AsBinary(geom) FROM division WHERE code = '420281'"))
                                         .scalar_one()))
    pts = [Point(114.8 + (i * 7919 % 1000) / 5000, 30.0 + (i * 104729 % 1000) / 5000) for i in range(300)]
    items = [BulkItem(pt, {"device_id": f"A{i}", "device_kind": "雨量计"}) for i, pt in enumerate(pts)
             if outline.contains(pt)]
    assert len(items) > 200
    with Session(engine) as s, s.begin():
        bulk_create(s, system_as("test-agg"), "080102", "420281", items)
    for res in (6, 8):
        r = client.get("/aggregate", params={"by": f"h3:{res}", "class": "080102"}).json()
        got = {f["properties"]["h3"]: f["properties"]["count"] for f in r["features"]}
        assert got == dict(_brute(engine, "080102", res))
        assert r["features"][0]["geometry"]["type"] == "Polygon"


def test_division_aggregation_and_sum(client: TestClient, engine) -> None:  # noqa: ANN001
    r = client.get("/aggregate", params={"by": "county", "class": "080102"}).json()
    with engine.connect() as c:
        n = c.execute(text("SELECT count(*) FROM city_object WHERE class_code='080102' AND status='active'")).scalar()
    assert {f["id"]: f["properties"]["count"] for f in r["features"]} == {"420281": n}
    assert r["features"][0]["geometry"]["type"] == "MultiPolygon"
    items = [BulkItem(Point(114.97, 30.1), {"site_name": f"S{i}", "ports": p}) for i, p in enumerate([10, 20, 31])]
    with Session(engine) as s, s.begin():
        bulk_create(s, system_as("test-agg"), "990101", "420281", items)
    with engine.connect() as c:
        total = c.execute(text("SELECT sum((attrs->>'ports')::numeric) FROM city_object "
                               "WHERE class_code='990101' AND status='active'")).scalar()
    r = client.get("/aggregate", params={"by": "county", "class": "990101", "stat": "sum", "attr": "ports"})
    assert r.json()["features"][0]["properties"]["value"] == pytest.approx(float(total))


def test_personal_counts_below_k_are_suppressed(client: TestClient, houses: int) -> None:
    r = client.get("/aggregate", params={"by": "h3:9", "class": "050201"}).json()
    assert r["meta"]["k"] == 5 and r["meta"]["suppressed"] >= 8
    for f in r["features"]:
        p = f["properties"]
        if p["suppressed"]:
            assert p["count"] is None and p["value"] is None
        else:
            assert p["count"] >= 5
    assert any(not f["properties"]["suppressed"] for f in r["features"])


def test_aggregate_bad_input(client: TestClient) -> None:
    for params, code in [({"by": "h3:99"}, "by_invalid"), ({"by": "nation"}, "by_invalid"),
                         ({"stat": "median"}, "stat_invalid"), ({"stat": "sum", "class": "080102"}, "attr_required"),
                         ({"stat": "avg", "class": "080102", "attr": "device_kind"}, "attr_not_numeric"),
                         ({"bbox": "1,2"}, "bbox_invalid"), ({"class": "999999"}, "class_unknown")]:
        r = client.get("/aggregate", params=params)
        assert r.status_code == 400 and r.json()["error_code"] == code, (params, r.text)


def test_heat_tiles_weight_cells_and_suppress_personal(client: TestClient, houses: int) -> None:
    import math

    import mapbox_vector_tile

    z = 12
    n = 2**z
    x = int((114.93 + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(30.08))) / math.pi) / 2 * n)
    r = client.get(f"/aggregate/tiles/{z}/{x}/{y}.mvt", params={"class": "050201"})
    assert r.status_code == 200
    feats = mapbox_vector_tile.decode(r.content).get("heat", {}).get("features", [])
    assert feats and all(f["properties"]["count"] >= 5 for f in feats)  # the dense cluster shows, singletons never
    assert sum(f["properties"]["count"] for f in feats) >= 30
    assert client.get("/aggregate/tiles/1/5/5.mvt").status_code == 400


def test_rollup_counts_stay_exact_through_updates_retires_and_deletes(client: TestClient, engine,  # noqa: ANN001
                                                                      admin_headers: dict) -> None:
    from citygrid.layers.aggregate import aggregate

    codes = []
    for i in range(6):
        r = client.post("/objects", json={"class_code": "030301", "division_code": "420281",
                                          "geometry": {"type": "Point", "coordinates": [114.9 + i * 0.01, 30.05]},
                                          "attrs": {"state": "完好", "station_name": f"R{i}"}}, headers=admin_headers)
        assert r.status_code == 201, r.text
        codes.append(r.json()["code"])
    client.patch(f"/objects/{codes[0]}", json={"geometry": {"type": "Point", "coordinates": [115.1, 30.2]}},
                 headers=admin_headers)
    client.post(f"/objects/{codes[1]}/retire", headers=admin_headers)
    with engine.begin() as c:
        c.execute(text("DELETE FROM city_object_history WHERE code = :c"), {"c": codes[2]})
        c.execute(text("DELETE FROM city_object WHERE code = :c"), {"c": codes[2]})
    whole = (73.0, 3.0, 136.0, 54.0)  # a bbox forces the raw GROUP BY over city_object
    with engine.connect() as c:
        for by in ("h3:5", "h3:9", "gov_grid", "unit_grid"):
            fast = aggregate(c, SYSTEM, by=by, class_code="030301", with_geometry=False)
            raw = aggregate(c, SYSTEM, by=by, class_code="030301", bbox=whole, with_geometry=False)
            assert {f["id"]: f["properties"]["count"] for f in fast["features"]} == \
                   {f["id"]: f["properties"]["count"] for f in raw["features"]}, by
        assert sum(f["properties"]["count"] for f in aggregate(c, SYSTEM, by="h3:5", class_code="030301",
                                                                with_geometry=False)["features"]) == 6 - 1 - 1


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def _area_tile(client: TestClient, z: int, lon: float, lat: float, params: dict) -> list[dict]:
    import mapbox_vector_tile

    x, y = _tile_of(lon, lat, z)
    r = client.get(f"/aggregate/tiles/{z}/{x}/{y}.mvt", params=params)
    assert r.status_code == 200, r.text
    return mapbox_vector_tile.decode(r.content).get("aggregate", {}).get("features", [])


@pytest.mark.parametrize("by", ["unit_grid", "gov_grid", "township"])
@pytest.mark.parametrize("cls", [None, "050201"])
def test_area_tiles_carry_the_same_counts_as_geojson_and_suppress(client: TestClient, demo_county: dict,
                                                                  houses: int, by: str, cls: str | None) -> None:
    from shapely.geometry import shape

    params = {"by": by} | ({"class": cls} if cls else {})
    full = client.get("/aggregate", params=params).json()["features"]
    geo = {f["id"]: f["properties"] for f in full}
    busiest = max(full, key=lambda f: f["properties"]["count"] or 0)  # look where the data is
    c = shape(busiest["geometry"]).representative_point()
    feats = _area_tile(client, 13 if by != "township" else 10, c.x, c.y, params)
    assert busiest["id"] in {f["properties"]["key"] for f in feats}, params
    assert {f["properties"]["key"] for f in feats} <= set(geo)
    for f in feats:
        p, want = f["properties"], geo[f["properties"]["key"]]
        assert bool(p["suppressed"]) == want["suppressed"], (params, p)
        if want["suppressed"]:
            assert "count" not in p  # a suppressed cell carries no number at all
        else:
            assert p["count"] == want["count"] and (cls is None or p["count"] >= 5)


def test_area_tile_county_and_bad_by(client: TestClient, houses: int) -> None:
    feats = _area_tile(client, 8, 114.93, 30.08, {"by": "county", "class": "050201"})
    geo = client.get("/aggregate", params={"by": "county", "class": "050201", "geometry": False}).json()
    assert [(f["properties"]["key"], f["properties"]["count"]) for f in feats] == \
           [(g["id"], g["properties"]["count"]) for g in geo["features"]]
    x, y = _tile_of(114.93, 30.08, 8)
    bad = client.get(f"/aggregate/tiles/8/{x}/{y}.mvt", params={"by": "h3:8"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "by_invalid"


def test_grid_outlines_in_aggregates_follow_grid_edits(client: TestClient, engine, demo_county: dict) -> None:  # noqa: ANN001
    from shapely.geometry import shape

    first = client.get("/aggregate", params={"by": "unit_grid"}).json()["features"]
    code = first[0]["id"]
    before = shape(first[0]["geometry"])
    again = client.get("/aggregate", params={"by": "unit_grid"}).json()["features"]  # served from the outline cache
    assert shape(next(f for f in again if f["id"] == code)["geometry"]).equals(before)
    with engine.begin() as c:
        c.execute(text("UPDATE grid SET geom = ST_Multi(ST_Translate(geom, 0.001, 0)) WHERE system = 'unit' "
                       "AND code = :c"), {"c": code})
    try:
        moved = client.get("/aggregate", params={"by": "unit_grid"}).json()["features"]
        g = shape(next(f for f in moved if f["id"] == code)["geometry"])
        assert abs(g.bounds[0] - before.bounds[0] - 0.001) < 1e-6
    finally:
        with engine.begin() as c:
            c.execute(text("UPDATE grid SET geom = ST_Multi(ST_Translate(geom, -0.001, 0)) WHERE system = 'unit' "
                           "AND code = :c"), {"c": code})
