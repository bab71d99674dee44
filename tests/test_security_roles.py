"""Roles and scopes: every row of the rule table in `citygrid/security/rules.py` with its negative test.

Callers are principals with API keys (`caller` in conftest.py); the places are two villages of two townships of
the demo county, found from the loaded outlines.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from citygrid.settings import get_settings

LAMP, LAMP_DEPT = "010402", "urban_management"  # 路灯
TREE, TREE_DEPT = "040101", "forestry"  # 古树名木
SHELTER, SHELTER_DEPT = "050402", "civil_air_defense"  # 人防工事: public: false
Caller = Any  # tests/conftest.py Caller


def _body(cls: str, pt: list[float], **attrs: Any) -> dict[str, Any]:
    base = {LAMP: {"state": "完好"}, TREE: {"state": "完好", "tree_no": "T1", "species": "樟树",
                                           "protection_level": "一级"}, SHELTER: {"state": "完好"}}[cls]
    return {"class_code": cls, "geometry": {"type": "Point", "coordinates": pt}, "attrs": base | attrs,
            "division_code": "420281"}


def _create(client: TestClient, headers: dict[str, str], cls: str, pt: list[float], **attrs: Any) -> str:
    r = client.post("/objects", json=_body(cls, pt, **attrs), headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["code"])


def _refused(r: Any, status: int = 403) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error_code"] == {401: "unauthenticated", 403: "forbidden", 404: r.json()["error_code"]}[status]


# --- anonymous writes ------------------------------------------------------------------------------------------

WRITES = ("post", "put", "patch", "delete")
NOT_WRITES = {("post", "/auth/token")}  # logging in is how one stops being anonymous


def test_every_write_route_refuses_anonymous_callers(client: TestClient) -> None:
    """From the OpenAPI document, so a route added later is covered by itself. The body is empty or wrong on
    purpose: the 401 comes before any validation."""
    doc = client.get("/openapi.json").json()
    routes = [(m, path) for path, ops in doc["paths"].items() for m in ops if m in WRITES and (m, path) not in NOT_WRITES]
    assert len(routes) >= 11, routes  # objects (5), codes, grids, addresses (4): a sanity floor
    for method, path in routes:
        url = path
        for name in ("code", "job_id", "system", "cid", "layer", "fid", "link_id", "hook_id", "sid"):
            url = url.replace("{" + name + "}", "420281010402000000015")
        assert "{" not in url, url
        for kw in ({}, {"json": {}}, {"files": {"file": ("x.csv", b"a\n1\n")}}):
            r = client.request(method.upper(), url, **kw)
            assert r.status_code == 401, (method, path, kw, r.text)
            # ODK Collect's submission route challenges for Basic (it asks its user for a username and password)
            scheme = "Basic" if path == "/submission" else "Bearer"
            assert r.json()["error_code"] == "unauthenticated" and r.headers["WWW-Authenticate"].startswith(scheme)


# --- the registry: departments own classes, inside their scope; cadres and reviewers never write it ----------


def test_cadre_may_not_write_the_registry(client: TestClient, caller: Callable[..., Caller], admin_headers: dict,
                                          places: dict) -> None:
    a = places["a"]
    cadre = caller(f"cadre@{a['village']}").headers
    reviewer = caller(f"reviewer@{a['township']}").headers
    code = _create(client, admin_headers, LAMP, a["pt"])  # in the cadre's own village
    for who in (cadre, reviewer):
        _refused(client.post("/objects", json=_body(LAMP, a["pt"]), headers=who))
        _refused(client.patch(f"/objects/{code}", json={"attrs": {"state": "破损"}}, headers=who))
        _refused(client.post(f"/objects/{code}/retire", json={}, headers=who))
        _refused(client.post("/codes/blocks", json={"division_code": "420281", "class_code": LAMP, "count": 5},
                             headers=who))
    # it still reads its village's objects
    assert client.get(f"/objects/{code}", headers=cadre).status_code == 200
    assert client.get(f"/objects/{code}", headers=admin_headers).json()["version"] == 1


def test_department_may_not_edit_another_departments_class(client: TestClient, caller: Callable[..., Caller],
                                                           admin_headers: dict, places: dict) -> None:
    pt = places["a"]["pt"]
    owner = caller(f"department:{LAMP_DEPT}@420281").headers
    other = caller(f"department:{TREE_DEPT}@420281").headers
    code = _create(client, owner, LAMP, pt)
    _refused(client.post("/objects", json=_body(LAMP, pt), headers=other))
    _refused(client.patch(f"/objects/{code}", json={"attrs": {"state": "破损"}}, headers=other))
    _refused(client.post(f"/objects/{code}/retire", json={"reason": "x"}, headers=other))
    _refused(client.post(f"/objects/{code}/split", json={"parts": [_body(LAMP, pt), _body(LAMP, pt)]}, headers=other))
    second = _create(client, owner, LAMP, pt)
    _refused(client.post("/objects/merge", json={"codes": [code, second], "result": _body(LAMP, pt)}, headers=other))
    # a department may own a class through an explicit class list too
    listed = caller(f"department:{TREE_DEPT}@420281").headers
    from citygrid.security.principal import Grant

    by_list = caller(Grant("department", "420281", None, frozenset({LAMP}))).headers
    assert client.patch(f"/objects/{code}", json={"attrs": {"state": "破损"}}, headers=by_list).status_code == 200
    _refused(client.patch(f"/objects/{code}", json={"attrs": {"state": "完好"}}, headers=listed))
    r = client.post(f"/objects/{code}/retire", json={"reason": "拆除"}, headers=owner)
    assert r.status_code == 200 and r.json()["status"] == "retired"
    assert client.get(f"/objects/{code}/history", headers=admin_headers).json()["versions"][-1]["op"] == "retire"


def test_department_outside_its_scope(client: TestClient, caller: Callable[..., Caller], admin_headers: dict,
                                      places: dict) -> None:
    a, b = places["a"], places["b"]
    township = caller(f"department:{LAMP_DEPT}@{a['township']}").headers
    inside = _create(client, township, LAMP, a["pt"])
    outside = _create(client, admin_headers, LAMP, b["pt"])
    _refused(client.post("/objects", json=_body(LAMP, b["pt"]), headers=township))
    _refused(client.patch(f"/objects/{outside}", json={"attrs": {"state": "破损"}}, headers=township))
    _refused(client.post(f"/objects/{outside}/retire", json={}, headers=township))
    # moving its own object out of its scope is a split into a place it does not hold
    _refused(client.post(f"/objects/{inside}/split", json={"parts": [_body(LAMP, a["pt"]), _body(LAMP, b["pt"])]},
                         headers=township))
    assert client.get(f"/objects/{inside}", headers=admin_headers).json()["status"] == "active"  # rolled back
    assert client.patch(f"/objects/{inside}", json={"attrs": {"state": "破损"}}, headers=township).status_code == 200


# --- restricted classes: 404 to whoever may not read them ---------------------------------------------------


def test_unpublished_class_is_404_for_the_public(client: TestClient, caller: Callable[..., Caller],
                                                 admin_headers: dict, places: dict) -> None:
    pt = places["a"]["pt"]
    owner = caller(f"department:{SHELTER_DEPT}@420281").headers
    code = _create(client, owner, SHELTER, pt)
    other_dept = caller(f"department:{LAMP_DEPT}@420281").headers
    for who in ({}, other_dept):
        for url in (f"/objects/{code}", f"/objects/{code}/history", f"/objects/{code}/lineage",
                    f"/ogc/collections/class-{SHELTER}", f"/ogc/collections/class-{SHELTER}/items",
                    f"/ogc/collections/class-{SHELTER}/items/{code}", f"/ogc/collections/class-{SHELTER}/queryables",
                    f"/tiles/class-{SHELTER}/16/53000/26000.mvt", f"/tiles/class-{SHELTER}.json",
                    f"/styles/class-{SHELTER}.json"):
            assert client.get(url, headers=who).status_code == 404, (url, who)
        r = client.get("/aggregate", params={"class": SHELTER, "by": "county"}, headers=who)
        assert r.status_code == 404 and r.json()["error_code"] == "class_not_found"
        assert client.get("/aggregate/tiles/10/840/421.mvt", params={"class": SHELTER}, headers=who).status_code == 404
        assert f"class-{SHELTER}" not in {x["id"] for x in client.get("/layers", headers=who).json()["layers"]}
        assert f"class-{SHELTER}" not in {x["id"] for x in
                                          client.get("/ogc/collections", headers=who).json()["collections"]}
        assert code not in {o["code"] for o in client.get("/objects", params={"class_code": SHELTER},
                                                          headers=who).json()["items"]}
        explained = client.get(f"/codes/{code}", headers=who).json()  # the ledger says nothing either
        assert explained["status"] == "withheld" and explained["object"] is None and explained["issued"] is None
        _refused(client.patch(f"/objects/{code}", json={"attrs": {"state": "破损"}}, headers=other_dept), 404)
    for who in (owner, admin_headers):
        assert client.get(f"/objects/{code}", headers=who).status_code == 200
        assert client.get(f"/ogc/collections/class-{SHELTER}/items/{code}", headers=who).status_code == 200
        assert f"class-{SHELTER}" in {x["id"] for x in client.get("/layers", headers=who).json()["layers"]}


def test_restricted_layer_is_scoped(client: TestClient, caller: Callable[..., Caller], admin_headers: dict,
                                    places: dict) -> None:
    """A township's department sees its own shelters and no others; a cadre those of its village."""
    a, b = places["a"], places["b"]
    here = _create(client, admin_headers, SHELTER, a["pt"])
    there = _create(client, admin_headers, SHELTER, b["pt"])
    for who in (caller(f"department:{SHELTER_DEPT}@{a['township']}").headers, caller(f"cadre@{a['village']}").headers):
        assert client.get(f"/objects/{here}", headers=who).status_code == 200
        assert client.get(f"/objects/{there}", headers=who).status_code == 404
        items = client.get(f"/ogc/collections/class-{SHELTER}/items", params={"limit": 1000}, headers=who).json()
        ids = {f["id"] for f in items["features"]}
        assert here in ids and there not in ids
        assert all((f["properties"]["village_code"] or f["properties"]["township_code"]).startswith(a["township"])
                   for f in items["features"])  # other tests' shelters may lie in the township, outside villages
        assert client.get(f"/ogc/collections/class-{SHELTER}/items/{there}", headers=who).status_code == 404
        listed = {x["id"]: x["count"] for x in client.get("/layers", headers=who).json()["layers"]}
        assert listed[f"class-{SHELTER}"] == items["numberMatched"]


