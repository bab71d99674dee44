"""Classification: no L3/L4 value reaches a caller without clearance, on any route.

The sweep stores distinctive values (strings, numbers, a date; objects of public, personal and classified
classes; a person; a batch file), then walks every GET route of the OpenAPI document, path parameters filled
from that data, as the public and as principals without clearance, and looks for the values in every answer
(JSON, HTML, CSV, decoded vector tiles). A route added later is walked by itself; one with a path or query
parameter the sweep cannot fill fails the sweep until it is taught. The same walk as an admin must find every
value, so the sweep is known to reach them. Then: the national mapping, masks in Python and SQL, classified
classes absent from public listings and counts, and k-anonymity, including two overlapping bboxes.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

import h3
import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid.catalog import get_catalog
from citygrid.coding.checks import citizen_id_check
from citygrid.security import classification

SHELTER, ORG, HAZARD, HOUSE, DEVICE = "050402", "070201", "080201", "050201", "080102"
OWNER_ID = "420281199001010" + "12" + citizen_id_check("42028119900101012")  # 18 digits, valid check character
PERSON_ID = "420281198507070" + "31" + citizen_id_check("42028119850707031")
# L3/L4: no caller below that clearance may see these, in any form but a mask
SECRETS: dict[str, str] = {
    "shelter_name": "甲乙丙密室工程", "capacity": r"(?<![\w.])98765(?!\w)", "floor_area": r"(?<![\w.])4321\.5(?!\w)",
    "legal_representative": "欧阳秘代表", "org_phone": "13987654321", "security_contact": "上官秘联",
    "source_name": "氯气秘罐区", "substances": "秘密物质甲", "responsible_person": "诸葛秘责",
    "owner_name": "司徒秘主", "owner_id_number": OWNER_ID, "owner_phone": "13812348765",
    "certificate_no": "鄂秘证第8888号", "person_name": "慕容秘人", "person_id": PERSON_ID, "person_phone": "13712345679",
    "l3_link": "秘联记录丙",  # an L3 department record linked to each object (一码互联): title and payload
}
# L2 (内部): not for the public
INTERNAL: dict[str, str] = {"install_date": "2019-03-17", "enterprise": "秘企业乙",
                            "staff_count": r"(?<![\w.])7777(?!\w)", "reason": "秘密原因", "l2_link": "内部联记丁"}


def _near(pt: list[float], i: int) -> list[float]:
    return [pt[0] + 0.00005 * i, pt[1]]  # a few metres apart: all in the same village


@pytest.fixture(scope="module")
def data(client: TestClient, engine: Engine, places: dict, admin_headers: dict, dept_headers: Callable[..., dict],
         run_batch: Callable[[dict, str], str]) -> dict[str, Any]:
    """The distinctive values, stored through the API as an admin in the first village of `places`."""
    pt = places["a"]["pt"]
    bodies = {
        SHELTER: {"state": "完好", "shelter_name": "甲乙丙密室工程", "capacity": 98765, "floor_area": 4321.5},
        ORG: {"org_name": "测试秘单位", "org_category": "企业", "legal_representative": "欧阳秘代表",
              "phone": "13987654321", "security_contact": "上官秘联", "staff_count": 7777},
        HAZARD: {"state": "完好", "source_name": "氯气秘罐区", "hazard_grade": "二级", "substances": "秘密物质甲",
                 "enterprise": "秘企业乙", "responsible_person": "诸葛秘责"},
        HOUSE: {"house_use": "自住", "owner_name": "司徒秘主", "owner_id_number": OWNER_ID, "owner_phone": "13812348765",
                "certificate_no": "鄂秘证第8888号"},
        DEVICE: {"device_id": "D-1", "device_kind": "烟感", "install_date": "2019-03-17"},
    }
    codes = {}
    for i, (cls, attrs) in enumerate(bodies.items()):
        r = client.post("/objects", json={"class_code": cls, "attrs": attrs, "division_code": "420281",
                                          "geometry": {"type": "Point", "coordinates": _near(pt, i)}},
                        headers=admin_headers)
        assert r.status_code == 201, r.text
        codes[cls] = r.json()["code"]
    # a second version, so history has two
    assert client.patch(f"/objects/{codes[SHELTER]}", json={"attrs": {"state": "破损"}, "reason": "秘密原因"},
                        headers=admin_headers).status_code == 200
    for cls, code in codes.items():  # department records linked to each object, one L3 and one L2
        for level, title in (("L3", "秘联记录丙"), ("L2", "内部联记丁")):
            r = client.post(f"/links/{code}", headers=admin_headers, json={
                "system": "sweep", "record_id": f"{level}-{cls}", "title": title, "payload": {"note": title},
                "level": level})
            assert r.status_code == 201, r.text
    hook = client.post("/webhooks", json={"url": "http://127.0.0.1:9/never"}, headers=admin_headers)
    assert hook.status_code == 201, hook.text
    r = client.post(f"/addresses/{places['room']}/persons", headers=admin_headers,
                    json={"name": "慕容秘人", "id_number": PERSON_ID, "phone": "13712345679", "relation": "户主"})
    assert r.status_code == 201, r.text
    # a batch file full of secrets: its result is kept for its owner only
    upload = "地址,备注\n" + "\n".join(f"大冶市,{v}" for v in ("甲乙丙密室工程", "司徒秘主", OWNER_ID)) + "\n"
    job = run_batch(dept_headers("civil_affairs"), upload)
    with engine.connect() as c:
        grids = [c.execute(text("SELECT code FROM grid WHERE system = :s AND ST_Intersects(geom, "
                                "ST_SetSRID(ST_Point(:x, :y), 4490))"), {"s": s, "x": pt[0], "y": pt[1]}).scalar()
                 for s in ("unit", "governance")]
        room_address = c.execute(text("SELECT full_name FROM addr_node WHERE code = :c"),
                                 {"c": places["room"]}).scalar_one()
    return {"codes": codes, "job": job, "hook": hook.json()["id"], "pt": pt, "grids": [g for g in grids if g], "places": places,
            "room_address": room_address}


def _tile(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    return z, int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def _requests(doc: dict[str, Any], data: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(route, url, query) for every GET route: path parameters from the data, query variants per route."""
    codes, places, pt = data["codes"], data["places"], data["pt"]
    layers = [f"class-{c}" for c in codes] + ["grids-unit", "grids-governance", "doorplates", "divisions"]
    box = f"{pt[0] - 0.01},{pt[1] - 0.01},{pt[0] + 0.01},{pt[1] + 0.01}"
    objects = list(codes.values())
    fill: dict[str, list[str]] = {
        "code": [*objects, places["room"], places["door"], places["a"]["village"], *data["grids"], *codes],
        "cid": layers, "layer": layers, "fid": objects, "job_id": [data["job"]], "hook_id": [data["hook"]],
        "class_code": list(codes),  # survey templates: the catalog's labels, never a stored value
        "sid": ["00000000-0000-0000-0000-000000000000"],  # the sweep's callers submitted nothing: 404 for all
        "system": ["governance"],  # the unit grid's 多网合一 report takes a minute; governance cells are alike
        "fontstack": ["Noto Sans Regular"], "block": ["0-255"],  # map label glyphs: no data at all
    }
    # where a route's {code} can only be one kind of code, only that kind (any other is a quick 4xx)
    codes_of = {"/objects/": objects, "/links/": objects, "/codes/": objects, "/addresses/": [places["room"], places["door"]],
                "/a/": [places["room"], places["door"]], "/divisions/": [places["a"]["village"]],
                "/grids/": data["grids"], "/classes/": list(codes)}
    tiles = [_tile(pt[0], pt[1], z) for z in (16, 12)]
    by_class: list[dict[str, Any]] = [{"class_code": c} for c in codes]
    queries: dict[str, list[dict[str, Any]]] = {
        "/divisions": [{"name": "大冶"}],
        "/address/normalize": [{"q": data["room_address"]}], "/address/parse": [{"q": data["room_address"]}],
        "/address/geocode": [{"q": data["room_address"]}, {"q": data["room_address"], "limit": 20}],
        "/address/reverse": [{"x": pt[0], "y": pt[1], "radius": 500}],
        "/objects": [{}, {"bbox": box, "limit": 1000}, {"division": places["a"]["village"], "status": "all"},
                     *by_class],
        "/ogc/collections/{cid}/items": [{}, {"bbox": box, "limit": 1000}],
        "/aggregate": [{"by": by, "class": c} for by in ("h3:9", "village") for c in codes]
                      + [{"by": "h3:9"}, {"by": "h3:12", "bbox": box}, {"by": "unit_grid", "bbox": box}]
                      + [{"by": "county", "class": c, "stat": "sum", "attr": a} for c, a in
                         ((SHELTER, "capacity"), (SHELTER, "floor_area"), (ORG, "staff_count"))],
        "/aggregate/tiles/{z}/{x}/{y}.mvt": [{"by": "h3"}, {"by": "village"}, *({"class": c} for c in codes)],
        "/grids": [{"division": places["a"]["village"]}, {"bbox": box, "system": "governance"}],
        "/jobs": [{"limit": 500}],
        "/links": [{"system": "sweep", "record": f"{level}-{c}"} for c in codes for level in ("L2", "L3")],
        "/objects/{code}": [{}, {"expand": "links,address,grids,history,lineage"}],
        "/links/{code}": [{}],
        "/changes": [{"limit": 1000}],
        "/address/batch/{job_id}/result": [{"format": f} for f in ("csv", "geojson", "xlsx")],
    }
    for path, ops in doc["paths"].items():
        if "get" not in ops:
            continue
        names = re.findall(r"{(\w+)}", path)
        required = {p["name"] for p in ops["get"].get("parameters", []) if p.get("required") and p["in"] == "query"}
        variants = queries.get(path, [{}])
        assert all(required <= set(v) for v in variants), f"teach the sweep the query of {path}: {required}"
        if {"z", "x", "y"} <= set(names):
            others = [n for n in names if n not in ("z", "x", "y")]
            combos = [dict(zip(others, vals, strict=True)) | {"z": z, "x": x, "y": y}
                      for vals in itertools.product(*(fill[n] for n in others)) for z, x, y in tiles]
        else:
            assert all(n in fill for n in names), f"teach the sweep the path parameters of {path}: {names}"
            choices = [next((v for p, v in codes_of.items() if path.startswith(p)), fill[n]) if n == "code" else fill[n]
                       for n in names]
            combos = [dict(zip(names, vals, strict=True)) for vals in itertools.product(*choices)]
        for combo in combos:
            url = path
            for k, v in combo.items():
                url = url.replace("{" + k + "}", str(v))
            for q in variants:
                yield path, url, q


