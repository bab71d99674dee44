"""Beidou grid location codes (GB/T 39409-2020): the standard's vectors, the mirroring rule, decode ∘ encode,
the database's generated column agreeing with Python, and aggregation by bgc:N totalling the same as H3."""

from __future__ import annotations

import random

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid.grid import beidou

# 116°18′45.37″E, 39°59′35.38″N
LON = 116 + 18 / 60 + 45.37 / 3600
LAT = 39 + 59 / 60 + 35.38 / 3600


def test_the_standards_vectors() -> None:
    assert beidou.encode(LON, LAT, 10) == "N50J47539B8255346152"
    assert beidou.encode(116.315222, 39.910278, 4) == "N50J47534"
    full = beidou.encode(LON, LAT, 10)
    for level, n in beidou.LENGTHS.items():  # every level is the prefix of the finer ones
        assert beidou.encode(LON, LAT, level) == full[:n] == beidou.parent(full, level)
        assert beidou.level_of(full[:n]) == level


def test_cell_sizes_per_level() -> None:
    sizes = {1: (6, 4), 2: (0.5, 0.5), 3: (0.25, 1 / 6), 4: (1 / 60, 1 / 60), 5: (4 / 3600, 4 / 3600),
             6: (2 / 3600, 2 / 3600), 7: (1 / 4 / 3600,) * 2, 8: (1 / 32 / 3600,) * 2, 9: (1 / 256 / 3600,) * 2,
             10: (1 / 2048 / 3600,) * 2}
    for level, (w, h) in sizes.items():
        c = beidou.decode(beidou.encode(LON, LAT, level))
        assert c.east - c.west == pytest.approx(w, rel=1e-9) and c.north - c.south == pytest.approx(h, rel=1e-9)
        assert c.contains(LON, LAT)


def test_mirroring_in_the_other_hemispheres() -> None:
    """West of Greenwich and south of the equator cells count away from the meridian and the equator: the point
    mirrored keeps every character after the level-1 part, and the zone mirrors around 30/31."""
    code = beidou.encode(LON, LAT, 10)
    west, south, both = beidou.encode(-LON, LAT, 10), beidou.encode(LON, -LAT, 10), beidou.encode(-LON, -LAT, 10)
    assert west == "N11J" + code[4:] and south == "S50J" + code[4:] and both == "S11J" + code[4:]
    for lon, lat, c in ((-LON, LAT, west), (LON, -LAT, south), (-LON, -LAT, both)):
        assert beidou.decode(c).contains(lon, lat)
    # the first zones either side of the meridian and the first bands either side of the equator
    assert beidou.encode(0.1, 0.1, 1) == "N31A" and beidou.encode(-0.1, 0.1, 1) == "N30A"
    assert beidou.encode(-179.9, -0.1, 1) == "S01A" and beidou.encode(179.9, 87.9, 1) == "N60V"


@settings(max_examples=300, deadline=None)
@given(st.floats(-180, 179.999999, allow_nan=False), st.floats(-87.999999, 87.999999, allow_nan=False),
       st.integers(1, 10))
def test_every_point_lies_in_its_decoded_cell(lon: float, lat: float, level: int) -> None:
    code = beidou.encode(lon, lat, level)
    assert len(code) == beidou.LENGTHS[level]
    cell = beidou.decode(code)
    assert cell.level == level and cell.contains(lon, lat), (lon, lat, code, cell)


def test_malformed_codes_and_points_are_refused_with_the_reason() -> None:
    for bad, why in (("N50J4", "length"), ("X50J47", "N or S"), ("N61J47", "zone"), ("N50W47", "band"),
                     ("N50JC7", "column"), ("N50J48", "row"), ("N50J476", "0–5"), ("N50J475F9", "column")):
        with pytest.raises(ValueError, match=why):
            beidou.decode(bad)
    with pytest.raises(ValueError, match="latitude"):
        beidou.encode(10, 88.5)
    with pytest.raises(ValueError, match="longitude"):
        beidou.encode(180, 10)
    with pytest.raises(ValueError, match="level"):
        beidou.encode(10, 10, 11)


def test_the_database_encodes_like_python(engine: Engine) -> None:
    """citygrid_bgc() (PL/pgSQL, migration 0025) against the module on random points, on cell boundaries (where
    rounding would show) and on the vectors."""
    rng = random.Random(39409)
    pts = [(rng.uniform(-180, 180), rng.uniform(-87.99, 87.99)) for _ in range(2000)]
    pts += [(114 + k / 120, 30 + k / 180) for k in range(60)]  # 30′ and 10′ lines and their multiples
    pts += [(-(6 * k + 1 / 60), -(4 * k + 4 / 3600)) for k in range(20)]
    pts += [(LON, LAT), (116.315222, 39.910278), (0.0, 0.0), (-180.0, -1.0)]
    with engine.connect() as c:
        got = c.execute(text("SELECT citygrid_bgc(x, y, 10) FROM unnest(CAST(:xs AS float8[]), "
                             "CAST(:ys AS float8[])) AS t(x, y)"),
                        {"xs": [p[0] for p in pts], "ys": [p[1] for p in pts]}).scalars().all()
        assert c.execute(text("SELECT citygrid_bgc(116.315222, 39.910278, 4), citygrid_bgc(1, 88, 10), "
                              "citygrid_bgc(1, 1, 11)")).one() == ("N50J47534", None, None)
    assert got == [beidou.encode(x, y, 10) for x, y in pts]


