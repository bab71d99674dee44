"""The change feed (数据更新): every change to objects and links, in order, with a cursor that never skips or
repeats an entry, however concurrent writers commit.

**The problem.** `change_log.seq` comes from a sequence, and sequence values are handed out when a row is
inserted, not when its transaction commits. Writer A takes seq 10, writer B takes seq 11 and commits first; a
reader that sees 11 and remembers "after 11" never sees 10 when A commits a moment later. Waiting a while
("lag the head by 5 s") only makes the loss rarer.

**The choice: transaction ids and the snapshot's xmin.** Every entry records the id of the transaction that
wrote it (`xid xid8 DEFAULT pg_current_xact_id()`, 64 bits, never wraps around). A reader only takes entries
whose `xid < pg_snapshot_xmin(pg_current_snapshot())`: xmin is the oldest transaction still running when the
statement's snapshot was taken, so every transaction below it has ended — committed (its rows visible in this
very snapshot) or rolled back (its rows never will be). The feed is ordered by (xid, seq) and the cursor is the
(xid, seq) of the last entry handed out. No entry can appear later below a cursor: an entry below it would need
a transaction with an xid below xmin that is still writing, and there is none; a transaction that starts later
gets a larger xid. Within one transaction seq keeps the order of its statements. So a follower sees every
committed entry exactly once, in an order that is the same for every follower and every re-read.

Why not the alternatives: a commit-ordered outbox (a single "next number" row locked by each writer until commit,
as the audit chain does) gives gapless numbers, but serialises every registry write on one row lock for the
whole transaction, and the feed must keep up with many writers; `track_commit_timestamp` orders by commit time
but two commits can share a timestamp and timestamps are not visible-in-order either; logical decoding needs a
replication slot and a consumer process per deployment. The xid snapshot needs nothing but a column and an index.
The price: one long-running writing transaction holds the feed back (entries after it wait until it ends, and
so does an `idle in transaction` session that holds an xid, anywhere in the cluster); ordinary registry writes
last milliseconds, and `bench/changes.py` measures the lag.

**When a page is not full**, the answer's cursor moves to the *horizon* (the last entry below xmin, whatever
its kind or class) computed in the same statement, so a follower that filters (`class`, `division`, `kinds`, or
its rights) does not re-read the same unrelated entries on every poll.

**Nothing bypasses it.** Entries are written by triggers (0018): on `city_object_history`, which every registry
write (create, update, retire, split, merge, confirm; bulk creates and the OGC API's writes alike) fills in the
same transaction, and on `link`. The application's role may not insert into `change_log` at all.

**Rights.** An entry is about one object: a caller sees it when it may read the object's class at its place
(`rules.readable_sql`, the same rule as `/objects`; row-level security on `change_log` agrees for area-scoped
callers), and a link entry only when its clearance at the place reaches the link's level. Entries carry codes,
class, place, kind, time and version, never attribute values: a follower fetches the object, which is cut to its
clearance there.

**Long polling.** `wait` seconds (up to `changes_wait_max`): the request polls the table with a growing pause
(50 ms → 1 s) while nothing new is visible, and answers as soon as something is.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.errors import E
from citygrid.security import classification, rules
from citygrid.security.principal import Principal
from citygrid.settings import get_settings

# change_log.op → the kind a follower sees
KINDS: dict[str, str] = {"create": "created", "update": "updated", "retire": "retired", "split": "split",
                         "merge": "merged", "link": "linked", "unlink": "unlinked", "confirm": "confirmed",
                         "delete": "deleted"}
OPS: dict[str, str] = {v: k for k, v in KINDS.items()}
_CURSOR = re.compile(r"^(\d{1,20})-(\d{1,19})$")
MAX_LIMIT = 1000


@dataclass(frozen=True, order=True)
class Cursor:
    xid: int
    seq: int

    def __str__(self) -> str:
        return f"{self.xid}-{self.seq}"


START = Cursor(0, 0)


def parse_cursor(value: str | None) -> Cursor | None:
    """`XID-SEQ` as an answer gave it; empty or `0` is the start; `now` (None here) is the current horizon."""
    if value is None or value in ("", "0"):
        return START
    if value == "now":
        return None
    m = _CURSOR.match(value)
    if m is None:
        raise E.cursor_invalid("since", cursor=value[:40])
    return Cursor(int(m.group(1)), int(m.group(2)))


def parse_kinds(value: str | None) -> list[str] | None:
    if not value:
        return None
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    for k in kinds:
        if k not in OPS:
            raise E.change_kind_unknown("kinds", kind=k[:40], known=", ".join(KINDS.values()))
    return [OPS[k] for k in kinds]


_PAGE = """
WITH snap AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
hz AS (SELECT h.xid::text AS hx, h.seq AS hs FROM snap LEFT JOIN LATERAL (
         SELECT xid, seq FROM change_log WHERE xid < snap.xmin ORDER BY xid DESC, seq DESC LIMIT 1) h ON true)