def _text(r: Any) -> str:
    kind = r.headers.get("content-type", "")
    if "vector-tile" in kind:
        return json.dumps(mapbox_vector_tile.decode(r.content), ensure_ascii=False, default=str)
    if "json" in kind:
        return json.dumps(r.json(), ensure_ascii=False, default=str)
    if "spreadsheetml" in kind:
        from io import BytesIO

        from openpyxl import load_workbook

        ws = load_workbook(BytesIO(r.content), read_only=True).active
        return json.dumps([list(row) for row in ws.iter_rows(values_only=True)], ensure_ascii=False, default=str)
    return r.text


def _walk(client: TestClient, headers: dict[str, str], data: dict[str, Any]) -> tuple[dict[str, str], set[str]]:
    """Every answer's text by request, and the routes walked."""
    answers, walked = {}, set()
    for path, url, q in _requests(client.get("/openapi.json").json(), data):
        r = client.get(url, params=q, headers=headers)
        assert r.status_code < 500, (url, q, r.text)
        answers[f"{url} {q}"] = _text(r)
        walked.add(path)
    return answers, walked


def _found(answers: dict[str, str], patterns: dict[str, str]) -> dict[str, list[str]]:
    return {name: [where for where, body in answers.items() if re.search(pat, body)]
            for name, pat in patterns.items()}


