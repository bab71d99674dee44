"""Resolver over HTTP against the demo address base: exact, partial, noisy, fallbacks, batch, masking."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from citygrid.security import crypto


@pytest.fixture()
def personal(login_as) -> dict[str, str]:  # noqa: ANN001
    """A department granted personal data: without the grant persons and houses are invisible (row-level security,
    tests/test_security_rls.py)."""
    return login_as("police-personal", "department:public_security@420281", clearance="L4", personal=True)


@pytest.fixture(scope="module")
def base(engine, demo_county) -> dict:  # noqa: ANN001
    with engine.connect() as c:
        def one(sql: str) -> dict:
            return dict(c.execute(text(sql)).mappings().first())

        return {
            "room": one("SELECT code, full_name, ST_X(point) x, ST_Y(point) y FROM addr_node WHERE level='room' "
                        "ORDER BY code LIMIT 1"),
            "door": one("SELECT a.code, a.full_name, a.name, a.number, r.name road, r.code road_code FROM addr_node a "
                        "JOIN addr_node r ON r.id=a.parent_id WHERE a.level='door' AND r.level='road' "
                        "ORDER BY a.code LIMIT 1"),
            "gdoor": one("SELECT a.code, a.full_name FROM addr_node a JOIN addr_node g ON g.id=a.parent_id "
                         "WHERE g.level='village_group' ORDER BY a.code LIMIT 1"),
        }


def _top(client: TestClient, q: str) -> dict:
    r = client.get("/address/geocode", params={"q": q})
    assert r.status_code == 200, r.text
    return r.json()["candidates"][0]


def test_room_address_resolves_to_its_codes_and_point(client: TestClient, base: dict) -> None:
    room = base["room"]
    top = _top(client, room["full_name"])
    assert top["level"] == "room" and top["address_code"] == room["code"] and top["confidence"] > 0.9
    assert top["point"]["lon"] == pytest.approx(room["x"]) and top["point"]["lat"] == pytest.approx(room["y"])
    assert top["codes"]["building"] and top["codes"]["door"] and top["township"]["name"]
    assert top["unused"] == []


@pytest.mark.parametrize("variant", [
    lambda s: s.replace("湖北省黄石市", ""),                                  # missing levels
    lambda s: s.replace("湖北省黄石市大冶市", "大冶"),                          # short form
    lambda s: s.replace("栋", "幢").replace("室", "户"),                        # 幢/户
    lambda s: s.replace("单元", "單元").replace("湖北省", "湖北省 "),            # traditional + separators
    lambda s: s.translate(str.maketrans("0123456789", "０１２３４５６７８９")),    # full-width digits
])
def test_noisy_variants_of_a_room_address(client: TestClient, base: dict, variant) -> None:  # noqa: ANN001
    top = _top(client, variant(base["room"]["full_name"]))
    assert top["address_code"] == base["room"]["code"] and top["level"] == "room"


def test_missing_door_falls_back_to_road_without_inventing_a_point(client: TestClient, base: dict) -> None:
    d = base["door"]
    top = _top(client, d["full_name"].replace(d["name"], "9999号"))
    assert top["level"] == "road" and top["address_code"] == d["road_code"]
    assert top["confidence"] < 0.8 and any("9999号" in n for n in top["notes"])
    assert "9999号" in "".join(top["unused"])


def test_sub_number_falls_back_to_base_number(client: TestClient, base: dict) -> None:
    d = base["door"]
    top = _top(client, d["full_name"].replace(d["name"], f"{d['number']}-1号"))
    assert top["level"] == "door" and top["address_code"] == d["code"] and top["confidence"] < 0.95


def test_one_character_typo_in_road_name(client: TestClient, base: dict) -> None:
    d = base["door"]
    road = d["road"]
    typo = road[0] + ("某" if road[1] != "某" else "甲") + road[2:]
    top = _top(client, f"大冶市{typo}{d['name']}")
    if len(road) >= 4:
        assert top["address_code"] == d["code"] and top["confidence"] < 1.0
    else:  # 安某路2号: 安康路 or 安X路, both with a 2号 — undecidable without a township: no road, never a wrong door
        assert top["address_code"] in (d["code"], None) and top["confidence"] < 1.0
    town = _top(client, d["full_name"])["township"]["name"]
    top = _top(client, f"{town}{typo}{d['name']}")
    assert top["address_code"] in (d["code"], None) and top["confidence"] < 1.0
    if top["address_code"]:
        assert any("近似" in n for n in top["notes"])


def test_village_group_door(client: TestClient, base: dict) -> None:
    top = _top(client, base["gdoor"]["full_name"])
    assert top["address_code"] == base["gdoor"]["code"] and top["level"] == "door"


def test_bad_single_inputs(client: TestClient) -> None:
    r = client.get("/address/geocode", params={"q": ""})
    assert r.status_code == 400 and r.json()["error_code"] == "address_empty"
    r = client.get("/address/geocode", params={"q": "大" * 3_400})  # ~10 kB of UTF-8
    assert r.status_code == 422 and r.json()["field"] == "q"
    r = client.get("/address/geocode", params={"q": "\x00\x01\x02"})
    assert 400 <= r.status_code < 500 and r.json()["message_zh"]


def test_post_many_keeps_every_row(client: TestClient, base: dict, dept_headers: Callable[..., dict]) -> None:
    addrs = [base["room"]["full_name"], "", "x" * 10_000, base["door"]["full_name"], "\x00\xff"]
    r = client.post("/address/geocode", json={"addresses": addrs}, headers=dept_headers("civil_affairs"))
    assert r.status_code == 200
    res = r.json()["results"]
    assert [x["row"] for x in res] == [0, 1, 2, 3, 4]
    assert res[0]["candidates"][0]["address_code"] == base["room"]["code"]
    assert res[1]["error"]["error_code"] == "address_empty" and res[2]["error"]["error_code"] == "address_too_long"
    assert res[3]["candidates"][0]["address_code"] == base["door"]["code"]
    assert res[4]["candidates"] == [] and res[4]["error"]["error_code"]


def test_reverse_geocoding(client: TestClient, base: dict) -> None:
    room = base["room"]
    r = client.get("/address/reverse", params={"x": room["x"], "y": room["y"], "radius": 300}).json()
    assert r["door"] and r["county"]["code"] == "420281" and r["township"]
    far = client.get("/address/reverse", params={"x": 121.0, "y": 20.0}).json()
    assert far["door"] is None and far["reason"]["zh"]
    assert client.get("/address/reverse", params={"x": 0, "y": 0}).status_code == 400


def test_address_node_masks_persons_and_has_qr(client: TestClient, engine, dept_headers: Callable[..., dict],  # noqa: ANN001
                                               personal: dict) -> None:
    with engine.connect() as c:
        code, name, phone_enc = c.execute(text("SELECT a.code, p.name, p.phone_enc FROM person p JOIN addr_node a "
                                               "ON a.id=p.room_id ORDER BY p.id LIMIT 1")).first()
    phone = crypto.decrypt(phone_enc, "phone")
    for who in ({}, dept_headers("housing")):  # the public and staff without the grant: no 三实 of a room at all
        hidden = client.get(f"/addresses/{code}", headers=who).json()
        assert hidden["level"] == "room" and hidden["persons"] is None and hidden["house"] is None
        assert name not in str(hidden) and phone not in str(hidden)
    r = client.get(f"/addresses/{code}", headers=personal).json()  # the personal grant there: in clear
    assert r["persons"] and r["house"] and name in str(r) and phone in str(r)
    assert not any(p.get("masked") for p in r["persons"])
    assert [p["level"] for p in r["parents"]][-3:] == ["building", "unit", "floor"]
    svg = client.get(f"/addresses/{code}/qr.svg")
    assert svg.status_code == 200 and svg.text.lstrip().startswith("<?xml") and "<svg" in svg.text
    page = client.get(f"/a/{code}")
    assert page.status_code == 200 and r["address"] in page.text
    assert client.get("/addresses/000000000000000000").status_code == 404


@pytest.fixture()
def batcher(client: TestClient, dept_headers: Callable[..., dict]) -> Any:
    """The client as a department's system (batch geocoding is for departments and admins); its jobs are its own."""
    headers = dept_headers("civil_affairs")
    client.headers.update(headers)
    yield client
    for k in headers:
        client.headers.pop(k, None)