SELECT hz.hx, hz.hs, e.* FROM hz LEFT JOIN LATERAL (
  SELECT c.seq, c.xid::text AS xid, c.entity, c.key, c.op, c.at, c.class_code, c.place, c.detail
  FROM change_log c, snap
  WHERE (c.xid, c.seq) > (CAST(:cx AS xid8), :cs) AND c.xid < snap.xmin AND {where}
  ORDER BY c.xid, c.seq LIMIT :l) e ON true
"""


def _entry(r: Any) -> dict[str, Any]:
    cur = Cursor(int(r.xid), int(r.seq))
    out: dict[str, Any] = {"cursor": str(cur), "kind": KINDS.get(r.op, r.op), "entity": r.entity, "code": r.key,
                           "class_code": r.class_code, "place": r.place, "at": r.at}
    d = r.detail or {}
    if r.entity == "object" and "version" in d:
        out["version"] = d["version"]
    if r.entity == "link":
        out["link"] = {"id": d.get("link"), "system": d.get("system"), "record_id": d.get("record_id"),
                       "level": d.get("level")}
    return out


def page(conn: Connection, p: Principal, since: Cursor | None, *, class_code: str | None = None,
         division: str | None = None, ops: list[str] | None = None, limit: int = 100) -> dict[str, Any]:
    """Entries after `since` the caller may see (at most `limit`), and the cursor to ask with next. `since` None
    starts at the current horizon (nothing of the past)."""
    where = ["TRUE"]
    params: dict[str, Any] = {"l": min(max(limit, 1), MAX_LIMIT)}
    readable, rparams = rules.readable_sql(p, place_sql="c.place", class_sql="c.class_code")
    if readable != "TRUE":
        where.append(readable)
        params |= rparams
    if class_code:
        where.append("c.class_code = :cls")
        params["cls"] = class_code
    if division:
        where.append("c.place LIKE :dp")
        params["dp"] = division + "%"
    if ops:
        where.append("c.op = ANY(CAST(:ops AS text[]))")
        params["ops"] = ops
    start = since if since is not None else Cursor(2 ** 63 - 1, 2 ** 63 - 1)
    params |= {"cx": str(start.xid), "cs": start.seq}
    rows = conn.execute(text(_PAGE.format(where=" AND ".join(where))), params).all()
    horizon = Cursor(int(rows[0].hx), int(rows[0].hs)) if rows and rows[0].hx is not None else START
    scanned = [r for r in rows if r.seq is not None]
    entries = []
    for r in scanned:
        level = (r.detail or {}).get("level") if r.entity == "link" else None
        if level is None or classification.may_read_level(p, r.place, level):
            entries.append(_entry(r))
    if since is None:
        nxt = horizon
    elif len(scanned) >= params["l"]:
        nxt = Cursor(int(scanned[-1].xid), int(scanned[-1].seq))
    else:
        nxt = max(since, horizon)
    return {"entries": entries, "count": len(entries), "cursor": str(nxt), "more": len(scanned) >= params["l"]}


def follow(conn: Connection, p: Principal, since: Cursor | None, *, wait: float = 0, **filters: Any
           ) -> dict[str, Any]:
    """`page`, waiting up to `wait` seconds (long polling) while it has no entry; each poll is its own statement
    (read committed: a fresh snapshot), so entries committed meanwhile are found."""
    wait = min(max(wait, 0.0), float(get_settings().changes_wait_max))
    deadline = time.monotonic() + wait
    pause = 0.05
    while True:
        out = page(conn, p, since, **filters)
        left = deadline - time.monotonic()
        if out["entries"] or out["more"] or left <= 0:
            return out
        since = parse_cursor(out["cursor"])
        conn.commit()  # end the read's transaction between polls: no snapshot held while sleeping
        time.sleep(min(pause, left))  # the last poll falls on the deadline: a caller gets the whole wait
        pause = min(pause * 2, 1.0)
