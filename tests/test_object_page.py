"""The object page `/objects/{code}/page`: the one-page view for a person, cut to the caller's role and
clearance (the public sees public classes at the public clearance; masks stay masks), text escaped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.conftest import Caller

BENCH = "040302"  # 街头坐椅 (landscaping, public)
SHELTER = "050402"  # 人防工事: not public
HOUSE = "050201"  # 实有房屋: personal, owner fields L4 and masked without the personal grant
EVIL = '<script>alert("x")</script>'


def _create(client: TestClient, headers: dict[str, str], cls: str, pt: list[float], name: str,
            **attrs: Any) -> str:
    r = client.post("/objects", json={"class_code": cls, "geometry": {"type": "Point", "coordinates": pt},
                                      "attrs": attrs, "name": name, "division_code": "420281"}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["code"])


def test_public_page_escapes_text_and_shows_only_public_values(client: TestClient, admin_headers: dict,
                                                               caller: Callable[..., Caller], places: dict) -> None:
    a = places["a"]
    code = _create(client, admin_headers, BENCH, a["pt"], "坐椅" + EVIL, state="完好", remark="内部备注 L2")
    link = client.post(f"/links/{code}", json={"system": "数字城管", "record_id": "P-1", "title": "案件" + EVIL,
                                                "url": "https://cg.example/P-1"}, headers=admin_headers)
    assert link.status_code == 201, link.text
    r = client.get(f"/objects/{code}/page")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    assert EVIL not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert code in page and "街头坐椅" in page and 'href="https://cg.example/P-1"' in page
    assert "完好" in page and "内部备注" not in page  # remark is L2: above the public clearance
    assert "create" in page  # history
    reviewer = caller(f"reviewer@{a['township']}", clearance="L2").headers
    assert "内部备注 L2" in client.get(f"/objects/{code}/page", headers=reviewer).text


def test_unpublished_class_is_404_to_the_public_and_shown_to_its_department(
        client: TestClient, admin_headers: dict, caller: Callable[..., Caller], places: dict) -> None:
    code = _create(client, admin_headers, SHELTER, places["a"]["pt"], "一号工事", state="完好")
    assert client.get(f"/objects/{code}/page").status_code == 404
    assert client.get(f"/objects/{code}/page", headers=caller("department:housing@420281").headers).status_code == 404
    owner = caller("department:civil_air_defense@420281").headers
    r = client.get(f"/objects/{code}/page", headers=owner)
    assert r.status_code == 200 and "一号工事" in r.text


def test_person_fields_stay_masked_without_the_personal_grant(client: TestClient, admin_headers: dict,
                                                              caller: Callable[..., Caller], places: dict) -> None:
    code = _create(client, admin_headers, HOUSE, places["a"]["pt"], "3-201", house_use="自住",
                   owner_name="张三丰", owner_phone="13812345678")
    police = caller("department:public_security@420281", clearance="L4").headers  # no personal grant
    page = client.get(f"/objects/{code}/page", headers=police).text
    assert "13812345678" not in page and "张三丰" not in page
    assert "138****5678" in page and "张*" in page
    assert "联系电话" in page  # the catalog's label
    full = client.get(f"/objects/{code}/page", headers=admin_headers).text
    assert "13812345678" in full and "张三丰" in full
    assert client.get(f"/objects/{code}/page").status_code == 404  # a household, one by one: not for the public


def test_address_page_links_to_its_object(client: TestClient, engine: Engine, demo_county: dict) -> None:
    with engine.connect() as c:
        row = c.execute(text("SELECT a.code, a.object_code FROM addr_node a JOIN city_object o ON o.code = a.object_code "
                             "WHERE o.class_code NOT IN ('050201', '050402', '010703', '080201') LIMIT 1")).first()
    assert row is not None
    page = client.get(f"/a/{row.code}").text
    assert f'href="/objects/{row.object_code}/page"' in page
    assert client.get(f"/objects/{row.object_code}/page").status_code == 200
    assert client.get("/objects/123/page").json()["error_code"] == "code_format"
