"""Real divisions: counts from the published lists, both code systems, names and aliases."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_counts_per_level(count_rows) -> None:  # noqa: ANN001
    assert count_rows("SELECT count(*) FROM division WHERE level=5 AND 'stat-2023' = ANY(sources)") == 620573
    assert count_rows("SELECT count(*) FROM division WHERE level=1") >= 31
    assert count_rows("SELECT count(*) FROM division WHERE level=4 AND mca_code IS NOT NULL") > 38000


def test_daye_townships_and_villages(client: TestClient) -> None:
    r = client.get("/divisions/420281")
    assert r.status_code == 200
    d = r.json()
    assert d["name"] == "大冶市" and d["level"] == 3 and d["has_boundary"]
    assert [p["name"] for p in d["parents"]] == ["湖北省", "黄石市"]
    kids = {k["name"]: k for k in d["children"]}
    assert "东岳路街道" in kids and "金山街道" in kids and "东风农场管理区" in kids and "四顾闸管理处" in kids
    assert sum(1 for k in d["children"] if k["mca_code"]) == 16  # the civil-affairs list has 16
    assert kids["金山街道"]["mca_code"] == "420281005"


def test_village_kinds_of_daye(count_rows) -> None:  # noqa: ANN001
    sql = "SELECT count(*) FROM division WHERE level=5 AND code LIKE '420281%' AND kind=:k"
    assert count_rows(sql, k="村委会") == 321
    assert count_rows(sql, k="居委会") == 70
    assert count_rows(sql, k="其他") == 40


def test_both_code_systems_resolve(client: TestClient) -> None:
    a = client.get("/divisions/420281070").json()
    b = client.get("/divisions/420281005").json()
    assert a["code"] == b["code"] == "420281070"
    assert a["name"] == "金山街道" and a["codes"]["civil_affairs"] == "420281005"
    assert client.get("/divisions/420200").json()["name"] == "黄石市"
    assert client.get("/divisions/420000000000").json()["name"] == "湖北省"


def test_search_by_short_name_and_alias(client: TestClient) -> None:
    r = client.get("/divisions", params={"name": "大冶"}).json()
    assert r["items"][0]["code"] == "420281"
    r = client.get("/divisions", params={"name": "黄石"}).json()
    assert r["items"][0]["code"] == "4202"
    r = client.get("/divisions", params={"name": "建设社区", "within": "420281"}).json()
    assert r["items"] and all(i["code"].startswith("420281") for i in r["items"])
    assert r["items"][0]["name"] == "建设社区居民委员会"


def test_children_and_parents_endpoints(client: TestClient) -> None:
    kids = client.get("/divisions/420281001/children").json()["items"]
    assert kids and all(k["parent_code"] == "420281001" and k["level"] == 5 for k in kids)
    parents = client.get(f"/divisions/{kids[0]['code']}/parents").json()["items"]
    assert [p["code"] for p in parents] == ["42", "4202", "420281", "420281001"]


def test_bad_division_codes(client: TestClient) -> None:
    r = client.get("/divisions/42x")
    assert r.status_code == 400 and r.json()["error_code"] == "division_code_format"
    r = client.get("/divisions/999999")
    assert r.status_code == 404 and r.json()["message_zh"]
    r = client.get("/divisions", params={"name": ""})
    assert r.status_code == 422 and r.json()["field"] == "name"
