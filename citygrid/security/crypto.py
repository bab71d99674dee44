"""ID numbers and phone numbers encrypted at rest, a keyed hash for finding a person by ID number, and the
re-encryption that follows a key rotation.

**Format.** A value is sealed with AES-256-GCM (`cryptography`'s AESGCM) under the key the keyring derives for
"pii-encrypt" from its active key. The stored blob is self-describing:
`version (1 byte) | len(kid) (1 byte) | kid | nonce (12 bytes) | ciphertext+tag`, so `decrypt` finds the key by
itself and any key still in the ring opens it. The associated data is the header plus the field name, so a
ciphertext moved into another column (a phone into `id_number_enc`) or given another key id fails to open.
`person.pii_kid` repeats the key id of the row's blobs so rotation and `retire-key` find rows by key with SQL.

**Lookup.** `person.id_number_hash` is HMAC-SHA256 of the normalised ID number (NFKC, no spaces, upper-case X)
under the "pii-index" key of the row's `pii_kid`. A lookup hashes the number under every key in the ring (a
handful) and asks for any of them, so it keeps working half-way through a re-encryption.

**Failing loudly.** A blob under a key that is not in the ring (`pii_key_missing`) or that does not
authenticate (`pii_corrupt`) raises a coded error answered with 500: a person is never shown with an empty ID
number because its key was lost.

**Plaintext columns.** Migration 0015 adds the encrypted columns and a `NOT VALID` check that `id_number` and
`phone` are NULL: PostgreSQL refuses any new plaintext at once, while rows written before the upgrade are
left for the application, which alone holds the keys (a migration may run where the keyring is not). At every
start `seal_leftovers` (called by `citygrid/db/bootstrap.py`) encrypts such rows in batches and then
validates the check, after which the start-up cost is one catalogue lookup. The empty plaintext columns are
dropped by a later migration, once every deployment has run this one.

**Webhook secrets** (migration 0022) are sealed the same way (`seal_secret`, field "webhook_secret", key id in
`webhook.secret_kid`): whoever reads one can sign batches its receiver will trust. Leftover plaintext from before
0022 is sealed at start like person rows, rotation re-seals them, and a key that still seals one is not retired.

**Rotation** (`citygrid crypto rotate`): the keyring gets a new active key (`keys.rotate`), then `reencrypt`
re-seals every row not under it, in batches of its own transactions with progress in the job table, so an
interrupted run is resumed by `citygrid crypto reencrypt`. Old keys stay in the ring until
`citygrid crypto retire-key KID` has checked that no person row and no live API key uses one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine, RowMapping

from citygrid.errors import E
from citygrid.progress import Progress
from citygrid.security import keys
from citygrid.settings import get_settings

VERSION = 1
NONCE = 12
FIELDS = ("id_number", "phone")  # the encrypted person fields, each in `<field>_enc`
BATCH = 1000


def normalise_id_number(value: str) -> str:
    """Full-width digits to ASCII, no whitespace, `x` → `X`: the form that is hashed and stored."""
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def _header(kid: str) -> bytes:
    raw = kid.encode("ascii")
    if not 0 < len(raw) < 256:
        raise ValueError(f"key id {kid!r} does not fit the blob header")
    return bytes([VERSION, len(raw)]) + raw


def _aead(ring: keys.Keyring, kid: str) -> AESGCM:
    return AESGCM(ring.derive(kid, "pii-encrypt"))


def encrypt(value: str, purpose: str, ring: keys.Keyring | None = None) -> bytes:
    """`value` sealed under the active key; `purpose` is the field name, bound into the ciphertext."""
    ring = ring or keys.current()
    header = _header(ring.active)
    nonce = os.urandom(NONCE)
    return header + nonce + _aead(ring, ring.active).encrypt(nonce, value.encode("utf-8"), header + purpose.encode())


def kid_of(blob: bytes) -> str:
    """The key id a blob was sealed with."""
    blob = bytes(blob)
    if len(blob) < 2 or blob[0] != VERSION or len(blob) < 2 + blob[1] + NONCE + 16:
        raise E.pii_corrupt(None)
    return blob[2:2 + blob[1]].decode("ascii", "replace")


def decrypt(blob: bytes, purpose: str) -> str:
    """The plaintext of a blob from the `purpose` field, under whichever key of the ring sealed it."""
    blob = bytes(blob)
    kid = kid_of(blob)
    ring = keys.current()
    if kid not in ring.keys:
        ring = keys.current(every=0)  # another process may just have rotated: look at the file once more
        if kid not in ring.keys:
            raise E.pii_key_missing(None, kid=kid)
    n = 2 + blob[1]
    header, nonce, body = blob[:n], blob[n:n + NONCE], blob[n + NONCE:]
    try:
        return _aead(ring, kid).decrypt(nonce, body, header + purpose.encode()).decode("utf-8")
    except InvalidTag as exc:
        raise E.pii_corrupt(purpose) from exc


def index(value: str, kid: str | None = None, ring: keys.Keyring | None = None) -> bytes:
    """The keyed hash of an ID number under `kid` (default: the active key), for exact lookup."""
    ring = ring or keys.current()
    key = ring.derive(kid or ring.active, "pii-index")
    return hmac.new(key, normalise_id_number(value).encode("utf-8"), hashlib.sha256).digest()


def index_candidates(value: str) -> list[bytes]:
    """The hash of an ID number under every key in the ring: rows hashed under any of them match."""
    ring = keys.current()
    return [index(value, kid, ring) for kid in sorted(ring.keys)]


def seal_person(id_number: str | None, phone: str | None) -> dict[str, Any]:
    """The stored form of a person's ID number and phone: the columns `id_number_enc`, `phone_enc`,
    `id_number_hash` and `pii_kid` (all under one key), plaintext columns NULL."""
    ring = keys.current()
    idn = normalise_id_number(id_number) if id_number else None
    ph = "".join(phone.split()) if phone else None
    return {"id_number_enc": encrypt(idn, "id_number", ring) if idn else None,
            "phone_enc": encrypt(ph, "phone", ring) if ph else None,
            "id_number_hash": index(idn, ring.active, ring) if idn else None,
            "pii_kid": ring.active if (idn or ph) else None}


def open_person(row: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
    """A person row read with `id_number_enc, phone_enc` → the same with `id_number, phone` in clear (for
    masking or for a caller allowed to see them); other keys are kept in order."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k.endswith("_enc") and k[:-4] in FIELDS:
            out[k[:-4]] = decrypt(v, k[:-4]) if v is not None else None
        else:
            out[k] = v
    return out


