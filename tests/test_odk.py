"""ODK Collect against citygrid, request by request as the OpenRosa Form List and Form Submission APIs describe
them: the form list behind a Basic challenge, each form's XForm (compiled by pyxform, its hash as listed), HEAD
then a multipart POST of the instance with a photo; the submission lands in the intake and is approved."""

from __future__ import annotations

import base64
import hashlib
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid.catalog import get_catalog
from citygrid.survey import odk

COLLECT = {"X-OpenRosa-Version": "1.0", "User-Agent": "org.odk.collect.android/v2024.3.1 okhttp/4.12",
           "Date": "Wed, 02 Dec 2026 17:00:00 GMT"}
XF = "{http://www.w3.org/2002/xforms}"
LIST = "{http://openrosa.org/xforms/xformsList}"


@pytest.fixture(scope="module")
def cadre(login_as: Any, places: dict) -> dict[str, str]:
    login_as("odk-cadre", f"cadre@{places['a']['village']}")  # created with the password login_as gives it
    return COLLECT | {"Authorization": "Basic " + base64.b64encode(b"odk-cadre:test-password-odk-cadre").decode()}


@pytest.mark.parametrize("code", list(get_catalog().classes))
def test_every_class_form_compiles_with_pyxform(code: str) -> None:
    cls = get_catalog().classes[code]
    root = ET.fromstring(odk.xform(code))
    binds = {b.get("nodeset", "").rsplit("/", 1)[-1]: b for b in root.iter(f"{XF}bind")}
    geo = binds[odk.GEO_FIELD]
    assert geo.get("type") == odk.GEO[cls.geometry] and geo.get("required") == "true()"
    instance = next(root.iter(f"{XF}instance"))
    assert instance[0].get("id") == odk.form_id(cls)
    for a in cls.attributes:
        if a.field in ("generated", "generator"):
            assert a.field not in binds
            continue
        assert (binds[a.field].get("required") == "true()") == a.required
    if cls.geometry in ("Point", "MultiPoint"):
        assert any(i.get("accuracyThreshold") == str(odk.ACCURACY) for i in root.iter(f"{XF}input"))
    assert binds["photo"].get("type") == "binary"


def test_form_list_and_forms_as_collect_fetches_them(client: TestClient, cadre: dict[str, str]) -> None:
    r = client.get("/formList", headers=COLLECT)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic") and r.headers["x-openrosa-version"] == "1.0"
    wrong = COLLECT | {"Authorization": "Basic " + base64.b64encode(b"odk-cadre:nope").decode()}
    assert client.get("/formList", headers=wrong).status_code == 401
    r = client.get("/formList", headers=cadre)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    assert r.headers["x-openrosa-version"] == "1.0"
    forms = ET.fromstring(r.content).findall(f"{LIST}xform")
    assert len(forms) == len(get_catalog().classes)
    form = next(f for f in forms if f.findtext(f"{LIST}formID") == "citygrid_010101")
    assert form.findtext(f"{LIST}name") == "上水井盖（010101）" and form.findtext(f"{LIST}version")
    url = form.findtext(f"{LIST}downloadUrl") or ""
    assert url.startswith("http://testserver/forms/")
    x = client.get(url.removeprefix("http://testserver"), headers=cadre)
    assert x.status_code == 200 and x.headers["x-openrosa-version"] == "1.0"
    assert form.findtext(f"{LIST}hash") == "md5:" + hashlib.md5(x.content).hexdigest()
    one = ET.fromstring(client.get("/formList?formID=citygrid_010101", headers=cadre).content)
    assert [f.findtext(f"{LIST}formID") for f in one] == ["citygrid_010101"]
    assert client.get("/forms/citygrid_999999.xml", headers=cadre).status_code == 404


def _instance(x: float, y: float, iid: str, state: str = "完好") -> bytes:
    return (f"<?xml version='1.0' ?><data id=\"citygrid_010101\" version=\"{odk._version()}\" "
            'xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">'
            f"<name>村口井盖</name><cg_location>{y} {x} 21.5 4.2</cg_location><state>{state}</state>"
            "<anti_fall>是</anti_fall><start_date>2024-03-05</start_date><cover_size>700</cover_size>"
            f"<photo>1733150000000.jpg</photo><meta><instanceID>{iid}</instanceID></meta></data>").encode()


