"""Reading standard address nodes (`addr_node`): one lookup by code, the node with its parents, children and 三实,
and the door plate's QR code.

Every caller that starts from an address code goes through `find` — the `/addresses/{code}` answer, the QR code
and the `/a/{code}` page (api/routers/address.py) and the 三实 intake (citygrid/address/facts.py) — so "not
found" and "wrong level" are decided, and worded, in one place.
"""

from __future__ import annotations

import io
from typing import Any

import segno
from sqlalchemy import Row, text
from sqlalchemy.engine import Connection

from citygrid.errors import E
from citygrid.security import audit, classification, crypto, rules
from citygrid.security.principal import Principal


def find(c: Connection, code: str, level: str | None = None) -> Row[Any]:
    """The node with this code (id, code, level, parent_id, names, township and village codes, x/y, object code,
    status); `level` demands that level (persons go in rooms, organizations at doors)."""
    r = c.execute(text("SELECT id, code, level, parent_id, name, full_name, township_code, village_code, "
                       "ST_X(point) AS x, ST_Y(point) AS y, object_code, status FROM addr_node "
                       "WHERE code=:c AND division_code=:county"), {"c": code, "county": code[:6]}).first()
    if r is None:
        raise E.address_not_found("code", code=code)
    if level is not None and r.level != level:
        raise E.address_level("code", level=r.level, needed_zh={"room": "户室", "door": "门牌"}[level], needed_en=level)
    return r


def describe(c: Connection, p: Principal, code: str, limit: int = 200) -> dict[str, Any]:
    """A node with its parents (top down), up to `limit` children, its object code, and its 三实: the house and
    its persons for a room (masked unless the caller holds the personal grant there; an unmasked read is recorded
    in the audit log before the answer leaves), the organizations for a door."""
    r = find(c, code)
    parents = c.execute(text(
        "WITH RECURSIVE up AS (SELECT id, parent_id, code, level, name, 0 AS depth FROM addr_node WHERE id=:i "
        "UNION ALL SELECT a.id, a.parent_id, a.code, a.level, a.name, up.depth + 1 FROM addr_node a "
        "JOIN up ON a.id = up.parent_id) SELECT code, level, name FROM up WHERE depth > 0 ORDER BY depth DESC"),
        {"i": r.id}).all()
    kids = c.execute(text("SELECT code, level, name FROM addr_node WHERE parent_id=:i ORDER BY number NULLS LAST, "
                          "name LIMIT :l"), {"i": r.id, "l": limit}).all()
    out: dict[str, Any] = {
        "code": r.code, "level": r.level, "name": r.name, "address": r.full_name, "status": r.status,
        "point": {"lon": r.x, "lat": r.y} if r.x is not None else None, "object_code": r.object_code,
        "township_code": r.township_code, "village_code": r.village_code,
        "parents": [dict(x._mapping) for x in parents], "children": [dict(k._mapping) for k in kids],
        "qr": f"/addresses/{r.code}/qr.svg", "page": f"/a/{r.code}",
    }
    if r.level == "room":
        place = rules.place_of(r.village_code, r.township_code, None)
        listed = classification.may_list_facts(p, place)
        h = c.execute(text("SELECT house_use, area, property_type, generated FROM house WHERE room_id=:i"),
                      {"i": r.id}).first() if listed else None
        out["house"] = dict(h._mapping) | {"area": float(h.area) if h.area is not None else None} if h else None
        people = c.execute(text("SELECT name, id_number_enc, phone_enc, relation, generated FROM person "
                                "WHERE room_id=:i ORDER BY id"), {"i": r.id}).all() if listed else []
        if people and rules.may_read_personal(p, place):  # recorded before the answer leaves, whatever happens next
            audit.read_personal(c, p, r.code, audit.PERSON_FIELDS, {"persons": len(people)})
        # decrypt, then redact for the caller
        out["persons"] = classification.redact_persons(p, [crypto.open_person(x._mapping) for x in people], place)
    if r.level == "door":
        orgs = c.execute(text("SELECT name, credit_code, category, generated FROM organization WHERE door_id=:i"),
                         {"i": r.id}).all()
        out["organizations"] = [dict(o._mapping) for o in orgs]
    return out


def qr_svg(c: Connection, code: str, base_url: str) -> bytes:
    """The door plate's QR code (智慧门牌) as SVG: it opens the node's page, `<base_url>/a/<code>`."""
    r = find(c, code)
    url = base_url.rstrip("/") + f"/a/{r.code}"
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="svg", scale=4, border=2)
    return buf.getvalue()
