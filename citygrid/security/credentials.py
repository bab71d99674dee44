"""Principals and their credentials: passwords (argon2id), logins with lockout, API keys, and loading a principal
with its grants.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile) and rehashed on login
when those parameters change. After `login_max_failures` failed logins in a row an account locks for
`login_lock_minutes`; a wrong password and an unknown user give the same answer in about the same time (a dummy
hash is verified for unknown names), so logins do not reveal which usernames exist.

API keys are `cg_<id>_<secret>`: the id finds the row, the 32-byte random secret is compared as a keyed HMAC
(`hmac.compare_digest`); the key is shown once, at creation. A random key of that length needs no slow hash, so
checking one costs microseconds per request. Keys are revocable, may expire, and record when they were last used.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from citygrid.errors import E
from citygrid.security import audit
from citygrid.security.keys import get_keyring
from citygrid.security.principal import LEVELS, Grant, Principal
from citygrid.settings import get_settings

READ_ONLY = "25006"  # SQLSTATE read_only_sql_transaction

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("citygrid: no such user")
ROLES = ("cadre", "reviewer", "department", "admin")
API_KEY_PREFIX = "cg_"
MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise E.password_weak("password", n=MIN_PASSWORD)
    return _HASHER.hash(password)


def parse_grant(spec: str) -> Grant:
    """`role[:department][@division]`, e.g. `admin`, `department:natural_resources@420281`, `cadre@420281001001`."""
    role, _, division = spec.partition("@")
    role, _, dept = role.partition(":")
    if role not in ROLES or (division and not (division.isdigit() and 2 <= len(division) <= 12)):
        raise E.grant_invalid("role", spec=spec)
    if role == "department" and not dept:
        raise E.grant_invalid("role", spec=spec)
    if role in ("cadre", "reviewer") and not division:
        raise E.grant_invalid("role", spec=spec)
    return Grant(role, division or None, dept or None)  # type: ignore[arg-type]


def add_principal(conn: Connection, username: str, *, kind: str = "user", password: str | None = None,
                  grants: Iterable[Grant] = (), clearance: str = "L2", personal: bool = False,
                  display_name: str | None = None, demo: bool = False, by: str = "system") -> uuid.UUID:
    if kind not in ("user", "service") or clearance not in LEVELS:
        raise E.grant_invalid("kind", spec=f"{kind}/{clearance}")
    if kind == "user" and password is None:
        raise E.password_weak("password", n=MIN_PASSWORD)
    if conn.execute(text("SELECT 1 FROM principal WHERE username = :u"), {"u": username}).first():
        raise E.principal_exists("username", username=username)
    pid = conn.execute(text(
        "INSERT INTO principal (kind, username, display_name, password_hash, clearance, personal, demo, created_by) "
        "VALUES (:k, :u, :d, :h, :c, :p, :demo, :by) RETURNING id"),
        {"k": kind, "u": username, "d": display_name, "h": hash_password(password) if password is not None else None,
         "c": clearance, "p": personal, "demo": demo, "by": by}).scalar_one()
    for g in grants:
        conn.execute(text("INSERT INTO principal_role (principal_id, role, division, department, classes) "
                          "VALUES (:p, :r, :d, :dep, :cls)"),
                     {"p": pid, "r": g.role, "d": g.division, "dep": g.department,
                      "cls": sorted(g.classes) if g.classes is not None else None})
    audit.record(conn, by, "principal_add", username, detail={
        "kind": kind, "roles": [audit.grant_label(g) for g in grants], "clearance": clearance, "personal": personal})
    return uuid.UUID(str(pid))


def list_principals(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(text(
        "SELECT p.id, p.kind, p.username, p.display_name, p.clearance, p.personal, p.demo, p.disabled_at, "
        "p.locked_until, p.created_at, coalesce(json_agg(json_build_object('role', r.role, 'division', r.division, "
        "'department', r.department, 'classes', r.classes) ORDER BY r.id) FILTER (WHERE r.id IS NOT NULL), '[]') AS roles "
        "FROM principal p LEFT JOIN principal_role r ON r.principal_id = p.id GROUP BY p.id ORDER BY p.username")).all()
    return [dict(r._mapping) | {"id": str(r.id)} for r in rows]


def set_disabled(conn: Connection, username: str, disabled: bool = True, by: str = "system") -> None:
    n = conn.execute(text("UPDATE principal SET disabled_at = CASE WHEN :d THEN now() END WHERE username = :u"),
                     {"d": disabled, "u": username}).rowcount
    if not n:
        raise E.principal_not_found("username", username=username)
    audit.record(conn, by, "principal_disable" if disabled else "principal_enable", username)


def load(conn: Connection, principal_id: uuid.UUID | str, via: str) -> Principal | None:
    """The principal with its grants, or None when it does not exist or is disabled (its tokens and keys then stop
    working at once: nothing about rights is cached in a token)."""
    rows = conn.execute(text(
        "SELECT p.id, p.kind, p.username, p.display_name, p.clearance, p.personal, p.demo, r.role, r.division, "
        "r.department, r.classes FROM principal p LEFT JOIN principal_role r ON r.principal_id = p.id "
        "WHERE p.id = :i AND p.disabled_at IS NULL ORDER BY r.id"), {"i": str(principal_id)}).all()
    if not rows or (rows[0].demo and not get_settings().demo):
        return None
    first = rows[0]
    grants = tuple(Grant(r.role, r.division, r.department, frozenset(r.classes) if r.classes is not None else None)
                   for r in rows if r.role is not None)
    return Principal(kind=first.kind, name=first.username, id=uuid.UUID(str(first.id)), grants=grants,
                     clearance=first.clearance, personal=first.personal, display_name=first.display_name, via=via)


def login(conn: Connection, username: str, password: str) -> Principal:
    """Check a user's password, counting failures and locking after too many. Commits its own bookkeeping."""
    s = get_settings()
    row = conn.execute(text("SELECT id, password_hash, disabled_at, locked_until, demo, kind FROM principal "
                            "WHERE username = :u FOR UPDATE"), {"u": username}).first()
    now = dt.datetime.now(dt.UTC)
    if row is None or row.password_hash is None:
        _verify(_DUMMY_HASH, password)  # same work as for a real user
        raise E.login_failed("username")
    if row.locked_until is not None and row.locked_until > now:
        wait = int((row.locked_until - now).total_seconds()) + 1
        raise E.account_locked("username", minutes=max(1, round(wait / 60)), retry_after=wait)
    if not _verify(row.password_hash, password):
        conn.execute(text(
            "UPDATE principal SET failed_logins = failed_logins + 1, locked_until = CASE WHEN failed_logins + 1 >= :m "
            "THEN now() + make_interval(mins => :l) END WHERE id = :i"),
            {"m": s.login_max_failures, "l": s.login_lock_minutes, "i": row.id})
        conn.commit()  # the count must survive the error this login answers with
        raise E.login_failed("username")
    if row.disabled_at is not None or (row.demo and not s.demo):
        raise E.login_failed("username")
    updates = {"i": row.id, "h": _HASHER.hash(password) if _HASHER.check_needs_rehash(row.password_hash) else None}
    conn.execute(text("UPDATE principal SET failed_logins = 0, locked_until = NULL, "
                      "password_hash = coalesce(:h, password_hash) WHERE id = :i"), updates)
    conn.commit()
    p = load(conn, row.id, via="token")
    if p is None:
        raise E.login_failed("username")
    return p


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


