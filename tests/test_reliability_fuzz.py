"""The API against its own OpenAPI document, with schemathesis over HTTP (the real server under uvicorn): every
read as a department's system and every operation anonymously, with random cases; `make fuzz` adds the coverage
phase's invalid values (just outside each bound, wrong types, missing required parameters) and many more cases.
Bounded in `make test` (2 examples per operation, fixed seed: 41 s of calls at load average 8 on 2 CPUs); it
asserts what holds for every answer: no 5xx, every 4xx in the error shape, and the answer as its operation's
document says (schemathesis's checks: the status is one the operation declares, the media type one it declares for
that status, the body valid against that status's schema, the headers it documents (Retry-After …) valid; the
document is api/openapi.py's, and
tests/test_openapi.py keeps every operation described).
Writes are fuzzed anonymously only (so: up to their 401), because authenticated random writes would change the
session's shared database under the other tests. Random cases mostly meet codes that name nothing, so the last
tests call operations with the demo county's real objects, addresses, grids and features, and make writes whose
traces no other test counts (a webhook, a link, a batch, an object's whole life in a class and village of their
own, a survey upload with a rejected row), each answer checked the same way."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SHAPE = {"error_code", "message_zh", "message_en", "field", "row", "errors"}
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance,
               response_headers_conformance]
# random cases per operation (hypothesis max_examples), with a fixed seed; `make fuzz` asks for many more and adds
# the coverage phase to the department's reads (a minute and a half alone on a loaded machine)
LONG = "FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2"))


@pytest.fixture(scope="module")
def api_schema(live_server: str) -> Any:
    """The schema's examples and random cases; with `make fuzz` also the coverage phase's invalid values."""
    s = schemathesis.openapi.from_url(f"{live_server}/openapi.json")
    s.config.phases.coverage.generation.modes = [GenerationMode.NEGATIVE]
    s.config.phases.coverage.enabled = LONG
    return s


@pytest.fixture(scope="module")
def api_schema_random(live_server: str) -> Any:
    """Random cases only."""
    s = schemathesis.openapi.from_url(f"{live_server}/openapi.json")
    s.config.phases.coverage.enabled = False
    return s


@pytest.fixture(scope="module")
def reader(dept_headers: Callable[..., dict[str, str]]) -> dict[str, str]:
    return dept_headers("natural_resources")


schema = schemathesis.pytest.from_fixture("api_schema")
schema_random = schemathesis.pytest.from_fixture("api_schema_random")


def _check(case: Any, response: Any) -> None:
    where = f"{case.method} {case.formatted_path} {case.query or ''}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    if 400 <= response.status_code < 500 and case.method.upper() != "HEAD":  # HEAD answers carry no body
        assert response.headers.get("content-type", [""])[0].startswith("application/json"), where
        body = response.json()
        assert SHAPE <= set(body) and body["error_code"], f"{where}: {body}"
        assert isinstance(body["message_zh"], str) and isinstance(body["message_en"], str), where
    case.validate_response(response, checks=CONFORMANCE)  # the answer is what the document says it is


@schema.include(method="GET").parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_a_departments_reads_get_no_5xx_and_errors_in_shape(case: Any, reader: dict[str, str]) -> None:
    _check(case, case.call(headers=reader, timeout=30))


@schema_random.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_anonymous_callers_get_no_5xx_and_errors_in_shape(case: Any) -> None:
    _check(case, case.call(timeout=30))


class Conformance:
    """Calls named operations with given values (not generated ones) and checks each answer like a fuzz case,
    collecting every mismatch of a test rather than stopping at the first."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self.failed: list[str] = []

    def __call__(self, method: str, path: str, headers: dict[str, str] | None, status: int = 200,
                 body: Any = None, **params: Any) -> Any:
        extra = {"body": body, "media_type": "application/json"} if body is not None else {}
        case = self.schema[path][method].Case(
            path_parameters={k[1:]: v for k, v in params.items() if k.startswith("_")},
            query={k: v for k, v in params.items() if not k.startswith("_")}, **extra)
        return self.sent(method, path, case.call(headers=headers, timeout=60), status, case)

    def sent(self, method: str, path: str, response: Any, status: int, case: Any = None) -> Any:
        """Check an answer to a request made some other way (a multipart upload)."""
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text[:300]}"
        try:
            _check(case or self.schema[path][method].Case(), response)
        except Exception as exc:
            self.failed.append(f"{method} {path}: {str(exc)[:1500]}")
        return response


