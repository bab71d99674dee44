"""Vector tiles: decode with the expected features, thinning cap, ETag changes on write, 304, styles."""

from __future__ import annotations

import math
from collections import Counter

import h3
import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point
from sqlalchemy import text
from sqlalchemy.orm import Session

from citygrid.grid.h3cells import STORED_RES
from citygrid.layers import sources
from citygrid.registry.bulk import BulkItem, bulk_create
from citygrid.security.principal import SYSTEM, system_as

CLS = "010505"  # 电话亭: only this module creates them (a public class: the tiles are fetched anonymously)


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@pytest.fixture(scope="module")
def hydrants(engine) -> list[str]:  # noqa: ANN001
    items = [BulkItem(Point(*p), {"state": "完好"}) for p in _hydrant_points()]
    with Session(engine) as s, s.begin():
        return bulk_create(s, system_as("test-tiles"), CLS, "420281", items)


def _decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data)


def test_tile_has_the_features_inside_it(client: TestClient, hydrants: list[str]) -> None:
    x, y = _tile(114.951, 30.121, 16)
    r = client.get(f"/tiles/class-{CLS}/16/{x}/{y}.mvt")
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layer = _decode(r.content)[f"class-{CLS}"]
    codes = {f["properties"]["code"] for f in layer["features"]}
    inside = client.get(f"/ogc/collections/class-{CLS}/items", params={"limit": 1000}).json()["features"]
    # brute force: which stored points fall in this tile
    expect = {f["id"] for f in inside if _tile(*f["geometry"]["coordinates"], 16) == (x, y)}
    assert expect and codes == expect


