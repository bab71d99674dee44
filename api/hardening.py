"""Hardening that comes with identity: security headers, CORS, request body limits, rate limits, and a last line
that keeps internal errors (SQL, values, secrets) out of answers. All pure ASGI middleware, so a request pays a
dictionary lookup and a few header writes, not a thread hop.

**Headers.** Every answer gets `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`. HTML pages
(`/map`, `/a/{code}`, `/docs`, `/freshness`) get a CSP with no inline script or style and only this origin as a source
(`blob:` workers for MapLibre, `data:` images for icons), `frame-ancestors 'none'` with `X-Frame-Options: DENY`;
other answers get `default-src 'none'`, which a JSON document or tile never needs. The pages keep their script
and style in `api/static/` and their libraries in `data/vendor` (MapLibre, swagger-ui-dist), so they work
offline; the browser test (tests/test_web.py) fails on any CSP violation.

**CORS.** Origins from `CITYGRID_CORS_ORIGINS` (comma-separated; none by default, so browsers on other sites may
not read answers). Credentials are bearer headers, never cookies, so `allow_credentials` stays off.

**Body limits.** `settings.body_limit` (1 MiB) for every route that does not say otherwise in `ROUTES`. A
declared `Content-Length` over the limit is answered 413 before a byte is read; a chunked body is counted as it
arrives and cut off at the limit (the route then sees a disconnected client and its answer is dropped). Not
FastAPI's own `max_body_size`: it answers a declared oversize body with a plain-text 413, outside the error shape.

**Rate limits.** Token buckets per (bucket, caller) for the routes `ROUTES` gives a bucket: logins per client
address (with the per-account lockout in citygrid/security/credentials.py), the others per principal (the
bearer token's subject, or the API key) or per client address for anonymous callers. They are decided before
the body is read and answered 429 with `Retry-After`. Buckets live in the process: with several workers each
has its own, so the effective limit is the setting times the workers; behind a proxy, list it in
`CITYGRID_FORWARDED_ALLOW_IPS` (api/proxy.py) so the client address is the caller's, not the proxy's.

**Internal errors.** Any exception that escapes a route is answered 500 `internal_error` with a reference; the
server log gets the reference, the route, the exception type and place and, for database errors, the SQLSTATE
and the statement without its parameters (no values, so no personal data, passwords or keys).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
import traceback
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import answer
from api.routers.address import MAX_UPLOAD
from api.routers.grids import MAX_FILE
from citygrid.db import failures
from citygrid.errors import CitygridError, E
from citygrid.security import tokens
from citygrid.security.credentials import API_KEY_PREFIX
from citygrid.settings import get_settings
from citygrid.survey.intake import MAX_BYTES as SURVEY_MAX
from citygrid.survey.odk import MAX_SUBMISSION as ODK_MAX

log = logging.getLogger("citygrid.api")

KB, MB = 1024, 1024 * 1024
MULTIPART_SLACK = 1 * MB  # form fields and part headers around an uploaded file


@dataclass(frozen=True)
class Rule:
    body: int | None = None  # bytes; None: settings.body_limit
    bucket: str | None = None  # a rate-limit bucket, `rate_<bucket>` in the settings
    any_text: bool = False  # the body's text never reaches SQL: TextGuard lets NUL through (answered per row)


# Routes that differ from the defaults, by method and path template (tests/test_security_hardening.py checks
# that each names a real route).
ROUTES: dict[tuple[str, str], Rule] = {
    ("POST", "/auth/token"): Rule(body=64 * KB, bucket="login"),
    # up to 10,000 addresses of up to 500 characters (GeocodeMany): 15 MB of UTF-8 at the very most
    # a bad address is answered in its row, the others are still geocoded (in memory: nothing reaches SQL)
    ("POST", "/address/geocode"): Rule(body=16 * MB, bucket="geocode", any_text=True),
    ("POST", "/address/batch"): Rule(body=MAX_UPLOAD + MULTIPART_SLACK, bucket="batch"),
    ("GET", "/address/batch/{job_id}/result"): Rule(bucket="export"),
    ("POST", "/grids/import"): Rule(body=MAX_FILE + MULTIPART_SLACK),
    ("POST", "/submissions"): Rule(body=SURVEY_MAX + MULTIPART_SLACK, bucket="batch"),
    ("POST", "/submissions/{sid}/resubmit"): Rule(body=SURVEY_MAX + MULTIPART_SLACK, bucket="batch"),
    ("POST", "/submission"): Rule(body=ODK_MAX + MULTIPART_SLACK),
    ("GET", "/doorplates.pdf"): Rule(bucket="export"),  # a village's plates: hundreds of QR codes drawn
}
BUCKETS = {"login": ("登录", "logins"), "geocode": ("批量地址解析", "geocoding many addresses"),
           "batch": ("批量文件上传", "batch uploads"), "export": ("结果下载", "exports")}
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; child-src 'self' blob:; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
_COMMON = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
_PAGE = [(b"content-security-policy", PAGE_CSP.encode()), (b"x-frame-options", b"DENY"),
         (b"cross-origin-opener-policy", b"same-origin")]
_API = [(b"content-security-policy", API_CSP.encode())]


def _size(n: int) -> str:
    return f"{n / MB:.0f} MB" if n >= MB else f"{n // KB} KB"


async def _answer(scope: Scope, receive: Receive, send: Send, exc: CitygridError) -> None:
    await answer(exc)(scope, receive, send)  # the same answer as the app's own handlers give


class SecurityHeaders:
    """Adds the headers above to every HTTP answer, by its content type."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                headers = list(msg.get("headers", []))
                ctype = next((v for k, v in headers if k == b"content-type"), b"")
                present = {k for k, _ in headers}
                extra = _COMMON + (_PAGE if ctype.startswith(b"text/html") else _API)
                msg["headers"] = headers + [(k, v) for k, v in extra if k not in present]
                lsn = scope.get("state", {}).get("lsn")  # a write's WAL position, with read replicas (api/deps.py)
                if lsn:
                    msg["headers"].append((b"x-citygrid-lsn", lsn.encode()))
            await send(msg)

        await self.app(scope, receive, with_headers)


