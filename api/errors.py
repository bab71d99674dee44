"""Every error leaves as {error_code, message_zh, message_en, field, row, errors[]} with a 4xx status.

This is the one place that knows which HTTP status each kind of catalogue entry (`citygrid.errors.E`) is
answered with; `/errors` and the API documentation list the catalogue with those statuses.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import retry
from citygrid.db import failures
from citygrid.errors import CitygridError, E, ErrorEntry, Problem, catalogue
from citygrid.security import audit
from citygrid.security.principal import ANONYMOUS

STATUS = {"invalid": 400, "unauthenticated": 401, "forbidden": 403, "not_found": 404, "conflict": 409,
          "unprocessable": 422, "too_many": 429, "too_large": 413, "internal": 500,
          "unavailable": 503, "not_allowed": 405, "precondition_failed": 412, "unsupported_media": 415,
          "insufficient_storage": 507}

# The framework's words, in Chinese: pydantic error types and HTTP statuses it answers with by itself.
_ZH = {
    "missing": "缺少必填字段", "json_invalid": "JSON 格式错误", "string_type": "应为文本",
    "int_parsing": "应为整数", "float_parsing": "应为数字", "dict_type": "应为对象", "list_type": "应为数组",
    "greater_than_equal": "数值过小", "less_than_equal": "数值过大", "string_too_long": "文本过长",
    "string_too_short": "文本过短", "literal_error": "取值不在允许范围内", "model_attributes_type": "应为对象",
    "int_type": "应为整数", "float_type": "应为数字", "bool_parsing": "应为布尔值", "string_pattern_mismatch": "格式不正确",
}
_HTTP_ZH = {404: "资源不存在", 405: "不支持该请求方法", 413: "请求体过大"}


def status_of(entry: ErrorEntry) -> int:
    return STATUS[entry.kind]


def listing() -> list[dict[str, Any]]:
    """The catalogue for API users: code, status, the two templates and their parameters."""
    return [{"error_code": e.code, "http_status": status_of(e), "message_zh": e.zh, "message_en": e.en,
             "params": e.params, "note": e.note or None} for e in catalogue().values()]


def markdown() -> str:
    """The catalogue as a Markdown table, for the API description (`/docs`)."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = [f"| `{e['error_code']}` | {e['http_status']} | {cell(e['message_zh'])} | {cell(e['message_en'])} |"
            for e in listing()]
    return "\n".join(["| error_code | HTTP | 中文 | English |", "| --- | --- | --- | --- |", *rows])


def _field(loc: tuple[int | str, ...]) -> tuple[str | None, int | None]:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    row = next((p for p in loc if isinstance(p, int)), None)
    return (".".join(parts) or None), row


def _validation_problem(e: dict[str, Any]) -> Problem:
    field, row = _field(tuple(e.get("loc", ())))
    kind = e.get("type", "invalid")
    p = E.request_invalid.problem(field, row, loc_zh=field or "请求体", loc_en=field or "body",
                                  detail_zh=_ZH.get(kind, "请求参数不正确"), detail_en=e.get("msg"))
    return replace(p, error_code=f"request_{kind}")


async def _record_refusal(request: Request, exc: CitygridError) -> None:
    """Every 401/403 goes to the audit log as refused, with the route, the code asked for and the caller."""
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        return
    route = request.scope.get("route")
    action = f"{request.method} {getattr(route, 'path', request.url.path)}"
    target = request.path_params.get("code") or request.url.path
    p = getattr(request.state, "principal", None) or ANONYMOUS
    await run_in_threadpool(audit.refused, engine, p, action, target, exc.error_code)


def answer(exc: CitygridError) -> JSONResponse:
    """The JSON answer of an error, with Retry-After when it says when to retry (429, 503)."""
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return JSONResponse(exc.to_dict(), status_code=STATUS.get(exc.kind, 400), headers=headers)


# The OpenRosa routes (api/routers/odk.py): their refusals challenge with Basic and carry the OpenRosa header.
ODK_PATHS = ("/formList", "/submission")
ODK_PREFIX = "/forms/"


def install(app: FastAPI) -> None:
    @app.exception_handler(SQLAlchemyError)
    @app.exception_handler(psycopg.Error)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        """A database that cannot answer now is a 503 with Retry-After, text it cannot store a 400
        (citygrid/db/failures.py); anything else is an internal error (api/hardening.py's shield)."""
        err = failures.as_error(exc)
        if err is None:
            raise exc
        retry.mark(request.scope, exc)  # a deadlock or serialization failure: api/retry.py runs it again
        return answer(err)

    @app.exception_handler(OSError)
    async def _storage(request: Request, exc: OSError) -> JSONResponse:
        """A full disk while writing a file (an upload, a job's result) is a 507 with Retry-After
        (citygrid/db/failures.py); any other OS error is an internal error."""
        err = failures.as_error(exc)
        if err is None:
            raise exc
        return answer(err)

    @app.exception_handler(CitygridError)
    async def _domain(request: Request, exc: CitygridError) -> JSONResponse:
        if exc.kind in ("unauthenticated", "forbidden"):
            await _record_refusal(request, exc)
        headers = {}
        odk = request.url.path in ODK_PATHS or request.url.path.startswith(ODK_PREFIX)
        if exc.kind == "unauthenticated":  # RFC 6750: say which scheme would have worked
            # ODK Collect answers a Basic challenge by asking its user for the server's username and password
            headers["WWW-Authenticate"] = 'Basic realm="citygrid"' if odk else 'Bearer realm="citygrid"'
        if exc.kind == "not_allowed":  # RFC 9110 §15.5.6: say what the resource does allow (it is read-only)
            headers["Allow"] = "GET"
        if odk:
            headers["X-OpenRosa-Version"] = "1.0"
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse(exc.to_dict(), status_code=STATUS.get(exc.kind, 400), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [_validation_problem(e) for e in exc.errors()] or [E.request_invalid.problem(
            loc_zh="请求体", loc_en="body", detail_zh="请求参数不正确", detail_en="invalid request")]
        # OGC API - Features Part 1 (/req/core/query-param-invalid): a bad parameter value is a 400 there
        status = 400 if request.url.path.startswith("/ogc/") else status_of(E.request_invalid)
        return JSONResponse(CitygridError(problems).to_dict(), status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            p = E.request_malformed.problem(detail_en=str(exc.detail))
        else:
            p = replace(E.http_error.problem(detail_zh=_HTTP_ZH.get(exc.status_code, "请求错误"),
                                             detail_en=str(exc.detail)), error_code=f"http_{exc.status_code}")
        return JSONResponse(CitygridError(p).to_dict(), status_code=exc.status_code)
