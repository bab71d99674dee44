"""Who is calling, from the credential a request presents, with a per-process cache that is never stale.

Loading a principal with its grants costs a query and, before it, a statement in the process's own scope (the
credential tables are read before anyone is known): two round trips that an anonymous request does not make,
1–2 ms per request, 10–20 % of a cached tile. So a credential's principal is kept in memory with the data version
of principals it was loaded at (migration 0021: triggers bump it whenever a principal, its roles or an API key
change in a way that changes rights). The next request with the same credential puts that principal's scope on
its transaction, and the very statement that does it returns the current version (`scope.principals_version`);
if it moved, the principal is loaded again inside the same transaction before anything is read. So a disabled
principal, a changed role or a revoked key take effect on the next request, in every worker, as before.

An entry also ends when its token or key expires, after `TTL` seconds (the minute-granular `last_used_at` of keys
is written on the slow path), and when the keyring or the demo flag changes. Entries are keyed by a SHA-256 of
the database URL and the credential, so the process keeps no bearer secret longer than the request that carried it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from citygrid.errors import E
from citygrid.security import credentials, tokens
from citygrid.security.credentials import API_KEY_PREFIX
from citygrid.security.keys import Keyring, get_keyring
from citygrid.security.principal import SYSTEM, Principal
from citygrid.security.scope import principals_version, scoped
from citygrid.settings import get_settings

TTL = 60.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    version: int
    until: float  # monotonic deadline: TTL, or the credential's own expiry if sooner
    ring: Keyring
    demo: bool


class CredentialCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._d: OrderedDict[bytes, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.hits = self.misses = 0

    def get(self, key: bytes) -> _Entry | None:
        with self._lock:
            e = self._d.get(key)
            if e is None or e.until <= time.monotonic() or e.ring is not get_keyring() \
                    or e.demo != get_settings().demo:
                self._d.pop(key, None)
                self.misses += 1
                return None
            self._d.move_to_end(key)
            self.hits += 1
            return e

    def put(self, key: bytes, entry: _Entry) -> None:
        with self._lock:
            self._d[key] = entry
            self._d.move_to_end(key)
            while len(self._d) > self.max_entries:
                self._d.popitem(last=False)

    def drop(self, key: bytes) -> None:
        with self._lock:
            self._d.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


CACHE = CredentialCache()


def authenticate(conn: Connection, token: str | None, api_key: str | None) -> Principal:
    """The principal of a bearer token or API key, with its scope put on `conn`'s transaction. A credential that
    is present but wrong, expired, revoked or disabled is a coded 401, never the anonymous public."""
    presented = api_key or token or ""
    # the database is part of the key: versions of two databases (tests, several apps in one process) may agree
    key = hashlib.sha256(f"{conn.engine.url}\0{presented}".encode()).digest()
    hit = CACHE.get(key)
    if hit is not None:
        scoped(conn, hit.principal)
        if principals_version(conn) == hit.version:
            return hit.principal
        CACHE.drop(key)
    scoped(conn, SYSTEM)  # checking credentials comes before anyone is known
    version = principals_version(conn)  # read before the principal: a change in between is seen next time
    p, expires = _load(conn, presented, is_key=bool(api_key) or presented.startswith(API_KEY_PREFIX))
    scoped(conn, p)
    if version is not None:  # only the application's engine reads versions; the owner's is never cached
        ttl = TTL if expires is None else min(TTL, (expires - dt.datetime.now(dt.UTC)).total_seconds())
        CACHE.put(key, _Entry(p, version, time.monotonic() + ttl, get_keyring(), get_settings().demo))
    return p


def _load(conn: Connection, presented: str, is_key: bool) -> tuple[Principal, dt.datetime | None]:
    if is_key:  # clients that only speak Bearer send keys there
        found = credentials.authenticate_key_until(conn, presented)
        if found is None:
            raise E.token_invalid("Authorization")
        return found
    pid, expires = tokens.verify(presented)
    p = credentials.load(conn, pid, via="token")
    if p is None:
        raise E.token_invalid("Authorization")
    return p, expires
