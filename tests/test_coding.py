"""Unified codes: check digit vectors, error detection, encode/decode, allocation under concurrency."""

from __future__ import annotations

import multiprocessing as mp

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session

from citygrid.coding.allocator import AllocationError, allocate
from citygrid.coding.checks import (
    citizen_id_valid,
    credit_code_check,
    credit_code_valid,
    mod11_10,
    mod11_10_valid,
    org_code_check,
)
from citygrid.coding.scheme import unified_scheme
from citygrid.db.engine import engine_for
from citygrid.security.principal import system_as

SCHEME = unified_scheme()


def test_check_digit_vectors() -> None:
    assert mod11_10("6943515153") == "0"  # Croatian OIB 69435151530
    assert mod11_10("42028101010100000001") == "5"
    assert mod11_10_valid("69435151530") and not mod11_10_valid("69435151531")


def test_ingest_check_characters() -> None:
    assert credit_code_valid("91110000600037341L") and credit_code_check("91110000600037341") == "L"
    assert not credit_code_valid("91110000600037341M")
    assert citizen_id_valid("11010519491231002X") and not citizen_id_valid("110105194912310021")
    assert org_code_check("60003734") == "1"


codes = st.tuples(st.text("0123456789", min_size=6, max_size=6), st.text("0123456789", min_size=6, max_size=6),
                  st.integers(0, 99_999_999))


@given(codes, st.integers(0, 20), st.integers(1, 9))
@settings(max_examples=400, deadline=None)
def test_every_single_digit_substitution_is_detected(parts, pos: int, delta: int) -> None:  # noqa: ANN001
    division, cls, serial = parts
    code = SCHEME.encode(division=division, **{"class": cls}, serial=serial)
    bad = code[:pos] + str((int(code[pos]) + delta) % 10) + code[pos + 1:]
    assert bad != code
    assert any(p.error_code == "code_check_digit" for p in SCHEME.validate(bad))


@given(codes)
@settings(max_examples=200, deadline=None)
def test_encode_decode_round_trip(parts) -> None:  # noqa: ANN001
    division, cls, serial = parts
    code = SCHEME.encode(division=division, **{"class": cls}, serial=serial)
    assert len(code) == 21 and SCHEME.validate(code) == []
    d = SCHEME.decode(code)
    assert (d["division"], d["class"], int(d["serial"])) == (division, cls, serial)
    assert SCHEME.encode(division=d["division"], **{"class": d["class"]}, serial=int(d["serial"])) == code


def test_validate_reports_every_reason() -> None:
    probs = SCHEME.validate("999999999999000000X", known_division=lambda d: False, known_class=lambda c: False)
    kinds = {p.error_code for p in probs}
    assert {"code_length", "code_characters", "code_division_unknown", "code_class_unknown"} <= kinds
    good = SCHEME.encode(division="420281", **{"class": "010101"}, serial=7)
    wrong = good[:-1] + str((int(good[-1]) + 1) % 10)
    probs = SCHEME.validate(wrong, known_division=lambda d: d == "420281", known_class=lambda c: True)
    assert [p.error_code for p in probs] == ["code_check_digit"]
    assert "校验码" in probs[0].message_zh and "check digit" in probs[0].message_en


def test_allocation_block_is_contiguous_and_recorded(engine) -> None:  # noqa: ANN001
    with Session(engine) as s, s.begin():
        a = allocate(s, system_as("t"), "420281", "990101", 3)
        b = allocate(s, system_as("t"), "420281", "990101", 1000, batch="blk")
    serials = [int(SCHEME.decode(c)["serial"]) for c in a + b]
    assert serials == list(range(serials[0], serials[0] + 1003))
    with engine.connect() as c:
        n = c.execute(text("SELECT count(*) FROM issued_code WHERE batch='blk'")).scalar()
    assert n == 1000


def test_rolled_back_allocation_never_reissues_a_recorded_code(engine) -> None:  # noqa: ANN001
    with Session(engine) as s, s.begin():
        first = allocate(s, system_as("t"), "420281", "990102", 1)[0]
    with pytest.raises(RuntimeError), Session(engine) as s, s.begin():
        allocate(s, system_as("t"), "420281", "990102", 1)
        raise RuntimeError("abort")
    with Session(engine) as s, s.begin():
        nxt = allocate(s, system_as("t"), "420281", "990102", 1)[0]
    assert nxt != first and int(SCHEME.decode(nxt)["serial"]) > int(SCHEME.decode(first)["serial"])


def test_exhausted_serials_are_refused(engine) -> None:  # noqa: ANN001
    with Session(engine) as s, s.begin():
        s.execute(text("INSERT INTO code_counter VALUES ('420281', '990103', 99999999)"))
    with pytest.raises(AllocationError) as e, Session(engine) as s, s.begin():
        allocate(s, system_as("t"), "420281", "990103", 2)
    assert e.value.error_code == "alloc_exhausted"


def test_ledger_primary_key_rejects_a_duplicate(engine) -> None:  # noqa: ANN001
    with Session(engine) as s, s.begin():
        code = allocate(s, system_as("t"), "420281", "990104", 1)[0]
    with pytest.raises(Exception, match="duplicate key"), Session(engine) as s, s.begin():
        s.execute(text("INSERT INTO issued_code (code, division_code, class_code, serial) "
                       "VALUES (:c, '420281', '990104', 999)"), {"c": code})


def _worker(url: str, n_batches: int, q) -> None:  # noqa: ANN001
    eng = engine_for(url)
    out: list[str] = []
    for i in range(n_batches):
        with Session(eng) as s, s.begin():
            out += allocate(s, system_as("proc"), "420281", "990105", 1 if i % 2 else 250)
    q.put(out)


def test_concurrent_processes_never_duplicate(database_url: str, engine) -> None:  # noqa: ANN001
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(database_url, 20, q)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    all_codes = [c for r in results for c in r]
    assert len(all_codes) == 4 * (10 * 250 + 10)
    assert len(set(all_codes)) == len(all_codes)
    with engine.connect() as c:
        n = c.execute(text("SELECT count(*) FROM issued_code WHERE class_code='990105'")).scalar()
    assert n == len(all_codes)


def test_exhausted_component_serials_are_a_coded_error(engine) -> None:  # noqa: ANN001
    from shapely.geometry import Point

    from citygrid.errors import CitygridError
    from citygrid.registry.bulk import BulkItem, bulk_create

    with Session(engine) as s, s.begin():  # 古树名木 (component 0401): put its 6-digit serial at the very end
        s.execute(text("INSERT INTO code_counter VALUES ('420281', 'c0401', 999999) ON CONFLICT (division_code, "
                       "class_code) DO UPDATE SET next_serial = 999999"))
    items = [BulkItem(Point(114.97, 30.1), {"state": "完好", "tree_no": f"T{i}", "species": "樟树",
                                            "protection_level": "一级"}) for i in range(2)]
    with pytest.raises(CitygridError) as e, Session(engine) as s, s.begin():
        bulk_create(s, system_as("t"), "040101", "420281", items)
    assert e.value.problems[0].error_code == "alloc_exhausted"
