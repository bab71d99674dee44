"""Hardening (api/hardening.py), one concern per test: security headers and CSP, no inline script or style in the
pages, CORS allow-list, request body limits (before the body is read), rate limits per principal with 429 and
Retry-After, a generic 500 for internal errors, and no secrets or SQL values in answers or logs."""

from __future__ import annotations

import json
import logging
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api import hardening
from api.main import create_app
from citygrid.security import credentials
from citygrid.security.principal import Grant
from citygrid.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"


@pytest.fixture()
def app_with(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[object]:
    """`app_with(**env)`: a fresh app (with its database) under these CITYGRID_* settings, as a TestClient."""
    opened: list[TestClient] = []

    def make(db: bool = True, **env: str) -> TestClient:
        for k, v in env.items():
            monkeypatch.setenv(f"CITYGRID_{k.upper()}", v)
        get_settings.cache_clear()
        app = create_app(database_url if db else "postgresql://unused/none", prepare=db)
        client = TestClient(app)
        if db:
            client.__enter__()  # runs the lifespan: the engine
            opened.append(client)
        return client

    yield make
    for c in opened:
        c.__exit__(None, None, None)
    monkeypatch.undo()
    get_settings.cache_clear()


def _user(engine: Engine) -> str:
    name = f"h-{uuid.uuid4().hex[:10]}"
    with engine.begin() as c:
        credentials.add_principal(c, name, password=PASSWORD, grants=[Grant("department", "420281",
                                                                            "natural_resources")])
    return name


def _token(client: TestClient, name: str) -> dict[str, str]:
    r = client.post("/auth/token", data={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


# --- headers ----------------------------------------------------------------------------------------------------


def test_pages_get_a_strict_csp_and_api_answers_a_closed_one(client: TestClient, engine: Engine,
                                                             demo_county: dict) -> None:
    with engine.connect() as c:
        door = c.execute(text("SELECT code FROM addr_node WHERE level = 'door' LIMIT 1")).scalar_one()
    for path in ("/map", "/docs", f"/a/{door}"):
        h = client.get(path).headers
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp, path
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp and "base-uri 'none'" in csp
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
    for path in ("/health", "/classes", "/nowhere"):
        h = client.get(path).headers
        assert h["content-security-policy"].startswith("default-src 'none'") and h["x-content-type-options"] == "nosniff"


def test_pages_have_no_inline_script_or_style() -> None:
    """What the CSP forbids is not in the templates either (the browser test proves the pages run under it)."""
    for page in (ROOT / "api" / "templates").glob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"{page.name}: inline <script>"
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html), f"{page.name}: inline style or handler"


def test_docs_are_self_hosted(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "cdn" not in page.lower() and "/vendor/swagger-ui/swagger-ui-bundle.js" in page
    assert client.get("/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert client.get("/static/docs.js").status_code == 200
    r = client.get("/redoc", follow_redirects=False)
    assert r.status_code == 308 and r.headers["location"] == "/docs"


# --- CORS ---------------------------------------------------------------------------------------------------------


def test_cors_allows_only_the_configured_origins(app_with: object, client: TestClient) -> None:
    allowed, other = "https://gis.daye.gov.cn", "https://evil.example"
    c = app_with(db=False, cors_origins=f"{allowed}, https://b.example")  # type: ignore[operator]
    pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    ok = c.options("/address/geocode", headers={"Origin": allowed, **pre})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == allowed
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in ok.headers  # bearer headers, never cookies
    refused = c.options("/address/geocode", headers={"Origin": other, **pre})
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    assert c.get("/", headers={"Origin": allowed}).headers["access-control-allow-origin"] == allowed
    assert "access-control-allow-origin" not in c.get("/", headers={"Origin": other}).headers
    # by default no origin is allowed at all
    assert "access-control-allow-origin" not in client.get("/", headers={"Origin": allowed}).headers


# --- body limits --------------------------------------------------------------------------------------------------


def test_route_table_names_real_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for method, path in hardening.ROUTES:
        assert method.lower() in paths.get(path, {}), f"{method} {path} is not a route"


def test_json_bodies_over_the_default_limit_get_413_in_the_error_shape(client: TestClient) -> None:
    big = json.dumps({"class_code": "080102", "name": "x" * (1 << 20)})
    r = client.post("/objects", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    body = r.json()
    assert body["error_code"] == "body_too_large" and "1 MB" in body["message_en"] and body["errors"]


def test_routes_with_their_own_limit(client: TestClient) -> None:
    # /address/geocode takes up to 10,000 addresses: 2 MB is fine there (one over-long row answered in its place)
    two_mb = json.dumps({"addresses": ["大冶市" + "x" * (2 << 20)]})
    r = client.post("/address/geocode", content=two_mb, headers={"Content-Type": "application/json"})
    assert r.status_code != 413
    huge = json.dumps({"addresses": ["x" * (17 << 20)]})
    r = client.post("/address/geocode", content=huge, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "16 MB" in r.json()["message_en"]
    # a login form is small
    r = client.post("/auth/token", data={"username": "x", "password": "y" * (100 << 10)})
    assert r.status_code == 413 and "64 KB" in r.json()["message_en"]


def _raw_http(base: str, head: str, body_chunks: list[bytes] = ()) -> tuple[int, dict]:  # type: ignore[assignment]
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head.encode())
        try:
            for chunk in body_chunks:
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the server may stop listening once it has answered
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 30:
            part = s.recv(65536)
            if not part:
                break
            data += part
    status = int(data.split(b" ", 2)[1])
    payload = data.split(b"\r\n\r\n", 1)[1]
    start = payload.find(b"{")
    return status, json.loads(payload[start:payload.rfind(b"}") + 1]) if start >= 0 else {}


def test_a_declared_oversize_body_is_refused_before_it_is_sent(live_server: str) -> None:
    """Only the headers go out, announcing 100 MB: the 413 comes back at once, not after a 100 MB upload."""
    status, body = _raw_http(live_server, "POST /objects HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                             "application/json\r\nContent-Length: 104857600\r\n\r\n")
    assert status == 413 and body["error_code"] == "body_too_large"


def test_a_chunked_body_is_cut_off_at_the_limit(live_server: str) -> None:
    chunks = [b"[" + b"0," * 32767] + [b"0," * 32768] * 40  # 2.6 MB with no length announced
    status, body = _raw_http(live_server, "POST /objects HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                             "application/json\r\nTransfer-Encoding: chunked\r\n\r\n", chunks)
    assert status == 413 and body["error_code"] == "body_too_large"


# --- rate limits --------------------------------------------------------------------------------------------------


def test_token_buckets_refill_over_their_period() -> None:
    lim = hardening.Limiter({"geocode": (2, 60.0)})
    assert lim.take("geocode", "a", now=0) == 0 and lim.take("geocode", "a", now=0) == 0
    assert lim.take("geocode", "a", now=0) == 30  # one token comes back every 30 s
    assert lim.take("geocode", "b", now=0) == 0  # another caller has its own bucket
    assert lim.take("geocode", "a", now=30) == 0 and lim.take("geocode", "a", now=30) > 0


def test_logins_are_rate_limited_per_client_address_with_retry_after(app_with: object) -> None:
    c = app_with(rate_limits="1", rate_login="3/minute")  # type: ignore[operator]
    for _ in range(3):
        assert c.post("/auth/token", data={"username": f"nobody-{uuid.uuid4().hex[:6]}",
                                           "password": "whatever-it-is"}).status_code == 401
    r = c.post("/auth/token", data={"username": "nobody", "password": "whatever-it-is"})
    assert r.status_code == 429 and r.json()["error_code"] == "rate_limited" and r.json()["errors"]
    assert 0 < int(r.headers["Retry-After"]) <= 20 and r.headers["Retry-After"] in r.json()["message_en"]
    other = TestClient(c.app, client=("192.0.2.7", 40000))  # another address has its own bucket
    assert other.post("/auth/token", data={"username": "nobody", "password": "x" * 12}).status_code == 401


def test_expensive_routes_are_rate_limited_per_principal(app_with: object, engine: Engine) -> None:
    c = app_with(rate_limits="1", rate_geocode="2/minute", rate_login="off")  # type: ignore[operator]
    alice, bob = _token(c, _user(engine)), _token(c, _user(engine))
    body = {"addresses": ["大冶市罗家桥街道"]}
    for _ in range(2):
        assert c.post("/address/geocode", json=body, headers=alice).status_code != 429
    r = c.post("/address/geocode", json=body, headers=alice)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert c.post("/address/geocode", json=body, headers=bob).status_code != 429  # per principal
    forged = {"Authorization": "Bearer " + alice["Authorization"][7:-4] + "AAAA"}
    assert c.post("/address/geocode", json=body, headers=forged).status_code != 429  # cannot spend alice's bucket
    assert c.post("/address/geocode", json=body).status_code != 429  # anonymous: by client address


# --- internal errors and secrets ----------------------------------------------------------------------------------


def test_a_database_error_is_a_generic_500_and_its_values_stay_out_of_the_log(
        app_with: object, caplog: pytest.LogCaptureFixture) -> None:
    c = app_with()  # type: ignore[operator]
    secret = f"value-{uuid.uuid4().hex}"

    @c.app.get("/test-database-error")
    def boom() -> dict:
        with c.app.state.engine.connect() as conn:
            conn.execute(text("SELECT CAST(:v AS integer)"), {"v": secret})
        return {}

    with caplog.at_level(logging.DEBUG):
        r = c.get("/test-database-error")
    assert r.status_code == 500
    body = r.json()
    assert body["error_code"] == "internal_error" and body["errors"]
    ref = re.search(r"[0-9a-f]{12}", body["message_en"]).group()  # type: ignore[union-attr]
    for leak in (secret, "SELECT", "CAST", "psycopg", "integer", "Traceback"):
        assert leak not in r.text
    logged = caplog.text
    assert ref in logged and "sqlstate=22P02" in logged and "SELECT CAST" in logged  # enough to find the bug
    assert secret not in logged  # but not the value (PostgreSQL's own message quotes it)


def test_passwords_and_keys_appear_in_no_answer_and_no_log(client: TestClient, engine: Engine,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    name = _user(engine)
    password = f"Wrong-{uuid.uuid4().hex}"
    api_key = f"cg_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}{uuid.uuid4().hex}"
    token = f"eyJ{uuid.uuid4().hex}.{uuid.uuid4().hex}.{uuid.uuid4().hex}"
    with caplog.at_level(logging.DEBUG):
        answers = [client.post("/auth/token", data={"username": name, "password": password}),
                   client.post("/auth/token", data={"username": "no-such-user", "password": password}),
                   client.get("/auth/me", headers={"X-API-Key": api_key}),
                   client.get("/auth/me", headers={"Authorization": f"Bearer {api_key}"}),
                   client.get("/auth/me", headers={"Authorization": f"Bearer {token}"}),
                   client.post("/auth/token", data={"username": name})]  # no password: a validation error
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 401, 422]
    for secret in (password, api_key, api_key.split("_")[-1], token):
        assert all(secret not in a.text and secret not in str(a.headers) for a in answers)
        assert secret not in caplog.text
    assert "password=hunter2" not in hardening.describe(RuntimeError("login with password=hunter2 failed"))
    assert "hunter2" not in hardening.describe(RuntimeError("Authorization: Bearer hunter2"))