@pytest.fixture(scope="module")
def callers(caller: Callable[..., Any], places: dict) -> dict[str, dict[str, str]]:
    return {"anonymous": {},
            "cadre": caller(f"cadre@{places['a']['village']}").headers,  # may read restricted classes there: at L2
            "department": caller("department:housing@420281").headers}


def test_no_l3_or_l4_value_reaches_a_caller_without_clearance(client: TestClient, data: dict[str, Any],
                                                              callers: dict[str, dict[str, str]]) -> None:
    doc_paths = {p for p, ops in client.get("/openapi.json").json()["paths"].items() if "get" in ops}
    for who, headers in callers.items():
        answers, walked = _walk(client, headers, data)
        assert walked == doc_paths
        patterns = SECRETS | (INTERNAL if who == "anonymous" else {})
        leaks = {k: v[:3] for k, v in _found(answers, patterns).items() if v}
        assert not leaks, (who, leaks)


def test_a_cleared_principal_sees_every_value(client: TestClient, data: dict[str, Any], admin_headers: dict) -> None:
    """The same walk as an admin finds every value: the sweep reaches where they are."""
    answers, _ = _walk(client, admin_headers, data)
    missing = [k for k, v in _found(answers, SECRETS | INTERNAL).items() if not v]
    assert not missing
    shelter = client.get(f"/objects/{data['codes'][SHELTER]}", headers=admin_headers).json()
    assert shelter["attrs"]["capacity"] == 98765 and shelter["attrs"]["floor_area"] == 4321.5


