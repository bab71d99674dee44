"""Object registry over HTTP: create with a code, validate, version history, retire, split, merge, bad input.
The calls are an admin's unless a test says otherwise (rights are tests/test_security_roles.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from citygrid.catalog import get_catalog
from citygrid.coding.scheme import unified_scheme

IN_DAYE = (114.97, 30.10)


@pytest.fixture()
def client(client: TestClient, admin_headers: dict[str, str]) -> Iterator[TestClient]:
    client.headers.update(admin_headers)
    yield client
    for k in admin_headers:
        client.headers.pop(k, None)


def _cls(name: str) -> Any:
    return next(c for c in get_catalog().classes.values() if c.name == name)


def _square(x: float, y: float, d: float = 0.0002) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]}


LAMP = _cls("路灯")
BUILDING = _cls("建筑物")


def _lamp(client: TestClient, **over: Any) -> dict[str, Any]:
    body = {"class_code": LAMP.code, "geometry": {"type": "Point", "coordinates": list(IN_DAYE)},
            "attrs": {"state": "完好"}, "division_code": "420281"} | over
    r = client.post("/objects", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _building_attrs() -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for a in BUILDING.attributes:
        if not a.required:
            continue
        if a.type == "enum":
            attrs[a.field] = a.enum[0]
        elif a.type in ("integer", "number"):
            attrs[a.field] = int(a.min if a.min is not None else 1) + 1
        else:
            attrs[a.field] = "测试"
    return attrs


def test_create_assigns_a_valid_code_that_codes_endpoint_explains(client: TestClient, admin: Any) -> None:
    obj = _lamp(client)
    code = obj["code"]
    assert len(code) == 21 and unified_scheme().validate(code) == []
    assert code.startswith("420281" + LAMP.code)
    assert obj["version"] == 1 and obj["created_by"] == admin.name and obj["status"] == "active"
    assert obj["component_code"] and obj["component_code"].startswith("420281" + LAMP.component_code)
    r = client.get(f"/codes/{code}").json()
    assert r["valid"] and r["division"]["name"] == "大冶市" and r["class"]["name"] == "路灯"
    assert [s["name"] for s in r["segments"]] == ["division", "class", "serial", "check"]
    assert r["object"]["code"] == code and r["status"] == "active"
    # the GB/T 30428.2 alias resolves to the same object
    assert client.get(f"/objects/{obj['component_code']}").json()["code"] == code


def test_township_is_derived_from_location_when_only_county_given(client: TestClient) -> None:
    obj = _lamp(client, division_code=None)
    assert obj["division_code"] == "420281"


def test_malformed_code_lists_every_problem(client: TestClient) -> None:
    r = client.get("/codes/99999999999900000A")
    assert r.status_code == 400
    kinds = {e["error_code"] for e in r.json()["errors"]}
    assert {"code_length", "code_characters", "code_division_unknown", "code_class_unknown"} <= kinds
    good = _lamp(client)["code"]
    bad = good[:-1] + str((int(good[-1]) + 3) % 10)
    r = client.get(f"/codes/{bad}")
    assert r.status_code == 400 and r.json()["error_code"] == "code_check_digit"
    unissued = unified_scheme().encode(division="420281", **{"class": LAMP.code}, serial=99_999_990)
    r = client.get(f"/codes/{unissued}")
    assert r.status_code == 200 and r.json()["status"] == "not_issued" and r.json()["object"] is None


def test_attribute_and_geometry_problems_are_all_reported(client: TestClient) -> None:
    body = {"class_code": LAMP.code, "geometry": {"type": "LineString", "coordinates": [[114.9, 30.1], [114.91, 30.1]]},
            "attrs": {"state": "坏了", "no_such_field": 1}, "division_code": "420281"}
    r = client.post("/objects", json=body)
    assert r.status_code == 422
    errs = r.json()["errors"]
    fields = {e["field"] for e in errs}
    assert {"attrs.state", "attrs.no_such_field", "geometry"} <= fields
    assert all(e["message_zh"] and e["message_en"] for e in errs)


def test_invalid_geometry_reason_and_location_checks(client: TestClient) -> None:
    bow = {"type": "Polygon", "coordinates": [[[114.97, 30.1], [114.98, 30.11], [114.98, 30.1], [114.97, 30.11],
                                               [114.97, 30.1]]]}
    r = client.post("/objects", json={"class_code": BUILDING.code, "geometry": bow, "attrs": _building_attrs(),
                                      "division_code": "420281"})
    assert r.status_code == 422 and r.json()["error_code"] == "geom_invalid"
    assert "Self-intersection" in r.json()["message_en"]
    r = client.post("/objects", json={"class_code": LAMP.code, "geometry": {"type": "Point", "coordinates": [116.4, 39.9]},
                                      "attrs": {"state": "完好"}, "division_code": "420281"})
    assert r.status_code == 400 and r.json()["error_code"] == "geom_outside_division"
    r = client.post("/objects", json={"class_code": LAMP.code, "geometry": {"type": "Point", "coordinates": [0, 0]},
                                      "attrs": {"state": "完好"}})
    assert r.status_code == 422 and r.json()["error_code"] == "geom_out_of_range"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"class_code": "123456", "geometry": {"type": "Point", "coordinates": [114.97, 30.1]}, "attrs": {}},
         "class_unknown", "class_code"),
        ({"class_code": "010402", "geometry": {"type": "Pt"}, "attrs": {"state": "完好"}}, "geom_malformed", "geometry"),
        ({"class_code": "010402", "attrs": {}}, "request_missing", "geometry"),
        ({"class_code": "010402", "geometry": {"type": "Point", "coordinates": [114.97, 30.1]}, "attrs": {"state": "完好"},
          "division_code": "999999"}, "division_unknown", "division_code"),
        ({"class_code": "010402", "geometry": {"type": "Point", "coordinates": [114.97, 30.1]}, "attrs": {"state": "完好"},
          "crs": "EPSG:999999"}, "crs_unknown", "crs"),
    ],
)
def test_bad_create_bodies(client: TestClient, body: dict[str, Any], code: str, field: str) -> None:
    r = client.post("/objects", json=body)
    assert 400 <= r.status_code < 500, r.text
    j = r.json()
    assert j["error_code"] == code and j["field"] == field and j["message_zh"] and j["message_en"]


def test_non_json_and_wrong_types_are_4xx(client: TestClient) -> None:
    r = client.post("/objects", content=b"\xff\xfe not json", headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422) and r.json()["error_code"].startswith("request_")
    assert r.json()["message_zh"] and r.json()["message_en"]
    r = client.post("/objects", json=[1, 2, 3])
    assert r.status_code == 422
    assert client.get("/objects/abc").status_code == 400
    assert client.get("/objects", params={"bbox": "1,2,3"}).json()["error_code"] == "bbox_invalid"
    assert client.get("/objects", params={"limit": 100000}).status_code == 422
    assert client.get("/objects/420281010402999999990").status_code == 404
    assert client.get("/classes/999999").status_code == 404


def test_geometry_in_other_crs_is_reprojected(client: TestClient) -> None:
    from pyproj import Transformer

    x, y = Transformer.from_crs(4490, 4547, always_xy=True).transform(*IN_DAYE)
    obj = _lamp(client, geometry={"type": "Point", "coordinates": [x, y]}, crs="EPSG:4547")
    gx, gy = obj["geometry"]["coordinates"]
    assert abs(gx - IN_DAYE[0]) < 1e-7 and abs(gy - IN_DAYE[1]) < 1e-7


def test_update_keeps_full_history_and_checks_version(client: TestClient, admin: Any,
                                                     caller: Callable[..., Any]) -> None:
    bob = caller(f"department:{LAMP.department.id}@420281")
    code = _lamp(client)["code"]
    r = client.patch(f"/objects/{code}", json={"attrs": {"state": "破损"}, "version": 1}, headers=bob.headers)
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["attrs"]["state"] == "破损"
    r = client.patch(f"/objects/{code}", json={"attrs": {"state": "完好"}, "version": 1})
    assert r.status_code == 409 and r.json()["error_code"] == "version_conflict"
    r = client.patch(f"/objects/{code}", json={"attrs": {"state": "不存在的状态"}})
    assert r.status_code == 422
    hist = client.get(f"/objects/{code}/history").json()["versions"]
    assert [(h["version"], h["op"], h["attrs"]["state"], h["changed_by"]) for h in hist] == [
        (1, "create", "完好", admin.name), (2, "update", "破损", bob.name)]


def test_retired_code_stays_resolvable_and_is_never_reissued(client: TestClient) -> None:
    code = _lamp(client)["code"]
    r = client.post(f"/objects/{code}/retire", json={"reason": "拆除"})
    assert r.status_code == 200 and r.json()["status"] == "retired"
    assert client.get(f"/codes/{code}").json()["status"] == "retired"
    assert client.post(f"/objects/{code}/retire").status_code == 409
    assert client.patch(f"/objects/{code}", json={"attrs": {"state": "破损"}}).status_code == 409
    assert _lamp(client)["code"] != code


def test_split_and_merge_record_lineage(client: TestClient) -> None:
    attrs = _building_attrs()
    x, y = IN_DAYE
    parent = client.post("/objects", json={"class_code": BUILDING.code, "geometry": _square(x, y, 0.0004),
                                           "attrs": attrs, "division_code": "420281"})
    assert parent.status_code == 201, parent.text
    pcode = parent.json()["code"]
    parts = [{"geometry": _square(x, y, 0.0002), "attrs": attrs}, {"geometry": _square(x + 0.0002, y, 0.0002), "attrs": attrs}]
    r = client.post(f"/objects/{pcode}/split", json={"parts": parts, "reason": "分户"})
    assert r.status_code == 201, r.text
    kids = [k["code"] for k in r.json()["children"]]
    assert len(set(kids)) == 2 and pcode not in kids
    assert r.json()["parent"]["status"] == "retired"
    lin = client.get(f"/objects/{pcode}/lineage").json()
    assert sorted(c["code"] for c in lin["children"]) == sorted(kids)
    assert all(c["kind"] == "split" for c in lin["children"])
    m = client.post("/objects/merge", json={"codes": kids, "result": {"geometry": _square(x, y, 0.0004), "attrs": attrs}})
    assert m.status_code == 201, m.text
    new = m.json()["result"]["code"]
    assert new not in kids + [pcode]
    lin = client.get(f"/objects/{new}/lineage").json()
    assert sorted(p["code"] for p in lin["parents"]) == sorted(kids)
    assert all(client.get(f"/objects/{k}").json()["status"] == "retired" for k in kids)
    # a failing split changes nothing: the transaction rolls back
    bad = client.post(f"/objects/{new}/split", json={"parts": [parts[0], {"geometry": {"type": "Point"}, "attrs": attrs}]})
    assert bad.status_code == 422 and bad.json()["row"] == 1
    assert client.get(f"/objects/{new}").json()["status"] == "active"


def test_query_pages_with_keyset(client: TestClient) -> None:
    for _ in range(5):
        _lamp(client)
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"class_code": LAMP.code, "division": "420281", "limit": 2}
        if after:
            params["after"] = after
        page = client.get("/objects", params=params).json()
        seen += [i["code"] for i in page["items"]]
        after = page["next"]
        if not after:
            break
    assert len(seen) == len(set(seen)) >= 5 and seen == sorted(seen)
    box = client.get("/objects", params={"bbox": "114.96,30.09,114.98,30.11", "class_code": LAMP.code}).json()
    assert box["count"] >= 1


def test_catalog_endpoints(client: TestClient) -> None:
    r = client.get("/classes").json()
    assert r["count"] == len(get_catalog().classes) and r["majors"]
    one = client.get(f"/classes/{LAMP.code}").json()
    assert one["name"] == "路灯" and one["attributes"]
    deps = client.get("/departments").json()["items"]
    assert any(LAMP.code in d["classes"] for d in deps)


def test_reserve_a_block_of_codes(client: TestClient) -> None:
    r = client.post("/codes/blocks", json={"division_code": "420281", "class_code": LAMP.code, "count": 500})
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["count"] == 500 and len(set(j["codes"])) == 500
    assert all(unified_scheme().validate(c) == [] for c in j["codes"])
    assert client.get(f"/codes/{j['first']}").json()["status"] == "reserved"
    r = client.post("/codes/blocks", json={"division_code": "999999", "class_code": LAMP.code, "count": 5})
    assert r.status_code == 400 and r.json()["error_code"] == "division_unknown"
    r = client.post("/codes/blocks", json={"division_code": "420281", "class_code": LAMP.code, "count": 0})
    assert r.status_code == 422 and r.json()["field"] == "count"


def test_personal_attributes_are_masked_everywhere(client: TestClient, caller: Callable[..., Any]) -> None:
    # the department owning 实有房屋, cleared to L3 but without the personal grant
    reader = caller("department:public_security@420281", clearance="L3").headers
    attrs = {"house_use": "自住", "owner_name": "王示例", "owner_id_number": "42028119800101901X",
             "owner_phone": "17012345678"}
    r = client.post("/objects", json={"class_code": "050201", "attrs": attrs, "division_code": "420281",
                                      "geometry": {"type": "Point", "coordinates": [114.9701, 30.1001]}},
                    headers=reader)
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    for got in (r.json()["attrs"], client.get(f"/objects/{code}", headers=reader).json()["attrs"],
                client.get(f"/objects/{code}/history", headers=reader).json()["versions"][0]["attrs"],
                client.get(f"/ogc/collections/class-050201/items/{code}", headers=reader).json()["properties"]):
        assert got["owner_name"] == "王**" and got["owner_phone"] == "170****5678"
        assert got["owner_id_number"] == "420281********901X"
        assert "王示例" not in str(got) and "17012345678" not in str(got)
    r = client.get("/ogc/collections/class-050201/items", params={"owner_name": "王示例"}, headers=reader)
    assert r.status_code == 400 and r.json()["error_code"] == "property_unknown"
    # an update that does not touch personal fields keeps them intact (not overwritten by masks)
    r = client.patch(f"/objects/{code}", json={"attrs": {"house_use": "出租"}}, headers=reader)
    assert r.status_code == 200 and r.json()["attrs"]["owner_phone"] == "170****5678"
