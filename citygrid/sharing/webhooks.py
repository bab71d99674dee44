"""Webhooks: citygrid follows the change feed on a principal's behalf and POSTs each batch to its URL, signed.

A webhook is a cursor kept by citygrid: each delivery is the next page of `changes.page` after it, for the
webhook's principal with its filters, so it sees exactly what that principal would see at `/changes` (rights,
classification), every entry once and in order. The cursor moves only when the receiver answers 2xx; a failure
(any other status, a timeout, a refused connection) is retried after `webhook_retry_seconds`, doubling each time;
after `webhook_attempts` failures the batch is put on the dead-letter list (`webhook_dead`, `GET
/webhooks/{id}/dead`) and delivery goes on with the next one, so one poisoned batch cannot stop a webhook.

The body is JSON `{"webhook": id, "entries": [...], "cursor": "..."}`; the header
`X-Citygrid-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` lets the receiver check that it
came from citygrid and is fresh (`verify` below is the receiver's side). The secret is shown once, when the webhook
is made. Deliveries run in `citygrid serve` (a background thread) or `citygrid webhooks run`; two processes never
deliver the same webhook at once (a session-level advisory lock per webhook, held across the POST with no
transaction open, so a slow receiver holds no transaction id and does not hold the feed back for anyone). Delivery
is at least once: a 2xx lost on its way back means the batch comes again, so receivers drop entries whose
`cursor` they have already seen.

Who may: any principal that is logged in may make webhooks for itself; each sees and removes its own (admins
all). Its URL is called from the server, so it must not become a way into the server's network (SSRF): a URL
whose host resolves to anything but a public internet address (loopback, private, link-local with the cloud
metadata address 169.254.169.254, shared 100.64/10 with Alibaba Cloud's 100.100.100.200, unique-local IPv6,
multicast, unspecified) is refused when the webhook is made (400 webhook_url_forbidden) and again before every
delivery (a name may be re-pointed later), unless `CITYGRID_WEBHOOK_ALLOW` lists its network or its host name;
deliveries never follow redirects. What stays possible is a name re-pointed between the check and the connection
(DNS rebinding within seconds): deployments that must rule that out too put an egress proxy in front.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from citygrid.errors import CitygridError, E, detail
from citygrid.security import audit, credentials, crypto
from citygrid.security.principal import SYSTEM, Principal
from citygrid.security.scope import scoped
from citygrid.settings import get_settings
from citygrid.sharing import changes

LOCK_KEY = 4202818  # advisory lock class of webhook deliveries


def sign(secret: str, body: bytes, t: int | None = None) -> str:
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The receiver's check: the signature matches and is at most `tolerance` seconds old."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    return abs(time.time() - t) <= tolerance and hmac.compare_digest(sign(secret, body, t), header)


def _allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow: list[str]) -> bool:
    for entry in allow:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:  # a host name: compared by name in `check_url`
            continue
    return False


def check_url(url: str) -> None:
    """Refuse a webhook URL that is not http(s), does not resolve, or resolves to an address that is not on the
    public internet (any of its addresses: a name with one public and one private address is refused), unless
    the `webhook_allow` setting lists the host name or the address's network."""
    def invalid(zh: str, en: str) -> CitygridError:
        return E.webhook_url_invalid("url", url=url[:200], **detail(zh, en))

    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid("应为 http:// 或 https:// 地址", "it must be an http:// or https:// URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise invalid("端口无效", "the port is not valid") from exc
    allow = get_settings().webhook_allow
    host = parts.hostname.lower().rstrip(".")
    if host in allow:
        return
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise invalid("主机名无法解析", "the host name does not resolve") from exc
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if (not ip.is_global or ip.is_multicast) and not _allowed(ip, allow):
            raise E.webhook_url_forbidden("url", url=url[:200], address=str(ip))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a failed delivery: following it would reach a URL nobody checked (`check_url`)."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _owner_filter(p: Principal) -> tuple[str, dict[str, Any]]:
    return ("TRUE", {}) if p.is_admin else ("principal_id = :pid", {"pid": p.id})


def _view(r: Any) -> dict[str, Any]:
    return {"id": r.id, "url": r.url, "filters": r.filters, "cursor": r.cursor, "active": r.active,
            "attempts": r.attempts, "next_attempt_at": r.next_attempt_at, "last_error": r.last_error,
            "delivered": r.delivered, "created_at": r.created_at}


_COLS = "id, url, filters, cursor, active, attempts, next_attempt_at, last_error, delivered, created_at"


def create(conn: Connection, p: Principal, url: str, filters: dict[str, str], since: str | None) -> dict[str, Any]:
    """A new webhook for `p`, from `since` (default: now); the answer carries the secret, shown only here."""
    from citygrid.security import rules

    rules.require_login(p, "创建回调", "making webhooks")
    check_url(url)
    changes.parse_kinds(filters.get("kinds"))
    start = changes.parse_cursor(since) if since is not None else None  # None: from now on
    cursor = str(start) if start is not None else changes.page(conn, p, None)["cursor"]
    secret = secrets.token_urlsafe(32)
    sealed, kid = crypto.seal_secret(secret)  # at rest only sealed (0022): it signs what receivers trust
    r = conn.execute(text("INSERT INTO webhook (principal_id, url, secret_enc, secret_kid, filters, cursor) VALUES "
                          "(:p, :u, :s, :k, CAST(:f AS jsonb), :c) RETURNING " + _COLS),
                     {"p": p.id, "u": url, "s": sealed, "k": kid, "f": json.dumps(filters), "c": cursor}).one()
    audit.record(conn, p, "webhook_create", str(r.id), detail={"url": url, "filters": filters})
    return _view(r) | {"secret": secret}


def list_own(conn: Connection, p: Principal) -> list[dict[str, Any]]:
    where, params = _owner_filter(p)
    return [_view(r) for r in conn.execute(text(f"SELECT {_COLS} FROM webhook WHERE {where} ORDER BY id"), params)]


def _own(conn: Connection, p: Principal, hook_id: int) -> Any:
    where, params = _owner_filter(p)
    r = conn.execute(text(f"SELECT {_COLS} FROM webhook WHERE id = :id AND {where}"), params | {"id": hook_id}).first()
    if r is None:
        raise E.webhook_not_found("id", id=hook_id)
    return r


def remove(conn: Connection, p: Principal, hook_id: int) -> dict[str, Any]:
    _own(conn, p, hook_id)
    r = conn.execute(text(f"UPDATE webhook SET active = false WHERE id = :id RETURNING {_COLS}"), {"id": hook_id}).one()
    audit.record(conn, p, "webhook_remove", str(hook_id), detail={})
    return _view(r)


def dead_letters(conn: Connection, p: Principal, hook_id: int) -> list[dict[str, Any]]:
    _own(conn, p, hook_id)
    rows = conn.execute(text("SELECT id, since, cursor, entries, attempts, last_error, at FROM webhook_dead "
                             "WHERE webhook_id = :id ORDER BY id"), {"id": hook_id}).all()
    return [dict(r._mapping) for r in rows]


def _post(url: str, body: bytes, secret: str) -> str | None:
    """None when the receiver took it (2xx), else why not."""
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "citygrid-webhook", "X-Citygrid-Signature": sign(secret, body)})
    try:
        check_url(url)
    except CitygridError as e:
        return e.message_en[:300]
    try:
        with _OPENER.open(req, timeout=get_settings().webhook_timeout) as r:
            return None if 200 <= r.status < 300 else f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        return f"{type(e).__name__}: {e}"[:300]