# --- code blocks: rights and quotas ----------------------------------------------------------------------------


@pytest.fixture()
def small_quota(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CITYGRID_CODE_BLOCK_MAX", "500")
    monkeypatch.setenv("CITYGRID_CODE_BLOCK_DAILY", "800")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_code_blocks_need_rights_and_respect_quotas(client: TestClient, caller: Callable[..., Caller],
                                                    admin_headers: dict) -> None:
    block = {"division_code": "420281", "class_code": TREE}
    assert get_settings().code_block_max == 10_000 and get_settings().code_block_daily == 200_000  # the defaults
    _refused(client.post("/codes/blocks", json=block | {"count": 5}), 401)
    _refused(client.post("/codes/blocks", json=block | {"count": 5},
                         headers=caller(f"department:{LAMP_DEPT}@420281").headers))
    _refused(client.post("/codes/blocks", json=block | {"division_code": "420222", "count": 5},
                         headers=caller(f"department:{TREE_DEPT}@420281").headers))  # another county
    owner = caller(f"department:{TREE_DEPT}@420281").headers
    r = client.post("/codes/blocks", json=block | {"count": 10_001}, headers=owner)
    assert r.status_code == 400 and r.json()["error_code"] == "block_too_large"
    assert client.post("/codes/blocks", json=block | {"count": 10_000}, headers=owner).status_code == 201


def test_daily_code_quota_answers_429_with_retry_after(client: TestClient, caller: Callable[..., Caller],
                                                       admin_headers: dict, small_quota: None) -> None:
    block = {"division_code": "420281", "class_code": TREE}
    owner = caller(f"department:{TREE_DEPT}@420281").headers
    assert client.post("/codes/blocks", json=block | {"count": 501}, headers=owner).status_code == 400
    assert client.post("/codes/blocks", json=block | {"count": 500}, headers=owner).status_code == 201
    r = client.post("/codes/blocks", json=block | {"count": 400}, headers=owner)
    assert r.status_code == 429 and r.json()["error_code"] == "quota_exceeded"
    assert 0 < int(r.headers["Retry-After"]) <= 86_400
    assert client.post("/codes/blocks", json=block | {"count": 300}, headers=owner).status_code == 201  # what is left
    # quotas are per principal: another department system of the same department has its own; admins have none
    assert client.post("/codes/blocks", json=block | {"count": 400},
                       headers=caller(f"department:{TREE_DEPT}@420281").headers).status_code == 201
    assert client.post("/codes/blocks", json=block | {"count": 5_000}, headers=admin_headers).status_code == 201


# --- grids, 三实, bulk geocoding, jobs ------------------------------------------------------------------------


def _police_file() -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "R1", "name": "一格"},
         "geometry": {"type": "Polygon", "coordinates": [[[114.9, 30.0], [114.91, 30.0], [114.91, 30.01],
                                                          [114.9, 30.0]]]}}]}


