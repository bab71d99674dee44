"""What the OpenAPI document says about answers, in one place: the error model and the statuses an operation can
answer with (`errors`), its 2xx answer (`ok` for JSON models, `media` for GeoJSON, tiles, files and pages), and
`install`, which corrects what FastAPI writes by itself.

Routers declare answers with `responses=ok(Model) | errors(403, 404)`: that documents without validating, so the
hot paths (items, tiles, geocoding) pay nothing per request. `install` then makes the document true where FastAPI's
defaults are not: validation errors are answered in the error shape (422, or 400 under /ogc/: api/errors.py), not
FastAPI's `HTTPValidationError {detail}`; and the answers of the layers every route passes through are added to
each operation: 400 (text PostgreSQL cannot store, anywhere in the path or query), 413 (bodies over the route's
limit) and 429 (rate-limited routes) from api/hardening.py, 401 and 503 on routes that look up credentials or use
the database (api/deps.py), and 500 (the internal-error shield) on every one. tests/test_openapi.py walks the
document so that it cannot silently decay; tests/test_reliability_fuzz.py checks answers against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field

Responses = dict[int | str, dict[str, Any]]
Schema = dict[str, Any] | type[BaseModel]
_MODELS: dict[str, type[BaseModel]] = {}  # models named by `media`, put in the document's components by `install`


class Problem(BaseModel):
    """One problem of a request."""

    error_code: str = Field(..., description="catalogue code (GET /errors)")
    message_zh: str
    message_en: str
    field: str | None = Field(None, description="the parameter, body field or column at fault")
    row: int | None = Field(None, description="the row of a file or list, from 0")


class ErrorOut(Problem):
    """Every 4xx and 5xx answer: the first problem, and all of them in `errors`."""

    errors: list[Problem]


# What each status means across the API; a route's own meaning is in its summary and in the catalogue (GET /errors).
WHY: dict[int, str] = {
    400: "bad input: a parameter, body, file or text the database cannot store (error_code says which)",
    401: "no credentials, or credentials that are wrong, expired, revoked or disabled (WWW-Authenticate)",
    403: "the caller's roles do not allow it here",
    404: "no such resource, or one the caller may not see",
    405: "the resource is read-only (Allow)",
    409: "conflicts with the resource's state",
    412: "a precondition (If-Match, If-Unmodified-Since) failed: the resource changed",
    413: "the body is over this route's limit",
    415: "the body's media type is not accepted",
    422: "the request does not validate (request_<type>) or its content is refused",
    429: "too many requests: retry after Retry-After seconds",
    500: "internal error: the answer names a reference to the server log, never SQL or values",
    503: "the database cannot answer now (Retry-After), or the service is not ready",
}
ERROR_MEDIA = "application/json"
_RETRY = {"Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}}
HEADERS: dict[int, dict[str, Any]] = {  # what api/errors.py sends with these statuses
    401: {"WWW-Authenticate": {"description": "the scheme that would work: Bearer, or Basic on the OpenRosa routes",
                               "schema": {"type": "string"}}},
    405: {"Allow": {"description": "the methods the resource allows", "schema": {"type": "string"}}},
    429: _RETRY, 503: _RETRY,
}


def errors(*statuses: int, why: Mapping[int, str] | None = None) -> Responses:
    """The error model on each of `statuses`, for a route's `responses=`; `why` says what a status means on this
    route where that is more than the general meaning."""
    return {s: {"description": (why or {}).get(s, WHY[s]), "content": {ERROR_MEDIA: {"schema": _ref(ErrorOut)}}}
            | ({"headers": HEADERS[s]} if s in HEADERS else {}) for s in statuses}


def ok(model: type[BaseModel], status: int = 200, description: str = "OK") -> Responses:
    """A JSON 2xx answer described by `model` (documented, not validated)."""
    return {status: {"model": model, "description": description}}


def with_headers(answers: Responses, **named: str) -> Responses:
    """`answers` with response headers (text values) documented on each: `with_headers(media(...), ETag="…")`;
    a name's underscores are dashes."""
    doc = {k.replace("_", "-"): {"description": v, "schema": {"type": "string"}} for k, v in named.items()}
    return {s: a | {"headers": a.get("headers", {}) | doc} for s, a in answers.items()}


# The media types of answers that are not JSON documents.
GEOJSON = "application/geo+json"
MVT = "application/vnd.mapbox-vector-tile"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv"
XML = "text/xml"
HTML = "text/html"
BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
NOT_MODIFIED: Responses = {304: {"description": "not modified: If-None-Match named the current ETag (no body)"}}
TEXT: dict[str, Any] = {"type": "string"}


