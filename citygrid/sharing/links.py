"""Links by code (一码互联): a department system attaches one of its records to the unified code of the object it
concerns, and any system finds the object of a foreign record, or every record attached to an object.

A link is (system, record id) → code, with a title, a URL back into the system, a small JSON payload
(`link_payload_max` bytes), a valid time, and the record's own classification level (catalog L1–L4). One live
link per foreign record (a unique index), so `find` answers with one code. Unlinking stamps the row, which stays
for the record (and the change feed's `unlinked` entry); a retired object takes no new links.

Links follow lineage: after a split or a merge the retired code keeps its links, and every successor offers
them (`inherited_from` and the lineage path from the successor up to the object the link is on), so nothing
attached is silently dropped; a system that wants its record on a successor links it there (and unlinks the
old one). A retired code's answer names its current successors.

Who sees what: the links of an object the caller may read (`rules.may_read_object`), each only if the caller's
clearance at the object's place reaches the link's level (`classification.may_read_level`); who made the link
is record metadata (`redact_meta`). Row-level security (0018) agrees for area-scoped callers. Who may link and
unlink: `rules.may_link`, `rules.require_unlink`. Every write goes to the audit log; the feed entry is written
by the trigger on `link`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from citygrid.catalog import get_catalog
from citygrid.errors import E
from citygrid.security import audit, classification, rules
from citygrid.security.principal import Principal
from citygrid.settings import get_settings

MAX_LINEAGE_DEPTH = 32


@dataclass
class NewLink:
    system: str
    record_id: str
    title: str | None = None
    url: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    level: str = "L1"
    valid_from: dt.datetime | None = None
    valid_to: dt.datetime | None = None


# the county (the code's first 6 digits) beside the code: one shard under Citus, not all of them
_OBJ = ("SELECT uid, code, class_code, status, division_code, township_code, village_code FROM city_object "
        "WHERE code = :c AND division_code = :county")


def _place(r: Any) -> str | None:
    return rules.place_of(r.village_code, r.township_code, r.division_code)


def _readable(p: Principal, class_code: str, place: str | None) -> bool:
    cls = get_catalog().get(class_code)
    return p.is_admin if cls is None else rules.may_read_object(p, cls, place)


def _object(conn: Connection, p: Principal, code: str, lock: bool = False) -> Any:
    r = conn.execute(text(_OBJ + (" FOR UPDATE" if lock else "")), {"c": code, "county": code[:6]}).first()
    if r is None or not _readable(p, r.class_code, _place(r)):
        raise E.object_not_found("code", code=code)
    return r


_LINK_COLS = ("k.id, k.code, k.system, k.record_id, k.title, k.url, k.payload, k.level, k.valid_from, k.valid_to, "
              "k.department, k.created_by, k.created_at, k.updated_at, k.unlinked_at")


def _view(p: Principal, place: str | None, r: Any, now: dt.datetime, lineage: list[dict[str, Any]] | None = None,
          ) -> dict[str, Any]:
    current = (r.valid_from is None or r.valid_from <= now) and (r.valid_to is None or r.valid_to > now)
    out = {"id": r.id, "code": r.code, "system": r.system, "record_id": r.record_id, "title": r.title, "url": r.url,
           "payload": r.payload, "level": r.level, "valid_from": r.valid_from, "valid_to": r.valid_to,
           "current": current, "department": r.department, "created_by": r.created_by, "created_at": r.created_at,
           "updated_at": r.updated_at, "inherited_from": lineage[-1]["code"] if lineage else None,
           "lineage": lineage or []}
    return classification.redact_meta(p, place, out)


def _check(new: NewLink) -> None:
    size = len(json.dumps(new.payload, ensure_ascii=False, separators=(",", ":")).encode())
    limit = get_settings().link_payload_max
    if size > limit:
        raise E.link_payload_too_large("payload", n=size, limit=limit)
    if new.valid_from is not None and new.valid_to is not None and new.valid_to <= new.valid_from:
        raise E.link_valid_range("valid_to")


def link(s: Session, p: Principal, code: str, new: NewLink) -> dict[str, Any]:
    """Attach (or, for a record already linked to this code, replace) a record; 409 when the record is linked to
    another object."""
    rules.require_login(p, "关联业务记录", "linking records")
    conn = s.connection()
    obj = _object(conn, p, code, lock=True)
    place = _place(obj)
    rules.require_link(p, place)
    if obj.status != "active":
        raise E.link_object_retired("code", code=code)
    _check(new)
    params = {"c": code, "county": code[:6], "sys": new.system, "rec": new.record_id, "t": new.title, "u": new.url,
              "pl": json.dumps(new.payload, ensure_ascii=False), "lv": new.level, "vf": new.valid_from,
              "vt": new.valid_to, "dep": rules.link_department(p, place), "by": p.name}
    # one live link per record across counties: since 0028 the unique index is per county (a key Citus can check),
    # so two counties' links of one record at once are kept apart by this lock, held to the end of the transaction
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:sys || chr(31) || :rec, 0))"), params)
    old = conn.execute(text("SELECT id, code FROM link WHERE system = :sys AND record_id = :rec "
                            "AND unlinked_at IS NULL FOR UPDATE"), params).first()
    if old is not None and old.code != code:
        other = conn.execute(text(_OBJ), {"c": old.code, "county": old.code[:6]}).first()
        shown = old.code if other is not None and _readable(p, other.class_code, _place(other)) else "-"
        raise E.link_conflict("record_id", system=new.system, record=new.record_id, code=shown)
    if old is not None:
        row = conn.execute(text(
            "UPDATE link k SET title = :t, url = :u, payload = CAST(:pl AS jsonb), level = :lv, valid_from = :vf, "
            "valid_to = :vt, updated_at = now() WHERE id = :id RETURNING " + _LINK_COLS), params | {"id": old.id}
        ).one()
        action = "relink"
    else:
        try:
            with s.begin_nested():
                row = conn.execute(text(
                    "INSERT INTO link AS k (code, county, system, record_id, title, url, payload, level, "
                    "valid_from, valid_to, department, created_by) VALUES (:c, :county, :sys, :rec, :t, :u, "
                    "CAST(:pl AS jsonb), :lv, :vf, :vt, :dep, :by) RETURNING " + _LINK_COLS), params).one()
        except IntegrityError:  # linked meanwhile, or to an object row-level security hides from this caller
            raise E.link_conflict("record_id", system=new.system, record=new.record_id, code="-") from None
        action = "link"
    audit.record(s, p, action, code, detail={"link": row.id, "system": new.system, "record_id": new.record_id,
                                             "level": new.level})
    return _view(p, place, row, _now(conn))


def unlink(s: Session, p: Principal, code: str, link_id: int) -> dict[str, Any]:
    rules.require_login(p, "解除关联", "unlinking records")
    conn = s.connection()
    obj = _object(conn, p, code)
    place = _place(obj)
    r = conn.execute(text("SELECT " + _LINK_COLS + " FROM link k WHERE id = :id AND code = :c AND unlinked_at IS NULL "
                          "FOR UPDATE"), {"id": link_id, "c": code}).first()
    if r is None or not classification.may_read_level(p, place, r.level):
        raise E.link_not_found("link", link=link_id)
    rules.require_unlink(p, place, r.department, r.created_by)
    row = conn.execute(text("UPDATE link k SET unlinked_at = now(), unlinked_by = :by WHERE id = :id RETURNING "
                            + _LINK_COLS), {"id": link_id, "by": p.name}).one()
    audit.record(s, p, "unlink", code, detail={"link": link_id, "system": r.system, "record_id": r.record_id})
    return _view(p, place, row, _now(conn)) | {"unlinked_at": row.unlinked_at}


def _now(conn: Connection) -> dt.datetime:
    now: dt.datetime = conn.execute(text("SELECT now()")).scalar_one()
    return now


_ANCESTORS = f"""
WITH RECURSIVE up(uid, county, path, depth) AS (
  SELECT l.parent_uid, l.parent_county, ARRAY[jsonb_build_object('code', o.code, 'kind', l.kind)], 1
  FROM lineage l JOIN city_object o ON o.uid = l.parent_uid AND o.division_code = l.parent_county
  WHERE l.child_uid = :u AND l.county = left(:c, 6)
  UNION
  SELECT l.parent_uid, l.parent_county, up.path || jsonb_build_object('code', o.code, 'kind', l.kind), up.depth + 1
  FROM up JOIN lineage l ON l.child_uid = up.uid AND l.county = up.county
  JOIN city_object o ON o.uid = l.parent_uid AND o.division_code = l.parent_county
  WHERE up.depth < {MAX_LINEAGE_DEPTH}
)
SELECT {_LINK_COLS}, up.path, o.class_code AS o_class, o.division_code, o.township_code, o.village_code
FROM up JOIN city_object o ON o.uid = up.uid AND o.division_code = up.county
JOIN link k ON k.code = o.code AND k.county = o.division_code AND k.unlinked_at IS NULL
ORDER BY up.depth, k.code, k.id, up.path::text
"""

_DESCENDANTS = f"""
WITH RECURSIVE down(uid, county, depth) AS (
  SELECT child_uid, county, 1 FROM lineage WHERE parent_uid = :u AND parent_county = left(:c, 6)
  UNION
  SELECT l.child_uid, l.county, down.depth + 1 FROM down
  JOIN lineage l ON l.parent_uid = down.uid AND l.parent_county = down.county
  WHERE down.depth < {MAX_LINEAGE_DEPTH}
)
SELECT DISTINCT o.code, o.class_code, o.division_code, o.township_code, o.village_code FROM down
JOIN city_object o ON o.uid = down.uid AND o.division_code = down.county WHERE o.status = 'active' ORDER BY o.code
"""


def successors(conn: Connection, p: Principal, uid: Any, code: str) -> list[str]:
    """The active objects a retired one (`uid`, `code`) lives on in (through any number of splits and merges) that
    the caller may read."""
    rows = conn.execute(text(_DESCENDANTS), {"u": uid, "c": code}).all()
    return [r.code for r in rows if _readable(p, r.class_code, _place(r))]


def links_of(conn: Connection, p: Principal, code: str, *, inherited: bool = True) -> dict[str, Any]:
    """Every live link of the object the caller may see, then those its ancestors carry (`inherited_from`,
    `lineage`: the path from this object up, each step with its kind); a retired object names its successors."""
    obj = _object(conn, p, code)
    place = _place(obj)
    now = _now(conn)
    own = conn.execute(text("SELECT " + _LINK_COLS + " FROM link k WHERE k.code = :c AND k.unlinked_at IS NULL "
                            "ORDER BY k.id"), {"c": code}).all()
    items = [_view(p, place, r, now) for r in own if classification.may_read_level(p, place, r.level)]
    if inherited:
        seen: set[int] = set()
        for r in conn.execute(text(_ANCESTORS), {"u": obj.uid, "c": code}).all():  # nearest first: a merge of two parts of
            at = _place(r)                                              # one split reaches it twice, shown once
            if r.id not in seen and _readable(p, r.o_class, at) and classification.may_read_level(p, at, r.level):
                seen.add(r.id)
                items.append(_view(p, at, r, now, list(r.path)))
    out: dict[str, Any] = {"code": code, "status": obj.status, "links": items, "count": len(items)}
    if obj.status != "active":
        out["successors"] = successors(conn, p, obj.uid, code)
    return out


def find(conn: Connection, p: Principal, system: str, record_id: str) -> dict[str, Any]:
    """The code a foreign record is linked to (and, when that object is retired, its current successors)."""
    r = conn.execute(text("SELECT " + _LINK_COLS + ", o.uid, o.status, o.class_code AS o_class, o.division_code, "
                          "o.township_code, o.village_code FROM link k "
                          "JOIN city_object o ON o.code = k.code AND o.division_code = k.county "
                          "WHERE k.system = :s AND k.record_id = :r AND k.unlinked_at IS NULL"),
                     {"s": system, "r": record_id}).first()
    if r is None or not _readable(p, r.o_class, _place(r)) or not classification.may_read_level(p, _place(r), r.level):
        raise E.link_not_found("record_id", link=f"{system}/{record_id}")
    out = {"system": system, "record_id": record_id, "code": r.code, "status": r.status,
           "link": _view(p, _place(r), r, _now(conn))}
    if r.status != "active":
        out["successors"] = successors(conn, p, r.uid, r.code)
    return out