def test_grid_import_is_for_admins(client: TestClient, caller: Callable[..., Caller], admin_headers: dict) -> None:
    files = {"file": ("g.geojson", json.dumps(_police_file()).encode())}
    _refused(client.post("/grids/import", data={"system": "rolestest"}, files=files), 401)
    for grants in ("department:public_security@420281", "cadre@420281001001"):
        _refused(client.post("/grids/import", data={"system": "rolestest"}, files=files, headers=caller(grants).headers))
    assert client.get("/grids/rolestest/report").status_code == 404  # nothing was imported
    r = client.post("/grids/import", data={"system": "rolestest"}, files=files, headers=admin_headers)
    assert r.status_code == 201, r.text


def test_registering_persons_needs_the_personal_grant(client: TestClient, caller: Callable[..., Caller],
                                                      places: dict) -> None:
    room, a, b = places["room"], places["a"], places["b"]
    person = {"name": "赵示例", "id_number": "11010519491231002X", "phone": "17000004321"}
    url = f"/addresses/{room}/persons"
    _refused(client.post(url, json=person), 401)
    _refused(client.post(url, json=person, headers=caller(f"department:public_security@{a['township']}",
                                                          clearance="L4").headers))  # no personal grant
    _refused(client.post(url, json=person, headers=caller(f"department:public_security@{a['township']}",
                                                          clearance="L3", personal=True).headers))  # not L4
    _refused(client.post(url, json=person, headers=caller(f"department:public_security@{b['township']}",
                                                          clearance="L4", personal=True).headers))  # elsewhere
    r = client.post(url, json=person, headers=caller(f"cadre@{a['village']}", clearance="L4", personal=True).headers)
    assert r.status_code == 201 and r.json()["id_number"] == person["id_number"]


