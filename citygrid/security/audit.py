"""The audit log that nobody can rewrite: every write and every read of personal fields, with who (principal name
and id, roles), when, what (action, target, fields), from where (client address, user agent) and the outcome
(ok, or refused with the error code).

`record` is the one way to write it. The database does the rest (migration 0016): a BEFORE INSERT trigger
numbers each row without gaps and chains its hash to the previous row's (sha256 over the row's canonical
serialisation, `audit_row_hash`), holding the one-row `audit_head` locked until the transaction ends, so
concurrent writers line up instead of forking the chain; triggers and grants refuse UPDATE, DELETE and TRUNCATE to
the application role. `verify` recomputes the chain and names the first row that does not match: a row edited
by someone who could switch the triggers off (a superuser) no longer hashes to its stored hash, a deleted row
leaves a gap in `seq` and a broken link, deleted newest rows leave the head ahead of the table. Keep the head
(`verify`'s `head_seq`/`head_hash`, printed by `citygrid audit verify`) somewhere else now and then and pass it
back as an anchor: only that catches someone who rewrote the whole chain from some row on.

Where request metadata comes from: the `Principal` carries a `RequestMeta` (client address, user agent) set by
the web layer (`api/deps.py`), so nothing depends on thread-locals that FastAPI's thread pool would lose.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, SessionTransaction

from citygrid.security.principal import SYSTEM, Grant, Principal
from citygrid.security.scope import scoped

Outcome = Literal["ok", "refused", "failed"]
# the fields of a person that `read_personal` reports as read (citygrid/address/nodes.py)
PERSON_FIELDS = ("name", "id_number", "phone")

log = logging.getLogger(__name__)

_INSERT = text(
    "INSERT INTO audit_log (principal, principal_id, roles, action, target, fields, detail, client_addr, user_agent, "
    "outcome, error_code) VALUES (:principal, :principal_id, CAST(:roles AS text[]), :action, :target, "
    "CAST(:fields AS text[]), CAST(:detail AS jsonb), :client, :agent, :outcome, :error_code)")
_QUEUE = "citygrid_audit"  # Session.info key: rows a session writes just before it commits


def grant_label(g: Grant) -> str:
    """A role with its scope as the CLI writes it: role[:department][@division]."""
    return g.role + (f":{g.department}" if g.department else "") + (f"@{g.division}" if g.division else "")


def _row(who: Principal | str, action: str, target: str | None, fields: Iterable[str], detail: dict[str, Any] | None,
         outcome: Outcome, error_code: str | None) -> dict[str, Any]:
    # A bare name is an author that is not (yet) a Principal: the demo generator, callers still passing `by`.
    p = who if isinstance(who, Principal) else None
    meta = p.meta if p is not None else None
    return {"principal": p.name if p is not None else str(who), "principal_id": p.id if p is not None else None,
            "roles": ["system"] if p is not None and p.kind == "system" else
            sorted(grant_label(g) for g in p.grants) if p is not None else [],
            "action": action, "target": target, "fields": sorted(set(fields)),
            "detail": json.dumps(detail or {}, ensure_ascii=False, default=str),
            "client": meta.client if meta else None, "agent": (meta.user_agent or "")[:400] or None if meta else None,
            "outcome": outcome, "error_code": error_code}


def record(conn: Connection | Session, who: Principal | str, action: str, target: str | None = None, *,
           fields: Iterable[str] = (), detail: dict[str, Any] | None = None, outcome: Outcome = "ok",
           error_code: str | None = None) -> None:
    """Record an act in the caller's transaction: it is in the log exactly when the act is in the database.

    On a `Session` the row is written just before the session commits, so the chain's head is locked for the
    commit only, and always after the other rows the transaction locks (a split, which retires and then
    allocates codes, cannot deadlock with a create that allocated first and waits for the head).
    """
    row = _row(who, action, target, fields, detail, outcome, error_code)
    if isinstance(conn, Session):
        conn.info.setdefault(_QUEUE, []).append(row)
    else:
        conn.execute(_INSERT, row)


_INSERT_EACH = text(
    "INSERT INTO audit_log (principal, principal_id, roles, action, target, fields, detail, client_addr, user_agent, "
    "outcome, error_code) SELECT :principal, CAST(:principal_id AS uuid), CAST(:roles AS text[]), :action, t.target, "
    "ARRAY(SELECT jsonb_array_elements_text(t.f)), CAST(:detail AS jsonb), CAST(:client AS text), "
    "CAST(:agent AS text), :outcome, CAST(:error_code AS text) "
    "FROM unnest(CAST(:targets AS text[]), CAST(:each_fields AS jsonb[])) WITH ORDINALITY AS t(target, f, n) "
    "ORDER BY t.n")


def record_each(s: Session, who: Principal | str, action: str, targets: list[str], fields: list[list[str]], *,
                detail: dict[str, Any] | None = None) -> None:
    """One row per target, as `record` would write them one by one (a bulk write's objects: the same rows the
    single path writes per object), queued like `record` and written in one statement, in the order given."""
    if not targets:
        return
    row = _row(who, action, None, (), detail, "ok", None)
    row["targets"] = targets
    row["each_fields"] = [json.dumps(sorted(set(f)), ensure_ascii=False) for f in fields]
    s.info.setdefault(_QUEUE, []).append(row)


@event.listens_for(Session, "before_commit")
def _flush(s: Session) -> None:
    rows = s.info.pop(_QUEUE, None)
    plain: list[dict[str, Any]] = []
    for row in rows or ():  # in the order recorded: consecutive single rows in one executemany
        if "targets" not in row:
            plain.append(row)
            continue
        if plain:
            s.execute(_INSERT, plain)
            plain = []
        s.execute(_INSERT_EACH, {k: v for k, v in row.items() if k not in ("target", "fields")})
    if plain:
        s.execute(_INSERT, plain)


@event.listens_for(Session, "after_transaction_end")
def _drop(s: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # rolled back or closed without a commit: the act did not happen
        s.info.pop(_QUEUE, None)


def record_apart(engine: Engine, who: Principal | str, action: str, target: str | None = None, *,
                 fields: Iterable[str] = (), detail: dict[str, Any] | None = None, outcome: Outcome = "ok",
                 error_code: str | None = None) -> None:
    """Record in a transaction of its own, committed at once: for reads (whose transaction never commits) and
    for refusals (whose transaction rolls back)."""
    with engine.connect() as c:
        scoped(c, who if isinstance(who, Principal) else SYSTEM)
        c.execute(_INSERT, _row(who, action, target, fields, detail, outcome, error_code))
        c.commit()


def read_personal(conn: Connection, p: Principal, target: str, fields: Iterable[str],
                  detail: dict[str, Any] | None = None) -> None:
    """A read that returns personal fields unmasked: recorded before the answer leaves, whatever happens next."""
    record_apart(conn.engine, p, "read_personal", target, fields=fields, detail=detail)


def refused(engine: Engine, p: Principal, action: str, target: str | None, error_code: str) -> None:
    """A refusal (401/403) answered to `p`; never raises (the caller is answering an error already)."""
    try:
        record_apart(engine, p, action, target, outcome="refused", error_code=error_code)
    except Exception as exc:  # noqa: BLE001 - the refusal stands whether or not it could be logged
        log.warning("audit: could not record the refusal of %s to %s: %s", action, p.name, exc)


# --- reading: verify, query, export ----------------------------------------------------------------------------


@dataclass
class Report:
    """What `verify` found: `ok`, the rows checked, the head, and the first row that does not match."""

    ok: bool
    rows: int
    head_seq: int
    head_hash: str
    broken_at: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_CHECK = """
