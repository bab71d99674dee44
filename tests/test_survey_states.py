"""Issue 11's states and what rests on them: received → validated | invalid → submitted (the cadre hands it in) →
coded | rejected, every transition and the forbidden ones; resubmissions that carry only the corrected rows,
matched by the row key of the downloaded file or by name and place; dedupe across the village boundary through
`citygrid_survey_neighbours`; ODK instances stored before the answer and processed as jobs."""

from __future__ import annotations

import io
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from shapely import wkb
from sqlalchemy import text
from sqlalchemy.engine import Engine

CLS = "010101"  # 上水井盖: a point class, 状态 required (enum)
HIDDEN = "050402"  # 人防工事: a point class kept out of public layers (a cadre reads its own village's only)


@pytest.fixture(scope="module")
def who(login_as: Any, places: dict) -> dict[str, dict[str, str]]:
    a = places["a"]
    return {"cadre": login_as("sst-cadre", f"cadre@{a['village']}"),
            "cadre2": login_as("sst-cadre2", f"cadre@{a['village']}"),
            "rev": login_as("sst-rev", f"reviewer@{a['township']}"),
            "admin": login_as("sst-admin", "admin")}


def _csv(rows: list[list[Any]], head: tuple[str, ...] = ("名称", "经度", "纬度", "状态")) -> bytes:
    return ("\n".join(",".join(str(v) for v in r) for r in [list(head), *rows]) + "\n").encode()