def test_objects_carry_their_code_and_it_follows_a_move(client: TestClient, engine: Engine, demo_county: dict,
                                                          admin_headers: dict[str, str]) -> None:
    with engine.connect() as c:
        code, bgc, x, y = c.execute(text(
            "SELECT code, bgc, ST_X(geom), ST_Y(geom) FROM city_object WHERE status = 'active' "
            "AND GeometryType(geom) = 'POINT' ORDER BY code LIMIT 1")).one()
        polygon = c.execute(text("SELECT bgc, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                                 "FROM city_object WHERE GeometryType(geom) = 'POLYGON' LIMIT 1")).one()
        nulls = c.execute(text("SELECT count(*) FROM city_object WHERE bgc IS NULL")).scalar_one()
    assert nulls == 0
    assert bgc == beidou.encode(x, y, 10) and polygon[0] == beidou.encode(polygon[1], polygon[2], 10)
    r = client.get(f"/objects/{code}", headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["grids"]["beidou"] == bgc
    moved = client.patch(f"/objects/{code}", headers=admin_headers,
                         json={"geometry": {"type": "Point", "coordinates": [x + 0.001, y]}})
    assert moved.status_code == 200, moved.text
    after = client.get(f"/objects/{code}", headers=admin_headers).json()["grids"]["beidou"]
    assert after == beidou.encode(x + 0.001, y, 10) != bgc


@pytest.mark.parametrize("level", [4, 6])
def test_aggregation_by_beidou_cells_totals_like_h3(client: TestClient, admin_headers: dict[str, str],
                                                    demo_county: dict, level: int) -> None:
    by_bgc = client.get("/aggregate", params={"by": f"bgc:{level}", "class": "050101"}, headers=admin_headers)
    by_h3 = client.get("/aggregate", params={"by": "h3:8", "class": "050101"}, headers=admin_headers)
    assert by_bgc.status_code == 200 and by_h3.status_code == 200, by_bgc.text
    feats = by_bgc.json()["features"]
    assert feats and all(len(f["properties"]["key"]) == beidou.LENGTHS[level] for f in feats)
    assert sum(f["properties"]["count"] for f in feats) == sum(f["properties"]["count"]
                                                                for f in by_h3.json()["features"])
    f = feats[0]
    cell = beidou.decode(f["properties"]["key"])
    assert f["geometry"]["coordinates"][0][0] == [cell.west, cell.south]


def test_aggregation_by_a_wrong_beidou_level_is_a_400(client: TestClient) -> None:
    for by in ("bgc:0", "bgc:11", "bgc:x", "bgc:"):
        r = client.get("/aggregate", params={"by": by})
        assert r.status_code == 400 and r.json()["error_code"] == "by_invalid", (by, r.text)
        assert "bgc:1" in r.json()["message_en"]


def test_the_batch_encoder_equals_the_one_point_encoder() -> None:
    """encode_many (bulk registration) against encode on random points, on points with 7 decimals (whose 1/2048″
    units are often exact integers, where the float shortcut must fall back), and out of range (None)."""
    rng = random.Random(14)
    lon = [rng.uniform(-180, 180) for _ in range(3000)] + [round(rng.uniform(-180, 180), 7) for _ in range(3000)]
    lat = [rng.uniform(-87.9, 87.9) for _ in range(3000)] + [round(rng.uniform(-87.9, 87.9), 7) for _ in range(3000)]
    lon += [k / 3125 for k in range(-3000, 3000)] + [0.0, -180.0, 179.99999999999997]
    lat += [k / 6250 for k in range(-3000, 3000)] + [0.0, 0.0, -0.0]
    for level in (4, 10):
        assert beidou.encode_many(lon, lat, level) == [beidou.encode(x, y, level) for x, y in zip(lon, lat, strict=True)]
    assert beidou.encode_many([10.0, 180.0, -181.0], [88.0, 1.0, 1.0]) == [None, None, None]


def test_an_update_cannot_store_a_code_that_is_not_the_geometrys(engine: Engine, demo_county: dict) -> None:
    """bgc is a plain column since 0029 (the bulk path gives it): a write that sets it gets the geometry's code."""
    with engine.begin() as c:
        code, bgc = c.execute(text("SELECT code, bgc FROM city_object WHERE status = 'active' ORDER BY code LIMIT 1")
                              ).one()
        c.execute(text("UPDATE city_object SET bgc = 'N50J00000000000000000' WHERE code = :c"), {"c": code})
        after = c.execute(text("SELECT bgc FROM city_object WHERE code = :c"), {"c": code}).scalar_one()
    assert after == bgc is not None
