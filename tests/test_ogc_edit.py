"""OGC API – Features Part 4 on object-class collections: create, replace, update and delete over plain HTTP in
several CRSs, optimistic locking (ETag/If-Match, If-Unmodified-Since), rights as `/objects`, the registry's
history, audit and feed, and OWSLib's transaction calls against the live server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.conftest import Caller

CLS = "040302"  # 街头坐椅 (landscaping): no other test creates it
COL = f"/ogc/collections/class-{CLS}/items"
GEOJSON = {"Content-Type": "application/geo+json"}
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


def _feature(lon: float, lat: float, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"name": "测试坐椅", "state": "完好"} | props}


@pytest.fixture(scope="module")
def editor(caller: Callable[..., Caller]) -> dict[str, str]:
    return caller("department:landscaping@420281").headers


@pytest.fixture(scope="module")
def pt(places: dict) -> tuple[float, float]:
    x, y = places["a"]["pt"]
    return float(x), float(y)


def _stored(engine: Engine, code: str) -> Any:
    with engine.connect() as c:
        return c.execute(text("SELECT version, status, attrs, ST_X(geom) x, ST_Y(geom) y, name FROM city_object "
                              "WHERE code = :c"), {"c": code}).one()


def _create(client: TestClient, headers: dict[str, str], pt: tuple[float, float], **props: Any) -> str:
    r = client.post(COL, json=_feature(*pt, **props), headers=headers | GEOJSON)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_create_in_crs84_answers_201_with_location_etag_and_the_feature(client: TestClient, editor: dict,
                                                                         engine: Engine, pt: tuple) -> None:
    r = client.post(COL, json=_feature(*pt, remark="新装"), headers=editor | GEOJSON)
    assert r.status_code == 201, r.text
    feat = r.json()
    code = feat["id"]
    assert len(code) == 21 and code[6:12] == CLS
    assert r.headers["location"].endswith(f"{COL}/{code}")
    assert r.headers["etag"].startswith('"v1-') and r.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    assert feat["properties"]["remark"] == "新装" and feat["properties"]["name"] == "测试坐椅"
    row = _stored(engine, code)
    assert (row.version, row.status) == (1, "active") and abs(row.x - pt[0]) < 1e-9 and abs(row.y - pt[1]) < 1e-9
    got = client.get(r.headers["location"].split("testserver")[-1])
    assert got.status_code == 200 and got.headers["etag"] == r.headers["etag"] and got.headers["last-modified"]
    assert client.get(f"{COL}/{code}", headers={"If-None-Match": r.headers["etag"]}).status_code == 304


def test_create_in_epsg_4490_reads_latitude_first(client: TestClient, editor: dict, engine: Engine,
                                                  pt: tuple) -> None:
    body = _feature(pt[1], pt[0])  # EPSG:4490's axis order (Part 2): latitude, longitude
    r = client.post(COL, json=body, headers=editor | GEOJSON | {"Content-Crs": f"<{EPSG}4490>"})
    assert r.status_code == 201, r.text
    row = _stored(engine, r.json()["id"])
    assert abs(row.x - pt[0]) < 1e-9 and abs(row.y - pt[1]) < 1e-9
    assert r.json()["geometry"]["coordinates"] == pytest.approx([pt[1], pt[0]], abs=1e-7)  # answered in 4490 too


def test_create_replace_update_in_a_projected_crs(client: TestClient, editor: dict, engine: Engine,
                                                  pt: tuple) -> None:
    """EPSG:4547 (CGCS2000 / 3-degree Gauss-Kruger CM 114E, the zone of 大冶): northing first, metres."""
    to_gk = Transformer.from_crs("EPSG:4490", "EPSG:4547", always_xy=True)
    e, n = to_gk.transform(*pt)
    r = client.post(COL, json=_feature(n, e), headers=editor | GEOJSON | {"Content-Crs": f"<{EPSG}4547>"})
    assert r.status_code == 201, r.text
    code, tag = r.json()["id"], r.headers["etag"]
    row = _stored(engine, code)
    assert abs(row.x - pt[0]) < 1e-7 and abs(row.y - pt[1]) < 1e-7
    moved = _feature(n + 10, e + 5, name="移位坐椅")
    r = client.put(f"{COL}/{code}", json=moved, headers=editor | GEOJSON | {"Content-Crs": f"{EPSG}4547",
                                                                            "If-Match": tag})
    assert r.status_code == 200, r.text
    x, y = Transformer.from_crs("EPSG:4547", "EPSG:4490", always_xy=True).transform(e + 5, n + 10)
    row = _stored(engine, code)
    assert row.version == 2 and row.name == "移位坐椅" and abs(row.x - x) < 1e-8 and abs(row.y - y) < 1e-8
    assert r.headers["etag"] != tag and r.headers["etag"].startswith('"v2-')
    r = client.patch(f"{COL}/{code}", json={"state": "破损"}, headers=editor | {
        "Content-Type": "application/merge-patch+json", "If-Match": r.headers["etag"]})
    assert r.status_code == 200, r.text
    row = _stored(engine, code)
    assert row.version == 3 and row.attrs["state"] == "破损" and abs(row.x - x) < 1e-8  # geometry untouched


def test_unsupported_content_crs_and_media_type_are_refused(client: TestClient, editor: dict, pt: tuple) -> None:
    r = client.post(COL, json=_feature(*pt), headers=editor | GEOJSON | {"Content-Crs": "<EPSG:3857>"})
    assert r.status_code == 400 and r.json()["error_code"] == "crs_unsupported" and r.json()["field"] == "Content-Crs"
    r = client.post(COL, content=b"<Feature/>", headers=editor | {"Content-Type": "application/xml"})
    assert r.status_code == 415 and r.json()["error_code"] == "media_type_unsupported"
    r = client.post(COL, json={"type": "FeatureCollection", "features": []}, headers=editor | GEOJSON)
    assert r.status_code == 400 and r.json()["error_code"] == "feature_body_invalid"


def test_replace_removes_left_out_attributes_and_patch_null_removes_one(client: TestClient, editor: dict,
                                                                        engine: Engine, pt: tuple) -> None:
    code = _create(client, editor, pt, remark="旧备注", dept_owner="园林处")
    r = client.put(f"{COL}/{code}", json=_feature(*pt, dept_owner="园林处"), headers=editor | GEOJSON)
    assert r.status_code == 200, r.text
    attrs = _stored(engine, code).attrs
    assert "remark" not in attrs and attrs["dept_owner"] == "园林处"
    r = client.patch(f"{COL}/{code}", json={"type": "Feature", "properties": {"dept_owner": None}}, headers=editor)
    assert r.status_code == 200, r.text
    assert "dept_owner" not in _stored(engine, code).attrs and "dept_owner" not in r.json()["properties"]


def test_stale_if_match_is_412_and_changes_nothing(client: TestClient, editor: dict, engine: Engine,
                                                   pt: tuple) -> None:
    code = _create(client, editor, pt)
    stale = client.get(f"{COL}/{code}").headers["etag"]
    assert client.patch(f"{COL}/{code}", json={"state": "破损"}, headers=editor | {"If-Match": stale}).status_code == 200
    before = _stored(engine, code)
    for method, kw in (("PUT", {"json": _feature(*pt, name="覆盖")}), ("PATCH", {"json": {"state": "丢失"}}),
                       ("DELETE", {})):
        r = client.request(method, f"{COL}/{code}", headers=editor | {"If-Match": stale}, **kw)
        assert r.status_code == 412, (method, r.text)
        body = r.json()
        assert body["error_code"] == "feature_precondition_failed" and body["field"] == "If-Match"
        assert body["message_zh"] and body["message_en"] and "row" in body
    assert _stored(engine, code) == before
    r = client.patch(f"{COL}/{code}", json={"state": "丢失"}, headers=editor | {"If-Match": "*"})
    assert r.status_code == 200
    r = client.patch(f"{COL}/{code}", json={"state": "完好"}, headers=editor | {"If-Match": "v1"})
    assert r.status_code == 400 and r.json()["error_code"] == "precondition_invalid"
    old = "Mon, 01 Jan 2024 00:00:00 GMT"
    r = client.patch(f"{COL}/{code}", json={"state": "完好"}, headers=editor | {"If-Unmodified-Since": old})
    assert r.status_code == 412 and _stored(engine, code).attrs["state"] == "丢失"
    r = client.patch(f"{COL}/{code}", json={"state": "完好"},
                     headers=editor | {"If-Unmodified-Since": client.get(f"{COL}/{code}").headers["last-modified"]})
    assert r.status_code == 200


def test_delete_retires_the_object_and_keeps_its_code(client: TestClient, editor: dict, engine: Engine,
                                                      pt: tuple) -> None:
    code = _create(client, editor, pt)
    tag = client.get(f"{COL}/{code}").headers["etag"]
    r = client.delete(f"{COL}/{code}", headers=editor | {"If-Match": tag})
    assert r.status_code == 204 and r.content == b""
    assert _stored(engine, code).status == "retired"
    assert client.get(f"{COL}/{code}").json()["properties"]["status"] == "retired"
    ids = [f["id"] for f in client.get(COL, params={"limit": 1000}).json()["features"]]
    assert code not in ids
    assert client.delete(f"{COL}/{code}", headers=editor).status_code == 409
    assert client.delete(f"{COL}/420281040302999999990", headers=editor).status_code == 404


def test_writes_reach_history_audit_and_the_feed(client: TestClient, editor: dict, admin_headers: dict,
                                                 engine: Engine, pt: tuple) -> None:
    since = client.get("/changes", params={"since": "now"}, headers=admin_headers).json()["cursor"]
    code = _create(client, editor, pt)
    client.patch(f"{COL}/{code}", json={"state": "破损"}, headers=editor)
    client.delete(f"{COL}/{code}", headers=editor)
    hist = client.get(f"/objects/{code}/history", headers=admin_headers).json()["versions"]
    assert [v["op"] for v in hist] == ["create", "update", "retire"]
    assert hist[1]["reason"] == "OGC API PATCH"
    with engine.connect() as c:
        acts = c.execute(text("SELECT action FROM audit_log WHERE target = :t ORDER BY seq"), {"t": code}).scalars()
        assert list(acts) == ["create", "update", "retire"]
    entries: list[dict[str, Any]] = []
    for _ in range(20):
        page = client.get("/changes", params={"since": since}, headers=admin_headers).json()
        entries += page["entries"]
        since = page["cursor"]
        if not page["entries"]:
            break
    assert [e["kind"] for e in entries if e["code"] == code] == ["created", "updated", "retired"]


def test_invalid_attributes_are_400_naming_the_property(client: TestClient, editor: dict, pt: tuple) -> None:
    r = client.post(COL, json=_feature(*pt, state="飞走了"), headers=editor | GEOJSON)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "properties.state"
    code = _create(client, editor, pt)
    r = client.patch(f"{COL}/{code}", json={"no_such_attribute": 1}, headers=editor)
    assert r.status_code == 400 and r.json()["field"] == "properties.no_such_attribute", r.text
    r = client.put(f"{COL}/{code}", json={"type": "Feature", "properties": {"state": "完好"}}, headers=editor)
    assert r.status_code == 400 and r.json()["error_code"] == "geom_missing"
    r = client.put(f"{COL}/{code}", json=_feature(*pt) | {"id": "420281040302000000001"}, headers=editor)
    assert r.status_code == 400 and r.json()["error_code"] == "feature_id_mismatch"


def test_rights_are_those_of_objects(client: TestClient, caller: Callable[..., Caller], editor: dict,
                                     places: dict, pt: tuple) -> None:
    code = _create(client, editor, pt)
    reader = caller(f"reviewer@{places['a']['township']}").headers
    other = caller("department:housing@420281").headers
    elsewhere = caller("department:landscaping@420202").headers
    calls = (("POST", COL, _feature(*pt)), ("PUT", f"{COL}/{code}", _feature(*pt)),
             ("PATCH", f"{COL}/{code}", {"state": "破损"}), ("DELETE", f"{COL}/{code}", None))
    for method, url, body in calls:
        r = client.request(method, url, json=body)
        assert r.status_code == 401 and r.json()["error_code"] == "unauthenticated", (method, r.text)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        for who in (reader, other, elsewhere):
            r = client.request(method, url, json=body, headers=who)
            assert r.status_code == 403 and r.json()["error_code"] == "forbidden", (method, r.text)
    assert client.get(f"{COL}/{code}").json()["properties"]["version"] == 1


def test_read_only_collections_answer_405_with_allow(client: TestClient, admin_headers: dict,
                                                     demo_county: dict) -> None:
    cols = [c["id"] for c in client.get("/ogc/collections").json()["collections"]]
    for cid in [c for c in cols if not c.startswith("class-")][:3] or ["divisions"]:
        r = client.post(f"/ogc/collections/{cid}/items", json=_feature(114.9, 30.1), headers=admin_headers)
        assert r.status_code == 405 and r.headers["allow"] == "GET", (cid, r.text)
        assert r.json()["error_code"] == "collection_read_only"
        r = client.delete(f"/ogc/collections/{cid}/items/420281", headers=admin_headers)
        assert r.status_code == 405 and r.headers["allow"] == "GET"
    assert client.post("/ogc/collections/class-999999/items", json=_feature(114.9, 30.1),
                       headers=admin_headers).status_code == 404


def test_conformance_and_openapi_declare_part_4(client: TestClient) -> None:
    conf = client.get("/ogc/conformance").json()["conformsTo"]
    for c in ("create-replace-delete", "update", "features", "optimistic-locking-etags"):
        assert f"http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/{c}" in conf
    paths = client.get("/openapi.json").json()["paths"]
    item = paths["/ogc/collections/{cid}/items/{fid}"]
    assert {"put", "patch", "delete"} <= set(item)
    assert {"400", "401", "403", "404", "409", "412", "415"} <= set(item["put"]["responses"])
    assert "application/merge-patch+json" in item["patch"]["requestBody"]["content"]
    assert "201" in paths["/ogc/collections/{cid}/items"]["post"]["responses"]


def test_owslib_creates_updates_and_deletes_with_a_key_and_is_refused_without(
        live_server: str, editor: dict, engine: Engine, pt: tuple, places: dict) -> None:
    from owslib import ogcapi
    from owslib.ogcapi.features import Features

    saved = dict(ogcapi.REQUEST_HEADERS)  # OWSLib keeps its headers in one module-level dict: restore it after
    try:
        anonymous = Features(live_server + "/ogc")
        with pytest.raises(RuntimeError, match="unauthenticated"):
            anonymous.collection_item_create(f"class-{CLS}", _feature(*pt))
        api = Features(live_server + "/ogc", headers=dict(editor))
        assert api.collection_item_create(f"class-{CLS}", _feature(*pt, name="OWSLib 坐椅")) is True
        location = api.response_headers["Location"]
        code = location.rsplit("/", 1)[1]
        assert _stored(engine, code).name == "OWSLib 坐椅"
        assert api.collection_item(f"class-{CLS}", code)["properties"]["name"] == "OWSLib 坐椅"
        assert api.collection_item_update(f"class-{CLS}", code, _feature(*pt, name="改名", state="破损")) is True
        row = _stored(engine, code)
        assert (row.version, row.name, row.attrs["state"]) == (2, "改名", "破损")
        ogcapi.REQUEST_HEADERS.pop("X-API-Key", None)
        ogcapi.REQUEST_HEADERS.pop("Content-Type", None)
        with pytest.raises(RuntimeError, match="unauthenticated"):
            Features(live_server + "/ogc").collection_item_delete(f"class-{CLS}", code)
        assert _stored(engine, code).status == "active"
        assert Features(live_server + "/ogc", headers=dict(editor)).collection_item_delete(f"class-{CLS}", code)
        assert _stored(engine, code).status == "retired"
    finally:
        ogcapi.REQUEST_HEADERS.clear()
        ogcapi.REQUEST_HEADERS.update(saved)


def test_two_editors_with_one_etag_one_wins_the_other_gets_412(live_server: str, editor: dict, engine: Engine,
                                                                pt: tuple) -> None:
    """Concurrent PATCHes over HTTP carrying the same If-Match: the row lock makes them take turns, so exactly one
    writes and the other is refused (no lost update)."""
    import threading

    import httpx

    with httpx.Client(base_url=live_server, headers=editor, timeout=30) as http:
        r = http.post(COL, json=_feature(*pt))
        assert r.status_code == 201, r.text
        code, tag = r.json()["id"], r.headers["etag"]
        statuses: dict[str, int] = {}
        start = threading.Barrier(2)

        def edit(state: str) -> None:
            start.wait()
            statuses[state] = http.patch(f"{COL}/{code}", json={"state": state}, headers={"If-Match": tag}).status_code

        threads = [threading.Thread(target=edit, args=(s,)) for s in ("破损", "丢失")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(statuses.values()) == [200, 412], statuses
    winner = next(s for s, code_ in statuses.items() if code_ == 200)
    row = _stored(engine, code)
    assert row.version == 2 and row.attrs["state"] == winner


def test_editing_a_redacted_copy_keeps_what_the_caller_could_not_see(
        client: TestClient, caller: Callable[..., Caller], admin_headers: dict, engine: Engine, pt: tuple) -> None:
    """A department below the personal grant and L3 sees owner fields masked and the certificate number not at all:
    putting its copy back changes what it changed and neither wipes nor overwrites the rest with masks."""
    house = "050201"
    r = client.post("/objects", json={"class_code": house, "geometry": {"type": "Point", "coordinates": list(pt)},
                                      "division_code": "420281", "attrs": {
                                          "house_use": "自住", "owner_name": "张三丰", "owner_phone": "13812345678",
                                          "certificate_no": "鄂(2024)大冶市不动产权第0001号"}}, headers=admin_headers)
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    police = caller("department:public_security@420281", clearance="L2").headers
    got = client.get(f"/ogc/collections/class-{house}/items/{code}", headers=police)
    assert got.status_code == 200, got.text
    props = got.json()["properties"]
    assert props["owner_phone"] == "138****5678" and "certificate_no" not in props
    copy = {"type": "Feature", "geometry": got.json()["geometry"], "properties": props | {"house_use": "出租"}}
    r = client.put(f"/ogc/collections/class-{house}/items/{code}", json=copy,
                   headers=police | {"If-Match": got.headers["etag"]})
    assert r.status_code == 200, r.text
    attrs = _stored(engine, code).attrs
    assert attrs["house_use"] == "出租" and attrs["owner_phone"] == "13812345678" and attrs["owner_name"] == "张三丰"
    assert attrs["certificate_no"] == "鄂(2024)大冶市不动产权第0001号"
    r = client.patch(f"/ogc/collections/class-{house}/items/{code}", json={"owner_phone": "13900000000"},
                     headers=police)
    assert r.status_code == 200 and _stored(engine, code).attrs["owner_phone"] == "13900000000"  # may write it