class Limiter:
    """Token buckets: `rates[bucket] = (n, period)` allows bursts of n and n per period on average."""

    MAX_KEYS = 50_000

    def __init__(self, rates: dict[str, tuple[int, float]]) -> None:
        self.rates = rates
        self.state: dict[tuple[str, str], tuple[float, float]] = {}

    def take(self, bucket: str, key: str, now: float | None = None) -> int:
        """0 when the request may go ahead (a token is spent), else the seconds until it may."""
        n, period = self.rates[bucket]
        rate = n / period
        now = time.monotonic() if now is None else now
        tokens_left, last = self.state.get((bucket, key), (float(n), now))
        tokens_left = min(float(n), tokens_left + (now - last) * rate)
        if tokens_left >= 1:
            self.state[(bucket, key)] = (tokens_left - 1, now)
            if len(self.state) > self.MAX_KEYS:
                self._prune(now)
            return 0
        self.state[(bucket, key)] = (tokens_left, now)
        return max(1, math.ceil((1 - tokens_left) / rate))

    def _prune(self, now: float) -> None:
        """Forget callers whose bucket has refilled: they are as if never seen."""
        for k, (left, last) in list(self.state.items()):
            n, period = self.rates[k[0]]
            if left + (now - last) * n / period >= n:
                del self.state[k]


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k == name:
            return bytes(v).decode("latin-1")
    return None


def caller_key(scope: Scope, bucket: str) -> str:
    """Who a request counts against: the principal a valid bearer token names, an API key (by a hash of it), or
    the client address (anonymous callers, and every login). A credential that does not verify counts under a
    hash of itself, so nobody can spend someone else's bucket by naming them."""
    client = scope.get("client")
    address = "addr:" + (client[0] if client else "unknown")
    if bucket == "login":
        return address
    auth = _header(scope, b"authorization") or ""
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    key = _header(scope, b"x-api-key") or (token if token.startswith(API_KEY_PREFIX) else "")
    if key:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:32]
    if token:
        try:
            return f"principal:{tokens.subject(token)}"
        except CitygridError:
            return "cred:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return address