def media(types: str | Iterable[str] | Mapping[str, Schema], schema: Schema = BINARY, status: int = 200,
          description: str = "OK") -> Responses:
    """A 2xx answer in other media types (GeoJSON, MVT, SVG, PDF, xlsx, CSV, XML, HTML): one schema for all of
    `types`, or a schema per type; a schema is JSON Schema or a model (put in the components by `install`)."""
    named = dict(types) if isinstance(types, Mapping) else {t: schema for t in ([types] if isinstance(types, str)
                                                                                 else types)}
    return {status: {"description": description, "content": {t: {"schema": _ref(s)} for t, s in named.items()}}}


def _ref(schema: Schema) -> dict[str, Any]:
    if isinstance(schema, dict):
        return schema
    _MODELS[schema.__name__] = schema
    return {"$ref": f"#/components/schemas/{schema.__name__}"}


# --- GeoJSON (RFC 7946), for application/geo+json and the GeoJSON inside JSON answers ---------------------------


class Geometry(BaseModel):
    """A GeoJSON geometry (RFC 7946): its coordinates nest by type."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(..., pattern="^(Point|MultiPoint|LineString|MultiLineString|Polygon|MultiPolygon|"
                                   "GeometryCollection)$")
    coordinates: list[Any] | None = None
    geometries: list[dict[str, Any]] | None = None


class Link(BaseModel):
    model_config = ConfigDict(extra="allow")
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class Feature(BaseModel):
    """A GeoJSON Feature; `geometry` null when the answer was asked without geometry."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(..., pattern="^Feature$")
    id: str | int | None = None
    geometry: Geometry | None
    properties: dict[str, Any] | None


class FeatureCollection(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(..., pattern="^FeatureCollection$")
    features: list[Feature]



# --- install -----------------------------------------------------------------------------------------------------

_GENERIC_KEYS = {"type", "additionalProperties", "title"}


def _calls(d: Dependant, fns: set[Callable[..., Any]]) -> bool:
    return d.call in fns or any(_calls(sub, fns) for sub in d.dependencies)


def _tidy(answer: dict[str, Any]) -> None:
    """What FastAPI writes from a route's signature beside what the route declares: the schema it infers from
    `-> dict[str, Any]` next to the declared model's `$ref` (the ref stays), and an empty `application/json`
    schema from the default response class next to the media types a route declares (it goes)."""
    content: dict[str, Any] = answer.get("content", {})
    for schema in (c.get("schema", {}) for c in content.values()):
        if "$ref" in schema and set(schema) - {"$ref"} <= _GENERIC_KEYS:
            for k in _GENERIC_KEYS:
                schema.pop(k, None)
    if len(content) > 1 and content.get("application/json", {}).get("schema") == {}:
        del content["application/json"]


def install(app: FastAPI, *, credentials: Iterable[Callable[..., Any]], database: Iterable[Callable[..., Any]],
            body_methods: Iterable[str], rate_limited: Iterable[tuple[str, str]]) -> None:
    """Build the document once, corrected as the module's docstring says. `credentials`: the dependencies that look
    up credentials (401) on the database; `database`: others that use the database (503); `body_methods`: the
    methods whose body api/hardening.py limits; `rate_limited`: (method, path) of routes with a rate-limit bucket."""
    cred_deps, bodies, limited = set(credentials), set(body_methods), set(rate_limited)
    db_deps = cred_deps | set(database)

    framework = app.openapi  # FastAPI's own document, with every setting of the app

    def build() -> dict[str, Any]:
        if done:
            return done[0]
        doc = framework()
        errors(500)  # the error model in the components, whether any route names it or not
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        for name, model in _MODELS.items():
            schemas.setdefault(name, model.model_json_schema(ref_template="#/components/schemas/{model}"))
            schemas.update(schemas[name].pop("$defs", {}))
        routes = {(m, r.path_format): r for r in iter_route_contexts(app.routes)
                  if isinstance(r.original_route, APIRoute) for m in r.methods or ()}
        for path, ops in doc.get("paths", {}).items():
            for method, op in ops.items():
                route = routes.get((method.upper(), path))
                answers: dict[str, Any] = op.setdefault("responses", {})
                validation = answers.pop("422", None)
                if validation is not None and "HTTPValidationError" not in str(validation):
                    answers["422"] = validation
                extra = {400, 500}
                if validation is not None:
                    extra.add(400 if path.startswith("/ogc/") else 422)
                if method.upper() in bodies:
                    extra.add(413)
                if (method.upper(), path) in limited:
                    extra.add(429)
                if route is not None and _calls(route.dependant, cred_deps):
                    extra.add(401)
                if route is not None and _calls(route.dependant, db_deps):
                    extra.add(503)
                for status in sorted(extra):
                    answers.setdefault(str(status), errors(status)[status])
                for answer in answers.values():
                    _tidy(answer)
        done.append(doc)
        return doc

    done: list[dict[str, Any]] = []
    app.openapi = build  # type: ignore[method-assign]