def test_head_then_post_with_a_photo_lands_in_the_intake(client: TestClient, cadre: dict[str, str], places: dict,
                                                        login_as: Any, engine: Engine) -> None:
    assert client.head("/submission", headers=COLLECT).status_code == 401
    r = client.head("/submission", headers=cadre)
    assert r.status_code == 204 and int(r.headers["x-openrosa-accept-content-length"]) > 1_000_000
    x, y = places["a"]["pt"]
    iid = f"uuid:{uuid.uuid4()}"
    photo = b"\xff\xd8\xff\xe0fake-jpeg" + bytes(range(256))
    files = [("xml_submission_file", ("submission.xml", _instance(x, y, iid), "text/xml")),
             ("1733150000000.jpg", ("1733150000000.jpg", photo, "image/jpeg"))]
    assert client.post("/submission", files=files, headers=COLLECT).status_code == 401
    r = client.post("/submission", files=files, headers=cadre)
    assert r.status_code == 201, r.text
    assert r.headers["x-openrosa-version"] == "1.0" and r.headers["content-type"].startswith("text/xml")
    msg = ET.fromstring(r.content).find("{http://openrosa.org/http/response}message")
    assert msg is not None and msg.get("nature") == "submit_success"
    assert client.post("/submission", files=files, headers=cadre).status_code == 202  # resent: not twice
    from citygrid import jobs
    from citygrid.survey import intake

    jobs.drain(intake.ODK_LANE)  # stored before the answer, processed by its job afterwards
    with engine.connect() as c:
        sid, n = c.execute(text("SELECT id, count(*) OVER () FROM submission WHERE filename = :i"), {"i": iid}).one()
        stored = c.execute(text("SELECT name, data FROM submission_attachment WHERE submission_id = :s"),
                           {"s": sid}).one()
    assert n == 1 and stored.name == "1733150000000.jpg" and bytes(stored.data) == photo
    sub = client.get(f"/submissions/{sid}", headers=login_as("odk-cadre")).json()  # the web page's token
    # valid: handed in at once (finalising the form on the phone is the enumerator's hand-in), by its job
    assert (sub["source"], sub["status"], sub["job"]["state"]) == ("odk", "submitted", "done")
    item = sub["items"][0]
    assert item["attrs"] == {"state": "完好", "anti_fall": True, "start_date": "2024-03-05", "cover_size": 700}
    assert item["cells"]["photo"] == "1733150000000.jpg"
    reviewer = login_as("odk-reviewer", f"reviewer@{places['a']['township']}")
    r = client.post(f"/submissions/{sid}/review", json={"decisions": [{"row": 1, "decision": "approve"}]},
                    headers=reviewer)
    assert r.status_code == 200, r.text
    code = r.json()["results"][0]["object_code"]
    assert client.get(f"/objects/{code}").json()["name"] == "村口井盖"


def test_bad_instances_are_refused(client: TestClient, cadre: dict[str, str], places: dict) -> None:
    r = client.post("/submission", files=[("xml_submission_file", ("s.xml", b"<data><oops", "text/xml"))],
                    headers=cadre)
    assert r.status_code == 400 and r.json()["error_code"] == "odk_instance_invalid"
    bomb = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<data id="citygrid_010101"><name>&b;</name></data>')
    r = client.post("/submission", files=[("xml_submission_file", ("s.xml", bomb, "text/xml"))], headers=cadre)
    assert r.status_code == 400 and r.json()["error_code"] == "odk_instance_invalid"
    other = _instance(*places["a"]["pt"], "uuid:x").replace(b"citygrid_010101", b"citygrid_999999")
    r = client.post("/submission", files=[("xml_submission_file", ("s.xml", other, "text/xml"))], headers=cadre)
    assert r.status_code == 404 and r.json()["error_code"] == "odk_form_unknown"
    r = client.post("/submission", files=[("photo.jpg", ("photo.jpg", b"x", "image/jpeg"))], headers=cadre)
    assert r.status_code == 400