# --- whole-table passes: leftovers after the upgrade, re-encryption after a rotation ---------------------------

_NEEDS_WORK = ("(id_number IS NOT NULL OR phone IS NOT NULL OR ((id_number_enc IS NOT NULL OR phone_enc IS NOT NULL) "
               "AND pii_kid IS DISTINCT FROM :active))")
_PLAINTEXT = "(id_number IS NOT NULL OR phone IS NOT NULL)"


def _pass(engine: Engine, where: str, stage: str, progress: Progress | None) -> int:
    """Re-seal every row matching `where` under the active key, `BATCH` rows per transaction (keyset by id), so
    an interrupted pass resumes where it stopped. Returns how many rows were written."""
    active = keys.current(every=0).active
    with engine.connect() as c:
        total = int(c.execute(text(f"SELECT count(*) FROM person WHERE {where}"), {"active": active}).scalar_one())
    if progress:
        progress(stage, 0, total)
    done, last = 0, 0
    while True:
        with engine.begin() as c:
            rows = c.execute(text(
                f"SELECT id, id_number, phone, id_number_enc, phone_enc FROM person WHERE id > :last AND {where} "
                "ORDER BY id LIMIT :n FOR UPDATE"), {"last": last, "active": active, "n": BATCH}).all()
            if not rows:
                break
            updates = []
            for r in rows:
                idn = r.id_number or (decrypt(r.id_number_enc, "id_number") if r.id_number_enc is not None else None)
                ph = r.phone or (decrypt(r.phone_enc, "phone") if r.phone_enc is not None else None)
                updates.append({"id": r.id} | seal_person(idn, ph))
            c.execute(text("UPDATE person SET id_number = NULL, phone = NULL, id_number_enc = :id_number_enc, "
                           "phone_enc = :phone_enc, id_number_hash = :id_number_hash, pii_kid = :pii_kid "
                           "WHERE id = :id"), updates)
            last = rows[-1].id
            done += len(rows)
        if progress:
            progress(stage, done, max(total, done))
    return done


WEBHOOK_SECRET = "webhook_secret"  # the field name bound into a webhook secret's ciphertext


def seal_secret(secret: str) -> tuple[bytes, str]:
    """A webhook secret sealed under the active key, and that key's id (for `webhook.secret_kid`)."""
    ring = keys.current()
    return encrypt(secret, WEBHOOK_SECRET, ring), ring.active


def open_secret(sealed: bytes | None, plain: str | None = None) -> str:
    """A webhook's secret: from its sealed form, or the plaintext a row from before 0022 still holds."""
    if sealed is not None:
        return decrypt(sealed, WEBHOOK_SECRET)
    if plain is None:
        raise E.pii_corrupt(WEBHOOK_SECRET)
    return plain


_WEBHOOK_WORK = "(secret IS NOT NULL OR (secret_enc IS NOT NULL AND secret_kid IS DISTINCT FROM :active))"


