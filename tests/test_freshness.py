"""Data freshness (数据鲜活性): objects older than their class's update period are stale, a confirmation (one by
one or for a whole area) makes them fresh again and is history and a feed entry; the report and its page keep
to the caller's rights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid.catalog import get_catalog

IN_DAYE = (114.97, 30.10)
LAMP = next(c for c in get_catalog().classes.values() if c.name == "路灯")
SHELTER = next(c for c in get_catalog().classes.values() if c.name == "人防工事")
OTHER = next(c for c in get_catalog().classes.values() if c.department.id != LAMP.department.id and c.public)


@pytest.fixture(scope="module")
def townships(engine: Engine) -> list[str]:
    with engine.connect() as c:
        return list(c.execute(text("SELECT code FROM division WHERE level = 4 AND code LIKE '420281%' "
                                   "ORDER BY code LIMIT 2")).scalars())


def _create(client: TestClient, headers: dict[str, str], cls_code: str, division: str) -> str:
    r = client.post("/objects", json={"class_code": cls_code, "geometry": {"type": "Point", "coordinates":
                                      list(IN_DAYE)}, "attrs": {"state": "完好"}, "division_code": division},
                    headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["code"])


def _row(client: TestClient, township: str, cls_code: str, headers: dict[str, str] | None = None
         ) -> dict[str, Any]:
    r = client.get("/freshness", params={"division": township, "class": cls_code}, headers=headers or {})
    assert r.status_code == 200, r.text
    rows = [x for x in r.json()["rows"] if x["township_code"] == township and x["class_code"] == cls_code]
    assert len(rows) <= 1
    return rows[0] if rows else {"objects": 0, "stale": 0}


def _age(engine: Engine, codes: list[str], days: int) -> None:
    """Set creation and last update back, as the database owner (the application cannot)."""
    with engine.begin() as c:
        c.execute(text("UPDATE city_object SET created_at = now() - make_interval(days => :d), "
                       "updated_at = now() - make_interval(days => :d) WHERE code = ANY(:c)"), {"d": days, "c": codes})


def test_old_objects_are_stale_and_confirming_makes_them_fresh(client: TestClient, engine: Engine,
                                                              admin_headers: dict[str, str], townships: list[str],
                                                              caller: Callable[..., Any]) -> None:
    town = townships[0]
    before = _row(client, town, LAMP.code, admin_headers)
    codes = [_create(client, admin_headers, LAMP.code, town) for _ in range(3)]
    _age(engine, codes[:2], LAMP.update_period_days + 10)
    _age(engine, codes[2:], LAMP.update_period_days - 10)  # old, but within the period
    row = _row(client, town, LAMP.code, admin_headers)
    assert row["objects"] == before["objects"] + 3 and row["stale"] == before["stale"] + 2
    assert row["stale_pct"] == round(100 * row["stale"] / row["objects"], 1)
    assert row["coded_pct"] == 100.0 and row["update_period_days"] == LAMP.update_period_days
    assert row["department"] == LAMP.department.id and row["department_name"] == LAMP.department.name
    assert row["township_name"] and row["last_update"]

    owner = caller(f"department:{LAMP.department.id}@420281")
    r = client.post(f"/objects/{codes[0]}/confirm", json={"reason": "巡查确认"}, headers=owner.headers)
    assert r.status_code == 200, r.text
    assert _row(client, town, LAMP.code, admin_headers)["stale"] == before["stale"] + 1

    # the whole township at once, by the owning department
    r = client.post("/objects/confirm", json={"division": town, "class_code": LAMP.code, "reason": "年度核查"},
                    headers=owner.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"division": town, "class_code": LAMP.code, "confirmed": before["objects"] + 3}
    after = _row(client, town, LAMP.code, admin_headers)
    assert after["objects"] == before["objects"] + 3 and after["stale"] == 0 and after["stale_pct"] == 0.0

    # recorded like the single confirmation: a history version and a feed entry each
    versions = client.get(f"/objects/{codes[1]}/history", headers=admin_headers).json()["versions"]
    assert [(v["op"], v["reason"]) for v in versions] == [("create", None), ("confirm", "年度核查")]
    entries = client.get("/changes", params={"kinds": "confirmed", "class": LAMP.code, "limit": 1000},
                         headers=admin_headers).json()["entries"]
    confirmed = [e["code"] for e in entries]
    assert confirmed.count(codes[0]) == 2 and confirmed.count(codes[1]) == 1 and confirmed.count(codes[2]) == 1


def test_bulk_confirm_is_for_the_owning_department_in_its_scope(client: TestClient, townships: list[str],
                                                                admin_headers: dict[str, str],
                                                                caller: Callable[..., Any]) -> None:
    town, other_town = townships
    code = _create(client, admin_headers, LAMP.code, town)
    body = {"division": town, "class_code": LAMP.code}
    r = client.post("/objects/confirm", json=body)
    assert r.status_code == 401 and r.json()["error_code"] == "unauthenticated"
    for who in (caller(f"department:{OTHER.department.id}@420281"), caller(f"cadre@{town}001"),
                caller(f"department:{LAMP.department.id}@{other_town}")):
        r = client.post("/objects/confirm", json=body, headers=who.headers)
        assert r.status_code == 403 and r.json()["error_code"] == "forbidden", r.text
    # a department scoped to one township may not confirm the county
    r = client.post("/objects/confirm", json={"division": "420281", "class_code": LAMP.code},
                    headers=caller(f"department:{LAMP.department.id}@{town}").headers)
    assert r.status_code == 403
    history = client.get(f"/objects/{code}/history", headers=admin_headers).json()["versions"]
    assert [v["op"] for v in history] == ["create"]
    assert client.post("/objects/confirm", json={"division": "999999", "class_code": LAMP.code},
                       headers=admin_headers).json()["error_code"] == "division_unknown"
    assert client.post("/objects/confirm", json={"division": town, "class_code": "999999"},
                       headers=admin_headers).json()["error_code"] == "class_unknown"


def test_report_filters_and_rights(client: TestClient, admin_headers: dict[str, str], townships: list[str]) -> None:
    town = townships[0]
    _create(client, admin_headers, LAMP.code, town)
    _create(client, admin_headers, SHELTER.code, town)
    public = client.get("/freshness", params={"division": town}).json()["rows"]
    admin = client.get("/freshness", params={"division": town}, headers=admin_headers).json()["rows"]
    assert LAMP.code in {r["class_code"] for r in public}
    assert SHELTER.code not in {r["class_code"] for r in public}
    assert SHELTER.code in {r["class_code"] for r in admin}
    assert all(r["township_code"] == town for r in admin)
    by_dep = client.get("/freshness", params={"department": LAMP.department.id}, headers=admin_headers).json()["rows"]
    assert by_dep and {r["department"] for r in by_dep} == {LAMP.department.id}
    r = client.get("/freshness", params={"department": "no_such_department"})
    assert r.status_code == 400 and r.json()["error_code"] == "department_unknown"
    r = client.get("/freshness", params={"class": "999999"})
    assert r.status_code == 400 and r.json()["error_code"] == "class_unknown"
    villages = client.get("/freshness/villages", params={"division": town})
    assert villages.status_code == 200 and villages.json()["type"] == "FeatureCollection"


def test_page_renders_anonymously_with_public_classes_only(client: TestClient, admin_headers: dict[str, str],
                                                           townships: list[str]) -> None:
    town = townships[0]
    _create(client, admin_headers, LAMP.code, town)
    _create(client, admin_headers, SHELTER.code, town)
    for r in (client.get("/freshness", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}),
              client.get("/freshness", params={"format": "html", "division": town})):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe" not in csp
        assert LAMP.name in r.text and LAMP.code in r.text
        assert SHELTER.name not in r.text and SHELTER.code not in r.text
        assert '<table id="fresh-table" class="sortable">' in r.text and "/static/freshness.js" in r.text
    # the admin's page has the shelter
    assert SHELTER.name in client.get("/freshness", params={"format": "html"}, headers=admin_headers).text
    assert client.get("/static/freshness.js").status_code == 200
    assert client.get("/static/freshness.css").status_code == 200
    # a plain API client gets JSON
    assert client.get("/freshness").headers["content-type"].startswith("application/json")


def test_village_choropleth_counts_stale_objects(client: TestClient, engine: Engine, admin_headers: dict[str, str],
                                                 places: dict[str, Any]) -> None:
    village, pt = places["a"]["village"], places["a"]["pt"]
    codes = [client.post("/objects", json={"class_code": LAMP.code, "geometry": {"type": "Point", "coordinates": pt},
                                           "attrs": {"state": "完好"}}, headers=admin_headers).json()["code"]
             for _ in range(2)]
    _age(engine, codes[:1], LAMP.update_period_days + 1)

    def feature(headers: dict[str, str] | None = None) -> dict[str, Any]:
        r = client.get("/freshness/villages", params={"division": village, "class": LAMP.code}, headers=headers or {})
        assert r.status_code == 200, r.text
        (f,) = [f for f in r.json()["features"] if f["id"] == village]
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
        return dict(f["properties"])

    p = feature()
    assert p["stale"] >= 1 and p["stale_pct"] == round(100 * p["stale"] / p["objects"], 1)
    client.post("/objects/confirm", json={"division": village, "class_code": LAMP.code}, headers=admin_headers)
    assert feature()["stale"] == 0
    # classified classes are not counted for the public
    shelter = client.post("/objects", json={"class_code": SHELTER.code, "geometry": {"type": "Point", "coordinates": pt},
                                            "attrs": {"state": "完好"}}, headers=admin_headers).json()["code"]
    _age(engine, [shelter], SHELTER.update_period_days + 1)
    r = client.get("/freshness/villages", params={"division": village, "class": SHELTER.code})
    assert r.json()["features"] == []
    r = client.get("/freshness/villages", params={"division": village, "class": SHELTER.code}, headers=admin_headers)
    assert r.json()["features"][0]["properties"]["stale"] >= 1


def test_page_sorts_and_draws_villages_in_a_browser_under_its_csp(live_server: str, client: TestClient,
                                                                   admin_headers: dict[str, str],
                                                                   places: dict[str, Any]) -> None:
    """The page in headless chromium (tests/test_web.py's driver): the table sorts by a click, the choropleth
    draws the villages, and nothing is refused under the page's CSP."""
    from test_web import CHROMIUM, Chromium

    from api import web

    assert CHROMIUM is not None and web.maplibre_dir() is not None, "scripts/setup.sh installs chromium and MapLibre"
    r = client.post("/objects", json={"class_code": LAMP.code, "geometry": {"type": "Point", "coordinates":
                                      places["b"]["pt"]}, "attrs": {"state": "完好"}}, headers=admin_headers)
    assert r.status_code == 201, r.text
    b = Chromium()
    try:
        b.open(f"{live_server}/freshness?format=html")
        b.wait_for("document.body && document.body.dataset.ready === '1'", timeout=30)
        assert b.js("document.querySelectorAll('#fresh-table tbody tr').length") >= 2
        col = "[...document.querySelectorAll('#fresh-table tbody tr')].map(r => parseFloat(r.children[4].dataset.sort))"
        b.js("document.querySelectorAll('#fresh-table th')[4].click()")
        up = b.js(col)
        assert up == sorted(up)
        b.js("document.querySelectorAll('#fresh-table th')[4].click()")
        assert b.js(col) == sorted(up, reverse=True)
        assert b.js("/^[1-9]\\d* 个村/.test(document.getElementById('fresh-msg').textContent)")
        assert not b.csp_violations(), b.csp_violations()
    finally:
        b.close()


def test_demo_county_has_varied_ages(client: TestClient, demo_county: dict[str, Any], engine: Engine) -> None:
    """The demo's objects were last touched up to 1.8 periods ago, by township: the report has something to show,
    and history agrees with the objects."""
    rows = client.get("/freshness", params={"division": "420281"}).json()["rows"]
    by_town: dict[str, list[int]] = {}
    for r in rows:
        if r["township_code"]:
            by_town.setdefault(r["township_code"], [0, 0])
            by_town[r["township_code"]][0] += r["stale"]
            by_town[r["township_code"]][1] += r["objects"]
    shares = [stale / n for stale, n in by_town.values() if n >= 50]
    assert len(shares) >= 3 and max(shares) > 0.1 and min(shares) < max(shares) - 0.05, shares
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM city_object o JOIN city_object_history h ON h.uid = o.uid "
                              "AND h.version = o.version WHERE o.attrs->>'generator' IS NOT NULL "
                              "AND h.changed_at <> o.updated_at")).scalar_one() == 0