def _wait(client: TestClient, job: str) -> dict:
    for _ in range(200):
        j = client.get(f"/address/batch/{job}").json()
        if j["state"] != "running":
            return j
        time.sleep(0.1)
    raise AssertionError("batch did not finish")


def test_batch_csv_with_bad_rows(batcher: TestClient, base: dict) -> None:
    client = batcher
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["编号", "地址"])
    rows = [base["room"]["full_name"], "", base["door"]["full_name"], "不存在的地方", "y" * 5000] * 40
    for i, a in enumerate(rows):
        w.writerow([i, a])
    r = client.post("/address/batch", files={"file": ("in.csv", buf.getvalue().encode("utf-8"), "text/csv")})
    assert r.status_code == 202, r.text
    j = _wait(client, r.json()["job"])
    assert j["state"] == "done" and j["done"] == len(rows)
    counts = j["detail"]["result"]
    assert counts["rows"] == len(rows) and counts["matched"] + counts["failed"] == len(rows)
    assert counts["matched"] == 80  # the room and the door, 40 times each; nothing else resolves below county
    out = client.get(f"/address/batch/{r.json()['job']}/result").content.decode("utf-8-sig")
    recs = list(csv.DictReader(io.StringIO(out)))
    assert len(recs) == len(rows) and recs[0]["address_code"] == base["room"]["code"] and recs[0]["in:编号"] == "0"
    assert recs[4]["status"] == "failed" and recs[4]["error_code"] == "address_too_long"
    gj = client.get(f"/address/batch/{r.json()['job']}/result", params={"format": "geojson"}).json()
    assert len(gj["features"]) == len(rows)
    x = client.get(f"/address/batch/{r.json()['job']}/result", params={"format": "xlsx"})
    assert x.status_code == 200 and x.content[:2] == b"PK"