def test_masks_and_withholding_below_the_personal_grant(client: TestClient, data: dict[str, Any],
                                                        callers: dict[str, dict[str, str]],
                                                        caller: Callable[..., Any]) -> None:
    house = data["codes"][HOUSE]
    cadre = client.get(f"/objects/{house}", headers=callers["cadre"]).json()["attrs"]
    assert cadre == {"house_use": "自住", "owner_name": "司***", "owner_phone": "138****8765",
                     "owner_id_number": OWNER_ID[:6] + "********" + OWNER_ID[-4:]}  # L3 certificate_no withheld
    assert client.get(f"/objects/{house}").status_code == 404  # households are not public one by one
    room = data["places"]["room"]
    assert client.get(f"/addresses/{room}", headers=callers["cadre"]).json()["persons"] is None  # not even masked
    cleared = caller(f"cadre@{data['places']['a']['village']}", clearance="L4", personal=True).headers
    assert any(p["id_number"] == PERSON_ID for p in client.get(f"/addresses/{room}", headers=cleared).json()["persons"])
    full = client.get(f"/objects/{house}", headers=cleared).json()["attrs"]
    assert full["owner_id_number"] == OWNER_ID and full["certificate_no"] == "鄂秘证第8888号"
    # numbers: withheld, not masked or rounded
    shelter = client.get(f"/ogc/collections/class-{SHELTER}/items/{data['codes'][SHELTER]}",
                         headers=callers["cadre"]).json()["properties"]
    assert "capacity" not in shelter and "floor_area" not in shelter and shelter["state"] == "破损"


# --- the mapping and the masks ----------------------------------------------------------------------------------


def test_levels_map_to_the_national_schemes(client: TestClient) -> None:
    cat = get_catalog()
    house, shelter, org = cat.get(HOUSE), cat.get(SHELTER), cat.get(ORG)
    assert house is not None and shelter is not None and org is not None

    def grade(cls: Any, field: str) -> classification.Grade:
        a = cls.attribute(field)
        assert a is not None
        return classification.grade(a)

    assert grade(house, "owner_id_number").gbt35273 == "敏感个人信息"
    assert grade(house, "owner_phone").gbt35273 == "个人信息" and grade(house, "owner_name").gbt35273 == "个人信息"
    assert grade(shelter, "capacity").gbt43697 == "核心数据" and grade(shelter, "shelter_name").gbt43697 == "重要数据"
    assert grade(org, "org_name").gbt43697 == "一般数据（公开）"
    listed = client.get("/classification").json()
    assert listed["levels"]["L4"] and {g["key"] for g in listed["grades"]} == set(classification.GRADES)


@pytest.mark.parametrize("kind", ["name", "id_number", "phone"])
def test_masks_are_the_same_in_python_and_sql(engine: Engine, kind: classification.MaskKind) -> None:
    values = ["", "王", "王五", "欧阳秘代表", "1381234", "13812345678", OWNER_ID, "+86-138-1234-5678"]
    with engine.connect() as c:
        for v in values:
            got = c.execute(text(f"SELECT {classification.mask_sql(kind, 'CAST(:v AS text)')}"), {"v": v}).scalar()
            assert got == classification.MASKS[kind](v), (kind, v)