def _hydrant_points() -> list[tuple[float, float]]:
    return [(114.95 + (i % 10) * 0.0002, 30.12 + (i // 10) * 0.0002) for i in range(40)]


def test_low_zoom_thins_points(client: TestClient, hydrants: list[str], engine) -> None:  # noqa: ANN001
    x, y = _tile(114.951, 30.121, 10)
    r = client.get(f"/tiles/class-{CLS}/10/{x}/{y}.mvt")
    layer = _decode(r.content)[f"class-{CLS}"]
    # one feature per H3 cell of resolution 8 (sources.thin_res(10)): the parents of the stored res-12 cells of
    # every point of the class in the tile (this module's and any other module's in the session's database),
    # computed here with h3-py itself from the points' coordinates
    res = sources.thin_res(10)
    assert res == 8
    mine = [p for p in _hydrant_points() if _tile(*p, 10) == (x, y)]
    with engine.connect() as c:
        everyone = [(float(a), float(b)) for a, b in c.execute(text(
            "SELECT ST_X(geom), ST_Y(geom) FROM city_object WHERE class_code = :c AND status = 'active'"),
            {"c": CLS}).all()]
    pts = [p for p in everyone if _tile(*p, 10) == (x, y)]
    cells = {h3.cell_to_parent(h3.latlng_to_cell(lat, lon, STORED_RES), res) for lon, lat in pts}
    assert len(mine) == 40 and set(mine) <= set(pts)
    assert len(layer["features"]) == len(cells) and len(cells) < len(pts)
    assert r.headers["X-Citygrid-Tile-Features"] == f"{len(cells)}/{len(cells)}"  # under the cap: complete
    assert "X-Citygrid-Tile-Complete-Zoom" not in r.headers


def test_etag_304_and_invalidation_on_write(client: TestClient, engine, hydrants: list[str]) -> None:  # noqa: ANN001
    x, y = _tile(114.951, 30.121, 16)
    url = f"/tiles/class-{CLS}/16/{x}/{y}.mvt"
    r1 = client.get(url)
    etag = r1.headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    before = len(_decode(r1.content)[f"class-{CLS}"]["features"])
    with Session(engine) as s, s.begin():
        bulk_create(s, system_as("test-tiles"), CLS, "420281",
                    [BulkItem(Point(114.9511, 30.1211), {"state": "完好"})])
    r2 = client.get(url, headers={"If-None-Match": etag})
    assert r2.status_code == 200 and r2.headers["ETag"] != etag
    assert len(_decode(r2.content)[f"class-{CLS}"]["features"]) == before + 1


def test_tilejson_style_and_errors(client: TestClient) -> None:
    tj = client.get(f"/tiles/class-{CLS}.json").json()
    assert tj["tilejson"] == "3.0.0" and tj["tiles"][0].endswith(f"/tiles/class-{CLS}/{{z}}/{{x}}/{{y}}.mvt")
    st = client.get(f"/styles/class-{CLS}.json").json()
    assert st["version"] == 8 and st["layers"][0]["type"] == "circle"
    assert client.get("/styles/class-050101.json").json()["layers"][0]["type"] == "fill"
    assert client.get("/tiles/class-999999/1/0/0.mvt").status_code == 404
    r = client.get(f"/tiles/class-{CLS}/3/9/0.mvt")
    assert r.status_code == 400 and r.json()["error_code"] == "tile_out_of_range"
    div = client.get("/tiles/divisions/8/" + "/".join(map(str, _tile(114.9, 30.1, 8))) + ".mvt")
    assert div.status_code == 200 and any(f["properties"]["code"] == "420281"
                                          for f in _decode(div.content)["divisions"]["features"])


def test_grid_and_door_plate_layers(client: TestClient, engine, demo_county: dict) -> None:  # noqa: ANN001
    from sqlalchemy import text

    from citygrid.grid import multi

    with engine.connect() as c:
        code, x0, y0 = c.execute(text("SELECT code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                                      "FROM grid WHERE system = 'unit' ORDER BY code LIMIT 1")).one()
        door, dx, dy = c.execute(text("SELECT code, ST_X(point), ST_Y(point) FROM addr_node WHERE level = 'door' "
                                      "AND status = 'active' AND point IS NOT NULL ORDER BY code LIMIT 1")).one()
    x, y = _tile(x0, y0, 15)
    r = client.get(f"/tiles/grids-unit/15/{x}/{y}.mvt")
    assert r.status_code == 200
    cells = {f["properties"]["code"] for f in _decode(r.content)["grids-unit"]["features"]}
    assert code in cells
    with engine.connect() as c:  # exactly the cells whose polygons reach into the tile (with its buffer)
        n = c.execute(text("SELECT count(*) FROM grid WHERE system = 'unit' AND geom && "
                           "ST_Transform(ST_TileEnvelope(15, :x, :y), 4490)"), {"x": x, "y": y}).scalar()
    assert 0 < len(cells) <= n
    x, y = _tile(dx, dy, 17)
    plates = _decode(client.get(f"/tiles/doorplates/17/{x}/{y}.mvt").content)["doorplates"]["features"]
    assert door in {f["properties"]["code"] for f in plates}
    assert client.get("/tiles/doorplates.json").json()["vector_layers"][0]["fields"]["full_name"] == "String"
    assert client.get("/styles/grids-unit.json").json()["layers"][0]["type"] == "fill"
    assert client.get("/tiles/grids-nosuch/15/1/1.mvt").status_code == 404
    assert client.get("/styles/grids-nosuch.json").status_code == 404

    # re-importing a department's system changes its tiles' ETag
    ring = [[114.95, 30.10], [114.96, 30.10], [114.96, 30.11], [114.95, 30.10]]
    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "A1", "name": "甲"},
                                                     "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    with engine.begin() as c:
        multi.import_system(c, SYSTEM, "tiletest", fc)
    x, y = _tile(114.955, 30.104, 14)
    r1 = client.get(f"/tiles/grids-tiletest/14/{x}/{y}.mvt")
    assert [f["properties"]["code"] for f in _decode(r1.content)["grids-tiletest"]["features"]] == ["A1"]
    fc["features"][0]["properties"]["code"] = "B2"
    with engine.begin() as c:
        multi.import_system(c, SYSTEM, "tiletest", fc)
    r2 = client.get(f"/tiles/grids-tiletest/14/{x}/{y}.mvt", headers={"If-None-Match": r1.headers["ETag"]})
    assert r2.status_code == 200 and r2.headers["ETag"] != r1.headers["ETag"]
    assert [f["properties"]["code"] for f in _decode(r2.content)["grids-tiletest"]["features"]] == ["B2"]


CAPPED = "010802"  # a class only the cap test creates


def _lonlat(x: float, y: float, z: int) -> tuple[float, float]:
    """The longitude and latitude of tile coordinate (x, y) at zoom z (fractions inside the tile)."""
    n = 2**z
    return x / n * 360 - 180, math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))


def test_a_tile_over_the_cap_keeps_an_even_sample_and_says_so(client: TestClient, engine,  # noqa: ANN001
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import text

    from citygrid.layers import tiles
    from citygrid.settings import get_settings

    z, (x, y) = 16, _tile(114.97, 30.13, 16)
    lon0, lat0 = _lonlat(x + 0.37, y + 0.41, z)  # off the sub-tile lines, well inside the tile
    pts = [(lon0 + (i % 5) * 0.00006, lat0 - (i // 5) * 0.00006) for i in range(25)]  # 25 points in ~30 m
    assert all(_tile(*p, z) == (x, y) for p in pts)
    with Session(engine) as s, s.begin():
        codes = bulk_create(s, system_as("test-tiles"), CAPPED, "420281", [BulkItem(Point(*p), {"state": "完好"})
                                                                           for p in pts])
    url = f"/tiles/class-{CAPPED}/{z}/{x}/{y}.mvt"
    full = client.get(url)
    assert full.headers["X-Citygrid-Tile-Features"] == "25/25" and "X-Citygrid-Tile-Complete-Zoom" not in full.headers
    assert len(_decode(full.content)[f"class-{CAPPED}"]["features"]) == 25

    monkeypatch.setenv("CITYGRID_TILE_FEATURE_CAP", "10")
    get_settings.cache_clear()
    try:
        r = client.get(url)
        kept = {f["properties"]["code"] for f in _decode(r.content)[f"class-{CAPPED}"]["features"]}
        assert r.headers["X-Citygrid-Tile-Features"] == "10/25" and len(kept) == 10 and kept < set(codes)
        assert r.headers["ETag"] != full.headers["ETag"]
        # the zoom from which no sub-tile holds more than 10 of them, counted here from the points themselves
        want = next(zz for zz in range(z + 1, 23)
                    if max(Counter(_tile(*p, zz) for p in pts).values()) <= 10)
        assert int(r.headers["X-Citygrid-Tile-Complete-Zoom"]) == want
        sub = [client.get(f"/tiles/class-{CAPPED}/{want}/{sx}/{sy}.mvt") for sx, sy in {_tile(*p, want) for p in pts}]
        assert sum(int(t.headers["X-Citygrid-Tile-Features"].split("/")[0]) for t in sub) == 25
        assert all(t.headers["X-Citygrid-Tile-Features"].split("/")[0] == t.headers["X-Citygrid-Tile-Features"]
                   .split("/")[1] for t in sub)
        # the sample is deterministic: rendered again without the cache, the same ten, by the hash of their code
        with engine.connect() as c:
            again = tiles.tile(c, SYSTEM, f"class-{CAPPED}", z, x, y, cache=None)
            first = set(c.execute(text("SELECT code FROM city_object WHERE code = ANY(:c) "
                                       "ORDER BY hashtextextended(code, 0), code LIMIT 10"), {"c": codes}).scalars())
        assert (again.kept, again.total) == (10, 25) and kept == first
        assert {f["properties"]["code"] for f in _decode(again.data)[f"class-{CAPPED}"]["features"]} == kept
        tj = client.get(f"/tiles/class-{CAPPED}.json").json()
        assert tj["x-citygrid-feature-cap"] == 10 and "X-Citygrid-Tile-Features" in tj["description"]
        west, south, east, north = tj["bounds"]
        assert (west, south) == pytest.approx((lon0, lat0 - 4 * 0.00006), abs=1e-9)
        assert (east, north) == pytest.approx((lon0 + 4 * 0.00006, lat0), abs=1e-9)
    finally:
        monkeypatch.delenv("CITYGRID_TILE_FEATURE_CAP")
        get_settings.cache_clear()


SITES = "080202"  # 工地, a polygon class only this test creates


def test_features_inside_a_tile_skip_the_repair_yet_keep_their_geometry(client: TestClient, engine) -> None:  # noqa: ANN001
    """Most features take the snap-only path (migration 0031) and come out as ST_AsMVTGeom makes them; a sliver
    too thin for the grid and a site across the tile's edge take ST_AsMVTGeom's own path."""
    import shapely
    from shapely.geometry import Polygon, shape

    z16 = _tile(114.90, 30.05, 16)
    lon0, lat0 = _lonlat(z16[0] + 0.05, z16[1] + 0.05, 16)
    sites = [Polygon([(lon0 + i * 4e-4, lat0 - j * 4e-4), (lon0 + i * 4e-4 + 3e-4, lat0 - j * 4e-4 - 1e-5),
                      (lon0 + i * 4e-4 + 2.8e-4, lat0 - j * 4e-4 - 2.5e-4), (lon0 + i * 4e-4 + 1e-4, lat0 - j * 4e-4 - 2e-4)])
             for i in range(12) for j in range(12)]
    sites = [shapely.reverse(g) if k % 2 else g for k, g in enumerate(sites)]  # rings of both orientations
    sites.append(Polygon([(lon0 + 1e-4, lat0 + 1e-4), (lon0 + 6e-4, lat0 + 1e-4), (lon0 + 6e-4, lat0 + 1.000005e-4)]))
    east, _ = _lonlat(z16[0] + 1, z16[1], 16)  # one across the tile's east edge
    sites.append(Polygon([(east - 2e-4, lat0), (east + 2e-4, lat0), (east + 2e-4, lat0 - 2e-4), (east - 2e-4, lat0 - 2e-4)]))
    with Session(engine) as s, s.begin():
        bulk_create(s, system_as("test-tiles"), SITES, "420281", [BulkItem(g, {"state": "完好", "project_name": "测试"}) for g in sites])
    for z in (sources.THIN_BELOW, 16):  # below THIN_BELOW a tile keeps one feature per few pixels
        x, y = _tile(lon0, lat0, z)
        r = client.get(f"/tiles/class-{SITES}/{z}/{x}/{y}.mvt")
        got = {f["properties"]["code"]: shape(f["geometry"]) for f in mapbox_vector_tile.decode(
            r.content, default_options={"y_coord_down": True})[f"class-{SITES}"]["features"]}
        with engine.connect() as c:
            rows = c.execute(text(
                "SELECT code, ST_AsText(ST_AsMVTGeom(ST_Transform(geom, 3857), e, 4096, 64, true)), "
                "e ~ ST_Transform(geom, 3857) AND geom_clearance * 111319.49 * 4096 / (ST_XMax(e) - ST_XMin(e)) > 1.5 "
                "FROM city_object, ST_TileEnvelope(:z, :x, :y) e WHERE class_code = :c AND status = 'active' "
                "AND geom && ST_Transform(e, 4490)"), {"z": z, "x": x, "y": y, "c": SITES}).all()
        ref = {code: shapely.from_wkt(wkt) for code, wkt, _ in rows if wkt is not None}
        fast = sum(1 for _, wkt, quick in rows if quick)
        assert got.keys() == ref.keys() and len(ref) >= 100, (sorted(got.keys() - ref.keys()), sorted(ref.keys() - got.keys()), len(got), len(ref), z)
        assert fast >= 100 and fast < len(rows)  # both paths were taken
        for code, g in got.items():
            assert g.geom_type == ref[code].geom_type and shapely.equals(g, ref[code]), code
            assert g.is_valid and g.exterior.is_ccw == ref[code].exterior.is_ccw, code
    assert len(rows) == len(ref) + 1  # the sliver collapses on the grid and is left out, as ST_AsMVTGeom leaves it