# --- API keys -----------------------------------------------------------------------------------------------


def _key_hash(kid: str, secret: str) -> bytes:
    return hmac.new(get_keyring().derive(kid, "api-key"), secret.encode(), hashlib.sha256).digest()


def create_api_key(conn: Connection, username: str, name: str, expires_days: int | None = None,
                   by: str = "system") -> dict[str, Any]:
    """A new key for a principal; the returned `key` is shown once and stored only as a keyed hash."""
    pid = conn.execute(text("SELECT id FROM principal WHERE username = :u"), {"u": username}).scalar()
    if pid is None:
        raise E.principal_not_found("username", username=username)
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    kid = get_keyring().active
    conn.execute(text(
        "INSERT INTO api_key (id, principal_id, name, secret_hash, hash_kid, expires_at) VALUES (:i, :p, :n, :h, :k, "
        "CASE WHEN CAST(:e AS integer) IS NULL THEN NULL ELSE now() + make_interval(days => CAST(:e AS integer)) END)"),
        {"i": key_id, "p": pid, "n": name, "h": _key_hash(kid, secret), "k": kid, "e": expires_days})
    audit.record(conn, by, "api_key_create", username, detail={"key": key_id, "name": name, "expires_days": expires_days})
    return {"id": key_id, "key": f"{API_KEY_PREFIX}{key_id}_{secret}", "name": name, "principal": username}


def revoke_api_key(conn: Connection, key_id: str, by: str = "system") -> None:
    n = conn.execute(text("UPDATE api_key SET revoked_at = now() WHERE id = :i AND revoked_at IS NULL"),
                     {"i": key_id}).rowcount
    if not n:
        raise E.api_key_not_found("key", key=key_id)
    audit.record(conn, by, "api_key_revoke", key_id)


def list_api_keys(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(text(
        "SELECT k.id, k.name, p.username AS principal, k.created_at, k.expires_at, k.last_used_at, k.revoked_at "
        "FROM api_key k JOIN principal p ON p.id = k.principal_id ORDER BY k.created_at")).all()
    return [dict(r._mapping) for r in rows]


def _note_use(conn: Connection, key_id: str) -> None:
    """Write down a key's use; bookkeeping, so a read-only database (a standby after failover) skips it rather than
    refusing the caller's reads."""
    try:
        with conn.begin_nested():
            conn.execute(text("UPDATE api_key SET last_used_at = now() WHERE id = :i"), {"i": key_id})
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != READ_ONLY:
            raise
    conn.commit()


def authenticate_key(conn: Connection, presented: str) -> Principal | None:
    """The principal an API key belongs to, or None for any malformed, unknown, revoked or expired key."""
    found = authenticate_key_until(conn, presented)
    return found[0] if found else None


def authenticate_key_until(conn: Connection, presented: str) -> tuple[Principal, dt.datetime | None] | None:
    """`authenticate_key` with the key's expiry (None: never), for the credential cache."""
    if not presented.startswith(API_KEY_PREFIX):
        return None
    key_id, _, secret = presented[len(API_KEY_PREFIX):].partition("_")
    if not key_id or not secret or len(presented) > 200:
        return None
    row = conn.execute(text("SELECT principal_id, secret_hash, hash_kid, revoked_at, expires_at, last_used_at "
                            "FROM api_key WHERE id = :i"), {"i": key_id}).first()
    if row is None or row.hash_kid not in get_keyring().keys:
        return None
    if not hmac.compare_digest(bytes(row.secret_hash), _key_hash(row.hash_kid, secret)):
        return None
    now = dt.datetime.now(dt.UTC)
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.last_used_at is None or now - row.last_used_at > dt.timedelta(minutes=1):  # one write a minute at most
        _note_use(conn, key_id)
    p = load(conn, row.principal_id, via="api_key")
    return (p, row.expires_at) if p is not None else None
