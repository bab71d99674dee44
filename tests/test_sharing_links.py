"""Links by code (一码互联) over HTTP: attach, list, find, unlink; links surviving a split and a merge; the object
page with `expand`; rights and clearance (negative tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from citygrid.catalog import get_catalog

IN_DAYE = (114.97, 30.10)


def _cls(name: str) -> Any:
    return next(c for c in get_catalog().classes.values() if c.name == name)


LAMP, BUILDING, SHELTER = _cls("路灯"), _cls("建筑物"), _cls("人防工事")


def _square(x: float, y: float, d: float = 0.0002) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]}


def _required(cls: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for a in cls.attributes:
        if a.required:
            attrs[a.field] = (a.enum[0] if a.type == "enum" else int(a.min if a.min is not None else 1) + 1
                              if a.type in ("integer", "number") else "测试")
    return attrs


def _make(client: TestClient, headers: dict[str, str], cls: Any = LAMP, geometry: dict[str, Any] | None = None
          ) -> str:
    body = {"class_code": cls.code, "geometry": geometry or {"type": "Point", "coordinates": list(IN_DAYE)},
            "attrs": _required(cls), "division_code": "420281"}
    r = client.post("/objects", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["code"])


def _link(client: TestClient, headers: dict[str, str], code: str, record: str, **over: Any) -> Any:
    body = {"system": "数字城管", "record_id": record, "title": f"案件 {record}", "url": f"https://cg.example/{record}",
            "payload": {"state": "open"}} | over
    return client.post(f"/links/{code}", json=body, headers=headers)


def test_link_find_relink_and_unlink(client: TestClient, admin_headers: dict[str, str],
                                     dept_headers: Callable[..., dict[str, str]]) -> None:
    code, other = _make(client, admin_headers), _make(client, admin_headers)
    dept = dept_headers(LAMP.department.id)
    r = _link(client, dept, code, "AJ-1")
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["code"] == code and made["current"] is True and made["inherited_from"] is None
    assert made["department"] == LAMP.department.id
    # everyone who may read the object sees an L1 link; who made it is internal (L2) metadata
    listed = client.get(f"/links/{code}").json()
    assert [x["record_id"] for x in listed["links"]] == ["AJ-1"] and listed["links"][0]["created_by"] is None
    assert client.get(f"/links/{code}", headers=dept).json()["links"][0]["created_by"] is not None
    found = client.get("/links", params={"system": "数字城管", "record": "AJ-1"}).json()
    assert found["code"] == code and found["status"] == "active"
    # the same record posted again replaces the link's content; on another object it is a conflict
    again = _link(client, dept, code, "AJ-1", title="改了", payload={"state": "closed"})
    assert again.status_code == 201 and again.json()["id"] == made["id"] and again.json()["title"] == "改了"
    clash = _link(client, dept, other, "AJ-1")
    assert clash.status_code == 409 and clash.json()["error_code"] == "link_conflict"
    # unlinking: not anonymously, not by another department, then by its own
    assert client.delete(f"/links/{code}/{made['id']}").status_code == 401
    stranger = dept_headers("housing" if LAMP.department.id != "housing" else "water")
    r = client.delete(f"/links/{code}/{made['id']}", headers=stranger)
    assert r.status_code == 403 and r.json()["error_code"] == "forbidden"
    r = client.delete(f"/links/{code}/{made['id']}", headers=dept)
    assert r.status_code == 200 and r.json()["unlinked_at"] is not None
    assert client.get(f"/links/{code}").json()["links"] == []
    gone = client.get("/links", params={"system": "数字城管", "record": "AJ-1"})
    assert gone.status_code == 404 and gone.json()["error_code"] == "link_not_found"
    assert client.delete(f"/links/{code}/{made['id']}", headers=dept).status_code == 404
    # once unlinked, the record may go elsewhere
    assert _link(client, dept, other, "AJ-1").status_code == 201


def test_bad_links_are_refused_with_coded_errors(client: TestClient, admin_headers: dict[str, str]) -> None:
    code = _make(client, admin_headers)
    big = _link(client, admin_headers, code, "BIG", payload={"x": "字" * 3000})
    assert big.status_code == 422 and big.json()["error_code"] == "link_payload_too_large"
    assert big.json()["field"] == "payload"
    back = _link(client, admin_headers, code, "T", valid_from="2026-12-01T00:00:00Z", valid_to="2026-11-01T00:00:00Z")
    assert back.status_code == 422 and back.json()["error_code"] == "link_valid_range"
    bad = _link(client, admin_headers, code, "L", level="L9")
    assert bad.status_code == 422 and bad.json()["field"] == "level"
    assert _link(client, admin_headers, "12345", "X").json()["error_code"] == "code_format"
    missing = _link(client, admin_headers, "420281" + LAMP.code + "999999990", "X")
    assert missing.status_code == 404 and missing.json()["error_code"] == "object_not_found"
    assert _link(client, {}, code, "X").status_code == 401
    future = _link(client, admin_headers, code, "F", valid_from="2999-01-01T00:00:00Z")
    assert future.status_code == 201 and future.json()["current"] is False


def test_linking_needs_a_department_there(client: TestClient, admin_headers: dict[str, str],
                                          caller: Callable[..., Any]) -> None:
    code = _make(client, admin_headers)
    cadre = caller("cadre@420281001001")
    r = _link(client, cadre.headers, code, "C-1")
    assert r.status_code == 403 and r.json()["error_code"] == "forbidden"
    elsewhere = caller(f"department:{LAMP.department.id}@420202")  # 黄石港区, not 大冶市
    r = _link(client, elsewhere.headers, code, "C-1")
    assert r.status_code == 403
    # any department working there may link (its records concern objects of other departments' classes too)
    other_dept = caller("department:housing@420281")
    assert _link(client, other_dept.headers, code, "C-1").status_code == 201


def test_links_are_cut_to_the_callers_clearance(client: TestClient, admin_headers: dict[str, str],
                                                caller: Callable[..., Any]) -> None:
    code = _make(client, admin_headers)
    assert _link(client, admin_headers, code, "S-3", level="L3", payload={"owner": "某某"}).status_code == 201
    assert _link(client, admin_headers, code, "S-1", level="L1").status_code == 201
    l2 = caller(f"department:{LAMP.department.id}@420281", clearance="L2")
    l3 = caller(f"department:{LAMP.department.id}@420281", clearance="L3")
    assert [x["record_id"] for x in client.get(f"/links/{code}").json()["links"]] == ["S-1"]
    assert [x["record_id"] for x in client.get(f"/links/{code}", headers=l2.headers).json()["links"]] == ["S-1"]
    assert sorted(x["record_id"] for x in client.get(f"/links/{code}", headers=l3.headers).json()["links"]) == [
        "S-1", "S-3"]
    assert client.get("/links", params={"system": "数字城管", "record": "S-3"}).status_code == 404
    assert client.get("/links", params={"system": "数字城管", "record": "S-3"}, headers=l3.headers).status_code == 200
    # an L2 caller cannot even find the L3 link to unlink it
    sid = next(x["id"] for x in client.get(f"/links/{code}", headers=l3.headers).json()["links"]
               if x["record_id"] == "S-3")
    assert client.delete(f"/links/{code}/{sid}", headers=l2.headers).status_code == 404
    # links of an object the caller may not read are not there at all (人防工事 is not public)
    shelter = _make(client, admin_headers, SHELTER)
    assert _link(client, admin_headers, shelter, "RF-1").status_code == 201
    r = client.get(f"/links/{shelter}")
    assert r.status_code == 404 and r.json()["error_code"] == "object_not_found"
    assert client.get("/links", params={"system": "数字城管", "record": "RF-1"}).status_code == 404
    assert client.get(f"/objects/{shelter}?expand=links").status_code == 404
    # nor can its code be learnt from a conflict
    lamp2 = _make(client, admin_headers)
    clash = _link(client, caller(f"department:{LAMP.department.id}@420281").headers, lamp2, "RF-1")
    assert clash.status_code == 409 and shelter not in clash.text


def test_links_survive_a_split_and_a_merge(client: TestClient, admin_headers: dict[str, str]) -> None:
    x, y = IN_DAYE
    attrs = _required(BUILDING)
    parent = _make(client, admin_headers, BUILDING, _square(x, y, 0.0004))
    assert _link(client, admin_headers, parent, "BDC-1", system="不动产登记").status_code == 201
    parts = [{"geometry": _square(x, y), "attrs": attrs}, {"geometry": _square(x + 0.0002, y), "attrs": attrs}]
    r = client.post(f"/objects/{parent}/split", json={"parts": parts}, headers=admin_headers)
    assert r.status_code == 201, r.text
    kids = sorted(k["code"] for k in r.json()["children"])
    for kid in kids:
        inherited = client.get(f"/links/{kid}").json()["links"]
        assert [(i["record_id"], i["inherited_from"]) for i in inherited] == [("BDC-1", parent)]
        assert inherited[0]["lineage"] == [{"code": parent, "kind": "split"}]
    # the retired code keeps its link and names where it lives on; so does the lookup by record
    old = client.get(f"/links/{parent}").json()
    assert old["status"] == "retired" and old["successors"] == kids and len(old["links"]) == 1
    found = client.get("/links", params={"system": "不动产登记", "record": "BDC-1"}).json()
    assert found["code"] == parent and found["successors"] == kids
    # a retired object takes no new link
    r = _link(client, admin_headers, parent, "BDC-2", system="不动产登记")
    assert r.status_code == 409 and r.json()["error_code"] == "link_object_retired"
    assert _link(client, admin_headers, kids[0], "BDC-2", system="不动产登记").status_code == 201
    m = client.post("/objects/merge", json={"codes": kids, "result": {"geometry": _square(x, y, 0.0004),
                                                                      "attrs": attrs}}, headers=admin_headers)
    assert m.status_code == 201, m.text
    merged = m.json()["result"]["code"]
    got = {i["record_id"]: i for i in client.get(f"/links/{merged}").json()["links"]}
    assert set(got) == {"BDC-1", "BDC-2"}  # BDC-1 reached through both parts, offered once
    assert got["BDC-2"]["lineage"] == [{"code": kids[0], "kind": "merge"}]
    assert got["BDC-1"]["inherited_from"] == parent
    assert [s["kind"] for s in got["BDC-1"]["lineage"]] == ["merge", "split"]
    assert client.get("/links", params={"system": "不动产登记", "record": "BDC-1"}).json()["successors"] == [merged]
    assert client.get(f"/links/{merged}", params={"inherited": False}).json()["links"] == []


def test_object_page_expands(client: TestClient, admin_headers: dict[str, str]) -> None:
    code = _make(client, admin_headers)
    _link(client, admin_headers, code, "E-1")
    client.patch(f"/objects/{code}", json={"attrs": {"state": "破损"}}, headers=admin_headers)
    r = client.get(f"/objects/{code}", params={"expand": "links,address,grids,history,lineage"})
    assert r.status_code == 200, r.text
    page = r.json()
    assert [x["record_id"] for x in page["links"]] == ["E-1"]
    assert [v["op"] for v in page["history"]] == ["create", "update"]
    assert page["lineage"] == {"parents": [], "children": []} and page["address"] == []
    assert "cells" in page["grids"] and page["attrs"]["state"] == "破损"
    assert "links" not in client.get(f"/objects/{code}").json()
    bad = client.get(f"/objects/{code}", params={"expand": "links,secrets"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "expand_unknown"
