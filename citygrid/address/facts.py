"""三实 intake: persons in rooms (实有人口) and organizations at door plates (实有单位), validated on entry."""

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
from citygrid.security import audit
from citygrid.security.masking import mask_person

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
    insert: str  # with :node, :name and the fields as parameters; RETURNING id and what the caller answers
    action: str  # audit action and the detail key of the new row's id
    id_key: str


_PERSON = _Fact(
    level="room", name_max=50, name_zh="姓名",
    checks=(("id_number", citizen_id_valid, E.id_number_invalid), ("phone", _PHONE.match, E.phone_invalid)),
    fields=("id_number", "phone", "relation"), upper=("id_number",),
    insert="INSERT INTO person (room_id, name, id_number, phone, relation) VALUES (:node, :name, :id_number, :phone, "
           ":relation) RETURNING id, name, id_number, phone, relation, generated",
    action="add_person", id_key="person_id")
_ORGANIZATION = _Fact(
    level="door", name_max=200, name_zh="单位名称",
    checks=(("credit_code", credit_code_valid, E.credit_code_invalid),),
    fields=("credit_code", "category"), upper=("credit_code",),
    insert="INSERT INTO organization (door_id, name, credit_code, category) VALUES (:node, :name, :credit_code, "
           ":category) RETURNING id, name, credit_code, category, generated",
    action="add_organization", id_key="organization_id")


def add_person(conn: Connection, room_code: str, body: dict[str, Any], by: str) -> dict[str, Any]:
    """Register a person in a room; the answer is masked."""
    return mask_person(_register(conn, _PERSON, room_code, body, by))


def add_organization(conn: Connection, door_code: str, body: dict[str, Any], by: str) -> dict[str, Any]:
    """Register an organization at a door plate."""
    return _register(conn, _ORGANIZATION, door_code, body, by)


def _register(conn: Connection, fact: _Fact, code: str, body: dict[str, Any], by: str) -> dict[str, Any]:
    node = nodes.find(conn, code, fact.level).id
    name = _valid_name(fact, body)
    params: dict[str, Any] = {"node": node, "name": name} | {f: body.get(f) for f in fact.fields}
    for f in fact.upper:
        params[f] = params[f].upper() if params[f] else None
    row = conn.execute(text(fact.insert), params).first()
    _audit(conn, by, fact.action, code, {fact.id_key: row.id}, ["name", *(f for f in fact.fields if params[f])])
    return dict(row._mapping)


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


def _audit(conn: Connection, by: str, action: str, target: str, detail: dict[str, Any], fields: list[str]) -> None:
    audit.record(conn, by, action, target, fields=fields, detail=detail)