def test_batch_excel_gbk_and_bad_files(batcher: TestClient, base: dict) -> None:
    from openpyxl import Workbook

    client = batcher
    wb = Workbook()
    ws = wb.active
    ws.append(["name", "住址"])
    ws.append(["a", base["door"]["full_name"]])
    b = io.BytesIO()
    wb.save(b)
    r = client.post("/address/batch", files={"file": ("in.xlsx", b.getvalue())})
    assert r.status_code == 202, r.text
    assert _wait(client, r.json()["job"])["detail"]["result"]["matched"] == 1
    gbk = ("地址\n" + base["door"]["full_name"] + "\n").encode("gbk")
    r = client.post("/address/batch", files={"file": ("gbk.csv", gbk)})
    assert r.status_code == 202 and _wait(client, r.json()["job"])["detail"]["result"]["matched"] == 1
    png = b"\x89PNG\r\n\x1a\n" + bytes(200)
    r = client.post("/address/batch", files={"file": ("x.png", png)})
    assert r.status_code == 400 and r.json()["error_code"] == "file_type"
    r = client.post("/address/batch", files={"file": ("in.csv", b"a,b\n1,2\n")})
    assert r.status_code == 400 and r.json()["error_code"] == "column_missing"
    r = client.post("/address/batch", files={"file": ("in.csv", b"")})
    assert r.status_code == 400 and r.json()["error_code"] == "file_empty"


def test_register_person_and_organization_with_check_characters(client: TestClient, base: dict, engine,  # noqa: ANN001
                                                                 admin_headers: dict,
                                                                 dept_headers: Callable[..., dict]) -> None:
    room, door = base["room"]["code"], base["door"]["code"]
    ok = {"name": "李示例", "id_number": "11010519491231002X", "phone": "17000001234", "relation": "租户"}
    r = client.post(f"/addresses/{room}/persons", json=ok, headers=admin_headers)  # the personal grant: clear
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "李示例" and not r.json().get("masked")
    assert client.get(f"/addresses/{room}", headers=dept_headers("housing")).json()["persons"] is None  # no grant
    seen = client.get(f"/addresses/{room}", headers=admin_headers).json()["persons"]
    assert any(p["name"] == "李示例" and p["id_number"] == "11010519491231002X" for p in seen)
    r = client.post(f"/addresses/{room}/persons", json={"name": "", "id_number": "110105194912310021", "phone": "12"},
                    headers=admin_headers)
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"name", "id_number", "phone"}
    assert client.post(f"/addresses/{door}/persons", json=ok, headers=admin_headers).json()["error_code"] == "address_level"
    r = client.post(f"/addresses/{door}/organizations", json={"name": "示例公司", "credit_code": "91110000600037341L"},
                    headers=admin_headers)
    assert r.status_code == 201 and r.json()["credit_code"] == "91110000600037341L"
    r = client.post(f"/addresses/{door}/organizations", json={"name": "示例公司", "credit_code": "91110000600037341M"},
                    headers=admin_headers)
    assert r.status_code == 422 and r.json()["error_code"] == "credit_code_invalid"
    with engine.connect() as c:
        n = c.execute(text("SELECT count(*) FROM audit_log WHERE action IN ('add_person', 'add_organization')")).scalar()
    assert n >= 2


