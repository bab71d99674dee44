"""The change feed: every change once, in order, under writers that commit out of order; filters; rights;
long polling. The concurrency tests drive the registry's core with real PostgreSQL transactions (no mocks)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from citygrid.catalog import get_catalog
from citygrid.registry import objects
from citygrid.security.principal import SYSTEM, system_as
from citygrid.sharing import changes

IN_DAYE = (114.97, 30.10)
LAMP = next(c for c in get_catalog().classes.values() if c.name == "路灯")
SHELTER = next(c for c in get_catalog().classes.values() if c.name == "人防工事")


def _lamp() -> objects.NewObject:
    return objects.NewObject(class_code=LAMP.code, geometry={"type": "Point", "coordinates": list(IN_DAYE)},
                             attrs={"state": "完好"}, division_code="420281")


def _now(client: TestClient, headers: dict[str, str] | None = None) -> str:
    r = client.get("/changes", params={"since": "now"}, headers=headers or {})
    assert r.status_code == 200, r.text
    assert r.json()["entries"] == []
    return str(r.json()["cursor"])


def _all(client: TestClient, since: str, headers: dict[str, str] | None = None, **params: Any
         ) -> tuple[list[dict[str, Any]], str]:
    entries: list[dict[str, Any]] = []
    while True:
        r = client.get("/changes", params={"since": since, "limit": 7} | params, headers=headers or {})
        assert r.status_code == 200, r.text
        entries += r.json()["entries"]
        since = r.json()["cursor"]
        if not r.json()["more"]:
            return entries, since


def test_feed_gives_every_change_in_order(client: TestClient, admin_headers: dict[str, str]) -> None:
    start = _now(client, admin_headers)
    r = client.post("/objects", json={"class_code": LAMP.code, "geometry": {"type": "Point", "coordinates":
                                      list(IN_DAYE)}, "attrs": {"state": "完好"}, "division_code": "420281"},
                    headers=admin_headers)
    code = r.json()["code"]
    client.patch(f"/objects/{code}", json={"attrs": {"state": "破损"}}, headers=admin_headers)
    link = client.post(f"/links/{code}", json={"system": "数字城管", "record_id": f"F-{code}"}, headers=admin_headers)
    client.delete(f"/links/{code}/{link.json()['id']}", headers=admin_headers)
    client.post(f"/objects/{code}/retire", json={"reason": "拆除"}, headers=admin_headers)
    mine, cursor = _all(client, start, admin_headers, **{"class": LAMP.code})
    mine = [e for e in mine if e["code"] == code]
    assert [e["kind"] for e in mine] == ["created", "updated", "linked", "unlinked", "retired"]
    assert [e.get("version") for e in mine] == [1, 2, None, None, 3]
    assert mine[2]["link"]["system"] == "数字城管" and mine[0]["place"].startswith("420281")
    cursors = [e["cursor"] for e in mine]
    assert cursors == sorted(cursors, key=lambda c: tuple(map(int, c.split("-")))) and len(set(cursors)) == 5
    # nothing new: the same cursor back, no entry repeated
    again = client.get("/changes", params={"since": cursor}, headers=admin_headers).json()
    assert again["entries"] == [] and again["cursor"] == cursor
    # filters: kinds, division, class
    only = client.get("/changes", params={"since": start, "kinds": "linked,unlinked"}, headers=admin_headers).json()
    assert {e["kind"] for e in only["entries"]} == {"linked", "unlinked"}
    assert client.get("/changes", params={"since": start, "division": "420202"},
                      headers=admin_headers).json()["entries"] == []
    # a filtered follower's cursor still moves past what it does not want (no re-reading on every poll)
    moved = client.get("/changes", params={"since": start, "division": "420202"}, headers=admin_headers).json()
    assert moved["cursor"] == cursor


def test_bad_cursor_and_kinds_are_coded_errors(client: TestClient) -> None:
    r = client.get("/changes", params={"since": "12;DROP"})
    assert r.status_code == 400 and r.json()["error_code"] == "cursor_invalid" and r.json()["field"] == "since"
    r = client.get("/changes", params={"kinds": "created,exploded"})
    assert r.status_code == 400 and r.json()["error_code"] == "change_kind_unknown"
    assert client.get("/changes", params={"limit": 0}).status_code == 422


def test_feed_is_filtered_by_rights(client: TestClient, admin_headers: dict[str, str],
                                    caller: Callable[..., Any]) -> None:
    start = _now(client)
    body = {"geometry": {"type": "Point", "coordinates": list(IN_DAYE)}, "division_code": "420281"}
    shelter = client.post("/objects", json=body | {"class_code": SHELTER.code, "attrs": {"state": "完好"}}, headers=admin_headers)
    assert shelter.status_code == 201, shelter.text
    lamp = client.post("/objects", json=body | {"class_code": LAMP.code, "attrs": {"state": "完好"}},
                       headers=admin_headers).json()["code"]
    client.post(f"/links/{lamp}", json={"system": "s", "record_id": f"L3-{lamp}", "level": "L3"}, headers=admin_headers)
    public, _ = _all(client, start)
    codes = {e["code"] for e in public}
    assert lamp in codes and shelter.json()["code"] not in codes  # a classified class is not even named
    assert not [e for e in public if e["kind"] == "linked" and e["code"] == lamp]  # an L3 link is above L1
    l3 = caller("department:civil_air_defense@420281", clearance="L3")
    seen, _ = _all(client, start, l3.headers)
    assert shelter.json()["code"] in {e["code"] for e in seen}  # its own class, in its county
    assert [e for e in seen if e["kind"] == "linked" and e["code"] == lamp]
    everything, _ = _all(client, start, admin_headers)
    assert {e["code"] for e in everything} >= {lamp, shelter.json()["code"]}


def _lamps(engine: Engine, n: int) -> list[str]:
    with Session(engine) as s:
        codes = [objects.create(s, system_as("feed-test"), _lamp())["code"] for _ in range(n)]
        s.commit()
    return codes


_LINK = "INSERT INTO link (code, system, record_id, created_by) VALUES (:c, 'feed-test', :r, 'feed-test')"


def test_writers_committing_out_of_order_are_neither_skipped_nor_repeated(engine: Engine) -> None:
    """Writer A starts first (smaller transaction id, smaller seq) and commits last; a reader that polls after B's
    commit must hold B back until A commits, then get A's entry and B's, each once.

    The writers insert links (the `link` trigger writes the entries) on two connections of the owner: two
    registry creates of one class in one county lock the same code counter row, which would make B wait for A."""
    code_a, code_b = _lamps(engine, 2)
    with engine.connect() as reader:
        start = changes.parse_cursor(changes.page(reader, SYSTEM, None)["cursor"])
        reader.commit()
        with engine.connect() as a, engine.connect() as b:
            a.execute(text(_LINK), {"c": code_a, "r": f"A-{code_a}"})
            b.execute(text(_LINK), {"c": code_b, "r": f"B-{code_b}"})
            b.commit()
            seq_b = reader.execute(text("SELECT seq FROM change_log WHERE entity = 'link' AND key = :k"),
                                   {"k": code_b}).scalar_one()
            reader.commit()
            seq_a = a.execute(text("SELECT seq FROM change_log WHERE entity = 'link' AND key = :k"),
                              {"k": code_a}).scalar_one()
            # a plain "seq > last seen" reader would now take B's entry and move past A's, not yet visible
            assert seq_a < seq_b
            held = changes.page(reader, SYSTEM, start, ops=["link"])
            reader.commit()
            assert [e for e in held["entries"] if e["code"] in (code_a, code_b)] == []
            a.commit()
        after = changes.page(reader, SYSTEM, changes.parse_cursor(held["cursor"]), ops=["link"])
        assert [e["code"] for e in after["entries"] if e["code"] in (code_a, code_b)] == [code_a, code_b]
        rest = changes.page(reader, SYSTEM, changes.parse_cursor(after["cursor"]), ops=["link"])
        assert [e for e in rest["entries"] if e["code"] in (code_a, code_b)] == []


def test_a_follower_sees_every_commit_of_concurrent_writers_exactly_once(engine: Engine) -> None:
    """Four writers, each transaction sleeping a random while before it commits (so commit order is not start
    order) and one in five rolled back; a follower polls the cursor all along, five entries a page. It must see
    exactly the committed entries, once each."""
    targets = _lamps(engine, 4)
    with engine.connect() as c:
        start = changes.page(c, SYSTEM, None)["cursor"]
    committed: list[str] = []
    rolled_back: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    seen: list[str] = []
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        rnd = random.Random(n)
        try:
            with engine.connect() as w:
                for i in range(15):
                    record = f"w{n}-{i}-{targets[n]}"
                    w.execute(text(_LINK), {"c": targets[n], "r": record})
                    time.sleep(rnd.uniform(0, 0.04))
                    if i % 5 == 4:
                        w.rollback()
                        with lock:
                            rolled_back.append(record)
                    else:
                        w.commit()
                        with lock:
                            committed.append(record)
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            errors.append(e)

    def follower() -> None:
        cursor = changes.parse_cursor(start)
        try:
            with engine.connect() as c:
                while True:
                    done = stop.is_set()
                    out = changes.page(c, SYSTEM, cursor, ops=["link"], limit=5)
                    c.commit()
                    seen.extend(e["link"]["record_id"] for e in out["entries"])
                    cursor = changes.parse_cursor(out["cursor"])
                    if done and not out["more"]:
                        return
                    if not out["more"]:
                        time.sleep(0.005)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    f = threading.Thread(target=follower)
    f.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stop.set()
    f.join(30)
    assert not errors, errors
    mine = [r for r in seen if r in set(committed) | set(rolled_back)]
    assert len(mine) == len(set(mine)), "an entry was handed out twice"
    assert set(mine) == set(committed), "a committed entry was skipped (or a rolled-back one shown)"
    assert len(committed) == 4 * 12 and len(rolled_back) == 4 * 3


def test_long_poll_answers_when_a_change_commits(client: TestClient, admin_headers: dict[str, str],
                                                 engine: Engine) -> None:
    start = _now(client, admin_headers)

    def write_later() -> None:
        time.sleep(0.6)
        with Session(engine) as s:
            objects.create(s, system_as("late-writer"), _lamp())
            s.commit()

    t = threading.Thread(target=write_later)
    t.start()
    t0 = time.monotonic()
    r = client.get("/changes", params={"since": start, "wait": 10, "class": LAMP.code}, headers=admin_headers)
    waited = time.monotonic() - t0
    t.join()
    assert r.status_code == 200 and [e["kind"] for e in r.json()["entries"]] == ["created"]
    assert 0.5 < waited < 8
    # with nothing to come, it answers empty after the wait
    t0 = time.monotonic()
    r = client.get("/changes", params={"since": r.json()["cursor"], "wait": 0.5}, headers=admin_headers)
    assert r.json()["entries"] == [] and 0.4 < time.monotonic() - t0 < 3


def test_only_triggers_write_the_feed(engine: Engine, database_url: str) -> None:
    """The application's role may not insert into change_log: no code path can add, skip or forge an entry."""
    from citygrid.db.engine import app_engine_for
    from citygrid.security.scope import scoped

    with app_engine_for(database_url).connect() as c:
        scoped(c, SYSTEM)
        try:
            c.execute(text("INSERT INTO change_log (entity, key, op) VALUES ('object', 'x', 'create')"))
        except Exception as e:  # noqa: BLE001
            assert "permission denied" in str(e)
        else:
            raise AssertionError("the application role inserted into change_log")


def test_confirming_is_history_and_a_feed_entry(client: TestClient, admin_headers: dict[str, str],
                                                 caller: Callable[..., Any]) -> None:
    start = _now(client, admin_headers)
    body = {"class_code": LAMP.code, "geometry": {"type": "Point", "coordinates": list(IN_DAYE)},
            "attrs": {"state": "完好"}, "division_code": "420281"}
    code = client.post("/objects", json=body, headers=admin_headers).json()["code"]
    assert client.post(f"/objects/{code}/confirm").status_code == 401
    cadre = caller("cadre@420281001001")
    assert client.post(f"/objects/{code}/confirm", headers=cadre.headers).status_code == 403
    owner = caller(f"department:{LAMP.department.id}@420281")
    r = client.post(f"/objects/{code}/confirm", json={"reason": "巡查确认"}, headers=owner.headers)
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["attrs"] == {"state": "完好"}
    versions = client.get(f"/objects/{code}/history", headers=admin_headers).json()["versions"]
    assert [(v["op"], v["reason"]) for v in versions] == [("create", None), ("confirm", "巡查确认")]
    entries, _ = _all(client, start, admin_headers, kinds="confirmed")
    assert [(e["code"], e["version"]) for e in entries] == [(code, 2)]
