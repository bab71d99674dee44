"""GCJ-02, BD-09 and the other CRSs through the API (citygrid/crs.py's registry): round trips against the shared
reference vectors on geocode (GET, POST), reverse geocode, batch results, objects and OGC items; an out-of-China
request is a 400 crs_offset_outside; OGC collections list the CRS URIs. Also the Amap levels and `precise` on
real geocode answers (citygrid/address/answer.py)."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h3
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point, shape
from sqlalchemy import text
from sqlalchemy.orm import Session

from citygrid import crs
from citygrid.registry.bulk import BulkItem, bulk_create
from citygrid.security.principal import system_as

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "shared" / "data" / "crs" / "gcj02_test_vectors.json")
                     .read_text(encoding="utf-8"))
DAYE = VECTORS["daye_computed_here"]
CLS = "010505"  # 电话亭: a class nothing else in the suite creates
GCJ = crs.CITYGRID_URI + "GCJ-02"
BD = crs.CITYGRID_URI + "BD-09"
PARIS = (2.35, 48.86)


def _metres(lng0: float, lat0: float, lng1: float, lat1: float) -> float:
    dy = (lat1 - lat0) * 111_320.0
    dx = (lng1 - lng0) * 111_320.0 * math.cos(math.radians(lat0))
    return math.hypot(dx, dy)


def _outside(r: Any, field: str | None = None, status: int = 400) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error_code"] == "crs_offset_outside" and "China" in body["message_en"] and "中国" in body["message_zh"]
    if field is not None:
        assert body["field"] == field


@pytest.fixture(scope="module")
def booths(engine) -> list[tuple[str, float, float]]:  # noqa: ANN001
    pts = [(114.93 + i * 0.002, 30.07 + (i % 4) * 0.002) for i in range(12)]
    with Session(engine) as s, s.begin():
        codes = bulk_create(s, system_as("test-crs"), CLS, "420281",
                            [BulkItem(Point(x, y), {"booth_type": "亭式", "state": "完好"}) for x, y in pts])
    return [(c, x, y) for c, (x, y) in zip(codes, pts, strict=True)]


@pytest.fixture(scope="module")
def room(engine, demo_county) -> dict:  # noqa: ANN001
    with engine.connect() as c:
        return dict(c.execute(text("SELECT code, full_name, ST_X(point) x, ST_Y(point) y FROM addr_node "
                                   "WHERE level='room' ORDER BY code LIMIT 1")).mappings().one())


# --- the registry --------------------------------------------------------------------------------------------------

def test_registry_names_and_uris_are_one_concept() -> None:
    for name in ("gcj02", "GCJ-02", "GCJ02", GCJ):
        assert crs.lookup(name) is crs.GCJ02
    for name in ("bd09", "BD-09", BD):
        assert crs.lookup(name) is crs.BD09
    assert crs.lookup("CGCS2000") is crs.lookup("EPSG:4490") is crs.lookup("http://www.opengis.net/def/crs/EPSG/0/4490")
    assert crs.lookup(None) is crs.CGCS2000 and crs.lookup("CRS84") is crs.CRS84
    assert crs.lookup("EPSG:4547").northing_first and not crs.lookup("EPSG:4547").geographic
    with pytest.raises(Exception) as e:
        crs.lookup("EPSG:3857", "crs")
    assert getattr(e.value, "error_code", "") == "crs_unsupported"
    assert crs.lookup("EPSG:3857", any_epsg=True).srid == 3857


# --- geocoding -----------------------------------------------------------------------------------------------------

def test_geocode_get_in_gcj02_and_bd09_round_trips(client: TestClient, room: dict) -> None:
    plain = client.get("/address/geocode", params={"q": room["full_name"]}).json()["candidates"][0]
    assert plain["point"]["crs"] == "EPSG:4490"
    for name, fwd, back, key in (("gcj02", crs.to_gcj02, crs.from_gcj02, "GCJ-02"),
                                 ("bd09", crs.to_bd09, crs.from_bd09, "BD-09")):
        top = client.get("/address/geocode", params={"q": room["full_name"], "crs": name}).json()["candidates"][0]
        p = top["point"]
        assert p["crs"] == key and p["wgs84"] == plain["point"]["wgs84"]
        ex, ey = fwd(room["x"], room["y"])
        assert abs(p["lon"] - float(ex)) < 1e-6 and abs(p["lat"] - float(ey)) < 1e-6
        bx, by = back(p["lon"], p["lat"])
        assert _metres(room["x"], room["y"], float(bx), float(by)) < 0.5
        assert _metres(room["x"], room["y"], p["lon"], p["lat"]) > 400  # really shifted (~575 m at 大冶)


def test_geocode_projected_and_unknown_crs(client: TestClient, room: dict) -> None:
    p = client.get("/address/geocode", params={"q": room["full_name"], "crs": "EPSG:4547"}).json()["candidates"][0]
    ex, ny = crs.lookup("EPSG:4547").from_storage(room["x"], room["y"])
    assert p["point"]["crs"] == "EPSG:4547" and abs(p["point"]["x"] - float(ex)) < 0.01
    assert abs(p["point"]["y"] - float(ny)) < 0.01
    r = client.get("/address/geocode", params={"q": room["full_name"], "crs": "mars"})
    assert r.status_code == 400 and r.json()["error_code"] == "crs_unsupported" and r.json()["field"] == "crs"
    assert "GCJ-02" in r.json()["message_en"]


def test_geocode_post_list_in_bd09(client: TestClient, room: dict, dept_headers: Callable[..., dict]) -> None:
    r = client.post("/address/geocode", json={"addresses": [room["full_name"], ""], "crs": "bd09"},
                    headers=dept_headers("civil_affairs"))
    assert r.status_code == 200, r.text
    top = r.json()["results"][0]["candidates"][0]
    bx, by = crs.from_bd09(top["point"]["lon"], top["point"]["lat"])
    assert top["point"]["crs"] == "BD-09" and _metres(room["x"], room["y"], float(bx), float(by)) < 0.5
    assert top["level_amap"] == "房间" and top["precise"] is True
    assert r.json()["results"][1]["error"]["error_code"] == "address_empty"


# --- reverse geocoding: the reference vectors go in as GCJ-02 and come out as WGS84/CGCS2000 -------------------------

@pytest.mark.parametrize("v", VECTORS["wgs84_to_gcj02"], ids=lambda v: v["name"])
def test_reverse_reads_gcj02_input_against_the_reference(client: TestClient, v: dict) -> None:
    r = client.get("/address/reverse", params={"x": v["gcj_lng"], "y": v["gcj_lat"], "crs": "gcj02"})
    assert r.status_code == 200, r.text
    p = r.json()["point"]
    assert p["crs"] == "EPSG:4490" and _metres(v["wgs_lng"], v["wgs_lat"], p["lon"], p["lat"]) < 0.5


def test_reverse_in_gcj02_finds_what_cgcs2000_finds(client: TestClient, room: dict) -> None:
    plain = client.get("/address/reverse", params={"x": room["x"], "y": room["y"], "radius": 300}).json()
    gx, gy = crs.to_gcj02(room["x"], room["y"])
    shifted = client.get("/address/reverse", params={"x": float(gx), "y": float(gy), "crs": "gcj02", "radius": 300}).json()
    assert shifted["door"]["address_code"] == plain["door"]["address_code"]
    d = shifted["door"]["point"]
    assert d["crs"] == "GCJ-02"
    dx, dy = crs.from_gcj02(d["lon"], d["lat"])
    p0 = plain["door"]["point"]
    assert _metres(p0["lon"], p0["lat"], float(dx), float(dy)) < 0.5
    # the same numbers read as CGCS2000 are ~575 m away: a missing conversion would be seen
    assert _metres(room["x"], room["y"], float(gx), float(gy)) > 400


def test_reverse_outside_china_is_refused(client: TestClient) -> None:
    for name in ("gcj02", "bd09"):
        _outside(client.get("/address/reverse", params={"x": PARIS[0], "y": PARIS[1], "crs": name}), "x")


# --- objects: created from GCJ-02, read back in GCJ-02 and BD-09 ---------------------------------------------------

@pytest.fixture()
def admin_client(client: TestClient, admin_headers: dict[str, str]) -> Iterator[TestClient]:
    client.headers.update(admin_headers)
    yield client
    for k in admin_headers:
        client.headers.pop(k, None)


def test_object_created_in_gcj02_is_stored_in_cgcs2000_and_read_back(admin_client: TestClient) -> None:
    client = admin_client
    body = {"class_code": CLS, "geometry": {"type": "Point", "coordinates": DAYE["gcj_lng_lat"]}, "crs": "gcj02",
            "attrs": {"booth_type": "半亭式", "state": "完好"}, "division_code": "420281"}
    r = client.post("/objects", json=body)
    assert r.status_code == 201, r.text
    obj = r.json()
    stored = obj["geometry"]["coordinates"]
    assert obj["crs"] == "EPSG:4490" and _metres(*DAYE["wgs_lng_lat"], *stored) < 0.5
    g = client.get(f"/objects/{obj['code']}", params={"crs": "gcj02"}).json()
    assert g["crs"] == "GCJ-02"
    gx, gy = g["geometry"]["coordinates"]
    assert abs(gx - DAYE["gcj_lng_lat"][0]) < 1e-6 and abs(gy - DAYE["gcj_lng_lat"][1]) < 1e-6
    b = client.get(f"/objects/{obj['code']}", params={"crs": "bd09"}).json()
    ex, ey = crs.to_bd09(*stored)
    assert b["crs"] == "BD-09" and abs(b["geometry"]["coordinates"][0] - float(ex)) < 1e-6
    # the object list: bbox given in GCJ-02 around the GCJ-02 point finds it; the same numbers in CGCS2000 do not
    x, y = DAYE["gcj_lng_lat"]
    box = f"{x - 0.0005},{y - 0.0005},{x + 0.0005},{y + 0.0005}"
    found = client.get("/objects", params={"class_code": CLS, "bbox": box, "bbox-crs": "gcj02", "crs": "gcj02"}).json()
    assert [o["code"] for o in found["items"]] == [obj["code"]] and found["items"][0]["crs"] == "GCJ-02"
    assert client.get("/objects", params={"class_code": CLS, "bbox": box}).json()["items"] == []


def test_object_outside_china_in_gcj02_is_refused(admin_client: TestClient) -> None:
    body = {"class_code": CLS, "geometry": {"type": "Point", "coordinates": list(PARIS)}, "crs": "bd09",
            "attrs": {"state": "完好"}, "division_code": "420281"}
    # object creation gathers every problem of the body and answers them together as a 422, like other geometry errors
    _outside(admin_client.post("/objects", json=body), "geometry", 422)
    box = f"{PARIS[0]},{PARIS[1]},{PARIS[0] + 1},{PARIS[1] + 1}"
    _outside(admin_client.get("/objects", params={"bbox": box, "bbox-crs": "gcj02"}), "bbox")


# --- OGC API – Features ----------------------------------------------------------------------------------------------

def test_collections_list_the_crs_uris(client: TestClient, booths: list) -> None:
    col = client.get(f"/ogc/collections/class-{CLS}").json()
    assert GCJ in col["crs"] and BD in col["crs"] and "http://www.opengis.net/def/crs/EPSG/0/4547" in col["crs"]
    assert col["crs"][0] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert GCJ in client.get("/ogc/collections").json()["crs"]
    doc = client.get("/openapi.json").json()
    params = doc["paths"]["/ogc/collections/{cid}/items"]["get"]["parameters"]
    assert any("GCJ-02" in (p.get("description") or "") for p in params if p["name"] == "crs")


def test_items_in_gcj02_and_bd09(client: TestClient, booths: list) -> None:
    by = {c: (x, y) for c, x, y in booths}
    for uri, fwd in ((GCJ, crs.to_gcj02), (BD, crs.to_bd09), ("gcj02", crs.to_gcj02)):
        r = client.get(f"/ogc/collections/class-{CLS}/items", params={"crs": uri, "limit": 100})
        assert r.status_code == 200, r.text
        want = crs.lookup(uri).uri
        assert r.headers["Content-Crs"] == f"<{want}>"
        feats = [f for f in r.json()["features"] if f["id"] in by]
        assert len(feats) == len(booths)
        for f in feats:
            ex, ey = fwd(*by[f["id"]])
            x, y = f["geometry"]["coordinates"]  # longitude first, like CRS84
            assert abs(x - float(ex)) < 1e-6 and abs(y - float(ey)) < 1e-6
    code, x0, y0 = booths[0]
    one = client.get(f"/ogc/collections/class-{CLS}/items/{code}", params={"crs": GCJ})
    assert one.headers["Content-Crs"] == f"<{GCJ}>"
    bx, by_ = crs.from_gcj02(*one.json()["geometry"]["coordinates"])
    assert _metres(x0, y0, float(bx), float(by_)) < 0.5


def test_bbox_crs_gcj02_selects_what_it_covers(client: TestClient, booths: list) -> None:
    # a box around the first three booths, given in GCJ-02: exactly those come back
    pts = [crs.to_gcj02(x, y) for _, x, y in booths[:3]]
    xs, ys = [float(p[0]) for p in pts], [float(p[1]) for p in pts]
    box = f"{min(xs) - 1e-5},{min(ys) - 1e-5},{max(xs) + 1e-5},{max(ys) + 1e-5}"
    want = {c for c, _, _ in booths[:3]}
    got = client.get(f"/ogc/collections/class-{CLS}/items", params={"bbox": box, "bbox-crs": GCJ}).json()
    assert {f["id"] for f in got["features"]} == want
    plain = client.get(f"/ogc/collections/class-{CLS}/items", params={"bbox": box}).json()
    assert {f["id"] for f in plain["features"]} != want  # read as CRS84 the box is ~575 m off
    _outside(client.get(f"/ogc/collections/class-{CLS}/items",
                        params={"bbox": f"{PARIS[0]},{PARIS[1]},3,49", "bbox-crs": BD}), "bbox")


def test_filter_crs_gcj02_and_bd09(client: TestClient, booths: list) -> None:
    # the same box as a CQL2 polygon literal in GCJ-02 and in BD-09: exactly the first three booths
    want = {c for c, _, _ in booths[:3]}
    for uri, fwd in ((GCJ, crs.to_gcj02), (BD, crs.to_bd09)):
        pts = [fwd(x, y) for _, x, y in booths[:3]]
        xs, ys = [float(p[0]) for p in pts], [float(p[1]) for p in pts]
        x0, y0, x1, y1 = min(xs) - 1e-5, min(ys) - 1e-5, max(xs) + 1e-5, max(ys) + 1e-5
        poly = f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"
        for params in ({"filter": f"S_INTERSECTS(geom, {poly})"},
                       {"filter": json.dumps({"op": "s_intersects", "args": [{"property": "geom"}, {"bbox": [x0, y0, x1, y1]}]}),
                        "filter-lang": "cql2-json"}):
            r = client.get(f"/ogc/collections/class-{CLS}/items", params=params | {"filter-crs": uri, "limit": 100})
            assert r.status_code == 200, r.text
            assert {f["id"] for f in r.json()["features"]} == want
            plain = client.get(f"/ogc/collections/class-{CLS}/items", params=params | {"limit": 100}).json()
            assert {f["id"] for f in plain["features"]} != want  # the same numbers in CRS84 are hundreds of metres off
    r = client.get(f"/ogc/collections/class-{CLS}/items",
                   params={"filter": f"S_INTERSECTS(geom, POINT({PARIS[0]} {PARIS[1]}))", "filter-crs": GCJ})
    _outside(r, "filter-crs")


def _gcj_box(points: list[tuple[float, float]]) -> str:
    pts = [crs.to_gcj02(x, y) for x, y in points]
    xs, ys = [float(p[0]) for p in pts], [float(p[1]) for p in pts]
    return f"{min(xs) - 1e-5},{min(ys) - 1e-5},{max(xs) + 1e-5},{max(ys) + 1e-5}"


def _same_shape_shifted(plain: dict, shifted: dict) -> None:
    """`shifted` is `plain` with every vertex through GCJ-02's forward formula (to 1e-6°)."""
    a, b = plain["coordinates"], shifted["coordinates"]
    flat_a = [v for ring in (a if plain["type"] == "Polygon" else [r for poly in a for r in poly]) for v in ring]
    flat_b = [v for ring in (b if shifted["type"] == "Polygon" else [r for poly in b for r in poly]) for v in ring]
    assert len(flat_a) == len(flat_b) > 3
    for (x, y), (gx, gy) in zip(flat_a, flat_b, strict=True):
        ex, ey = crs.to_gcj02(x, y)
        assert abs(gx - float(ex)) < 1e-6 and abs(gy - float(ey)) < 1e-6


