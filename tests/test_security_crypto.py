"""ID numbers and phones encrypted at rest (citygrid/security/crypto.py): no plaintext in the table or in a dump,
lookup through the keyed hash, rows left from before the upgrade sealed at start, rotation that re-encrypts and
resumes, key retirement that refuses while a key is used, and a row under a missing key failing loudly."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from citygrid.coding.checks import citizen_id_check
from citygrid.db.cluster import pg_bin
from citygrid.errors import CitygridError
from citygrid.security import classification, credentials, crypto, keys
from citygrid.security.principal import ANONYMOUS, Grant
from citygrid.settings import get_settings

PASSWORD = "correct horse battery"


def _id_number(last4: str | None = None) -> str:
    """A valid, unused citizen ID number of the demo county (ending in `last4` when given)."""
    rng = random.Random()
    while True:
        body = f"420281{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        body += last4[:3] if last4 else f"{rng.randint(0, 999):03d}"
        number = body + citizen_id_check(body)
        if last4 is None or number.endswith(last4):
            return number


def _phone() -> str:
    return f"139{random.randint(0, 10**8 - 1):08d}"


@pytest.fixture(scope="module")
def room(engine: Engine, demo_county: dict) -> str:
    with engine.connect() as c:
        return c.execute(text("SELECT code FROM addr_node WHERE level = 'room' ORDER BY id DESC LIMIT 1")).scalar_one()


@pytest.fixture(scope="module")
def officer(client: TestClient, engine: Engine) -> dict[str, str]:
    """A principal with the personal-data grant, logged in: the one who may register and find persons."""
    name = f"pii-{uuid.uuid4().hex[:8]}"
    with engine.begin() as c:
        credentials.add_principal(c, name, password=PASSWORD, grants=[Grant("admin")], clearance="L4", personal=True)
    r = client.post("/auth/token", data={"username": name, "password": PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _register(client: TestClient, room: str, headers: dict[str, str], id_number: str, phone: str) -> dict[str, Any]:
    r = client.post(f"/addresses/{room}/persons", headers=headers,
                    json={"name": "赵示例", "id_number": id_number, "phone": phone, "relation": "租户"})
    assert r.status_code == 201, r.text
    return r.json()


def _raw(engine: Engine, person_id: int) -> Any:
    with engine.connect() as c:
        return c.execute(text("SELECT id_number, phone, id_number_enc, phone_enc, id_number_hash, pii_kid "
                              "FROM person WHERE id = :i"), {"i": person_id}).one()


def test_plaintext_never_reaches_the_table_nor_a_dump(client: TestClient, engine: Engine, database_url: str,
                                                      room: str, officer: dict[str, str]) -> None:
    idn, phone = _id_number(), _phone()
    pid = _register(client, room, officer, idn, phone)["id"]
    raw = _raw(engine, pid)  # as the cluster's superuser
    assert raw.id_number is None and raw.phone is None
    for blob in (raw.id_number_enc, raw.phone_enc, raw.id_number_hash):
        assert idn.encode() not in bytes(blob) and phone.encode() not in bytes(blob) and idn[-8:].encode() not in bytes(blob)
    assert crypto.kid_of(raw.id_number_enc) == raw.pii_kid == keys.get_keyring().active
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    dump = subprocess.run([str(pg_bin() / "pg_dump"), "--data-only", "--table=person", "-d", dsn],
                          capture_output=True, text=True, check=True).stdout
    assert "COPY public.person" in dump and idn not in dump and phone not in dump
    # and PostgreSQL itself refuses new plaintext (the check the migration adds)
    with pytest.raises(Exception, match="person_no_plaintext"), engine.begin() as c:
        c.execute(text("INSERT INTO person (room_id, county, name, id_number) SELECT id, division_code, 'x', :n FROM addr_node "
                       "WHERE code = :r"), {"n": idn, "r": room})


def test_masks_are_as_before(client: TestClient, engine: Engine, room: str, officer: dict[str, str]) -> None:
    idn = _id_number("1234")
    answer = _register(client, room, officer, idn, "13912345678")
    assert answer["id_number"] == idn and not answer.get("masked")  # the officer holds the personal grant
    with engine.connect() as c:  # decrypted, then masked for a caller without the grant (classification.py)
        row = c.execute(text("SELECT name, id_number_enc, phone_enc FROM person WHERE id = :i"), {"i": answer["id"]})
        shown = classification.redact_person(ANONYMOUS, crypto.open_person(row.one()._mapping), None)
    assert {"name": "赵**", "id_number": "420281********1234", "phone": "139****5678"}.items() <= shown.items()


def test_lookup_by_id_number_goes_through_the_keyed_hash(client: TestClient, engine: Engine, room: str,
                                                         officer: dict[str, str]) -> None:
    idn = _id_number()
    body = idn[:17] + ("x" if idn.endswith("X") else idn[17])
    pid = _register(client, room, officer, idn, _phone())["id"]
    spaced = f" {body[:6]} {body[6:14]} {body[14:]} "  # as typed: spaces, lower-case x
    r = client.post("/persons/search", headers=officer, json={"id_number": spaced})
    assert r.status_code == 200, r.text
    assert [p["id"] for p in r.json()["persons"]] == [pid] and r.json()["persons"][0]["room"] == room
    assert r.json()["persons"][0]["id_number"] == idn  # the officer may see it: the grant is checked in the core
    assert client.post("/persons/search", headers=officer, json={"id_number": _id_number()}).json()["count"] == 0
    assert client.post("/persons/search", json={"id_number": idn}).status_code == 401
    bad = client.post("/persons/search", headers=officer, json={"id_number": idn[:17] + "Z"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "id_number_invalid"
    assert bytes(_raw(engine, pid).id_number_hash) == crypto.index(idn)  # HMAC of the normalised number


def test_rows_written_before_the_upgrade_are_sealed_at_start(engine: Engine, database_url: str, room: str) -> None:
    from citygrid.db.bootstrap import prepare

    idn, phone = _id_number(), _phone()
    with engine.begin() as c:  # as the table was before migration 0015: plaintext, check not yet validated
        c.execute(text("ALTER TABLE person DROP CONSTRAINT person_no_plaintext"))
        pid = c.execute(text("INSERT INTO person (room_id, county, name, id_number, phone) SELECT id, division_code, '钱示例', :n, :p "
                             "FROM addr_node WHERE code = :r RETURNING id"), {"n": idn, "p": phone, "r": room}).scalar()
        c.execute(text("ALTER TABLE person ADD CONSTRAINT person_no_plaintext CHECK (id_number IS NULL AND "
                       "phone IS NULL) NOT VALID"))
    prepare(database_url)  # what every start does
    raw = _raw(engine, pid)
    assert raw.id_number is None and raw.phone is None and raw.pii_kid == keys.get_keyring().active
    assert crypto.decrypt(raw.id_number_enc, "id_number") == idn and crypto.decrypt(raw.phone_enc, "phone") == phone
    with engine.connect() as c:
        assert c.execute(text("SELECT convalidated FROM pg_constraint WHERE conname = 'person_no_plaintext'")).scalar()


def test_a_ciphertext_moved_or_altered_does_not_open(engine: Engine) -> None:
    blob = crypto.encrypt("13900000000", "phone")
    assert crypto.decrypt(blob, "phone") == "13900000000"
    with pytest.raises(CitygridError) as moved:
        crypto.decrypt(blob, "id_number")  # the field name is bound in
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(CitygridError) as altered:
        crypto.decrypt(flipped, "phone")
    assert moved.value.error_code == altered.value.error_code == "pii_corrupt"


@pytest.fixture()
def own_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine, database_url: str
                ) -> Iterator[Path]:
    """A copy of the test keyring that the test may rotate and prune. Afterwards every row is put back under the
    original key, so the rest of the session reads them with the ring it knows."""
    original = keys.get_keyring()
    path = tmp_path / "keyring.json"
    shutil.copy(keys.keyring_path(), path)
    monkeypatch.setenv("CITYGRID_KEYRING_FILE", str(path))
    monkeypatch.setenv("DATABASE_URL", database_url)  # for the CLI
    get_settings.cache_clear()
    keys.get_keyring.cache_clear()
    try:
        yield path
    finally:
        ring = keys.get_keyring()
        back = keys.Keyring(original.active, {k: v for k, v in ring.keys.items()})
        path.write_text(back.to_json(), encoding="utf-8")
        keys.get_keyring.cache_clear()
        crypto.reencrypt(engine)
        monkeypatch.undo()
        get_settings.cache_clear()
        keys.get_keyring.cache_clear()


def _cli(*args: str) -> Any:
    from citygrid.cli import app

    r = CliRunner().invoke(app, list(args))
    assert r.exit_code == 0, r.output
    return r


def test_rotation_reencrypts_every_row_and_reads_still_work(client: TestClient, engine: Engine, room: str,
                                                            officer: dict[str, str], own_keyring: Path) -> None:
    idn, phone = _id_number(), _phone()
    pid = _register(client, room, officer, idn, phone)["id"]
    before = _raw(engine, pid)
    shown = client.get(f"/addresses/{room}", headers=officer).json()["persons"]

    _cli("crypto", "rotate")
    ring = keys.get_keyring()
    assert ring.active != before.pii_kid and before.pii_kid in ring.keys  # the old key stays until retired
    after = _raw(engine, pid)
    assert after.pii_kid == crypto.kid_of(after.id_number_enc) == crypto.kid_of(after.phone_enc) == ring.active
    assert after.id_number_hash != before.id_number_hash  # the index is recomputed under the new key
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM person WHERE pii_kid <> :a"), {"a": ring.active}).scalar() == 0
        job = c.execute(text("SELECT state, done, total FROM job WHERE kind = 'crypto-reencrypt' "
                             "ORDER BY started_at DESC LIMIT 1")).one()
    assert job.state == "done" and job.done == job.total > 0  # progress went through citygrid.jobs
    assert client.get(f"/addresses/{room}", headers=officer).json()["persons"] == shown
    found = client.post("/persons/search", headers=officer, json={"id_number": idn}).json()["persons"]
    assert [p["id"] for p in found] == [pid] and found[0]["phone"] == phone


def test_an_interrupted_reencryption_resumes(engine: Engine, own_keyring: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    keys.rotate()  # the key changed, the rows not yet
    monkeypatch.setattr(crypto, "BATCH", 50)
    calls = []

    def stop_after_first_batch(stage: str, done: int, total: int | None) -> None:
        calls.append(done)
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        crypto.reencrypt(engine, stop_after_first_batch)
    with engine.connect() as c:
        state = crypto.status(c)
    assert state["persons_by_key"][state["active"]] == 50  # one batch committed, the rest still under the old key
    out = _cli("crypto", "reencrypt").output
    assert '"rewritten"' in out
    with engine.connect() as c:
        state = crypto.status(c)
    assert list(state["persons_by_key"]) == [state["active"]] and state["plaintext"] == 0


def test_retire_key_refuses_while_the_key_is_used_then_removes_it(engine: Engine, own_keyring: Path) -> None:
    old = keys.rotate().active
    crypto.reencrypt(engine)  # every row under `old`, a key no other test knows
    with engine.begin() as c:
        user = f"svc-{uuid.uuid4().hex[:8]}"
        credentials.add_principal(c, user, kind="service")
        api_key = credentials.create_api_key(c, user, "retire test")  # hashed with `old`
    keys.rotate()
    with pytest.raises(CitygridError) as active:
        crypto.retire_key(engine, keys.get_keyring().active)
    assert active.value.error_code == "key_active"
    with pytest.raises(CitygridError) as rows:
        crypto.retire_key(engine, old)  # person rows still under it
    assert rows.value.error_code == "key_in_use" and "person rows" in rows.value.message_en
    crypto.reencrypt(engine)
    with pytest.raises(CitygridError) as live:
        crypto.retire_key(engine, old)  # the API key still needs it
    assert "0 person rows" in live.value.message_en and "1 live API keys" in live.value.message_en
    with engine.begin() as c:
        credentials.revoke_api_key(c, api_key["id"])
    out = json.loads(_cli("crypto", "retire-key", old).output)
    assert out["retired"] == old and old not in out["ring"] and old not in json.loads(own_keyring.read_text())["keys"]


def test_a_row_under_a_removed_key_fails_loudly(client: TestClient, engine: Engine, room: str,
                                                officer: dict[str, str]) -> None:
    pid = _register(client, room, officer, _id_number(), _phone())["id"]
    lost = keys.Keyring("k99", {"k99": b"\x01" * 32})  # a key that is in no ring any more
    try:
        with engine.begin() as c:
            c.execute(text("UPDATE person SET phone_enc = :b, pii_kid = 'k99' WHERE id = :i"),
                      {"b": crypto.encrypt(_phone(), "phone", lost), "i": pid})
        r = client.get(f"/addresses/{room}", headers=officer)
        assert r.status_code == 500 and r.json()["error_code"] == "pii_key_missing" and "k99" in r.json()["message_en"]
        with pytest.raises(CitygridError) as exc:
            crypto.decrypt(_raw(engine, pid).phone_enc, "phone")
        assert exc.value.error_code == "pii_key_missing"
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM person WHERE id = :i"), {"i": pid})


def test_webhook_secrets_follow_a_rotation(client: TestClient, engine: Engine, own_keyring: Path,
                                          admin_headers: dict[str, str]) -> None:
    """A webhook secret sealed under a key keeps that key from being retired until `reencrypt` re-seals it, and
    opens to the same secret afterwards (its receiver's check keeps working)."""
    old = keys.rotate().active
    r = client.post("/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=admin_headers)
    assert r.status_code == 201, r.text
    hook, secret = r.json()["id"], r.json()["secret"]
    with engine.connect() as c:
        assert c.execute(text("SELECT secret_kid FROM webhook WHERE id = :i"), {"i": hook}).scalar_one() == old
    new = keys.rotate().active
    crypto.reencrypt(engine)  # persons and webhook secrets under `new`
    with engine.connect() as c:
        row = c.execute(text("SELECT secret_enc, secret_kid FROM webhook WHERE id = :i"), {"i": hook}).one()
    assert row.secret_kid == new and crypto.kid_of(row.secret_enc) == new and crypto.open_secret(row.secret_enc) == secret
    with engine.begin() as c:  # put it back under `old`, as a webhook made before the rotation would still be
        sealed = crypto.encrypt(secret, crypto.WEBHOOK_SECRET, keys.Keyring(old, keys.get_keyring().keys))
        c.execute(text("UPDATE webhook SET secret_enc = :e, secret_kid = :k WHERE id = :i"),
                  {"e": sealed, "k": old, "i": hook})
    with pytest.raises(CitygridError) as used:
        crypto.retire_key(engine, old)
    assert used.value.error_code == "key_in_use" and "1 webhook secrets" in used.value.message_en
    crypto.reencrypt(engine)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM webhook WHERE secret_kid = :k"), {"k": old}).scalar_one() == 0
