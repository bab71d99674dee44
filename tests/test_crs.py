"""GCJ-02 and BD-09 (citygrid/crs.py) against the shared reference vectors, round trips, and the China-only rule."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citygrid import crs
from citygrid.errors import CitygridError

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "shared" / "data" / "crs" / "gcj02_test_vectors.json")
                     .read_text(encoding="utf-8"))


def _metres(lng0: float, lat0: float, lng1: float, lat1: float) -> float:
    dy = (lat1 - lat0) * 111_320.0
    dx = (lng1 - lng0) * 111_320.0 * math.cos(math.radians(lat0))
    return math.hypot(dx, dy)


def test_constants_are_the_published_ones() -> None:
    c = VECTORS["constants"]
    assert crs.A == c["a_krasovsky"] and crs.EE == c["ee"] and [crs.BD_DLNG, crs.BD_DLAT] == c["bd09_offsets"]


@pytest.mark.parametrize("v", VECTORS["wgs84_to_gcj02"], ids=lambda v: v["name"])
def test_forward_matches_the_reference_within_1e6_degrees(v: dict) -> None:
    lng, lat = crs.to_gcj02(v["wgs_lng"], v["wgs_lat"])
    assert abs(float(lng) - v["gcj_lng"]) < 1e-6 and abs(float(lat) - v["gcj_lat"]) < 1e-6


@pytest.mark.parametrize("v", VECTORS["wgs84_to_gcj02"], ids=lambda v: v["name"])
def test_inverse_is_within_half_a_metre(v: dict) -> None:
    lng, lat = crs.from_gcj02(v["gcj_lng"], v["gcj_lat"])
    assert _metres(v["wgs_lng"], v["wgs_lat"], float(lng), float(lat)) < 0.5


def test_daye_shift_is_about_575_m() -> None:
    d = VECTORS["daye_computed_here"]
    lng, lat = crs.from_gcj02(*d["gcj_lng_lat"])
    assert _metres(*d["wgs_lng_lat"], float(lng), float(lat)) < 0.5
    assert abs(_metres(*d["wgs_lng_lat"], *d["gcj_lng_lat"]) - d["shift_m"]) < 1.0


def test_bd09_within_50_m_of_baidu_and_round_trips() -> None:
    for bd_lat, bd_lng, wgs_lat, wgs_lng in VECTORS["bd09_vectors_NOT_for_exact_tests"]["rows"]:
        lng, lat = crs.to_bd09(wgs_lng, wgs_lat)
        assert _metres(bd_lng, bd_lat, float(lng), float(lat)) < 50
        back = crs.from_bd09(lng, lat)
        assert _metres(wgs_lng, wgs_lat, float(back[0]), float(back[1])) < 0.01


@settings(max_examples=200, deadline=None)
@given(st.floats(73.7, 134.7), st.floats(18.2, 53.5))
def test_round_trips_everywhere_in_china(lng: float, lat: float) -> None:
    g = crs.to_gcj02(lng, lat)
    back = crs.from_gcj02(*g)
    assert _metres(lng, lat, float(back[0]), float(back[1])) < 0.001
    b = crs.from_bd09(*crs.to_bd09(lng, lat))
    assert _metres(lng, lat, float(b[0]), float(b[1])) < 0.001


def test_arrays_in_one_call() -> None:
    v = VECTORS["wgs84_to_gcj02"]
    lng, lat = crs.to_gcj02([x["wgs_lng"] for x in v], [x["wgs_lat"] for x in v])
    assert np.allclose(lng, [x["gcj_lng"] for x in v], atol=1e-6) and np.allclose(lat, [x["gcj_lat"] for x in v], atol=1e-6)


@pytest.mark.parametrize("lng,lat", [(2.35, 48.86), (-74.0, 40.7), (float("nan"), 30.0), (114.9, float("inf"))])
def test_outside_china_is_refused_not_passed_through(lng: float, lat: float) -> None:
    for fn in (crs.to_gcj02, crs.from_gcj02, crs.to_bd09, crs.from_bd09):
        with pytest.raises(CitygridError) as e:
            fn(lng, lat)
        assert e.value.error_code == "crs_offset_outside"
