"""OGC API – Features: paging by next/prev links, CRS (Part 2), bbox, filters, errors."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import Point
from sqlalchemy import text
from sqlalchemy.orm import Session

from citygrid.registry.bulk import BulkItem, bulk_create
from citygrid.security.principal import SYSTEM, system_as

CLS = "060203"  # 泵站水闸: a class nothing else in the suite creates
N = 57


@pytest.fixture(scope="module")
def pumps(engine) -> list[str]:  # noqa: ANN001
    items = [BulkItem(Point(114.90 + i * 0.001, 30.05 + (i % 5) * 0.001),
                      {"facility_name": f"测试泵站{i}", "facility_type": "排涝泵站" if i % 2 else "节制闸"})
             for i in range(N)]
    with Session(engine) as s, s.begin():
        return bulk_create(s, system_as("test-ogc"), CLS, "420281", items)


def _path(href: str) -> str:
    u = urlsplit(href)
    return f"{u.path}?{u.query}"


def test_landing_conformance_collections(client: TestClient, pumps: list[str]) -> None:
    links = {lk["rel"] for lk in client.get("/ogc").json()["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= links
    conf = client.get("/ogc/conformance").json()["conformsTo"]
    assert any(c.endswith("/conf/crs") for c in conf)
    cols = {c["id"]: c for c in client.get("/ogc/collections").json()["collections"]}
    assert cols[f"class-{CLS}"]["numberOfFeatures"] == N
    assert "http://www.opengis.net/def/crs/EPSG/0/4547" in cols[f"class-{CLS}"]["crs"]


def test_next_links_visit_every_item_once_and_prev_goes_back(client: TestClient, pumps: list[str]) -> None:
    href = f"/ogc/collections/class-{CLS}/items?limit=10"
    seen: list[str] = []
    pages = []
    while href:
        r = client.get(href)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
        j = r.json()
        assert j["numberMatched"] == N and j["numberReturned"] == len(j["features"])
        pages.append(j)
        seen += [f["id"] for f in j["features"]]
        nxt = [lk["href"] for lk in j["links"] if lk["rel"] == "next"]
        href = _path(nxt[0]) if nxt else ""
    assert sorted(seen) == sorted(pumps) and len(seen) == N
    prev = [lk["href"] for lk in pages[2]["links"] if lk["rel"] == "prev"][0]
    back = client.get(_path(prev)).json()
    assert [f["id"] for f in back["features"]] == [f["id"] for f in pages[1]["features"]]


def test_crs_output_matches_pyproj(client: TestClient, pumps: list[str]) -> None:
    code = pumps[3]
    plain = client.get(f"/ogc/collections/class-{CLS}/items/{code}").json()
    lon, lat = plain["geometry"]["coordinates"]
    r = client.get(f"/ogc/collections/class-{CLS}/items/{code}",
                   params={"crs": "http://www.opengis.net/def/crs/EPSG/0/4547"})
    assert r.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4547>"
    north, east = r.json()["geometry"]["coordinates"]  # EPSG:4547 axis order is northing, easting
    ex, ny = Transformer.from_crs(4490, 4547, always_xy=True).transform(lon, lat)
    assert abs(east - ex) < 0.01 and abs(north - ny) < 0.01
    r = client.get(f"/ogc/collections/class-{CLS}/items/{code}", params={"crs": "EPSG:4326"}).json()
    assert r["geometry"]["coordinates"] == pytest.approx([lat, lon], abs=1e-6)
    # RFC 7946: no `crs` member inside geometries (PostGIS adds one for SRID 4490 unless told not to); the CRS is
    # in the Content-Crs header, in the items and the single feature alike
    page = client.get(f"/ogc/collections/class-{CLS}/items", params={"limit": 3}).json()
    for geom in [plain["geometry"], r["geometry"], *(f["geometry"] for f in page["features"])]:
        assert set(geom) == {"type", "coordinates"}, geom


def test_bbox_bbox_crs_and_property_filter(client: TestClient, pumps: list[str]) -> None:
    r = client.get(f"/ogc/collections/class-{CLS}/items", params={"bbox": "114.8995,30.0495,114.9095,30.0545"}).json()
    assert r["numberMatched"] == 10
    t = Transformer.from_crs(4490, 4547, always_xy=True)
    x0, y0 = t.transform(114.8995, 30.0495)
    x1, y1 = t.transform(114.9095, 30.0545)
    r2 = client.get(f"/ogc/collections/class-{CLS}/items",
                    params={"bbox": f"{y0},{x0},{y1},{x1}", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4547"})
    assert r2.json()["numberMatched"] == 10
    r3 = client.get(f"/ogc/collections/class-{CLS}/items", params={"facility_type": "节制闸", "limit": 100}).json()
    assert r3["numberMatched"] == (N + 1) // 2
    assert all(f["properties"]["facility_type"] == "节制闸" for f in r3["features"])


def test_ogc_errors_are_coded(client: TestClient, pumps: list[str]) -> None:
    base = f"/ogc/collections/class-{CLS}/items"
    assert client.get(base, params={"crs": "EPSG:3857"}).json()["error_code"] == "crs_unsupported"
    assert client.get(base, params={"bbox": "a,b,c,d"}).json()["error_code"] == "bbox_invalid"
    assert client.get(base, params={"no_such": "1"}).json()["error_code"] == "property_unknown"
    assert client.get(base, params={"datetime": "yesterday"}).json()["error_code"] == "datetime_invalid"
    # Part 1 /req/core/query-param-invalid: 400, in the error shape (ogctests ast20 sends limit=unlimited)
    for bad in ({"limit": 0}, {"limit": "unlimited"}):
        r = client.get(base, params=bad)
        assert r.status_code == 400 and r.json()["field"] == "limit", r.text
    landing = client.get("/ogc/", follow_redirects=False)  # answered, not redirected
    assert landing.status_code == 200 and any(link["rel"] == "conformance" for link in landing.json()["links"])
    assert client.get("/ogc/collections/nope/items").status_code == 404
    assert client.get(f"{base}/123").status_code == 404


def test_items_etag_304_and_page_follows_writes_to_its_layer_only(client: TestClient, engine, pumps: list[str]  # noqa: ANN001
                                                                  ) -> None:
    from citygrid.registry import objects

    url = f"/ogc/collections/class-{CLS}/items"
    params = {"limit": 5, "bbox": "114.8995,30.0495,114.9045,30.0545"}
    r1 = client.get(url, params=params)
    etag = r1.headers["ETag"]
    assert r1.headers["Cache-Control"] == "no-cache"
    assert client.get(url, params=params, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(url, params=params, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    # another query of the same layer is another page with another tag, never the cached one
    r_other = client.get(url, params=params | {"limit": 4})
    assert r_other.headers["ETag"] != etag and r_other.json()["numberReturned"] == 4
    # a write to another layer leaves this page valid
    with Session(engine) as s, s.begin():
        bulk_create(s, system_as("test-ogc"), "070202", "420281",
                    [BulkItem(Point(114.9001, 30.0501), {"poi_name": "测试点", "poi_category": "其他"})])
    assert client.get(url, params=params, headers={"If-None-Match": etag}).status_code == 304
    # a write to this layer: new tag, and the page shows the change at once
    target = r1.json()["features"][0]["id"]
    with Session(engine) as s, s.begin():
        objects.update(s, system_as("test-ogc"), target, attrs={"facility_name": "改名泵站"})
    r2 = client.get(url, params=params, headers={"If-None-Match": etag})
    assert r2.status_code == 200 and r2.headers["ETag"] != etag
    feat = next(f for f in r2.json()["features"] if f["id"] == target)
    assert feat["properties"]["facility_name"] == "改名泵站"
    assert r2.json()["numberMatched"] == r1.json()["numberMatched"]


def test_grid_systems_and_door_plates_are_collections(client: TestClient, engine, demo_county: dict  # noqa: ANN001
                                                      ) -> None:
    from citygrid.grid import multi

    cols = {c["id"]: c for c in client.get("/ogc/collections").json()["collections"]}
    assert {"grids-unit", "grids-governance", "doorplates"} <= set(cols)
    with engine.connect() as c:
        n_unit = c.execute(text("SELECT count(*) FROM grid WHERE system = 'unit'")).scalar()
        n_door = c.execute(text("SELECT count(*) FROM addr_node WHERE level = 'door' AND status = 'active' "
                                "AND point IS NOT NULL")).scalar()
        some = c.execute(text("SELECT code, ST_X(point), ST_Y(point), village_code FROM addr_node WHERE level = 'door' "
                              "AND point IS NOT NULL ORDER BY code LIMIT 1")).one()
    assert cols["grids-unit"]["numberOfFeatures"] == n_unit and cols["doorplates"]["numberOfFeatures"] == n_door
    assert cols["doorplates"]["geometryType"] == "Point"

    # door plates: bbox, a CQL2 filter on a queryable, single item in a projected CRS
    r = client.get("/ogc/collections/doorplates/items", params={
        "bbox": f"{some[1] - 1e-4},{some[2] - 1e-4},{some[1] + 1e-4},{some[2] + 1e-4}", "limit": 50}).json()
    assert some[0] in [f["id"] for f in r["features"]]
    r = client.get("/ogc/collections/doorplates/items", params={"filter": f"village_code = '{some[3]}'",
                                                                "limit": 1000}).json()
    assert r["numberMatched"] >= 1 and all(f["properties"]["village_code"] == some[3] for f in r["features"])
    one = client.get(f"/ogc/collections/doorplates/items/{some[0]}", params={"crs": "EPSG:4547"})
    north, east = one.json()["geometry"]["coordinates"]
    ex, ny = Transformer.from_crs(4490, 4547, always_xy=True).transform(some[1], some[2])
    assert abs(east - ex) < 0.01 and abs(north - ny) < 0.01
    q = client.get("/ogc/collections/doorplates/queryables").json()
    assert {"full_name", "number", "village_code", "geom"} <= set(q["properties"])
    assert client.get("/ogc/collections/doorplates/items", params={"datetime": "2020-01-01T00:00:00Z"}
                      ).json()["error_code"] == "datetime_unsupported"

    # grid cells: paging by next links, numberMatched, and a page that follows an import of that system
    href = "/ogc/collections/grids-governance/items?limit=500"
    seen: list[str] = []
    while href:
        j = client.get(href).json()
        seen += [f["id"] for f in j["features"]]
        nxt = [lk["href"] for lk in j["links"] if lk["rel"] == "next"]
        href = _path(nxt[0]) if nxt else ""
    with engine.connect() as c:
        gov = {r[0] for r in c.execute(text("SELECT code FROM grid WHERE system = 'governance'")).all()}
    assert len(seen) == len(gov) and set(seen) == gov
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": f"T{i}", "name": f"测试格{i}"},
         "geometry": {"type": "Polygon", "coordinates": [[[114.9 + i * 0.01, 30.0], [114.91 + i * 0.01, 30.0],
                                                          [114.91 + i * 0.01, 30.01], [114.9 + i * 0.01, 30.0]]]}}
        for i in range(3)]}
    with engine.begin() as c:
        multi.import_system(c, SYSTEM, "ogctest", fc)
    r1 = client.get("/ogc/collections/grids-ogctest/items")
    assert r1.json()["numberMatched"] == 3
    fc["features"] = fc["features"][:2]
    with engine.begin() as c:
        multi.import_system(c, SYSTEM, "ogctest", fc)
    r2 = client.get("/ogc/collections/grids-ogctest/items", headers={"If-None-Match": r1.headers["ETag"]})
    assert r2.status_code == 200 and r2.json()["numberMatched"] == 2
    assert client.get("/ogc/collections/grids-nosuch/items").status_code == 404


# --- extents: the data's box, not China's ------------------------------------------------------------------------

BOOTH = "010803"  # 自动售货机: only the extent test creates them
CHINA = (73.0, 3.0, 136.0, 54.0)
HAZARD = "080201"  # 重大危险源: `public: false`, read by cadres in their village only


def _bbox(doc: dict) -> list[float]:
    assert doc["extent"]["spatial"]["crs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    [box] = doc["extent"]["spatial"]["bbox"]
    return box


def _inside(box: list[float], lon: float, lat: float) -> bool:
    return box[0] <= lon <= box[2] and box[1] <= lat <= box[3]


def test_collection_extent_is_its_data_and_follows_writes(client: TestClient, engine) -> None:  # noqa: ANN001
    from citygrid.registry import objects

    pts = [(114.91 + i * 0.003, 30.07 + (i % 4) * 0.002) for i in range(9)]  # lon 114.91..114.934, lat 30.07..30.076
    with Session(engine) as s, s.begin():
        codes = bulk_create(s, system_as("test-ogc"), BOOTH, "420281", [BulkItem(Point(*p), {"state": "完好"}) for p in pts])
    url = f"/ogc/collections/class-{BOOTH}"
    doc = client.get(url).json()
    assert _bbox(doc) == pytest.approx([114.91, 30.07, 114.934, 30.076], abs=1e-9)
    listed = {c["id"]: c for c in client.get("/ogc/collections").json()["collections"]}
    assert _bbox(listed[f"class-{BOOTH}"]) == _bbox(doc)
    box = _bbox(doc)
    assert CHINA[0] < box[0] and CHINA[1] < box[1] and box[2] < CHINA[2] and box[3] < CHINA[3]
    items = client.get(f"{url}/items", params={"limit": 100}).json()["features"]
    assert len(items) == 9 and all(_inside(box, *f["geometry"]["coordinates"]) for f in items)
    with engine.connect() as c:
        first = c.execute(text("SELECT min(valid_from) FROM city_object WHERE class_code = :c"), {"c": BOOTH}).scalar()
    [[start, end]] = doc["extent"]["temporal"]["interval"]
    assert end is None and start.replace("Z", "+00:00") == first.isoformat()

    # a move east grows the box; retiring that object shrinks it back (the layer version moved both times)
    east = codes[8]  # at 114.934, 30.07
    with Session(engine) as s, s.begin():
        objects.update(s, system_as("test-ogc"), east, geometry={"type": "Point", "coordinates": [114.95, 30.08]})
    assert _bbox(client.get(url).json()) == pytest.approx([114.91, 30.07, 114.95, 30.08], abs=1e-9)
    listed = {c["id"]: c for c in client.get("/ogc/collections").json()["collections"]}
    assert _bbox(listed[f"class-{BOOTH}"]) == pytest.approx([114.91, 30.07, 114.95, 30.08], abs=1e-9)
    with Session(engine) as s, s.begin():
        objects.retire(s, system_as("test-ogc"), east)
    assert _bbox(client.get(url).json()) == pytest.approx([114.91, 30.07, 114.931, 30.076], abs=1e-9)


def test_an_empty_layer_has_the_county_outline_as_extent(engine, demo_county: dict) -> None:  # noqa: ANN001
    from citygrid.layers import extent, sources
    from citygrid.security.principal import SYSTEM as P

    layer = sources.find("class-010804")  # 健身设施: nobody creates any
    assert layer is not None
    view = layer.view(P)
    assert view is not None
    with engine.connect() as c:
        assert layer.count(c) == 0
        got = extent.of(c, layer, view)
        county = c.execute(text("SELECT ST_XMin(geom::box2d), ST_YMin(geom::box2d), ST_XMax(geom::box2d), "
                                "ST_YMax(geom::box2d) FROM division WHERE code = '420281'")).one()
    assert got.fallback and got.start is None
    assert got.bbox == pytest.approx(tuple(county), abs=1e-9)  # 大冶市, the demo county with township outlines
    assert CHINA[0] < got.bbox[0] and got.bbox[2] < CHINA[2]
    assert "temporal" not in got.ogc()


def test_a_restricted_class_extent_covers_only_what_the_caller_may_see(client: TestClient, engine, caller,  # noqa: ANN001
                                                                       places: dict) -> None:
    a, b = places["a"], places["b"]
    with Session(engine) as s, s.begin():
        hz = {"state": "完好", "source_name": "测试危险源", "hazard_grade": "四级"}
        bulk_create(s, system_as("test-ogc"), HAZARD, "420281", [BulkItem(Point(*a["pt"]), hz),
                                                                 BulkItem(Point(*b["pt"]), hz)])
    cadre = caller(f"cadre@{a['village']}").headers
    admin = caller("admin", clearance="L4").headers
    url = f"/ogc/collections/class-{HAZARD}"
    assert client.get(url).status_code == 404  # the public does not see the class at all
    mine, everything = _bbox(client.get(url, headers=cadre).json()), _bbox(client.get(url, headers=admin).json())
    listed = {c["id"]: c for c in client.get("/ogc/collections", headers=cadre).json()["collections"]}
    assert _bbox(listed[f"class-{HAZARD}"]) == mine
    assert _inside(mine, *a["pt"]) and not _inside(mine, *b["pt"])  # nothing tells where b's hazard is
    assert _inside(everything, *a["pt"]) and _inside(everything, *b["pt"])
    with engine.connect() as c:  # exactly the hazards of the cadre's village
        expect = c.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e "
                                "FROM city_object WHERE class_code = :c AND status = 'active' AND village_code = :v) x"),
                           {"c": HAZARD, "v": a["village"]}).one()
    assert mine == pytest.approx(list(expect), abs=1e-9)
