"""Read replicas: hot standbys (`pg_basebackup -R`) that serve the heavy read routes — OGC items, vector tiles,
aggregates and address-index loads — while writes and everything else stay on the primary.

**Health.** At most once per `CHECK_EVERY` seconds a request refreshes what is known: the primary's WAL
position and, per replica, that it is in recovery, how far it has replayed and since when. Lag is 0 while a
replica has replayed everything the primary had written at the check before (a second ago), else the time since
its last replayed transaction (so a quiet primary never makes a replica look late, and a replica whose replay
stopped grows late as soon as the primary writes). A replica that fails, has left recovery (promoted: it is no standby of ours any more) or lags more than
`max_lag` seconds is out of the pool until a later check finds it well again. With no replica well, reads go to
the primary: slower, never wrong.

**Reading your own writes.** A replica may not have replayed a write that was just acknowledged. So after a
write the primary's WAL insert position is remembered for its principal (in this process) and returned in the
`X-Citygrid-LSN` header; a read is sent to a replica only if that replica has replayed at least the larger of
the principal's remembered position and the `X-Citygrid-Min-LSN` header the client sends back (other worker
processes know the position only through that header). Otherwise the read goes to the primary, so it never
waits. This is the choice between "send to the primary" and "wait for replay" the issue offers: waiting would
hold a worker for the replica's lag, which is unbounded when a replica stalls.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

CHECK_EVERY = 1.0
REMEMBERED = 10_000  # principals whose last write position is kept


def parse_lsn(value: str | None) -> int | None:
    """`16/B374D848` (pg_lsn's text) as an integer; None for anything else (a client header is never trusted to
    be well formed)."""
    if not value or "/" not in value or len(value) > 20:
        return None
    hi, _, lo = value.strip().partition("/")
    try:
        return (int(hi, 16) << 32) | int(lo, 16)
    except ValueError:
        return None


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


@dataclass
class Replica:
    name: str
    engine: Engine
    well: bool = False
    replayed: int = 0
    lag: float | None = None
    error: str | None = None
    checked: float = field(default=0.0)

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "in_pool": self.well, "lag_s": None if self.lag is None else round(self.lag, 3),
                "replayed_lsn": format_lsn(self.replayed) if self.replayed else None, "error": self.error}


class Replicas:
    """The replica pool of one primary (see the module's doc)."""

    def __init__(self, primary: Engine, replicas: dict[str, Engine], max_lag: float) -> None:
        self.primary = primary
        self.replicas = [Replica(name, e) for name, e in replicas.items()]
        self.max_lag = max_lag
        self._lock = threading.Lock()
        self._checked = 0.0
        self._primary_lsn = 0  # at the last check
        self._target = 0  # at the check before: a replica that has replayed this is at most a check behind
        self._writes: OrderedDict[str, int] = OrderedDict()
        self._turn = 0

    # --- health --------------------------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < CHECK_EVERY:
            return
        with self._lock:
            if not force and now - self._checked < CHECK_EVERY:
                return
            self._checked = now
            try:
                with self.primary.connect() as c:
                    lsn = parse_lsn(c.execute(text("SELECT pg_current_wal_lsn()::text")).scalar()) or 0
            except Exception:  # the primary's own failures are the request's business, not the pool's
                return
            self._target, self._primary_lsn = self._primary_lsn or lsn, lsn
            for r in self.replicas:
                self._check(r)

    def _check(self, r: Replica) -> None:
        try:
            with r.engine.connect() as c:
                row = c.execute(text(
                    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
                    "extract(epoch FROM now() - pg_last_xact_replay_timestamp())")).one()
        except Exception as exc:
            r.well, r.lag, r.error = False, None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            return
        in_recovery, replayed, since = row
        r.replayed = parse_lsn(replayed) or 0
        r.lag = 0.0 if r.replayed >= self._target else float(since if since is not None else float("inf"))
        if not in_recovery:
            r.well, r.error = False, "not in recovery (promoted?): no longer a standby of this primary"
        elif r.lag > self.max_lag:
            r.well, r.error = False, f"lags {r.lag:.1f} s behind the primary (bound {self.max_lag:g} s)"
        else:
            r.well, r.error = True, None
        r.checked = time.monotonic()

    def status(self) -> list[dict[str, Any]]:
        self.refresh()
        return [r.status() for r in self.replicas]

    # --- routing -------------------------------------------------------------------------------------------
    def wrote(self, who: str) -> int | None:
        """After a committed write by `who`: the primary's WAL insert position, remembered for `who`."""
        with self.primary.connect() as c:
            lsn = parse_lsn(c.execute(text("SELECT pg_current_wal_insert_lsn()::text")).scalar())
        if lsn is not None:
            with self._lock:
                self._writes[who] = max(lsn, self._writes.get(who, 0))
                self._writes.move_to_end(who)
                while len(self._writes) > REMEMBERED:
                    self._writes.popitem(last=False)
        return lsn

    def for_read(self, who: str | None, min_lsn: int | None = None) -> tuple[str, Engine]:
        """(name, engine) to read from: a replica in the pool that has replayed what `who` wrote and `min_lsn`,
        taken in turn; else ("primary", the primary)."""
        self.refresh()
        need = max(min_lsn or 0, self._writes.get(who, 0) if who else 0)
        ok = [r for r in self.replicas if r.well and r.replayed >= need]
        if not ok and need:  # what we know may be a second old: look again before giving up on the replicas
            self.refresh(force=True)
            ok = [r for r in self.replicas if r.well and r.replayed >= need]
        if not ok:
            return "primary", self.primary
        self._turn += 1
        r = ok[self._turn % len(ok)]
        return r.name, r.engine


def from_settings(primary: Engine) -> Replicas | None:
    """The pool of the configured replicas (`CITYGRID_REPLICA_URLS`), as the application's role; None without."""
    from sqlalchemy import make_url

    from citygrid.db.engine import app_engine_for
    from citygrid.db.roles import APP_LOGIN
    from citygrid.settings import get_settings

    s = get_settings()
    if not s.replica_urls:
        return None
    engines = {}
    for i, given in enumerate(s.replica_urls, 1):
        url = make_url(given if "+" in given.split("://")[0] else given.replace("postgresql://", "postgresql+psycopg://", 1))
        if url.username is None:
            url = url.set(username=APP_LOGIN)
        engines[f"replica{i} ({url.host}:{url.port})"] = app_engine_for(url.render_as_string(hide_password=False))
    return Replicas(primary, engines, s.replica_max_lag)
