"""Amap's match levels (`level_amap`) and `precise` on real geocode answers (citygrid/address/answer.py): single GET,
POST list and batch rows, against the demo address base."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from citygrid.address.answer import AMAP_LEVELS, LEVEL_AMAP, level_amap


@pytest.fixture(scope="module")
def base(engine, demo_county) -> dict:  # noqa: ANN001
    with engine.connect() as c:
        def one(sql: str) -> dict:
            return dict(c.execute(text(sql)).mappings().first())

        room = one("SELECT r.code, r.full_name, f.code floor_code, f.full_name floor_name, u.code unit_code, "
                   "u.full_name unit_name, b.code building_code, b.full_name building_name, b.parent_id bp "
                   "FROM addr_node r JOIN addr_node f ON f.id=r.parent_id JOIN addr_node u ON u.id=f.parent_id "
                   "JOIN addr_node b ON b.id=u.parent_id WHERE r.level='room' ORDER BY r.code LIMIT 1")
        return {
            "room": room,
            "compound": one("SELECT code, full_name, name FROM addr_node WHERE level='compound' ORDER BY code LIMIT 1"),
            "door": one("SELECT a.code, a.full_name, a.name, r.code road_code FROM addr_node a JOIN addr_node r "
                        "ON r.id=a.parent_id WHERE a.level='door' AND r.level='road' ORDER BY a.code LIMIT 1"),
            "gdoor": one("SELECT a.code, a.full_name FROM addr_node a JOIN addr_node g ON g.id=a.parent_id "
                         "WHERE g.level='village_group' ORDER BY a.code LIMIT 1"),
            "township": one("SELECT code, name FROM division WHERE level=4 AND code LIKE '420281%' ORDER BY code LIMIT 1"),
        }


def _top(client: TestClient, q: str) -> dict:
    r = client.get("/address/geocode", params={"q": q})
    assert r.status_code == 200, r.text
    return r.json()["candidates"][0]


def test_every_resolver_level_has_an_amap_word() -> None:
    assert set(LEVEL_AMAP.values()) <= set(AMAP_LEVELS)
    assert level_amap({"level": "township", "township": {"name": "大冶经济开发区"}}) == "开发区"
    assert level_amap({"level": "compound", "address": "某某路1号幸福家园"}) == "住宅区"
    assert level_amap({"level": "compound", "address": "某某路1号城东中学"}) == "兴趣点"


def test_exact_answers_from_room_to_county(client: TestClient, base: dict) -> None:
    room = base["room"]
    cases = [(room["full_name"], "room", "房间", room["code"]),
             (room["unit_name"], "unit", "单元号", room["unit_code"]),
             (room["building_name"], "building", "单元号", room["building_code"]),
             (base["door"]["full_name"], "door", "门牌号", base["door"]["code"]),
             (base["gdoor"]["full_name"], "door", "门牌号", base["gdoor"]["code"])]
    for q, level, amap, code in cases:
        top = _top(client, q)
        assert (top["level"], top["level_amap"], top["address_code"]) == (level, amap, code), q
        assert top["precise"] is True and top["confidence"] > 0.9, q
    # a floor without a room is answered as that floor (the resolver reads floors since the notation work)
    floor = _top(client, room["floor_name"])
    assert (floor["level"], floor["level_amap"], floor["address_code"]) == ("floor", "楼层", room["floor_code"])
    assert level_amap({"level": "floor"}) == "楼层"
    comp = _top(client, base["compound"]["full_name"])
    assert comp["level"] == "compound" and comp["address_code"] == base["compound"]["code"]
    assert comp["level_amap"] == ("住宅区" if re.search("小区|花园|家园|苑|新村|雅居|华府|名都|佳园|公馆$",
                                                          base["compound"]["name"]) else "兴趣点")
    town = _top(client, "湖北省黄石市大冶市" + base["township"]["name"])
    assert town["level"] == "township" and town["level_amap"] in ("乡镇", "开发区") and town["precise"] is False
    county = _top(client, "湖北省黄石市大冶市")
    assert county["level"] == "county" and county["level_amap"] == "区县" and county["precise"] is False


def test_fuzzy_answers_are_not_precise(client: TestClient, base: dict) -> None:
    d = base["door"]
    fallback = _top(client, d["full_name"].replace(d["name"], "9999号"))
    assert fallback["level"] == "road" and fallback["level_amap"] == "道路" and fallback["precise"] is False
    extra = _top(client, d["full_name"] + "对面的小卖部")
    assert extra["address_code"] == d["code"] and extra["level_amap"] == "门牌号" and extra["precise"] is False
    room = base["room"]["full_name"]
    sub = _top(client, room.replace("室", "室隔壁"))
    assert sub["precise"] is False


def test_post_list_carries_the_same_fields(client: TestClient, base: dict, dept_headers: Callable[..., dict]) -> None:
    addrs = [base["room"]["full_name"], base["door"]["full_name"].replace(base["door"]["name"], "9999号")]
    r = client.post("/address/geocode", json={"addresses": addrs, "limit": 2}, headers=dept_headers("civil_affairs"))
    res = r.json()["results"]
    assert (res[0]["candidates"][0]["level_amap"], res[0]["candidates"][0]["precise"]) == ("房间", True)
    assert (res[1]["candidates"][0]["level_amap"], res[1]["candidates"][0]["precise"]) == ("道路", False)
    for row in res:
        for c in row["candidates"]:
            assert c["level_amap"] in AMAP_LEVELS and isinstance(c["precise"], bool) and "confidence" in c


def test_openapi_documents_the_levels(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for method in ("get", "post"):
        desc = doc["paths"]["/address/geocode"][method]["description"]
        assert "level_amap" in desc and "precise" in desc and "住宅区" in desc
