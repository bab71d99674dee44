"""Unit and governance grids tile their communities; objects and doors know their grids; 多网合一 report."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from citygrid.grid.generate import unit_cells


def test_unit_cells_tile_a_block_without_gaps_or_overlaps() -> None:
    from shapely.geometry import LineString, box

    community = box(0, 0, 600, 400)
    roads = [LineString([(250, -10), (250, 410)]), LineString([(-10, 150), (610, 150)])]
    cells = unit_cells(community, roads)
    total = sum(c.area for c in cells)
    assert abs(total - community.area) < 1e-6 * community.area
    for i, a in enumerate(cells):
        for b in cells[i + 1:]:
            assert a.intersection(b).area < 1e-6
        assert not any(a.buffer(-0.01).intersection(r).length > 1e-6 for r in roads)  # roads run along cell edges
    assert all(c.area <= 2 * 100 * 100 + 1 for c in cells)
    ys = [round(c.centroid.y, 3) for c in cells]
    assert ys[0] >= ys[-1]  # numbered north → south


def test_demo_grids_tile_every_community(engine, demo_county) -> None:  # noqa: ANN001
    with engine.connect() as c:
        for system in ("unit", "governance"):
            bad = c.execute(text(
                "SELECT d.code, sum(ST_Area(g.geom::geography)) / ST_Area(d.geom::geography) AS cov FROM grid g "
                "JOIN division d ON d.code = g.division_code WHERE g.system = :s GROUP BY d.code, d.geom "
                "HAVING abs(sum(ST_Area(g.geom::geography)) / ST_Area(d.geom::geography) - 1) > 0.001"),
                {"s": system}).all()
            assert bad == [], (system, bad[:3])
            crossing = c.execute(text(
                "SELECT count(*) FROM grid g JOIN division d ON d.code = g.division_code WHERE g.system = :s "
                "AND ST_Area(ST_Difference(g.geom, d.geom)::geography) > 1"), {"s": system}).scalar()
            assert crossing == 0
        codes = c.execute(text("SELECT code FROM grid WHERE system='unit' ORDER BY code LIMIT 50")).scalars().all()
        assert codes and all(len(x) == 15 and x.startswith("420281") for x in codes)
        gov = c.execute(text("SELECT code, division_code FROM grid WHERE system='governance' LIMIT 50")).all()
        assert all(len(x.code) == 15 and x.code.startswith(x.division_code) for x in gov)
        n_unset = c.execute(text("SELECT count(*) FROM city_object o JOIN grid g ON g.system='governance' "
                                 "AND ST_Intersects(g.geom, ST_PointOnSurface(o.geom)) WHERE o.gov_grid IS NULL "
                                 "AND o.division_code='420281'")).scalar()
        assert n_unset == 0
        doors = c.execute(text("SELECT count(*) FILTER (WHERE gov_grid IS NULL), count(*) FROM addr_node "
                               "WHERE level = 'door'")).first()
        assert doors[1] > 0 and doors[0] == 0


def test_new_object_gets_its_grids_at_write_time(client: TestClient, engine, demo_county,  # noqa: ANN001
                                                 admin_headers: dict) -> None:
    with engine.connect() as c:
        code, x, y = c.execute(text("SELECT code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                                    "FROM grid WHERE system='unit' ORDER BY code LIMIT 1")).first()
    r = client.post("/objects", json={"class_code": "080102", "division_code": "420281",
                                      "geometry": {"type": "Point", "coordinates": [x, y]},
                                      "attrs": {"device_id": "G1", "device_kind": "烟感"}}, headers=admin_headers)
    assert r.status_code == 201, r.text
    assert r.json()["grids"]["unit"] == code and r.json()["grids"]["governance"]
    cell = client.get(f"/grids/unit/{code}").json()
    assert cell["properties"]["objects"] >= 1


def test_aggregate_by_unit_grid_matches_count(client: TestClient, engine, demo_county,  # noqa: ANN001
                                              admin_headers: dict) -> None:
    # every class: an admin's count (the public's leaves out households and classified objects)
    r = client.get("/aggregate", params={"by": "gov_grid", "geometry": "false"}, headers=admin_headers).json()
    with engine.connect() as c:
        want = dict(c.execute(text("SELECT gov_grid, count(*) FROM city_object WHERE status='active' "
                                   "AND gov_grid IS NOT NULL GROUP BY 1")).all())
    assert {f["id"]: f["properties"]["count"] for f in r["features"]} == want


@pytest.fixture()
def police_grid(engine) -> dict:  # noqa: ANN001
    """A 'police' system: two cells that split one community and one that crosses into the next."""
    with engine.connect() as c:
        a, b = c.execute(text("SELECT code, ST_AsGeoJSON(geom) FROM division WHERE level=5 AND code LIKE '420281001%' "
                              "AND geom IS NOT NULL ORDER BY code LIMIT 2")).all()
        half = c.execute(text("SELECT ST_AsGeoJSON(ST_Intersection(d.geom, ST_MakeEnvelope(ST_XMin(d.geom), "
                              "ST_YMin(d.geom), (ST_XMin(d.geom) + ST_XMax(d.geom)) / 2, ST_YMax(d.geom), 4490))) "
                              "FROM division d WHERE code=:c"), {"c": a[0]}).scalar()
        both = c.execute(text("SELECT ST_AsGeoJSON(ST_Union(geom)) FROM division WHERE code = ANY(:c)"),
                         {"c": [a[0], b[0]]}).scalar()
    feats = [{"type": "Feature", "properties": {"code": "P1", "name": "西半"}, "geometry": json.loads(half)},
             {"type": "Feature", "properties": {"code": "P2", "name": "跨社区"}, "geometry": json.loads(both)}]
    return {"type": "FeatureCollection", "features": feats, "a": a[0], "b": b[0]}


def test_multi_grid_import_maps_and_reports(client: TestClient, police_grid: dict, demo_county,
                                            admin_headers: dict) -> None:
    fc = {k: police_grid[k] for k in ("type", "features")}
    r = client.post("/grids/import", data={"system": "police", "base": "governance"},
                    files={"file": ("police.geojson", json.dumps(fc).encode())}, headers=admin_headers)
    assert r.status_code == 201, r.text
    rep = r.json()["report"]
    assert any(x["code"] == "P2" and set(x["communities"]) >= {police_grid["a"], police_grid["b"]}
               for x in rep["crossing_communities"])
    assert any(o["a"] == "P1" and o["b"] == "P2" for o in rep["overlaps"])  # P1 lies inside P2
    cell = client.get("/grids/police/P1").json()
    ratios = [m["overlap_ratio"] for m in cell["base"]]
    assert ratios and abs(sum(ratios) - 1) < 0.01  # every part of P1 lies in some base cell
    assert client.get("/grids/police/report").json()["cells"] == 2
    assert {s["system"] for s in client.get("/grids/systems").json()["items"]} >= {"unit", "governance", "police"}


def test_multi_grid_bad_input(client: TestClient, admin_headers: dict) -> None:
    r = client.post("/grids/import", data={"system": "unit"}, files={"file": ("x.geojson", b"{}")}, headers=admin_headers)
    assert r.status_code == 400 and r.json()["error_code"] == "system_invalid"
    r = client.post("/grids/import", data={"system": "fire"}, files={"file": ("x.geojson", b"\xff\xfe")},
                    headers=admin_headers)
    assert r.status_code == 400 and r.json()["error_code"] == "geojson_invalid"
    bad = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": None}]}
    r = client.post("/grids/import", data={"system": "fire"}, files={"file": ("x.geojson", json.dumps(bad).encode())},
                    headers=admin_headers)
    assert r.status_code == 422 and r.json()["row"] == 0
    assert client.get("/grids/nope/report").status_code == 404