def test_index_is_rebuilt_when_the_address_base_changes(engine, demo_county) -> None:  # noqa: ANN001
    from citygrid.address.index import AddressIndexCache

    cache = AddressIndexCache(engine)
    first = cache.get()
    assert len(first) > 0 and cache.get() is first
    with engine.begin() as c:  # what rebuilding the address base does to its data_source row
        c.execute(text("UPDATE data_source SET loaded_at = loaded_at + interval '1 second' "
                       "WHERE name LIKE 'address-%'"))
    assert cache.get() is not first


def test_current_trusts_the_index_for_its_window_and_sees_this_process_rebuild_at_once(engine, demo_county
                                                                                          ) -> None:  # noqa: ANN001
    from citygrid.address import index

    cache = index.AddressIndexCache(engine, max_age=3600)
    assert cache.current() is None  # nothing loaded: the caller must `get` (in a thread)
    first = cache.get()
    assert cache.current() is first
    with engine.begin() as c:  # a rebuild by another process: not asked about within the window
        c.execute(text("UPDATE data_source SET loaded_at = loaded_at + interval '1 second' "
                       "WHERE name LIKE 'address-%'"))
    assert cache.current() is first
    index.changed()  # a rebuild committed by this process: the next geocode must not use the old index
    assert cache.current() is None
    second = cache.get()
    assert second is not first and cache.current() is second
    cache.max_age = 1e-9  # the window has passed: answered from memory while the check runs in the background
    with engine.begin() as c:
        c.execute(text("UPDATE data_source SET loaded_at = loaded_at + interval '1 second' "
                       "WHERE name LIKE 'address-%'"))
    assert cache.current() is second
    assert cache._checking is not None
    cache._checking.join(120)
    cache.max_age = 3600
    third = cache.current()
    assert third is not None and third is not second


def test_a_geocode_with_the_index_warm_queries_nothing(client: TestClient, demo_county: dict) -> None:
    from sqlalchemy import event

    app: Any = client.app
    assert client.get("/address/geocode", params={"q": "大冶市金湖街道"}).status_code == 200  # loaded, checked
    app.state.address_indexes.max_age = 3600
    checking = app.state.address_indexes._checking  # a check the first request started ends before counting
    if checking is not None:
        checking.join(120)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(app.state.engine, "before_cursor_execute", seen)
    try:
        for q in ("大冶市金湖街道", "大冶市东岳路街道", "湖北省大冶市大箕铺镇"):
            r = client.get("/address/geocode", params={"q": q})
            assert r.status_code == 200 and r.json()["candidates"], r.text
    finally:
        event.remove(app.state.engine, "before_cursor_execute", seen)
        app.state.address_indexes.max_age = 1.0
    assert statements == []


@pytest.mark.parametrize("q", [
    "湖北省黃石市大冶市 東岳路街道新冶大道８８號金湖小區三號樓二單元五〇二戶",  # traditional, full-width, numerals
    "大冶市东岳路街道八一新村１２幢九层",                                        # 幢, full-width digits, 九层
    "大冶市金湖街道，金湖大道－18号金湖小区A座3#楼",                             # separators, 座, #
    "湖北省大冶市大箕铺镇柯大兴村二组",                                          # 二组
])
def test_parse_spans_are_the_callers_text(client: TestClient, q: str) -> None:
    r = client.get("/address/parse", params={"q": q})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["input"] == q and body["normalized"]
    assert body["spans"]
    for s in body["spans"]:
        assert q[s["start"]: s["end"]] == s["text"], s
        assert s["value"] and s["value"] in body["normalized"], s


def test_parse_value_is_the_normalized_form(client: TestClient) -> None:
    spans = client.get("/address/parse", params={"q": "大冶市东岳路街道八一新村00幢九层"}).json()["spans"]
    by = {s["label"]: s for s in spans}
    assert (by["houseno"]["text"], by["houseno"]["value"]) == ("00幢", "00栋")
    assert (by["floorno"]["text"], by["floorno"]["value"]) == ("九层", "9层")
