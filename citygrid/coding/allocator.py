"""Allocation of unified codes: transactional, safe under concurrent writers, never reissued.

One counter row per (division, class) is advanced by a single UPSERT ... RETURNING, which takes the
row lock for the rest of the transaction; a block of n serials costs the same one statement. Every
issued code goes into the `issued_code` ledger, whose primary key makes a duplicate impossible even
if a counter were ever reset by hand.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from citygrid.catalog import get_catalog
from citygrid.coding.scheme import CodeScheme, unified_scheme
from citygrid.db import failures
from citygrid.db.engine import copy_text, driver_connection
from citygrid.errors import CitygridError, E, ErrorEntry
from citygrid.regions import query as regions
from citygrid.security import audit, rules
from citygrid.security.principal import Principal


class AllocationError(CitygridError, ValueError):
    """Codes cannot be issued; a ValueError too, as it was before it had a catalogue entry and an HTTP status."""

    def __init__(self, entry: ErrorEntry, **params: Any) -> None:
        super().__init__(entry.problem(**params), entry.kind)


def advance(session: Session, division: str, class_code: str, n: int) -> int:
    """Reserve n serials; return the first."""
    end = session.execute(
        text(
            "INSERT INTO code_counter (division_code, class_code, next_serial) VALUES (:d, :c, :n + 1) "
            "ON CONFLICT (division_code, class_code) DO UPDATE "
            "SET next_serial = code_counter.next_serial + :n RETURNING next_serial"
        ),
        {"d": division, "c": class_code, "n": n},
    ).scalar_one()
    return int(end) - n


def allocate(
    session: Session,
    p: Principal,
    division: str,
    class_code: str,
    n: int = 1,
    *,
    batch: str | None = None,
    state: str = "reserved",
    scheme: CodeScheme | None = None,
    checked: bool = False,
) -> list[str]:
    """Issue n new codes for (division, class) inside the caller's transaction, recorded as issued by `p`.
    `checked`: the caller (the registry, registering an approved survey row) has already decided `p`'s right."""
    scheme = scheme or unified_scheme()
    cls = get_catalog().get(class_code)
    if checked:
        pass
    elif cls is None:  # a series outside the catalog: only the process itself or an admin
        rules.require_admin(p, "分配代码", "allocating codes")
    else:
        rules.require_allocate(p, cls, division)
    by = p.name
    if n < 1:
        raise AllocationError(E.alloc_count)
    seg = scheme.segment("serial")
    limit = 10**seg.length - 1
    first = advance(session, division, class_code, n)
    if first + n - 1 > limit:
        raise AllocationError(E.alloc_exhausted, division=division, series=class_code, limit=limit)
    prefix = division + class_code
    width = seg.length
    codes = []
    for serial in range(first, first + n):
        body = f"{prefix}{serial:0{width}d}"
        codes.append(body + scheme.check_digit(body))
    _record(session, codes, division, class_code, first, by=by, batch=batch, state=state)
    if state == "reserved":  # a block for later use; codes assigned to objects are audited with their object
        audit.record(session, p, "reserve_codes", class_code, detail={
            "division": division, "count": n, "batch": batch, "first": codes[0], "last": codes[-1]})
    return codes


def _record(session: Session, codes: list[str], division: str, class_code: str, first: int, *, by: str,
            batch: str | None, state: str) -> None:
    if len(codes) <= 50:
        session.execute(
            text(
                "INSERT INTO issued_code (code, division_code, class_code, serial, state, batch, issued_by) "
                "VALUES (:code, :d, :c, :s, :state, :batch, :by)"
            ),
            [{"code": c, "d": division, "c": class_code, "s": first + i, "state": state, "batch": batch, "by": by}
             for i, c in enumerate(codes)],
        )
        return
    # Bulk: COPY is an order of magnitude faster than INSERT for 100k rows.
    # COPY skips the engine's parameter check: check here, and escape so a tab or newline in a label is a character
    # of the label, not a column or row separator
    failures.check([batch, by])
    raw = driver_connection(session.connection())
    buf = io.StringIO()
    b, who = copy_text(batch), copy_text(by)
    for i, c in enumerate(codes):
        buf.write(f"{c}\t{division}\t{class_code}\t{first + i}\t{state}\t{b}\t{who}\n")
    with raw.cursor() as cur, cur.copy(
        "COPY issued_code (code, division_code, class_code, serial, state, batch, issued_by) FROM STDIN"
    ) as cp:
        cp.write(buf.getvalue())


def reserve_block(session: Session, p: Principal, division: str, class_code: str, count: int,
                  batch: str | None = None) -> dict[str, Any]:
    """Reserve a block of codes for bulk work (one statement), within the principal's quota: at most
    `code_block_max` codes a call and `code_block_daily` in any 24 hours (admins have none). Without a quota
    about a hundred calls could exhaust a class's serial space in a county."""
    conn = session.connection()
    cls = get_catalog().get(class_code)
    if cls is None:
        raise E.class_unknown("class_code", code=class_code)
    rules.require_allocate(p, cls, division)
    if regions.get(conn, division) is None:
        raise E.division_unknown("division_code", code=division, rule_zh="", rule_en="")
    quota = rules.code_block_quota(p)
    if quota is not None:
        _check_quota(conn, p, count, *quota)
    batch = batch or f"block-{uuid.uuid4().hex[:12]}"
    codes = allocate(session, p, division, class_code, count, batch=batch)
    return {"batch": batch, "count": len(codes), "first": codes[0], "last": codes[-1],
            "codes": codes if len(codes) <= 10_000 else None}


def _check_quota(conn: Connection, p: Principal, count: int, per_call: int, per_day: int) -> None:
    """Refuse a reservation over the per-call or the rolling 24-hour quota. The principal's reservations are
    serialised by an advisory lock, so two calls at once cannot both fit in what is left."""
    if count > per_call:
        raise E.block_too_large("count", n=count, limit=per_call)
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('code-quota:' || :by, 0))"), {"by": p.name})
    used, wait = conn.execute(text(
        "SELECT count(*), ceil(extract(epoch FROM min(issued_at) + interval '1 day' - now())) FROM issued_code "
        "WHERE issued_by = :by AND state = 'reserved' AND issued_at > now() - interval '1 day'"),
        {"by": p.name}).one()
    if used + count > per_day:
        raise E.quota_exceeded("count", retry_after=max(1, int(wait or 1)), used=used, limit=per_day,
                               minutes=max(1, round((wait or 60) / 60)))


def ledger_entry(conn: Connection, code: str) -> dict[str, Any] | None:
    """The ledger's entry for a code (state, when, by whom), or None if it was never issued."""
    r = conn.execute(text("SELECT state, issued_at, issued_by FROM issued_code WHERE code=:c"), {"c": code}).first()
    return {"state": r.state, "at": r.issued_at, "by": r.issued_by} if r else None