class Guard:
    """Body limits and rate limits, decided from the route table before the app reads the body."""

    def __init__(self, app: ASGIApp, rules: dict[str, list[tuple[re.Pattern[str], Rule]]], default_body: int,
                 limiter: Limiter) -> None:
        self.app, self.rules, self.default_body, self.limiter = app, rules, default_body, limiter

    def _rule(self, method: str, path: str) -> Rule | None:
        for regex, rule in self.rules.get(method, ()):
            if regex.match(path):
                return rule
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        rule = self._rule(method, scope["path"])
        if rule is not None and rule.bucket is not None and rule.bucket in self.limiter.rates:
            wait = self.limiter.take(rule.bucket, caller_key(scope, rule.bucket))
            if wait:
                zh, en = BUCKETS[rule.bucket]
                await _answer(scope, receive, send, E.rate_limited(None, retry_after=wait, what_zh=zh, what_en=en,
                                                                   seconds=wait))
                return
        if method not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = rule.body if rule is not None and rule.body is not None else self.default_body
        too_large = E.body_too_large(None, limit=_size(limit))
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _answer(scope, receive, send, too_large)
            return
        await self._counted(scope, receive, send, limit, too_large)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int, too_large: CitygridError
                       ) -> None:
        """Run the app with a receive that stops at `limit` bytes: the caller gets 413, the app a disconnect."""
        seen, cut, started = 0, False, False

        async def counted_receive() -> Message:
            nonlocal seen, cut
            if cut:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    cut = True
                    if not started:
                        await _answer(scope, receive, send, too_large)
                    return {"type": "http.disconnect"}
            return msg

        async def guarded_send(msg: Message) -> None:
            nonlocal started
            if cut:  # the 413 went out; whatever the app answers to the disconnect is dropped
                return
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not cut:
                raise


JSON_TYPES = (b"application/json", b"application/geo+json", b"application/merge-patch+json")
# a JSON escape that decodes to a character PostgreSQL text cannot hold: NUL or a surrogate (paired ones are fine,
# the parsed value tells)
_JSON_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


class TextGuard:
    """Text PostgreSQL cannot store (NUL, unpaired surrogates; citygrid/db/failures.py) is refused with a 400 that
    names the field, before any route sees it: in the path, the query string and JSON bodies (except on routes
    whose text never reaches SQL, `Rule.any_text`: geocoding a list answers a bad address in its row). The core
    checks again where text enters SQL, so text arriving another way (form fields, files) is refused there."""

    def __init__(self, app: ASGIApp, exempt: dict[str, list[re.Pattern[str]]]) -> None:
        self.app, self.exempt = app, exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(r.match(scope["path"]) for r in self.exempt.get(scope["method"], ())):
            await self.app(scope, receive, send)
            return
        problem = self._url_problem(scope)
        if problem is not None:
            await _answer(scope, receive, send, problem)
            return
        ctype = (_header(scope, b"content-type") or "").encode("latin-1").split(b";")[0].strip().lower()
        if scope["method"] not in BODY_METHODS or ctype not in JSON_TYPES:
            await self.app(scope, receive, send)
            return
        # a JSON body is read whole by the route anyway: read it here (the Guard outside has limited its size),
        # look for a suspect escape, and hand the same bytes on
        chunks: list[bytes] = []
        while True:
            msg = await receive()
            if msg["type"] != "http.request":  # the client left (or the Guard cut the body): let the app see it
                await self.app(scope, _replay([], msg), send)
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        if _JSON_SUSPECT.search(body) or b"\x00" in body:
            problem = _json_problem(body)
            if problem is not None:
                await _answer(scope, receive, send, problem)
                return
        await self.app(scope, _replay([body], None, receive), send)

    @staticmethod
    def _url_problem(scope: Scope) -> CitygridError | None:
        path = scope.get("path", "")
        if (what := failures.unstorable(path)) is not None:
            return failures.unstorable_error("path", what)
        qs: bytes = scope.get("query_string", b"")
        if b"%00" in qs or b"\x00" in qs:
            for k, v in parse_qsl(qs.decode("latin-1"), keep_blank_values=True):
                for text in (k, v):
                    if (what := failures.unstorable(text)) is not None:
                        return failures.unstorable_error("query" if failures.unstorable(k) else k, what)
        return None