def _upload(client: TestClient, headers: dict[str, str], data: bytes, cls: str = CLS) -> dict[str, Any]:
    r = client.post("/submissions", files={"file": ("s.csv", data)}, data={"class_code": cls}, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _items(client: TestClient, headers: dict[str, str], sid: str) -> dict[int, dict[str, Any]]:
    return {i["row"]: i for i in client.get(f"/submissions/{sid}", headers=headers).json()["items"]}


def _spot(places: dict, dx: float) -> tuple[float, float]:
    x, y = places["a"]["quiet"]
    return x + dx, y + 0.0004


def test_every_state_transition_and_the_forbidden_ones(client: TestClient, who: dict, places: dict,
                                                       engine: Engine) -> None:
    x, y = _spot(places, 0.0)
    sub = _upload(client, who["cadre"], _csv([["甲井", x, y, "完好"], ["乙井", x + 3e-5, y, "破损"]]))
    sid, review, hand_in = sub["id"], f"/submissions/{sub['id']}/review", f"/submissions/{sub['id']}/submit"
    assert sub["status"] == "validated" and sub["submitted_at"] is None
    approve2 = {"decisions": [{"row": 2, "decision": "approve"}]}
    # validated but not handed in: reviewers cannot decide it and do not see it as pending
    r = client.post(review, json=approve2, headers=who["rev"])
    assert r.status_code == 409 and r.json()["error_code"] == "submission_state"
    assert "has not handed it in" in r.json()["message_en"] and "已通过校验" in r.json()["message_zh"]
    pending = client.get("/submissions", params={"status": "submitted"}, headers=who["rev"]).json()["items"]
    assert sid not in [s["id"] for s in pending]
    # only its own cadre hands it in
    assert client.post(hand_in, headers=who["cadre2"]).status_code == 404
    assert client.post(hand_in, headers=who["rev"]).status_code == 403
    # before handing in, the cadre may still correct it: back through validation
    r = client.post(f"/submissions/{sid}/resubmit", files={"file": ("s2.csv", _csv([["甲井", x, y, "占用"]]))},
                    headers=who["cadre"])
    assert r.status_code == 200 and (r.json()["status"], r.json()["revision"]) == ("validated", 2), r.text
    assert _items(client, who["cadre"], sid)[2]["attrs"] == {"state": "占用"}
    r = client.post(hand_in, headers=who["cadre"])
    assert r.status_code == 200 and r.json()["status"] == "submitted" and r.json()["submitted_at"]
    assert client.post(hand_in, headers=who["cadre"]).json()["status"] == "submitted"  # a retry changes nothing
    pending = client.get("/submissions", params={"status": "submitted"}, headers=who["rev"]).json()["items"]
    assert sid in [s["id"] for s in pending]
    # under review the cadre sends nothing into it
    r = client.post(f"/submissions/{sid}/resubmit", files={"file": ("s3.csv", _csv([["甲井", x, y, "完好"]]))},
                    headers=who["cadre"])
    assert r.status_code == 409 and r.json()["error_code"] == "submission_state"
    # partial approval by row: still submitted; the last row decided makes it coded
    r = client.post(review, json=approve2, headers=who["rev"])
    assert r.status_code == 200 and r.json()["submission"]["status"] == "submitted"
    code = r.json()["results"][0]["object_code"]
    r = client.post(review, json={"decisions": [{"row": 3, "decision": "reject", "reason": "照片对不上"}]},
                    headers=who["rev"])
    assert r.json()["submission"]["status"] == "coded"
    assert client.post(review, json=approve2, headers=who["rev"]).json()["results"] == [
        {"row": 2, "status": "approved", "object_code": code}]  # a repeated decision is answered again
    r = client.post(hand_in, headers=who["cadre"])
    assert r.status_code == 409 and r.json()["error_code"] == "submission_state"
    # the rejected row corrected and sent again: validated again, handed in again, approved: coded, 2 codes
    r = client.post(f"/submissions/{sid}/resubmit", files={"file": ("s4.csv", _csv([["乙井", x + 3e-5, y, "完好"]]))},
                    headers=who["cadre"])
    assert r.json()["status"] == "validated" and r.json()["rows"] == 2
    items = _items(client, who["cadre"], sid)
    assert (items[2]["status"], items[3]["status"], items[3]["reason"]) == ("approved", "valid", None)
    assert client.post(hand_in, headers=who["cadre"]).json()["status"] == "submitted"
    r = client.post(review, json={"decisions": [{"row": 3, "decision": "approve"}]}, headers=who["rev"])
    assert r.json()["submission"]["status"] == "coded"
    code3 = r.json()["results"][0]["object_code"]
    back = load_workbook(io.BytesIO(client.get(f"/submissions/{sid}/file", headers=who["cadre"]).content))["数据"]
    head = [c.value for c in back[1]]
    got = {r_[head.index("行标识")].value: (r_[head.index("统一识别代码")].value, r_[head.index("审核结果")].value)
           for r_ in back.iter_rows(min_row=2) if r_[0].value}
    assert got == {2: (code, "通过"), 3: (code3, "通过")}
    # every act is in the audit log, in order; the coded objects are in the change feed
    with engine.connect() as c:
        acts = c.execute(text("SELECT action FROM audit_log WHERE target = :s AND outcome = 'ok' ORDER BY seq"), {"s": sid}).scalars().all()
        created = c.execute(text("SELECT count(*) FROM change_log WHERE key = ANY(CAST(:k AS text[])) AND op = 'create'"),
                            {"k": [code, code3]}).scalar_one()
    assert acts == ["submit", "resubmit", "hand_in", "review", "review", "resubmit", "hand_in", "review"]
    assert created == 2


def test_rejected_whole_and_a_partial_hand_in(client: TestClient, who: dict, places: dict) -> None:
    x, y = _spot(places, 0.0002)
    sid = _upload(client, who["cadre"], _csv([["丙井", x, y, "完好"]]))["id"]
    assert client.post(f"/submissions/{sid}/submit", headers=who["cadre"]).status_code == 200
    r = client.post(f"/submissions/{sid}/review", json={"decisions": [{"row": 2, "decision": "reject", "reason": "重复"}]},
                    headers=who["rev"])
    assert r.json()["submission"]["status"] == "rejected"
    # a file whose rows all have problems cannot be handed in, not even partly
    sid = _upload(client, who["cadre"], _csv([["丁井", x, y, "坏了"]]))["id"]
    r = client.post(f"/submissions/{sid}/submit", json={"partial": True}, headers=who["cadre"])
    assert r.status_code == 409 and r.json()["error_code"] == "submission_state" and "no row is valid" in r.json()[
        "message_en"]
    assert client.get(f"/submissions/{sid}", headers=who["cadre"]).json()["status"] == "invalid"


def test_resubmitting_only_the_corrected_rows_matched_by_the_row_key(client: TestClient, who: dict,
                                                                      places: dict) -> None:
    x, y = _spot(places, 0.0004)
    rows = [[f"键{i}", x + i * 3e-5, y, "坏了" if i in (1, 3) else "完好"] for i in range(4)]  # lines 3 and 5 bad
    sid = _upload(client, who["cadre"], _csv(rows))["id"]
    back = client.get(f"/submissions/{sid}/file", headers=who["cadre"])
    lines = back.content.decode("utf-8-sig").splitlines()
    assert lines[0].endswith("行标识,统一识别代码,审核结果") and lines[3].split(",")[4] == "4"
    # only the two corrected rows, in another order, with their keys (and the extra columns the file has)
    fixed = [lines[0], lines[4].replace("坏了", "破损"), lines[2].replace("坏了", "丢失")]
    r = client.post(f"/submissions/{sid}/resubmit", files={"file": ("fix.csv", "\n".join(fixed).encode())},
                    headers=who["cadre"])
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["rows"], r.json()["invalid"], r.json()["revision"]) == ("validated", 4, 0, 2)
    items = _items(client, who["cadre"], sid)
    assert sorted(items) == [2, 3, 4, 5]
    assert {k: (i["name"], i["attrs"]["state"], i["file_row"], i["revision"]) for k, i in items.items()} == {
        2: ("键0", "完好", 2, 1), 3: ("键1", "丢失", 3, 2), 4: ("键2", "完好", 4, 1), 5: ("键3", "破损", 2, 2)}
    old = client.get(f"/submissions/{sid}/revisions", headers=who["cadre"]).json()["items"]
    assert [(v["revision"], v["status"], v["invalid"]) for v in old] == [(1, "invalid", 2)]