def _webhook_pass(engine: Engine, where: str) -> int:
    """Re-seal the webhook secrets matching `where` under the active key (a handful of rows: one transaction)."""
    active = keys.current(every=0).active
    with engine.begin() as c:
        rows = c.execute(text(f"SELECT id, secret, secret_enc FROM webhook WHERE {where} ORDER BY id FOR UPDATE"),
                         {"active": active}).all()
        for r in rows:
            sealed, kid = seal_secret(open_secret(r.secret_enc, r.secret))
            c.execute(text("UPDATE webhook SET secret = NULL, secret_enc = :e, secret_kid = :k WHERE id = :id"),
                      {"e": sealed, "k": kid, "id": r.id})
    return len(rows)


def reencrypt(engine: Engine, progress: Progress | None = None) -> dict[str, Any]:
    """Every person row and webhook secret under the active key (and no plaintext left); safe to run again at
    any time."""
    n = _pass(engine, _NEEDS_WORK, "re-encrypt persons", progress)
    hooks = _webhook_pass(engine, _WEBHOOK_WORK)
    with engine.connect() as c:
        return {"active": keys.current().active, "rewritten": n, "webhooks_rewritten": hooks} | status(c)


def _validated(engine: Engine, table: str, constraint: str) -> bool | None:
    with engine.connect() as c:
        valid = c.execute(text("SELECT convalidated FROM pg_constraint WHERE conname = :n AND conrelid = "
                               "CAST(:t AS regclass)"), {"n": constraint, "t": table}).scalar()
    return None if valid is None else bool(valid)


def seal_leftovers(engine: Engine) -> int:
    """Encrypt rows still holding plaintext from before migrations 0015 (persons) and 0022 (webhook secrets),
    then validate the checks that keep the plaintext columns empty. Once validated, this is two catalogue
    lookups."""
    n = 0
    if _validated(engine, "person", "person_no_plaintext") is False:
        n += _pass(engine, _PLAINTEXT, "encrypt personal fields", None)
        with engine.begin() as c:
            c.execute(text("ALTER TABLE person VALIDATE CONSTRAINT person_no_plaintext"))
    if _validated(engine, "webhook", "webhook_no_plaintext") is False:
        n += _webhook_pass(engine, "secret IS NOT NULL")
        with engine.begin() as c:
            c.execute(text("ALTER TABLE webhook VALIDATE CONSTRAINT webhook_no_plaintext"))
    return n


def status(c: Connection) -> dict[str, Any]:
    """Rows by key id, rows still in plaintext, and the ring's keys."""
    by_key: dict[str, int] = {str(k): int(n) for k, n in c.execute(text(
        "SELECT pii_kid, count(*) FROM person WHERE pii_kid IS NOT NULL GROUP BY pii_kid ORDER BY pii_kid")).all()}
    plain = c.execute(text(f"SELECT count(*) FROM person WHERE {_PLAINTEXT}")).scalar_one()
    ring = keys.current()
    return {"active": ring.active, "ring": sorted(ring.keys), "persons_by_key": by_key, "plaintext": plain}


def retire_key(engine: Engine, kid: str) -> dict[str, Any]:
    """Remove `kid` from the keyring after checking that nothing still needs it: no person row sealed under it
    and no live API key hashed with it. Tokens it signed stop working (their holders log in again)."""
    ring = keys.current(every=0)
    if kid not in ring.keys:
        raise E.key_unknown("kid", kid=kid)
    if kid == ring.active:
        raise E.key_active("kid", kid=kid)
    with engine.connect() as c:
        persons = c.execute(text("SELECT count(*) FROM person WHERE pii_kid = :k OR (pii_kid IS NULL AND "
                                 "(id_number_enc IS NOT NULL OR phone_enc IS NOT NULL))"), {"k": kid}).scalar_one()
        api_keys = c.execute(text("SELECT count(*) FROM api_key WHERE hash_kid = :k AND revoked_at IS NULL AND "
                                  "(expires_at IS NULL OR expires_at > now())"), {"k": kid}).scalar_one()
        hooks = c.execute(text("SELECT count(*) FROM webhook WHERE secret_kid = :k"), {"k": kid}).scalar_one()
    if persons or api_keys or hooks:
        raise E.key_in_use("kid", kid=kid, uses_zh=f"{persons} 条人口记录（先运行 citygrid crypto reencrypt），"
                           f"{api_keys} 个有效 API 密钥（重新签发后吊销），{hooks} 个回调密钥（同样先 reencrypt）",
                           uses_en=f"{persons} person rows (run citygrid crypto reencrypt first), {api_keys} live "
                           f"API keys (issue new ones, then revoke these), {hooks} webhook secrets (reencrypt "
                           "re-seals them too)")
    if get_settings().keyring:  # not ours to edit
        return {"verified": kid, "note": "no row or live API key uses it: remove it from CITYGRID_KEYRING"}
    keys.retire(kid)
    return {"retired": kid, "ring": sorted(keys.current(every=0).keys)}
