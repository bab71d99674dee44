"""Fake 三实 for the demo's address base: houses on its rooms, the persons living there, organizations at doors.

Obviously fake and marked so: names say 示例 (example), every row has `generated = true`; ID numbers and credit
codes are well-formed (valid check characters) so that intake validation and masking have something real to
work on; ID numbers and phones are encrypted before the COPY, like every other person's
(citygrid/security/crypto.py). The address base (`citygrid/address/base.py`) builds rooms and doors from the registry and takes its
三实 from a writer it is given; `facts_writer` is the demo's, passed in by `load.load_address_base`.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import psycopg

from citygrid.address.base import FactsWriter, Node
from citygrid.coding.checks import citizen_id_check, credit_code_check
from citygrid.security.crypto import seal_person

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"


def _fake_people(rng: np.random.Generator, county: str, n: int, start: int = 0) -> list[tuple[str, str, str]]:
    """Obviously fake: the name says 示例 (example); ID numbers have a valid check character."""
    sur = rng.integers(len(_SURNAMES), size=n)
    year, month, day = rng.integers(1940, 2020, size=n), rng.integers(1, 13, size=n), rng.integers(1, 29, size=n)
    seq, phone = rng.integers(900, 1000, size=n), rng.integers(0, 10**8, size=n)
    out = []
    for i in range(n):
        body = f"{county}{year[i]}{month[i]:02d}{day[i]:02d}{seq[i]}"
        out.append((f"{_SURNAMES[sur[i]]}示例{start + i}", body + citizen_id_check(body), f"170{phone[i]:08d}"))
    return out


def _fake_credit_code(rng: np.random.Generator, county: str) -> str:
    """GB 32100 structure: 9 (registration dept) 1 (kind) + county + organisation code + check char."""
    org = "".join(str(int(d)) for d in rng.integers(0, 10, 8)) + "X"
    body = "91" + county + org
    return body + credit_code_check(body)


def facts_writer(seed: int) -> FactsWriter:
    """The demo's 三实 writer for `build_from_registry`, deterministic from `seed`."""

    def write(cur: psycopg.Cursor[Any], county: str, rooms: list[Node], doors: list[Node]) -> dict[str, int]:
        return _write_facts(cur, county, rooms, doors, np.random.default_rng(seed))

    return write


def _write_facts(cur: psycopg.Cursor[Any], county: str, rooms: list[Node], doors: list[Node],
                 rng: np.random.Generator) -> dict[str, int]:
    """A house on every room (self-occupied, rented or empty) with 1–4 persons unless empty; a company at every
    fourth street door."""
    uses = ["自住", "出租", "空置"]
    hb = io.StringIO()
    persons: list[tuple[Any, ...]] = []
    use_idx = rng.choice(3, size=len(rooms), p=[0.7, 0.2, 0.1])
    areas = rng.integers(60, 140, size=len(rooms))
    sizes = rng.integers(1, 5, size=len(rooms))
    sizes[use_idx == 2] = 0
    people = _fake_people(rng, county, int(sizes.sum()))
    n_p = 0
    for r, u, a, k in zip(rooms, use_idx, areas, sizes, strict=True):
        hb.write(f"{r.id}\t{county}\t{uses[u]}\t{a}\t商品房\tt\n")
        for j in range(k):
            name, idn, phone = people[n_p]
            sealed = seal_person(idn, phone)  # ID numbers and phones never reach the table in clear
            persons.append((r.id, county, name, sealed["id_number_enc"], sealed["phone_enc"], sealed["id_number_hash"],
                            sealed["pii_kid"], "户主" if j == 0 else "家庭成员", True))
            n_p += 1
    ob = io.StringIO()
    street = [d for d in doors if d.village is None or d.number is not None]
    n_o = 0
    for d in street[::4]:
        ob.write(f"{d.id}\t{county}\t示例商贸{n_o}有限公司\t{_fake_credit_code(rng, county)}\t企业\tt\n")
        n_o += 1
    with cur.copy("COPY house (room_id, county, house_use, area, property_type, generated) FROM STDIN") as cp:
        cp.write(hb.getvalue())
    with cur.copy("COPY person (room_id, county, name, id_number_enc, phone_enc, id_number_hash, pii_kid, relation, "
                  "generated) FROM STDIN") as cp:
        for row in persons:
            cp.write_row(row)
    with cur.copy("COPY organization (door_id, county, name, credit_code, category, generated) FROM STDIN") as cp:
        cp.write(ob.getvalue())
    return {"houses": len(rooms), "persons": n_p, "organizations": n_o}