def test_resubmitting_rows_without_a_key_matches_them_by_name_and_place(client: TestClient, who: dict,
                                                                        places: dict) -> None:
    x, y = _spot(places, 0.0006)
    rows = [["东头井", x, y, "坏了"], ["西头井", x + 0.0001, y, "坏了"], ["南头井", x + 0.0002, y, "完好"]]
    sid = _upload(client, who["cadre"], _csv(rows))["id"]
    # the west one corrected where it was; the east one renamed a little and moved a metre; a new one far off; the
    # last with its place lost (so matched by name alone)
    again = [["西头井", x + 0.0001, y, "完好"], ["东头井盖", x + 1e-5, y, "破损"], ["北头新井", x + 0.001, y, "完好"]]
    r = client.post(f"/submissions/{sid}/resubmit", files={"file": ("again.csv", _csv(again))}, headers=who["cadre"])
    assert r.status_code == 200 and r.json()["rows"] == 4, r.text
    items = _items(client, who["cadre"], sid)
    assert {k: (i["name"], i["status"], i["revision"]) for k, i in items.items()} == {
        2: ("东头井盖", "valid", 2), 3: ("西头井", "valid", 2), 4: ("南头井", "valid", 1), 5: ("北头新井", "valid", 2)}
    again = [["南头井", "", "", "占用"]]  # no place at all: matched by its name, and now it has a problem
    r = client.post(f"/submissions/{sid}/resubmit", files={"file": ("n.csv", _csv(again))}, headers=who["cadre"])
    items = _items(client, who["cadre"], sid)
    assert r.json()["rows"] == 4 and items[4]["status"] == "invalid" and items[4]["cells"]["state"] == "占用"
    assert [e["error_code"] for e in items[4]["errors"]] == ["location_missing"]


def _across_the_boundary(engine: Engine, village: str, township: str) -> tuple[str, tuple[float, float],
                                                                            tuple[float, float]]:
    """A neighbouring village of the same township, a point just inside `village` and one just inside the
    neighbour, about 3 m apart across their shared boundary."""
    with engine.connect() as c:
        mine, nb, other = c.execute(text(
            "SELECT ST_AsBinary(a.geom), ST_AsBinary(b.geom), b.code FROM division a JOIN division b "
            "ON b.level = 5 AND b.parent_code = :t AND b.code <> a.code AND ST_Intersects(a.geom, b.geom) "
            "AND ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))) > 0.001 "
            "WHERE a.code = :v ORDER BY b.code LIMIT 1"), {"v": village, "t": township}).one()
    a, b = wkb.loads(bytes(mine)), wkb.loads(bytes(nb))
    shared = shapely.line_merge(a.boundary.intersection(b.boundary))
    line = max(getattr(shared, "geoms", [shared]), key=lambda g: g.length)
    mid = line.interpolate(0.5, normalized=True)
    d = 1.4e-5  # ~1.5 m each way
    offsets = [(dx * d, dy * d) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1))]
    pa = next((mid.x + ox, mid.y + oy) for ox, oy in offsets if a.contains(shapely.Point(mid.x + ox, mid.y + oy)))
    pb = next((mid.x + ox, mid.y + oy) for ox, oy in offsets if b.contains(shapely.Point(mid.x + ox, mid.y + oy)))
    return str(other), pa, pb


def test_dedupe_sees_an_object_just_across_the_village_boundary_and_shows_the_cadre_no_more(
        client: TestClient, who: dict, places: dict, engine: Engine) -> None:
    a = places["a"]
    other, pa, pb = _across_the_boundary(engine, a["village"], a["township"])
    r = client.post("/objects", json={"class_code": HIDDEN, "name": "人防一号", "attrs": {"state": "完好"},
                                      "geometry": {"type": "Point", "coordinates": list(pb)}}, headers=who["admin"])
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    assert r.json()["village_code"] == other
    assert client.get(f"/objects/{code}", headers=who["cadre"]).status_code in (403, 404)  # not the cadre's to see
    sub = _upload(client, who["cadre"], _csv([["人防一号", pa[0], pa[1], "完好"]]), HIDDEN)
    assert sub["status"] == "validated", sub
    dup = [d for d in _items(client, who["cadre"], sub["id"])[2]["duplicates"] if d.get("code") == code]
    assert len(dup) == 1 and set(dup[0]) == {"code", "class_code", "distance_m", "name_similarity", "hidden"}
    assert dup[0]["class_code"] == HIDDEN and 1 < dup[0]["distance_m"] < 5 and dup[0]["name_similarity"] == 1.0
    # the township's reviewer reads the object, so it sees the whole candidate
    dup = [d for d in _items(client, who["rev"], sub["id"])[2]["duplicates"] if d.get("code") == code]
    assert dup[0]["name"] == "人防一号" and dup[0]["village_code"] == other
    # nothing hidden from a caller who sees everything: the function answers nothing for it
    with engine.connect() as c:
        c.execute(text("SELECT set_config('citygrid.divisions', '*', true)"))
        n = c.execute(text("SELECT count(*) FROM citygrid_survey_neighbours(:c, ARRAY[encode(ST_AsBinary("
                           "ST_SetSRID(ST_MakePoint(:x, :y), 4490)), 'hex')], ARRAY['x'], 5)"),
                      {"c": HIDDEN, "x": pa[0], "y": pa[1]}).scalar_one()
    assert n == 0