WITH c AS (
  SELECT id, seq, hash, prev_hash, audit_row_hash(a) AS recomputed,
         lag(hash) OVER (ORDER BY seq) AS before_hash, lag(seq) OVER (ORDER BY seq) AS before_seq
  FROM audit_log a
)
SELECT id, seq, CASE
    WHEN seq <> coalesce(before_seq, 0) + 1 THEN 'gap'
    WHEN hash IS DISTINCT FROM recomputed THEN 'edited'
    WHEN prev_hash IS DISTINCT FROM coalesce(before_hash, decode(repeat('00', 32), 'hex')) THEN 'chain'
  END AS problem, before_seq
FROM c
WHERE seq <> coalesce(before_seq, 0) + 1 OR hash IS DISTINCT FROM recomputed
   OR prev_hash IS DISTINCT FROM coalesce(before_hash, decode(repeat('00', 32), 'hex'))
ORDER BY seq LIMIT 1
"""
_WHY = {
    "gap": "rows {a}..{b} are missing (deleted)",
    "edited": "the row's content does not hash to its stored hash (edited)",
    "chain": "the row does not chain to the row before it (that row was replaced or re-hashed)",
}


def verify(conn: Connection, anchor: tuple[int, str] | None = None) -> Report:
    """Recompute the whole chain. `anchor` is a (seq, hex hash) pair kept from an earlier run."""
    rows, last_seq, last_hash = conn.execute(text(
        "SELECT count(*), max(seq), (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1) FROM audit_log")).one()
    head = conn.execute(text("SELECT seq, hash FROM audit_head")).one()
    report = Report(ok=True, rows=int(rows), head_seq=int(head.seq), head_hash=bytes(head.hash).hex())
    bad = conn.execute(text(_CHECK)).first()
    if bad is not None:
        why = _WHY[bad.problem].format(a=(bad.before_seq or 0) + 1, b=bad.seq - 1)
        report.ok, report.broken_at = False, {"id": bad.id, "seq": bad.seq, "problem": bad.problem, "detail": why}
    elif (last_seq or 0) != head.seq or (last_hash is not None and bytes(last_hash) != bytes(head.hash)):
        report.ok = False
        report.broken_at = {"id": None, "seq": (last_seq or 0) + 1, "problem": "tail",
                            "detail": f"the head is at seq {head.seq}: rows after {last_seq or 0} are missing"}
    if report.ok and anchor is not None:
        at = conn.execute(text("SELECT id, hash FROM audit_log WHERE seq = :s"), {"s": anchor[0]}).first()
        if at is None or bytes(at.hash).hex() != anchor[1].lower():
            report.ok = False
            report.broken_at = {"id": at.id if at else None, "seq": anchor[0], "problem": "anchor",
                                "detail": "the chain no longer contains the anchored hash (rewritten)"}
    return report


_COLUMNS = ("id, seq, at, principal, principal_id, roles, action, target, fields, detail, client_addr, user_agent, "
            "outcome, error_code, prev_hash, hash")


def _filters(since: dt.datetime | None, principal: str | None, action: str | None, target: str | None
             ) -> tuple[str, dict[str, Any]]:
    where: list[str] = ["TRUE"]
    params: dict[str, Any] = {}
    for col, value in (("principal", principal), ("action", action), ("target", target)):
        if value is not None:
            where.append(f"{col} = :{col}")
            params[col] = value
    if since is not None:
        where.append("at >= :since")
        params["since"] = since
    return " AND ".join(where), params


def _out(r: Any) -> dict[str, Any]:
    d = dict(r._mapping)
    return d | {"principal_id": str(d["principal_id"]) if d["principal_id"] else None, "at": d["at"].isoformat(),
                "prev_hash": bytes(d["prev_hash"]).hex(), "hash": bytes(d["hash"]).hex()}


def query(conn: Connection, *, since: dt.datetime | None = None, principal: str | None = None,
          action: str | None = None, target: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The newest rows first that match every given filter."""
    where, params = _filters(since, principal, action, target)
    rows = conn.execute(text(f"SELECT {_COLUMNS} FROM audit_log WHERE {where} ORDER BY seq DESC LIMIT :l"),
                        params | {"l": limit})
    return [_out(r) for r in rows]


def export(conn: Connection, since: dt.datetime | None = None) -> Iterator[str]:
    """Every row since a time, oldest first, as JSON lines with their hashes (a verifiable copy)."""
    where, params = _filters(since, None, None, None)
    rows = conn.execution_options(stream_results=True, yield_per=2000).execute(
        text(f"SELECT {_COLUMNS} FROM audit_log WHERE {where} ORDER BY seq"), params)
    for r in rows:
        yield json.dumps(_out(r), ensure_ascii=False, default=str) + "\n"
