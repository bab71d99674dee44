"""三实 intake: persons in rooms (实有人口) and organizations at door plates (实有单位), validated on entry; ID
numbers and phones are encrypted before they reach the table (citygrid/security/crypto.py), and a person is found
by ID number through its keyed hash."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.address import nodes
from citygrid.coding.checks import citizen_id_valid, credit_code_valid
from citygrid.errors import CitygridError, E, ErrorEntry
from citygrid.security import audit, classification, crypto, rules
from citygrid.security.principal import Principal

_PHONE = re.compile(r"^1\d{10}$|^0\d{2,3}-?\d{7,8}$")

# An optional field's check: (field, valid, the error when the field is present and not valid).
Check = tuple[str, Callable[[str], Any], ErrorEntry]


@dataclass(frozen=True)
class _Fact:
    """One kind of 三实 record: where it is registered, how it is checked and stored, how it is audited."""

    level: str  # the address level it belongs to
    name_max: int
    name_zh: str  # what the name is called, in the problem when it is missing or too long
    checks: tuple[Check, ...]  # in the order problems are reported, after the name's
    fields: tuple[str, ...]  # taken from the body as they are, except `upper` ones (upper-cased, "" → None)
    upper: tuple[str, ...]
    # with :node, :code (the node's, whose first 6 digits are its county), :name and the stored fields as
    # parameters; RETURNING id and what the caller answers
    insert: str
    seal: Callable[[dict[str, Any]], dict[str, Any]] | None  # the fields → the columns they are stored in
    action: str  # audit action and the detail key of the new row's id
    id_key: str


_PERSON = _Fact(
    level="room", name_max=50, name_zh="姓名",
    checks=(("id_number", citizen_id_valid, E.id_number_invalid), ("phone", _PHONE.match, E.phone_invalid)),
    fields=("id_number", "phone", "relation"), upper=("id_number",),
    insert="INSERT INTO person (room_id, county, name, id_number_enc, phone_enc, id_number_hash, pii_kid, "
           "relation) VALUES (:node, left(:code, 6), :name, :id_number_enc, :phone_enc, :id_number_hash, :pii_kid, "
           ":relation) RETURNING id, name, relation, generated",
    seal=lambda p: crypto.seal_person(p.pop("id_number"), p.pop("phone")),
    action="add_person", id_key="person_id")
_ORGANIZATION = _Fact(
    level="door", name_max=200, name_zh="单位名称",
    checks=(("credit_code", credit_code_valid, E.credit_code_invalid),),
    fields=("credit_code", "category"), upper=("credit_code",),
    insert="INSERT INTO organization (door_id, county, name, credit_code, category) VALUES (:node, left(:code, 6), "
           ":name, :credit_code, :category) RETURNING id, name, credit_code, category, generated",
    seal=None, action="add_organization", id_key="organization_id")


def add_person(conn: Connection, p: Principal, room_code: str, body: dict[str, Any]) -> dict[str, Any]:
    """Register a person in a room: only with the personal grant for the room's place."""
    rules.require_login(p, "登记实有人口", "registering persons")
    node = nodes.find(conn, room_code, _PERSON.level)
    place = rules.place_of(node.village_code, node.township_code, None)
    rules.require_personal(p, place, "登记实有人口", "registering persons")
    return classification.redact_person(p, _register(conn, _PERSON, node, body, p), place)


def add_organization(conn: Connection, p: Principal, door_code: str, body: dict[str, Any]) -> dict[str, Any]:
    """Register an organization at a door plate: any role covering the door plate's place."""
    rules.require_login(p, "登记实有单位", "registering organizations")
    node = nodes.find(conn, door_code, _ORGANIZATION.level)
    rules.require_register_organization(p, rules.place_of(node.village_code, node.township_code, None))
    return _register(conn, _ORGANIZATION, node, body, p)


def _register(conn: Connection, fact: _Fact, node_row: Any, body: dict[str, Any], by: Principal) -> dict[str, Any]:
    node, code = node_row.id, node_row.code
    name = _valid_name(fact, body)
    params: dict[str, Any] = {"node": node, "code": code, "name": name} | {f: body.get(f) for f in fact.fields}
    for f in fact.upper:
        params[f] = params[f].upper() if params[f] else None
    given = {f: params[f] for f in fact.fields}
    if fact.seal is not None:
        params |= fact.seal(params)
    row = conn.execute(text(fact.insert), params).one()  # INSERT … RETURNING: one row
    audit.record(conn, by, fact.action, code, fields=["name", *(f for f in fact.fields if given[f])],
                 detail={fact.id_key: row.id})
    return {"id": row.id, "name": row.name} | given | dict(row._mapping)


def find_persons(conn: Connection, principal: Principal, id_number: str, limit: int = 20) -> list[dict[str, Any]]:
    """The persons registered with this ID number, with the room they live in, found through the keyed hash
    (the table holds no plaintext to search): only those in places where the caller holds the personal grant
    (elsewhere even where someone lives is not the caller's to know)."""
    rules.require_personal(principal, None, "按身份号码查找人口", "finding persons by ID number")
    if not isinstance(id_number, str) or not citizen_id_valid(crypto.normalise_id_number(id_number)):
        raise E.id_number_invalid("id_number")
    rows = conn.execute(text(
        "SELECT p.id, a.code AS room, a.full_name AS address, a.village_code, a.township_code, p.name, "
        "p.id_number_enc, p.phone_enc, p.relation, p.generated FROM person p "
        "JOIN addr_node a ON a.id = p.room_id AND a.division_code = p.county "
        "WHERE p.id_number_hash = ANY(:h) ORDER BY p.id LIMIT :l"),
        {"h": crypto.index_candidates(id_number), "l": limit}).all()
    found = []
    for r in rows:
        place = rules.place_of(r.village_code, r.township_code, None)
        if rules.may_read_personal(principal, place):
            found.append(classification.redact_person(principal, crypto.open_person(r._mapping), place))
    audit.record(conn, principal, "find_person", "person", fields=audit.PERSON_FIELDS if found else (),
                 detail={"found": len(found)})  # never the number itself
    return found


def _valid_name(fact: _Fact, body: dict[str, Any]) -> str:
    """The stripped name when the body is valid; otherwise every problem at once (422), the name's first."""
    problems = []
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= fact.name_max:
        problems.append(E.name_invalid.problem("name", label_zh=fact.name_zh, max=fact.name_max, nonempty_zh="非空",
                                               nonempty_en="non-empty "))
    for field, valid, entry in fact.checks:
        value = body.get(field)
        if value is not None and (not isinstance(value, str) or not valid(value)):
            problems.append(entry.problem(field))
    if problems or not isinstance(name, str):
        raise CitygridError(problems, "unprocessable")
    return name.strip()