def test_dedupe_sees_a_row_of_another_villages_open_submission_across_the_boundary(
        client: TestClient, who: dict, places: dict, engine: Engine, login_as: Any) -> None:
    a = places["a"]
    other, pa, pb = _across_the_boundary(engine, a["village"], a["township"])
    neighbour = login_as("sst-cadre-nb", f"cadre@{other}")
    theirs = _upload(client, neighbour, _csv([["界边井", pb[0], pb[1], "完好"]]))
    assert theirs["status"] == "validated", theirs
    assert client.get(f"/submissions/{theirs['id']}", headers=who["cadre"]).status_code in (403, 404)
    mine = _upload(client, who["cadre"], _csv([["界边井", pa[0], pa[1], "完好"]]))
    dup = [d for d in _items(client, who["cadre"], mine["id"])[2]["duplicates"] if d.get("submission") == theirs["id"]]
    assert len(dup) == 1 and set(dup[0]) == {"submission", "row", "distance_m", "name_similarity", "hidden"}, dup
    assert dup[0]["row"] == 2 and 1 < dup[0]["distance_m"] < 5 and dup[0]["name_similarity"] == 1.0
    # the township's reviewer reads both villages' submissions: the whole candidate
    dup = [d for d in _items(client, who["rev"], mine["id"])[2]["duplicates"] if d.get("submission") == theirs["id"]]
    assert dup[0]["name"] == "界边井" and dup[0]["village_code"] == other
    # and the neighbour's own later upload sees the cadre's row the same way
    again = _upload(client, neighbour, _csv([["界边井", pb[0], pb[1], "完好"]]))
    assert any(d.get("submission") == mine["id"] and d.get("hidden")
               for d in _items(client, neighbour, again["id"])[2]["duplicates"])


def test_odk_instances_are_stored_before_the_answer_and_processed_as_jobs(
        client: TestClient, who: dict, places: dict, engine: Engine) -> None:
    import uuid

    from citygrid import jobs
    from citygrid.security.principal import Grant, Principal
    from citygrid.survey import intake, odk

    x, y = _spot(places, 0.0008)
    iid = f"uuid:{uuid.uuid4()}"
    xml = (f'<data id="citygrid_{CLS}"><name>手机井</name><cg_location>{y} {x} 20 4</cg_location><state>完好</state>'
           f"<meta><instanceID>{iid}</instanceID></meta></data>").encode()
    r = client.post("/submission", files=[("xml_submission_file", ("s.xml", xml, "text/xml"))],
                    headers=who["cadre"] | dict(odk.OPENROSA))
    assert r.status_code == 201, r.text
    with engine.connect() as c:
        sid = c.execute(text("SELECT id FROM submission WHERE filename = :i"), {"i": iid}).scalar_one()
    jobs.drain(intake.ODK_LANE)
    sub = client.get(f"/submissions/{sid}", headers=who["cadre"]).json()
    assert (sub["status"], sub["job"]["state"], sub["rows"]) == ("submitted", "done", 1)
    # stored but never processed (the process died before its turn in the lane): taken up at the next start
    cadre = Principal(kind="user", name="sst-cadre", grants=(Grant("cadre", places["a"]["village"]),))
    from sqlalchemy.orm import Session

    with Session(engine) as s, s.begin():
        rec = intake.receive(s, cadre, CLS, None, xml.replace(iid.encode(), b"uuid:left-behind"), source="odk",
                             filename="uuid:left-behind", content_type="text/xml")
    assert rec.id in intake.resume_pending(engine)
    jobs.drain(intake.ODK_LANE)  # through the ODK lane, as when it arrived
    sub = client.get(f"/submissions/{rec.id}", headers=who["cadre"]).json()
    assert (sub["status"], sub["job"]["state"]) == ("submitted", "done")