def _sample(engine: Any) -> tuple[str, str, str]:
    """An active object of the demo county, its class, and a unit grid cell."""
    from sqlalchemy import text

    with engine.connect() as c:
        code, cls = c.execute(text("SELECT code, class_code FROM city_object WHERE status = 'active' AND "
                                   "division_code = '420281' ORDER BY code LIMIT 1")).one()
        grid = c.execute(text("SELECT code FROM grid WHERE system = 'unit' ORDER BY code LIMIT 1")).scalar_one()
    return code, cls, grid


def test_answers_about_real_data_are_as_documented(api_schema_random: Any, demo_county: dict, places: dict,
                                                   engine: Any, admin_headers: dict[str, str]) -> None:
    """The random cases above mostly meet an empty registry (their codes name nothing): here the demo county's
    objects, addresses, grids, layers and features are read as an admin (every field and personal data shown)
    and anonymously (fields cut and masked), and every answer must be as the document says."""
    code, cls, grid = _sample(engine)
    village, (x, y) = places["a"]["village"], places["a"]["pt"]
    call = Conformance(api_schema_random)

    def get(path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        return call("GET", path, headers, **params)

    layers = get("/layers").json()["layers"]
    for who in (admin_headers, None):
        get("/divisions/{code}", who, _code="420281")
        get("/divisions/{code}/children", who, _code="420281", limit=3)
        get("/divisions/{code}/parents", who, _code=village)
        get("/divisions/{code}/boundary", who, _code="420281")
        get("/divisions", who, name="大冶", limit=3)
        get("/classes/{code}", who, _code=cls)
        get("/objects/{code}", who, _code=code, expand="links,address,grids,history,lineage")
        get("/objects/{code}/history", who, _code=code)
        get("/objects/{code}/lineage", who, _code=code)
        get("/codes/{code}", who, _code=code)
        get("/links/{code}", who, _code=code)
        room = get("/addresses/{code}", who, _code=places["room"]).json()
        get("/addresses/{code}", who, _code=places["door"])
        get("/addresses/{code}/qr.svg", who, _code=places["door"])
        get("/a/{code}", who, _code=places["door"])
        tile = {"_z": 14, "_x": int((x + 180) / 360 * 2 ** 14),
                "_y": int((1 - math.asinh(math.tan(math.radians(y))) / math.pi) / 2 * 2 ** 14)}
        get("/tiles/{layer}/{z}/{x}/{y}.mvt", who, _layer=f"class-{cls}", **tile)
        get("/aggregate/tiles/{z}/{x}/{y}.mvt", who, **tile)
        get("/address/reverse", who, x=x, y=y, radius=500)
        get("/grids", who, division=village, limit=3)
        get("/grids/{system}/{code}", who, _system="unit", _code=grid)
        get("/aggregate", who, by="h3:7")
        get("/aggregate", who, by="township", geometry="false")
        get("/freshness", who, division="420281")
        get("/freshness/villages", who, division=places["a"]["township"])
        get("/changes", who, since="", limit=20)
        get("/tiles/{layer}.json", who, _layer=layers[0]["id"])
        get("/styles/{layer}.json", who, _layer=layers[0]["id"])
        get("/ogc/collections", who)
        get("/ogc/collections/{cid}", who, _cid=f"class-{cls}")
        items = get("/ogc/collections/{cid}/items", who, _cid=f"class-{cls}", limit=3).json()
        get("/ogc/collections/{cid}/items/{fid}", who, _cid=f"class-{cls}", _fid=items["features"][0]["id"])
        get("/ogc/collections/{cid}/queryables", who, _cid=f"class-{cls}")
    for path in ("/objects", "/jobs", "/auth/me", "/audit", "/audit/verify", "/webhooks", "/submissions"):
        get(path, admin_headers)
        for crs in ("gcj02", "EPSG:4547"):  # geographic and projected points
            assert get("/address/geocode", who, q=room["address"], crs=crs).json()["candidates"]
    assert call.failed == []


def test_answers_to_writes_are_as_documented(api_schema_random: Any, demo_county: dict, places: dict, engine: Any,
                                             admin_headers: dict[str, str],
                                             run_batch: Callable[[dict[str, str], str], str]) -> None:
    """Writes whose traces no other test counts, as an admin: a webhook made, listed and stopped, a link
    attached, found and unlinked, addresses geocoded in a list and in a file (its status and its result in the
    three formats), persons searched by ID number."""
    code, _, _ = _sample(engine)
    call = Conformance(api_schema_random)
    who = admin_headers
    hook = call("POST", "/webhooks", who, 201, body={"url": "http://127.0.0.1:9/citygrid-doc-test"}).json()
    call("GET", "/webhooks", who)
    call("GET", "/webhooks/{hook_id}/dead", who, _hook_id=hook["id"])
    call("DELETE", "/webhooks/{hook_id}", who, _hook_id=hook["id"])
    link = call("POST", "/links/{code}", who, 201, _code=code,
                body={"system": "文档测试", "record_id": "doc-1", "payload": {"k": 1}}).json()
    call("GET", "/links", who, system="文档测试", record="doc-1")
    call("DELETE", "/links/{code}/{link_id}", who, _code=code, _link_id=link["id"])
    address = call("GET", "/addresses/{code}", who, _code=places["room"]).json()["address"]
    rows = call("POST", "/address/geocode", who, body={"addresses": [address, "", "x"], "crs": "EPSG:4547"}).json()
    assert rows["count"] == 3 and rows["results"][1]["error"]
    job = run_batch(who, "address\n" + address + "\n")
    call("GET", "/address/batch/{job_id}", who, _job_id=job)
    call("GET", "/jobs/{job_id}", who, _job_id=job)
    for fmt in ("csv", "xlsx", "geojson"):
        call("GET", "/address/batch/{job_id}/result", who, _job_id=job, format=fmt)
    call("POST", "/persons/search", who, body={"id_number": "11010519491231002X"})
    assert call.failed == []


def test_answers_of_an_objects_life_are_as_documented(api_schema_random: Any, demo_county: dict, engine: Any,
                                                      dept_headers: Callable[..., dict[str, str]]) -> None:
    """An object's whole life through both write APIs, by its owning department, in a class (010304 变压器) and
    a village no other test uses: created, updated, confirmed, split, merged and retired under /objects, created,
    patched, replaced and deleted under /ogc (Part 4); every answer as the document says."""
    from sqlalchemy import text

    with engine.connect() as c:
        x, y = c.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM division WHERE level = 5 AND "
            "code LIKE '420281%' AND geom IS NOT NULL ORDER BY code DESC LIMIT 1) v")).one()
    who = dept_headers("power_supply")
    call = Conformance(api_schema_random)
    attrs = {"state": "完好", "transformer_type": "箱式变压器"}

    def point(dx: float) -> dict[str, Any]:
        return {"type": "Point", "coordinates": [x + dx, y]}

    obj = call("POST", "/objects", who, 201, body={"class_code": "010304", "geometry": point(0), "attrs": attrs}).json()
    code = obj["code"]
    call("PATCH", "/objects/{code}", who, _code=code, body={"name": "文档测试变压器", "version": obj["version"]})
    call("POST", "/objects/{code}/confirm", who, _code=code, body={"reason": "checked"})
    parts = [{"geometry": point(d), "attrs": attrs} for d in (0.00001, 0.00002)]
    split = call("POST", "/objects/{code}/split", who, 201, _code=code, body={"parts": parts}).json()
    merged = call("POST", "/objects/merge", who, 201, body={
        "codes": [ch["code"] for ch in split["children"]], "result": {"geometry": point(0), "attrs": attrs}}).json()
    call("POST", "/objects/{code}/retire", who, _code=merged["result"]["code"], body={"reason": "test over"})
    call("GET", "/objects/{code}/lineage", who, _code=merged["result"]["code"])
    call("POST", "/codes/blocks", who, 201, body={"division_code": "420281", "class_code": "010304", "count": 2})

    feature = {"type": "Feature", "geometry": point(0.00003), "properties": attrs}
    made = call("POST", "/ogc/collections/{cid}/items", who, 201, _cid="class-010304", body=feature).json()
    fid = made["id"]
    call("PATCH", "/ogc/collections/{cid}/items/{fid}", who, _cid="class-010304", _fid=fid,
         body={"type": "Feature", "properties": {"capacity_kva": 400}})
    call("PUT", "/ogc/collections/{cid}/items/{fid}", who, _cid="class-010304", _fid=fid, body=feature)
    call("DELETE", "/ogc/collections/{cid}/items/{fid}", who, 204, _cid="class-010304", _fid=fid)
    assert call.failed == []