@pytest.mark.parametrize("level", ["L1", "L2", "L3", "L4"])
def test_plans_are_the_same_in_python_and_sql(engine: Engine, level: str) -> None:
    """Whatever the values (numbers, dates, strings of personal kinds, attributes no catalog lists)."""
    house = get_catalog().get(HOUSE)
    assert house is not None
    rows = [{"house_use": "自住", "floor": 3, "floor_area": 88.5, "owner_name": "司徒秘主", "owner_phone": "13812348765",
             "owner_id_number": OWNER_ID, "certificate_no": "鄂秘证第8888号", "hazard_level": "一般"},
            {"house_use": "出租", "owner_phone": 13812348765, "not_in_the_catalog": "x", "generated": True}, {}]
    with engine.connect() as c:
        for personal in (False, True):
            plan = classification.plan(house, level, personal)  # type: ignore[arg-type]
            sql, params = plan.sql("CAST(:a AS jsonb)", "t_")
            for attrs in rows:
                got = c.execute(text(f"SELECT {sql}"), params | {"a": json.dumps(attrs)}).scalar()
                assert got == plan.apply(attrs), (level, personal, attrs)


# --- classified classes and counts ------------------------------------------------------------------------------


def _count(client: TestClient, params: dict[str, Any], key: str, headers: dict | None = None) -> int | None:
    r = client.get("/aggregate", params=params | {"geometry": "false"}, headers=headers or {})
    assert r.status_code == 200, r.text
    return next((f["properties"]["count"] for f in r.json()["features"] if f["id"] == key), 0)


def test_classified_and_household_objects_stay_out_of_public_counts(client: TestClient, data: dict[str, Any],
                                                                    admin_headers: dict) -> None:
    pt = data["pt"]
    for cls, i in ((SHELTER, 0), (HOUSE, 3)):
        for res in (9, 12):  # 9: the trigger-kept counts; 12: counted from the objects
            key = str(h3.str_to_int(h3.latlng_to_cell(_near(pt, i)[1], _near(pt, i)[0], res)))
            public, admin = (_count(client, {"by": f"h3:{res}"}, key, h) for h in ({}, admin_headers))
            assert admin is not None and public is not None and admin - public >= 1, (cls, res, admin, public)
    for who in ({},):
        assert f"class-{SHELTER}" not in {c["id"] for c in client.get("/ogc/collections", headers=who).json()["collections"]}
        assert f"class-{SHELTER}" not in {x["id"] for x in client.get("/layers", headers=who).json()["layers"]}


@pytest.fixture(scope="module")
def lonely_cell(client: TestClient, engine: Engine, admin_headers: dict) -> dict[str, Any]:
    """A res-9 H3 cell with no households around it, then six: five at its centre and one near its edge."""
    with engine.connect() as c:
        lon, lat = c.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM division WHERE level = 5 "
            "AND code LIKE '420281%' AND geom IS NOT NULL ORDER BY code DESC LIMIT 1) x")).one()
        assert not c.execute(text("SELECT count(*) FROM city_object WHERE class_code = :c AND ST_DWithin(geom::geography, "
                                  "ST_SetSRID(ST_Point(:x, :y), 4490)::geography, 2000)"),
                             {"c": HOUSE, "x": lon, "y": lat}).scalar()
    cell = h3.latlng_to_cell(lat, lon, 9)
    clat, clon = h3.cell_to_latlng(cell)
    vlat, vlon = h3.cell_to_boundary(cell)[0]
    edge = (clon + 0.85 * (vlon - clon), clat + 0.85 * (vlat - clat))
    points = [(clon + 0.0001 * i, clat) for i in range(5)] + [edge]  # 10 m apart: never five in one res-12 cell
    for x, y in points:
        r = client.post("/objects", headers=admin_headers, json={
            "class_code": HOUSE, "attrs": {"house_use": "自住"}, "division_code": "420281",
            "geometry": {"type": "Point", "coordinates": [x, y]}})
        assert r.status_code == 201, r.text
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    whole = f"{min(lons) - 0.001},{min(lats) - 0.001},{max(lons) + 0.001},{max(lats) + 0.001}"
    centre = f"{clon - 0.0002},{clat - 0.0002},{clon + 0.0005},{clat + 0.0002}"  # the five, not the edge one
    assert h3.latlng_to_cell(edge[1], edge[0], 9) == cell
    return {"key": str(h3.str_to_int(cell)), "whole": whole, "centre": centre}


