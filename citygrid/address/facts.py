"""三实 intake: persons in rooms (实有人口) and organizations at door plates (实有单位), validated on entry."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.coding.checks import citizen_id_valid, credit_code_valid
from citygrid.errors import CitygridError, Problem
from citygrid.security.masking import mask_person

_PHONE = re.compile(r"^1\d{10}$|^0\d{2,3}-?\d{7,8}$")


def _node(conn: Connection, code: str, level: str) -> int:
    r = conn.execute(text("SELECT id, level FROM addr_node WHERE code=:c"), {"c": code}).first()
    if r is None:
        raise CitygridError.one("address_not_found", f"地址编码 {code} 不存在", f"address {code} not found", "code",
                                kind="not_found")
    if r.level != level:
        zh = {"room": "户室", "door": "门牌"}[level]
        raise CitygridError.one("address_level", f"该地址是 {r.level} 级，只能登记到{zh}", f"address is a {r.level}; "
                                f"this needs a {level}", "code")
    return int(r.id)


def add_person(conn: Connection, room_code: str, body: dict[str, Any], by: str) -> dict[str, Any]:
    room = _node(conn, room_code, "room")
    problems = []
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 50:
        problems.append(Problem("name_invalid", "姓名必填，1–50 字", "name is required, 1-50 chars", "name"))
    idn = body.get("id_number")
    if idn is not None and (not isinstance(idn, str) or not citizen_id_valid(idn)):
        problems.append(Problem("id_number_invalid", "公民身份号码格式或校验码错误（GB 11643）",
                                "citizen ID number malformed or check character wrong (GB 11643)", "id_number"))
    phone = body.get("phone")
    if phone is not None and (not isinstance(phone, str) or not _PHONE.match(phone)):
        problems.append(Problem("phone_invalid", "电话号码格式错误", "phone number malformed", "phone"))
    if problems:
        raise CitygridError(problems, "unprocessable")
    row = conn.execute(text("INSERT INTO person (room_id, name, id_number, phone, relation) VALUES (:r, :n, :i, :p, "
                            ":rel) RETURNING id, name, id_number, phone, relation, generated"),
                       {"r": room, "n": name.strip(), "i": idn.upper() if idn else None, "p": phone,
                        "rel": body.get("relation")}).first()
    _audit(conn, by, "add_person", room_code, {"person_id": row.id})
    return mask_person(dict(row._mapping))


def add_organization(conn: Connection, door_code: str, body: dict[str, Any], by: str) -> dict[str, Any]:
    door = _node(conn, door_code, "door")
    problems = []
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
        problems.append(Problem("name_invalid", "单位名称必填，1–200 字", "name is required, 1-200 chars", "name"))
    cc = body.get("credit_code")
    if cc is not None and (not isinstance(cc, str) or not credit_code_valid(cc)):
        problems.append(Problem("credit_code_invalid", "统一社会信用代码格式或校验码错误（GB 32100）",
                                "unified social credit code malformed or check character wrong (GB 32100)",
                                "credit_code"))
    if problems:
        raise CitygridError(problems, "unprocessable")
    row = conn.execute(text("INSERT INTO organization (door_id, name, credit_code, category) VALUES (:d, :n, :c, :k) "
                            "RETURNING id, name, credit_code, category, generated"),
                       {"d": door, "n": name.strip(), "c": cc.upper() if cc else None,
                        "k": body.get("category")}).first()
    _audit(conn, by, "add_organization", door_code, {"organization_id": row.id})
    return dict(row._mapping)


def _audit(conn: Connection, by: str, action: str, target: str, detail: dict[str, Any]) -> None:
    conn.execute(text("INSERT INTO audit_log (principal, action, target, detail) VALUES (:p, :a, :t, CAST(:d AS jsonb))"),
                 {"p": by, "a": action, "t": target, "d": json.dumps(detail)})
