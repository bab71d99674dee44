"""The life cycle of the in-memory address index (citygrid/address/resolve.py): loaded on first use, loaded again
when the address base changes, shared by every request of a process.

The address base is rebuilt as a whole (citygrid/address/base.py), which rewrites its `data_source` row
(`address-<county>`); the newest `loaded_at` of those rows is the stamp an index was built from. Each `get`
reads the stamp (one indexed query) and rebuilds under one lock when it moved, so concurrent requests never
build twice and never see a half-built index. The API creates one `AddressIndexCache` in its lifespan
(api/main.py) and hands the index to routes through a dependency (api/deps.py).

A single geocode costs ~0.2 ms of CPU; the stamp's query (a pooled connection, its scope, the query, the
rollback, a trip through the thread pool) cost several times that, on every request. So the single-geocode
route asks `current` instead: the index in memory while its last check is younger than `max_age`
(`CITYGRID_ADDRESS_CHECK_MS`, 1 s), checked again in the background once that passes, the request answered
meanwhile from memory. A rebuild committed by another process is seen within that window; one committed by this
process (`changed`, called by citygrid/address/base.py) at once, as `get` always sees one.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from citygrid.address.resolve import AddressIndex
from citygrid.db import failures
from citygrid.security.principal import ANONYMOUS
from citygrid.security.scope import scoped

log = logging.getLogger(__name__)

# An index loaded by a pre-fork server's master before it forks (`preload`): every worker's cache starts from it,
# so the workers share its memory pages instead of each building its own copy (citygrid/server.py).
_preloaded: tuple[AddressIndex, datetime | None] | None = None


# Bumped by `changed` when this process rebuilt an address base: every cache's `current` then says "ask".
_generation = 0
_generation_lock = threading.Lock()


def changed() -> None:
    """This process committed a rebuild of an address base: no cache of it answers from its old index again."""
    global _generation
    with _generation_lock:
        _generation += 1


def _stamp(c: Connection) -> datetime | None:
    stamp: datetime | None = c.execute(text("SELECT max(loaded_at) FROM data_source WHERE name LIKE 'address-%'")
                                       ).scalar()
    return stamp


def preload(engine: Engine) -> AddressIndex:
    """Build the index once in this process for the processes it will fork; a worker whose database has moved on
    since rebuilds on its first `get`, as after any change of the address base."""
    global _preloaded
    with engine.connect() as c:
        scoped(c, ANONYMOUS)
        stamp = _stamp(c)
        index = AddressIndex.load(c)
    _preloaded = (index, stamp)
    return index


class AddressIndexCache:
    """One `AddressIndex` of the database behind `engine`, kept as fresh as the address base's stamp."""

    def __init__(self, engine: Engine, read_engine: Callable[[], Engine] | None = None,
                 max_age: float = 1.0) -> None:
        self.engine = engine
        self.read_engine = read_engine  # a read replica's, when there are (citygrid/db/replicas.py)
        self.max_age = max_age  # seconds `current` trusts the last check
        self._lock = threading.Lock()
        self._index: AddressIndex | None = _preloaded[0] if _preloaded else None
        self._stamp: datetime | None = _preloaded[1] if _preloaded else None
        self._stale = False  # answering from memory while the database is away
        self._warming: threading.Thread | None = None
        self._checked_at = -math.inf  # monotonic time the last check (of `get`) started
        self._generation = -1  # `_generation` as that check started
        self._checking: threading.Thread | None = None
        self._checking_lock = threading.Lock()  # not `_lock`: a load holds that for seconds, the event loop may not

    def state(self) -> str:
        """`loaded`, `loading` (a `warm` is under way), `stale` (answering from memory while the database is
        away) or `not_loaded`; for readiness (`citygrid.db.health.readiness`)."""
        if self._index is not None:
            return "stale" if self._stale else "loaded"
        return "loading" if self._warming is not None and self._warming.is_alive() else "not_loaded"

    def warm(self) -> None:
        """Load the index in a background thread unless it is loaded or loading: a load balancer asks for
        readiness before it sends traffic, so the first geocode need not pay for the load."""
        with self._lock:
            if self._index is not None or (self._warming is not None and self._warming.is_alive()):
                return
            self._warming = threading.Thread(target=self._warm, name="address-index-warm", daemon=True)
            self._warming.start()

    def _warm(self) -> None:
        try:
            self.get()
        except Exception:  # readiness keeps saying not ready; the next request or probe tries again
            log.warning("address index: loading in the background failed", exc_info=True)

    def current(self) -> AddressIndex | None:
        """The index in memory, without a database trip, or None when the caller must `get` it (in a thread: it
        may query and load): none is loaded, or this process rebuilt an address base since the last check. A
        check older than `max_age` is renewed in a background thread while this answer comes from memory, so
        under load one request per window pays nothing and the rest never wait for the database."""
        index = self._index
        if index is None or self._generation != _generation or self.max_age <= 0:  # 0: `get` on every request
            return None
        if time.monotonic() - self._checked_at >= self.max_age:
            with self._checking_lock:
                if self._checking is None or not self._checking.is_alive():
                    self._checking = threading.Thread(target=self._check, name="address-index-check", daemon=True)
                    self._checking.start()
        return index

    def _check(self) -> None:
        try:
            self.get()
        except Exception:  # the next window tries again; requests keep the index in memory
            self._checked_at = time.monotonic()  # not at once: one failed check per window, not per request
            log.warning("address index: checking the address base failed", exc_info=True)

    def get(self) -> AddressIndex:
        """The index of the current address base, (re)built first when it is missing or older than the base.

        While the database cannot be reached, the index already in memory keeps answering (it may miss changes
        made meanwhile, which the next `get` after the database returns picks up); with none loaded yet, the
        database's error goes to the caller (a 503, citygrid/db/failures.py)."""
        started, generation = time.monotonic(), _generation
        try:
            with (self.read_engine() if self.read_engine else self.engine).connect() as c:
                scoped(c, ANONYMOUS)  # the index is the public's: door plates and roads, never persons
                stamp = _stamp(c)
                with self._lock:
                    if self._index is None or self._stamp != stamp:
                        self._index = AddressIndex.load(c)
                        self._stamp = stamp
                    if self._stale:
                        self._stale = False
                        log.warning("address index: the database is back")
                    self._checked_at, self._generation = started, generation
                    return self._index
        except Exception as exc:
            index = self._index
            if index is None or not failures.unavailable(exc):
                raise
            # tried: `current` answers from memory and asks again after `max_age`, not on every request
            self._checked_at, self._generation = started, generation
            if not self._stale:  # once per outage, not once per request
                self._stale = True
                log.warning("address index: database unavailable, answering from the index in memory")
            return index
