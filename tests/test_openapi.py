"""The OpenAPI document says what is true (issue 13), and cannot silently decay: every operation declares its 2xx
answer with a real schema (not FastAPI's generic object, not an empty one) under its real media types, and every
4xx/5xx it declares carries the error model (`{error_code, message_zh, message_en, field, row, errors}`,
api/openapi.py), never FastAPI's `HTTPValidationError`. Whether answers match it: tests/test_reliability_fuzz.py.
No database needed: the document is built from the routes."""

from __future__ import annotations

from typing import Any

import pytest

from api.main import create_app
from api.openapi import ErrorOut

JSON_TYPES = ("application/json", "application/geo+json", "application/schema+json")
NO_BODY = {"204", "304"}


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _generic(doc: dict[str, Any], media: str, schema: dict[str, Any]) -> bool:
    """No schema, an empty one, or an object that names no property: says nothing about the answer."""
    s = _resolve(doc, schema)
    if not s:
        return True
    if media.startswith(JSON_TYPES) or media.endswith("+json"):
        return not (s.get("properties") or s.get("allOf") or s.get("anyOf") or s.get("oneOf"))
    return "type" not in s


def problems(doc: dict[str, Any]) -> list[str]:
    """Every way an operation's answers are not described: one line each."""
    out = []
    error_ref = f"#/components/schemas/{ErrorOut.__name__}"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            answers: dict[str, Any] = op.get("responses", {})
            oks = {s: a for s, a in answers.items() if s.startswith("2")}
            if not oks:
                out.append(f"{where}: no 2xx answer")
            for status, answer in oks.items():
                content = answer.get("content") or {}
                if status in NO_BODY or method == "head":
                    if content:
                        out.append(f"{where} {status}: a body on an answer that has none")
                    continue
                if not content:
                    out.append(f"{where} {status}: no media type")
                for media, c in content.items():
                    if _generic(doc, media, c.get("schema") or {}):
                        out.append(f"{where} {status} {media}: generic or missing schema")
            for status, answer in answers.items():
                if status[0] not in "45":
                    continue
                schema = (answer.get("content") or {}).get("application/json", {}).get("schema", {})
                if schema.get("$ref") != error_ref:
                    out.append(f"{where} {status}: not the error model")
            for status in ("400", "500"):
                if status not in answers:
                    out.append(f"{where}: {status} not declared")
    return out


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return create_app("postgresql://unused", prepare=False).openapi()


def test_every_operation_declares_its_answer_and_its_errors(doc: dict[str, Any]) -> None:
    assert len([op for ops in doc["paths"].values() for op in ops]) >= 90
    assert problems(doc) == []


def test_the_frameworks_validation_error_is_gone(doc: dict[str, Any]) -> None:
    """Validation errors are answered in the error shape: 422, or 400 under /ogc/ (api/errors.py)."""
    assert "HTTPValidationError" not in str(doc)
    items = doc["paths"]["/ogc/collections/{cid}/items"]["get"]["responses"]
    assert "422" not in items and items["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    geocode = doc["paths"]["/address/geocode"]["get"]["responses"]
    assert set(geocode) == {"200", "400", "422", "500", "503"}  # anonymous, no credentials looked up: no 401


def test_media_types_are_the_real_ones(doc: dict[str, Any]) -> None:
    def types(path: str, status: str = "200", method: str = "get") -> set[str]:
        return set(doc["paths"][path][method]["responses"][status]["content"])

    assert types("/ogc/collections/{cid}/items") == {"application/geo+json"}
    assert types("/ogc/collections/{cid}/items/{fid}") == {"application/geo+json"}
    assert types("/ogc/collections/{cid}/items", "201", "post") == {"application/geo+json"}
    assert types("/tiles/{layer}/{z}/{x}/{y}.mvt") == {"application/vnd.mapbox-vector-tile"}
    assert types("/aggregate/tiles/{z}/{x}/{y}.mvt") == {"application/vnd.mapbox-vector-tile"}
    assert types("/doorplates.pdf") == {"application/pdf"}
    assert types("/addresses/{code}/qr.svg") == {"image/svg+xml"}
    assert types("/templates/{class_code}.xlsx") == {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
    assert types("/formList") == {"text/xml"}
    assert types("/freshness") == {"application/json", "text/html"}
    assert types("/address/batch/{job_id}/result") == {
        "text/csv", "application/geo+json", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def test_declaring_answers_validates_nothing_per_request() -> None:
    """The models document answers (`responses=`), they never become a route's response model: FastAPI would then
    validate and re-serialize every answer (items, tiles, geocoding are hot paths), and drop keys a model lacks."""
    from fastapi.routing import APIRoute, iter_route_contexts
    from pydantic import BaseModel

    app = create_app("postgresql://unused", prepare=False)
    routes = [rc.original_route for rc in iter_route_contexts(app.routes) if isinstance(rc.original_route, APIRoute)]
    assert len(routes) >= 90
    validated = [r.path for r in routes if isinstance(r.response_model, type) and issubclass(r.response_model, BaseModel)]
    assert validated == []


def test_the_decay_check_can_fail(doc: dict[str, Any]) -> None:
    """What FastAPI writes by itself (a generic object, its HTTPValidationError) is caught."""
    broken = {"paths": {"/x": {"get": {"responses": {
        "200": {"content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}}},
        "422": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}},
    }}}}, "components": {"schemas": {}}}
    assert problems(broken) == ["GET /x 200 application/json: generic or missing schema", "GET /x 422: not the error model",
                                "GET /x: 400 not declared", "GET /x: 500 not declared"]