def test_answers_of_a_survey_are_as_documented(api_schema_random: Any, live_server: str, demo_county: dict,
                                               engine: Any, login_as: Any) -> None:
    """A cadre's upload into the village of the test above (its class too), read back as detail, revisions and
    file, its valid row handed in and rejected by the township's reviewer (nothing registered), and the ODK
    routes the cadre's phone reads; every answer as the document says."""
    import requests
    from sqlalchemy import text

    with engine.connect() as c:
        village, township, x, y = c.execute(text(
            "SELECT code, parent_code, ST_X(p), ST_Y(p) FROM (SELECT code, parent_code, ST_PointOnSurface(geom) p "
            "FROM division WHERE level = 5 AND code LIKE '420281%' AND geom IS NOT NULL ORDER BY code DESC LIMIT 1) v"
        )).one()
    cadre = login_as("doc-cadre", f"cadre@{village}")
    reviewer = login_as("doc-reviewer", f"reviewer@{township}")
    call = Conformance(api_schema_random)
    body = f"名称,经度,纬度,状态,安装形式\n变压器1,{x},{y},完好,箱式变压器\n变压器2,{x},{y},坏了,箱式变压器\n"
    upload = requests.post(f"{live_server}/submissions", files={"file": ("doc.csv", body.encode())},
                           data={"class_code": "010304"}, headers=cadre, timeout=60)
    sid = call.sent("POST", "/submissions", upload, upload.status_code).json()["id"]
    assert upload.status_code in (201, 202)
    for path in ("/submissions/{sid}", "/submissions/{sid}/revisions", "/submissions/{sid}/file"):
        call("GET", path, cadre, _sid=sid)
    call("GET", "/submissions", cadre)
    # row 3's state is not an allowed value: the cadre hands in the valid row, the reviewer rejects it
    call("POST", "/submissions/{sid}/submit", cadre, _sid=sid, body={"partial": True})
    call("POST", "/submissions/{sid}/review", reviewer, _sid=sid,
         body={"decisions": [{"row": 2, "decision": "reject", "reason": "文档测试"}]})
    call("GET", "/templates/{class_code}.xlsx", None, _class_code="010304")
    forms = call("GET", "/formList", cadre)
    assert "<xforms" in forms.text
    call("GET", "/forms/{fid}.xml", cadre, _fid="citygrid_010304")
    call("GET", "/forms/{fid}.xlsx", None, _fid="010304")
    assert call.failed == []