def test_aggregate_bbox_crs_and_crs(client: TestClient, booths: list) -> None:
    want = {h3.latlng_to_cell(y, x, 9) for _, x, y in booths[:3]}
    box = _gcj_box([(x, y) for _, x, y in booths[:3]])
    base = {"by": "h3:9", "class": CLS, "bbox": box}
    got = client.get("/aggregate", params=base | {"bbox-crs": GCJ})
    assert got.status_code == 200, got.text
    assert {f["properties"]["h3"] for f in got.json()["features"]} == want
    plain = client.get("/aggregate", params=base).json()
    assert {f["properties"]["h3"] for f in plain["features"]} != want  # the same numbers read as CGCS2000: ~575 m off
    _outside(client.get("/aggregate", params={"by": "h3:9", "bbox": f"{PARIS[0]},{PARIS[1]},3,49", "bbox-crs": BD}),
             "bbox")
    storage = {f["id"]: f["geometry"] for f in client.get("/aggregate", params={"by": "h3:9", "class": CLS}).json()
               ["features"]}
    shifted = client.get("/aggregate", params={"by": "h3:9", "class": CLS, "crs": "gcj02"}).json()
    assert shifted["meta"]["crs"] == GCJ and len(shifted["features"]) == len(storage) > 0
    for f in shifted["features"]:
        _same_shape_shifted(storage[f["id"]], f["geometry"])
    bad = client.get("/aggregate", params={"by": "h3:9", "crs": "EPSG:3857"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "crs_unsupported" and bad.json()["field"] == "crs"


def test_grids_bbox_crs_and_crs(client: TestClient, demo_county) -> None:  # noqa: ANN001
    cells = client.get("/grids", params={"system": "unit", "limit": 3}).json()["features"]
    assert len(cells) == 3
    shifted = client.get("/grids", params={"system": "unit", "limit": 3, "crs": GCJ}).json()
    assert shifted["crs"] == GCJ and [f["id"] for f in shifted["features"]] == [f["id"] for f in cells]
    for a, b in zip(cells, shifted["features"], strict=True):
        _same_shape_shifted(a["geometry"], b["geometry"])
    # a small box inside the first cell, written in GCJ-02: that cell comes back, and the same numbers read as
    # CGCS2000 (about 575 m away) do not select it
    inner = shape(cells[0]["geometry"]).representative_point()
    cx, cy = inner.x, inner.y
    box = _gcj_box([(cx - 1e-5, cy - 1e-5), (cx + 1e-5, cy + 1e-5)])
    inside = client.get("/grids", params={"system": "unit", "bbox": box, "bbox-crs": "gcj02"}).json()["features"]
    assert cells[0]["id"] in {f["id"] for f in inside}
    plain = client.get("/grids", params={"system": "unit", "bbox": box}).json()["features"]
    assert cells[0]["id"] not in {f["id"] for f in plain}


# --- batch results ---------------------------------------------------------------------------------------------------

def test_batch_result_in_gcj02(client: TestClient, room: dict, dept_headers: Callable[..., dict]) -> None:
    headers = dept_headers("civil_affairs")
    data = "地址\n" + room["full_name"] + "\n不存在的地方\n"
    r = client.post("/address/batch", files={"file": ("b.csv", data.encode())}, headers=headers)
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    for _ in range(200):
        if client.get(f"/address/batch/{job}", headers=headers).json()["state"] != "running":
            break
        time.sleep(0.1)
    plain = list(csv.DictReader(io.StringIO(client.get(f"/address/batch/{job}/result", headers=headers)
                                            .content.decode("utf-8-sig"))))
    assert plain[0]["crs"] == "EPSG:4490" and plain[0]["level_amap"] == "房间" and plain[0]["precise"] == "true"
    out = client.get(f"/address/batch/{job}/result", params={"crs": "gcj02"}, headers=headers)
    recs = list(csv.DictReader(io.StringIO(out.content.decode("utf-8-sig"))))
    assert recs[0]["crs"] == "GCJ-02" and recs[1]["status"] == "failed" and recs[1]["lon"] == ""
    ex, ey = crs.to_gcj02(room["x"], room["y"])
    assert abs(float(recs[0]["lon"]) - float(ex)) < 1e-6 and abs(float(recs[0]["lat"]) - float(ey)) < 1e-6
    gj = client.get(f"/address/batch/{job}/result", params={"crs": "bd09", "format": "geojson"}, headers=headers).json()
    assert gj["crs"]["properties"]["name"] == BD
    bx, by = crs.from_bd09(*gj["features"][0]["geometry"]["coordinates"])
    assert _metres(room["x"], room["y"], float(bx), float(by)) < 0.5
    gk = list(csv.DictReader(io.StringIO(client.get(f"/address/batch/{job}/result", params={"crs": "EPSG:4547"},
                                                    headers=headers).content.decode("utf-8-sig"))))
    assert float(gk[0]["x"]) > 400_000 and float(gk[0]["y"]) > 3_000_000 and gk[0]["crs"] == "EPSG:4547"