def test_registering_organizations_needs_a_role_there(client: TestClient, caller: Callable[..., Caller],
                                                      places: dict) -> None:
    url = f"/addresses/{places['door']}/organizations"
    org = {"name": "示例商店", "category": "个体工商户"}
    _refused(client.post(url, json=org), 401)
    _refused(client.post(url, json=org, headers=caller().headers))  # a principal with no role
    _refused(client.post(url, json=org, headers=caller(f"cadre@{places['b']['village']}").headers))
    assert client.post(url, json=org, headers=caller(f"cadre@{places['a']['village']}").headers).status_code == 201


def _batch(client: TestClient, headers: dict[str, str]) -> Any:
    return client.post("/address/batch", files={"file": ("a.csv", "地址\n大冶市\n".encode())}, headers=headers)


def test_bulk_geocoding_is_for_departments(client: TestClient, caller: Callable[..., Caller],
                                           dept_headers: Callable[..., dict]) -> None:
    cadre = caller("cadre@420281001001").headers
    _refused(client.post("/address/geocode", json={"addresses": ["大冶市"]}, headers=cadre))
    _refused(_batch(client, cadre))
    assert client.post("/address/geocode", json={"addresses": ["大冶市"]},
                       headers=dept_headers("civil_affairs")).status_code == 200
    assert client.get("/address/geocode", params={"q": "大冶市"}).status_code == 200  # one address: everyone


def test_jobs_are_seen_by_their_owner(client: TestClient, caller: Callable[..., Caller], admin_headers: dict,
                                      run_batch: Callable[[dict, str], str]) -> None:
    mine, theirs = caller("department:civil_affairs@420281").headers, caller("department:housing@420281").headers
    job = run_batch(mine, "地址\n大冶市\n")
    for url in (f"/jobs/{job}", f"/address/batch/{job}", f"/address/batch/{job}/result"):
        assert client.get(url, headers=mine).status_code == 200, url
        assert client.get(url, headers=admin_headers).status_code == 200, url
        assert client.get(url, headers=theirs).status_code == 404, url
        assert client.get(url).status_code == 404, url
    assert job in {j["id"] for j in client.get("/jobs", headers=mine).json()["items"]}
    assert job in {j["id"] for j in client.get("/jobs", headers=admin_headers, params={"limit": 500}).json()["items"]}
    assert job not in {j["id"] for j in client.get("/jobs", headers=theirs).json()["items"]}
    assert client.get("/jobs").json()["items"] == []  # the public has no jobs
    assert io.BytesIO(client.get(f"/address/batch/{job}/result", headers=mine).content).read(3) == b"\xef\xbb\xbf"