def deliver(engine: Engine, hook_id: int, force: bool = False) -> str:
    """One delivery attempt of one webhook: 'busy' (another process has it), 'idle' (not due, or nothing new),
    'sent', 'failed' (will be retried) or 'dead' (the batch went to the dead letters)."""
    with engine.connect() as c:
        scoped(c, SYSTEM)
        # a session-level advisory lock: held across the POST without a transaction (nor a transaction id) open
        if not c.execute(text("SELECT pg_try_advisory_lock(:k, CAST(:id AS int))"),
                         {"k": LOCK_KEY, "id": hook_id}).scalar_one():
            return "busy"
        try:
            return _attempt(c, hook_id, force)
        finally:
            c.rollback()
            scoped(c, SYSTEM)
            c.execute(text("SELECT pg_advisory_unlock(:k, CAST(:id AS int))"), {"k": LOCK_KEY, "id": hook_id})
            c.commit()


def _attempt(c: Connection, hook_id: int, force: bool) -> str:
    s = get_settings()
    h = c.execute(text("SELECT id, principal_id, url, secret, secret_enc, filters, cursor, attempts, active, "
                       "next_attempt_at <= now() AS due FROM webhook WHERE id = :id"), {"id": hook_id}).first()
    if h is None or not h.active or not (h.due or force):
        return "idle"
    p = credentials.load(c, h.principal_id, via="webhook")
    if p is None:  # disabled or removed: the webhook stops with it
        c.execute(text("UPDATE webhook SET active = false, last_error = 'principal disabled' WHERE id = :id"),
                  {"id": hook_id})
        c.commit()
        return "idle"
    f = h.filters or {}
    scoped(c, p)  # the feed as the webhook's principal sees it
    page = changes.page(c, p, changes.parse_cursor(h.cursor), class_code=f.get("class"), division=f.get("division"),
                        ops=changes.parse_kinds(f.get("kinds")), limit=s.webhook_batch)
    c.rollback()  # no snapshot held while posting
    scoped(c, SYSTEM)
    if not page["entries"]:
        c.execute(text("UPDATE webhook SET cursor = :c WHERE id = :id"), {"c": page["cursor"], "id": hook_id})
        c.commit()
        return "idle"
    body = json.dumps({"webhook": hook_id, "entries": page["entries"], "cursor": page["cursor"]},
                      ensure_ascii=False, default=str).encode()
    c.rollback()
    error = _post(h.url, body, crypto.open_secret(h.secret_enc, h.secret))
    scoped(c, SYSTEM)
    if error is None:
        c.execute(text("UPDATE webhook SET cursor = :c, attempts = 0, last_error = NULL, next_attempt_at = now(), "
                       "delivered = delivered + :n WHERE id = :id"),
                  {"c": page["cursor"], "n": len(page["entries"]), "id": hook_id})
        c.commit()
        return "sent"
    attempts = h.attempts + 1
    if attempts >= s.webhook_attempts:
        c.execute(text("INSERT INTO webhook_dead (webhook_id, since, cursor, entries, attempts, last_error) "
                       "VALUES (:id, :old, :c, CAST(:e AS jsonb), :a, :err)"),
                  {"id": hook_id, "old": h.cursor, "c": page["cursor"], "a": attempts, "err": error,
                   "e": json.dumps(page["entries"], ensure_ascii=False, default=str)})
        c.execute(text("UPDATE webhook SET cursor = :c, attempts = 0, last_error = :err, next_attempt_at = now() "
                       "WHERE id = :id"), {"c": page["cursor"], "err": error, "id": hook_id})
        c.commit()
        return "dead"
    pause = s.webhook_retry_seconds * 2 ** (attempts - 1)
    c.execute(text("UPDATE webhook SET attempts = :a, last_error = :err, "
                   "next_attempt_at = now() + make_interval(secs => :pause) WHERE id = :id"),
              {"a": attempts, "err": error, "pause": pause, "id": hook_id})
    c.commit()
    return "failed"


def deliver_due(engine: Engine, limit: int = 50) -> dict[str, int]:
    """One round over the webhooks that are due; counts by outcome."""
    with engine.connect() as c:
        scoped(c, SYSTEM)
        ids = list(c.execute(text("SELECT id FROM webhook WHERE active AND next_attempt_at <= now() "
                                  "ORDER BY next_attempt_at LIMIT :l"), {"l": limit}).scalars())
    out: dict[str, int] = {}
    for i in ids:
        r = deliver(engine, i)
        out[r] = out.get(r, 0) + 1
    return out


def run(engine: Engine, stop: threading.Event, interval: float = 1.0) -> None:
    """Deliver until `stop` is set (`citygrid serve`'s background thread, `citygrid webhooks run`)."""
    while not stop.is_set():
        try:
            busy = deliver_due(engine)
        except Exception:  # noqa: BLE001 - the loop must outlive a database restart; logged by the caller's logger
            import logging

            logging.getLogger("citygrid.webhooks").exception("webhook round failed")
            busy = {}
        if not busy.get("sent"):
            stop.wait(interval)