def test_overlapping_bboxes_cannot_isolate_a_household(client: TestClient, lonely_cell: dict[str, Any],
                                                       admin_headers: dict) -> None:
    """Two boxes over one cell, one without the household near its edge: the difference of the answers would be
    that one household. The public gets the whole cell in both, so the answers agree."""
    key = lonely_cell["key"]
    params = {"by": "h3:9", "class": HOUSE}
    # a cleared caller counts what the box holds: the attack works against it (and it may see this)
    assert _count(client, params | {"bbox": lonely_cell["whole"]}, key, admin_headers) == 6
    assert _count(client, params | {"bbox": lonely_cell["centre"]}, key, admin_headers) == 5
    answers = []
    for box in ("whole", "centre"):
        r = client.get("/aggregate", params=params | {"bbox": lonely_cell[box], "geometry": "false"}).json()
        assert r["meta"]["whole_groups"] and r["meta"]["k"] == 5
        answers.append({f["id"]: f["properties"]["count"] for f in r["features"]})
    whole, centre = answers
    assert whole[key] == centre[key] == 6
    assert all(whole[k] == centre[k] for k in whole.keys() & centre.keys())
    difference = sum(v or 0 for v in whole.values()) - sum(v or 0 for v in centre.values())
    assert difference == 0 or difference >= 5
    # finer cells hold fewer than k each: hidden in both
    for box in ("whole", "centre"):
        fine = client.get("/aggregate", params={"by": "h3:12", "class": HOUSE, "bbox": lonely_cell[box]}).json()
        assert fine["features"] and all(f["properties"]["count"] is None for f in fine["features"])


def test_household_counts_of_grids_below_k_are_hidden(client: TestClient, engine: Engine, admin_headers: dict) -> None:
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": f"K{i}", "name": f"格{i}", "warden_phone": "13600001111"},
         "geometry": {"type": "Polygon", "coordinates": [[[114.9 + i * 0.01, 30.0], [114.91 + i * 0.01, 30.0],
                                                          [114.91 + i * 0.01, 30.01], [114.9 + i * 0.01, 30.0]]]}}
        for i in range(2)]}
    r = client.post("/grids/import", data={"system": "kanon"}, headers=admin_headers,
                    files={"file": ("k.geojson", json.dumps(fc).encode())})
    assert r.status_code == 201, r.text
    with engine.begin() as c:
        c.execute(text("UPDATE grid SET households = CASE code WHEN 'K0' THEN 3 ELSE 40 END WHERE system = 'kanon'"))
    for headers, small in (({}, None), (admin_headers, 3)):
        cells = {f["id"]: f["properties"] for f in client.get("/grids", params={"system": "kanon"},
                                                               headers=headers).json()["features"]}
        assert cells["K0"]["households"] == small and cells["K1"]["households"] == 40
        assert client.get("/grids/kanon/K0", headers=headers).json()["properties"]["households"] == small
        items = client.get("/ogc/collections/grids-kanon/items", headers=headers).json()["features"]
        assert {f["id"]: f["properties"]["households"] for f in items} == {"K0": small, "K1": 40}
        # an imported system's own attributes are no catalog's: shown only to the cleared
        assert ("warden_phone" in json.dumps(items)) == (small is not None)
    r = client.get("/ogc/collections/grids-kanon/items", params={"filter": "households < 5"})
    assert r.status_code == 400 and r.json()["error_code"] == "filter_property_unknown"
    z, x, y = _tile(114.905, 30.005, 14)
    tile = mapbox_vector_tile.decode(client.get(f"/tiles/grids-kanon/{z}/{x}/{y}.mvt").content)["grids-kanon"]
    assert {f["properties"]["code"]: f["properties"].get("households") for f in tile["features"]}["K0"] is None