def _json_problem(body: bytes) -> CitygridError | None:
    try:
        value = json.loads(body)
    except ValueError:  # not JSON: the route answers that
        return None
    hit = failures.find_unstorable(value)
    return None if hit is None else failures.unstorable_error(hit[0] or None, hit[1])


def _replay(bodies: list[bytes], last: Message | None, then: Receive | None = None) -> Receive:
    """A receive that gives the buffered body once, then `last` (or what `then` gives: a later disconnect)."""
    pending: list[Message] = [{"type": "http.request", "body": b, "more_body": False} for b in bodies]
    if last is not None:
        pending.append(last)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


_SECRETS = re.compile(r"(?i)(bearer\s+)\S+|cg_[A-Za-z0-9_-]+|((?:password|secret|token|key)\s*[=:]\s*)\S+")


def describe(exc: BaseException) -> str:
    """An exception for the log without values: for database errors the SQLSTATE, the names of the table, column
    and constraint, and the statement (placeholders, never parameters; not PostgreSQL's message, which quotes the
    offending value); for others the type, message and where it was raised, anything like a credential blanked."""
    from sqlalchemy.exc import StatementError

    where = "".join(traceback.format_tb(exc.__traceback__, limit=-3)).strip().replace("\n", " | ")
    if isinstance(exc, StatementError):
        orig = exc.orig
        diag = getattr(orig, "diag", None)  # names only: PostgreSQL's messages quote the offending values
        names = " ".join(f"{k}={v}" for k in ("table_name", "column_name", "constraint_name")
                         if (v := getattr(diag, k, None)))
        return (f"{type(orig).__name__} sqlstate={getattr(orig, 'sqlstate', None)} {names}; "
                f"statement: {' '.join(str(exc.statement).split())[:500]}; at {where}")
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2) or "") + "***", f"{type(exc).__name__}: {exc}; at {where}")


class ErrorShield:
    """The last line: an exception that escaped everything else becomes a 500 with a reference in the usual
    error shape; the details go to the log (see `describe`), never to the caller."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - this is the catch-all
            known = failures.as_error(exc)  # a database away (503) or text it cannot store (400) is no bug
            if known is not None:
                log.warning("%s on %s %s: %s", known.error_code, scope.get("method"), scope.get("path"),
                            describe(exc))
                if not started:
                    await _answer(scope, receive, send, known)
                return
            ref = uuid.uuid4().hex[:12]
            log.error("internal error %s on %s %s: %s", ref, scope.get("method"), scope.get("path"), describe(exc))
            if not started:
                await _answer(scope, receive, send, E.internal_error(None, ref=ref))


def _route_rules() -> dict[str, list[tuple[re.Pattern[str], Rule]]]:
    """`ROUTES` by method, each path template compiled as Starlette compiles it for routing."""
    out: dict[str, list[tuple[re.Pattern[str], Rule]]] = {}
    for (method, path), rule in ROUTES.items():
        out.setdefault(method, []).append((compile_path(path)[0], rule))
    return out


def install(app: FastAPI) -> None:
    """Add the middleware; the last added is the outermost: the shield, then headers, CORS and limits (so 413
    and 429 answers carry security and CORS headers too)."""
    s = get_settings()
    rates = {b: r for b in BUCKETS if (r := s.rate(b)) is not None}
    app.state.limiter = Limiter(rates)
    rules = _route_rules()
    exempt = {m: [regex for regex, rule in rs if rule.any_text] for m, rs in rules.items()}
    app.add_middleware(TextGuard, exempt=exempt)  # inside the Guard: bodies are size-limited before they are read
    app.add_middleware(Guard, rules=rules, default_body=s.body_limit, limiter=app.state.limiter)
    if s.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=s.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-API-Key", "If-None-Match", "If-Match",
                                          "If-Unmodified-Since", "Content-Crs"],
                           expose_headers=["ETag", "Retry-After", "Location"], max_age=600)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ErrorShield)
