"""Every error leaves as {error_code, message_zh, message_en, field, row, errors[]} with a 4xx status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from citygrid.errors import CitygridError

STATUS = {"invalid": 400, "not_found": 404, "conflict": 409, "unprocessable": 422}

_ZH = {
    "missing": "缺少必填字段", "json_invalid": "JSON 格式错误", "string_type": "应为文本",
    "int_parsing": "应为整数", "float_parsing": "应为数字", "dict_type": "应为对象", "list_type": "应为数组",
    "greater_than_equal": "数值过小", "less_than_equal": "数值过大", "string_too_long": "文本过长",
    "string_too_short": "文本过短", "literal_error": "取值不在允许范围内", "model_attributes_type": "应为对象",
    "int_type": "应为整数", "float_type": "应为数字", "bool_parsing": "应为布尔值", "string_pattern_mismatch": "格式不正确",
}


def _field(loc: tuple) -> tuple[str | None, int | None]:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    row = next((p for p in loc if isinstance(p, int)), None)
    return (".".join(parts) or None), row


def install(app: FastAPI) -> None:
    @app.exception_handler(CitygridError)
    async def _domain(_: Request, exc: CitygridError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=STATUS.get(exc.kind, 400))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            field, row = _field(tuple(e.get("loc", ())))
            kind = e.get("type", "invalid")
            zh = _ZH.get(kind, "请求参数不正确")
            errors.append({"error_code": f"request_{kind}", "field": field, "row": row,
                           "message_zh": f"字段 {field or '请求体'}：{zh}", "message_en": f"{field or 'body'}: {e.get('msg')}"})
        head = errors[0] if errors else {"error_code": "request_invalid", "field": None, "row": None,
                                         "message_zh": "请求不正确", "message_en": "invalid request"}
        return JSONResponse({**head, "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        zh = {404: "资源不存在", 405: "不支持该请求方法", 413: "请求体过大"}.get(exc.status_code, "请求错误")
        code = {400: "request_malformed"}.get(exc.status_code, f"http_{exc.status_code}")
        if exc.status_code == 400:
            zh = "请求体无法解析（不是合法的 JSON）"
        body = {"error_code": code, "message_zh": zh, "message_en": str(exc.detail),
                "field": None, "row": None}
        return JSONResponse({**body, "errors": [body]}, status_code=exc.status_code)
