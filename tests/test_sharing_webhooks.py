"""Webhooks: batches of the feed POSTed signed to a real local HTTP receiver, retried after failures, put on the
dead-letter list after the last attempt, cut to the webhook principal's rights; negative tests."""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from citygrid.catalog import get_catalog
from citygrid.registry import objects
from citygrid.security.principal import system_as
from citygrid.settings import get_settings
from citygrid.sharing import webhooks

LAMP = next(c for c in get_catalog().classes.values() if c.name == "路灯")
SHELTER = next(c for c in get_catalog().classes.values() if c.name == "人防工事")


class Receiver:
    def __init__(self) -> None:
        self.statuses: list[int] = []  # answered in turn; 200 once they run out
        self.got: list[tuple[bytes, str]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append((body, self.headers.get("X-Citygrid-Signature", "")))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _make(engine: Engine, cls: Any = LAMP) -> str:
    with Session(engine) as s:
        code = str(objects.create(s, system_as("hook-test"), objects.NewObject(
            class_code=cls.code, geometry={"type": "Point", "coordinates": [114.97, 30.10]},
            attrs={"state": "完好"}, division_code="420281"))["code"])
        s.commit()
    return code


def _codes(body: bytes) -> list[str]:
    return [e["code"] for e in json.loads(body)["entries"]]


def test_batches_are_signed_retried_and_dead_lettered(client: TestClient, engine: Engine, receiver: Receiver,
                                                      caller: Callable[..., Any]) -> None:
    _make(engine)  # before the webhook: not sent (a webhook starts from now unless given `since`)
    owner = caller(f"department:{LAMP.department.id}@420281")
    r = client.post("/webhooks", json={"url": receiver.url, "class": LAMP.code, "kinds": "created"},
                    headers=owner.headers)
    assert r.status_code == 201, r.text
    hook, secret = r.json()["id"], r.json()["secret"]
    assert "secret" not in client.get("/webhooks", headers=owner.headers).json()["webhooks"][0]
    first = [_make(engine), _make(engine)]
    receiver.statuses = [503, 500]
    assert [webhooks.deliver(engine, hook, force=True) for _ in range(3)] == ["failed", "failed", "sent"]
    assert len(receiver.got) == 3 and len({b for b, _ in receiver.got}) == 1  # the same batch until taken
    body, signature = receiver.got[-1]
    assert webhooks.verify(secret, signature, body) and not webhooks.verify("wrong", signature, body)
    assert not webhooks.verify(secret, signature, body + b" ")
    assert _codes(body) == first
    state = client.get("/webhooks", headers=owner.headers).json()["webhooks"][0]
    assert state["attempts"] == 0 and state["delivered"] == 2 and state["last_error"] is None
    # nothing new: nothing sent; a retry is not due before its pause
    assert webhooks.deliver(engine, hook, force=True) == "idle"
    poisoned = _make(engine)
    receiver.statuses = [500] * 100
    outcomes = [webhooks.deliver(engine, hook, force=True) for _ in range(get_settings().webhook_attempts)]
    assert outcomes == ["failed"] * (get_settings().webhook_attempts - 1) + ["dead"]
    assert webhooks.deliver(engine, hook) == "idle"  # not due: and the dead batch is not sent again
    dead = client.get(f"/webhooks/{hook}/dead", headers=owner.headers).json()["dead"]
    assert [e["code"] for e in dead[0]["entries"]] == [poisoned] and dead[0]["last_error"] == "HTTP 500"
    receiver.statuses = []
    later = _make(engine)
    assert webhooks.deliver(engine, hook, force=True) == "sent" and _codes(receiver.got[-1][0]) == [later]
    # another principal sees neither the webhook nor its dead letters; removing stops it
    other = caller(f"department:{LAMP.department.id}@420281")
    assert client.get("/webhooks", headers=other.headers).json()["webhooks"] == []
    assert client.get(f"/webhooks/{hook}/dead", headers=other.headers).status_code == 404
    assert client.delete(f"/webhooks/{hook}", headers=other.headers).status_code == 404
    assert client.delete(f"/webhooks/{hook}", headers=owner.headers).json()["active"] is False
    _make(engine)
    assert webhooks.deliver(engine, hook, force=True) == "idle"


def test_a_webhook_sees_only_what_its_principal_may(client: TestClient, engine: Engine, receiver: Receiver,
                                                    caller: Callable[..., Any]) -> None:
    housing = caller("department:housing@420281")
    hook = client.post("/webhooks", json={"url": receiver.url}, headers=housing.headers).json()["id"]
    lamp, shelter = _make(engine), _make(engine, SHELTER)
    assert webhooks.deliver(engine, hook, force=True) == "sent"
    got = _codes(receiver.got[-1][0])
    assert lamp in got and shelter not in got  # 人防工事 is not public and not housing's


def test_webhooks_need_a_login_and_good_input(client: TestClient, admin_headers: dict[str, str]) -> None:
    assert client.post("/webhooks", json={"url": "http://127.0.0.1:9/x"}).status_code == 401
    assert client.get("/webhooks").status_code == 401
    bad = client.post("/webhooks", json={"url": "ftp://x"}, headers=admin_headers)
    assert bad.status_code == 422
    kinds = client.post("/webhooks", json={"url": "http://127.0.0.1:9/x", "kinds": "boom"}, headers=admin_headers)
    assert kinds.status_code == 400 and kinds.json()["error_code"] == "change_kind_unknown"
    assert client.get("/webhooks/999999/dead", headers=admin_headers).json()["error_code"] == "webhook_not_found"


@pytest.mark.parametrize("url", ["http://127.0.0.2:9/x", "http://localhost.:9/x", "http://[::1]/x", "http://10.1.2.3/x",
                                 "http://192.168.0.1/x", "http://169.254.169.254/latest/meta-data/",
                                 "http://100.100.100.200/latest/meta-data/", "http://0.0.0.0:80/",
                                 "http://[::ffff:10.0.0.1]/x", "https://[fd00:ec2::254]/x"])
def test_webhook_urls_to_internal_addresses_are_refused(client: TestClient, admin_headers: dict[str, str],
                                                        url: str) -> None:
    """SSRF: only the tests' own loopback receiver (127.0.0.1, CITYGRID_WEBHOOK_ALLOW in conftest) is allowed;
    `localhost.` resolves to it or to ::1 and is refused unless that is listed (it is not, by name)."""
    r = client.post("/webhooks", json={"url": url}, headers=admin_headers)
    if url.startswith("http://localhost.") and r.status_code == 201:  # resolves to 127.0.0.1 alone here: allowed
        return
    assert r.status_code == 400, (url, r.text)
    assert r.json()["error_code"] == "webhook_url_forbidden" and r.json()["field"] == "url"


def test_webhook_allow_list_and_unresolvable_hosts(client: TestClient, admin_headers: dict[str, str]) -> None:
    from citygrid.sharing.webhooks import check_url

    check_url("http://127.0.0.1:9/x")  # allowed by the setting
    r = client.post("/webhooks", json={"url": "http://no-such-host.invalid/x"}, headers=admin_headers)
    assert r.status_code == 400 and r.json()["error_code"] == "webhook_url_invalid"
    try:
        get_settings.cache_clear()
        os.environ["CITYGRID_WEBHOOK_ALLOW"] = "127.0.0.1/32, 10.0.0.0/8"
        check_url("http://10.1.2.3/x")
        r = client.post("/webhooks", json={"url": "http://192.168.0.1/x"}, headers=admin_headers)
        assert r.status_code == 400
    finally:
        os.environ["CITYGRID_WEBHOOK_ALLOW"] = "127.0.0.1/32"
        get_settings.cache_clear()


def test_secrets_are_sealed_at_rest_and_leftover_plaintext_is_sealed_at_start(
        client: TestClient, engine: Engine, admin_headers: dict[str, str]) -> None:
    from sqlalchemy import text

    from citygrid.security import crypto

    r = client.post("/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=admin_headers)
    hook, secret = r.json()["id"], r.json()["secret"]
    with engine.connect() as c:
        row = c.execute(text("SELECT secret, secret_enc, secret_kid FROM webhook WHERE id = :i"), {"i": hook}).one()
    assert row.secret is None and row.secret_kid and secret.encode() not in bytes(row.secret_enc)
    assert crypto.open_secret(row.secret_enc) == secret
    with engine.begin() as c:  # a webhook as made before migration 0022: plaintext, under a NOT VALID check
        with pytest.raises(Exception, match="webhook_no_plaintext"), c.begin_nested():
            c.execute(text("UPDATE webhook SET secret = 'x' WHERE id = :i"), {"i": hook})
        c.execute(text("ALTER TABLE webhook DROP CONSTRAINT webhook_no_plaintext"))
        c.execute(text("UPDATE webhook SET secret = 'before-0022', secret_enc = NULL, secret_kid = NULL "
                       "WHERE id = :i"), {"i": hook})
        c.execute(text("ALTER TABLE webhook ADD CONSTRAINT webhook_no_plaintext CHECK (secret IS NULL) NOT VALID"))
    assert crypto.seal_leftovers(engine) >= 1
    with engine.connect() as c:
        row = c.execute(text("SELECT secret, secret_enc FROM webhook WHERE id = :i"), {"i": hook}).one()
        valid = c.execute(text("SELECT convalidated FROM pg_constraint WHERE conname = 'webhook_no_plaintext'")).scalar()
    assert row.secret is None and crypto.open_secret(row.secret_enc) == "before-0022" and valid is True
    assert crypto.seal_leftovers(engine) == 0


def test_deliveries_do_not_follow_redirects(client: TestClient, engine: Engine, receiver: Receiver,
                                            caller: Callable[..., Any]) -> None:
    """A receiver that answers 302 towards another address (here: a second local server standing in for an
    internal service; urllib would follow a 302 with a GET) gets a failed delivery; nothing reaches the target."""
    reached: list[str] = []

    class Target(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            reached.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{target.server_address[1]}/internal")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        owner = caller(f"department:{LAMP.department.id}@420281")
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        hook = client.post("/webhooks", json={"url": url, "class": LAMP.code}, headers=owner.headers).json()["id"]
        _make(engine)
        assert webhooks.deliver(engine, hook, force=True) == "failed"
        state = client.get("/webhooks", headers=owner.headers).json()["webhooks"][0]
        assert state["last_error"] == "HTTP 302" and reached == []
    finally:
        server.shutdown()
        target.shutdown()
