"""The keyring: the secrets everything else derives its keys from (token signing, API-key hashing, encryption of
personal fields), so one file is what an operator backs up, rotates and protects.

The keyring is JSON `{"active": "k2", "keys": {"k1": "<base64 32 bytes>", "k2": "..."}}`, from the
`CITYGRID_KEYRING` setting (for containers and secret stores) or the file `keyring_file` (default
`<data_dir>/keyring.json`, created with mode 0600 on first use). New material is made with the active key; old
keys stay in the ring so what they signed or encrypted still verifies and decrypts: rotation is adding a key
and making it active (`citygrid keys rotate`), never replacing one. A key removed from the ring invalidates the
tokens it signed.

Each use gets its own key, derived with HKDF-SHA256 (`derive(kid, purpose)`), so a token-signing key can never
decrypt an ID number.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from citygrid.settings import get_settings

PURPOSES = ("jwt", "api-key", "pii-encrypt", "pii-index")


@dataclass(frozen=True)
class Keyring:
    active: str
    keys: dict[str, bytes]

    def derive(self, kid: str, purpose: str) -> bytes:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown key purpose {purpose!r}")
        return _derive(self.keys[kid], purpose)

    def active_key(self, purpose: str) -> tuple[str, bytes]:
        return self.active, self.derive(self.active, purpose)

    def to_json(self) -> str:
        return json.dumps({"active": self.active,
                           "keys": {k: base64.b64encode(v).decode() for k, v in sorted(self.keys.items())}}, indent=1)


@lru_cache(maxsize=64)
def _derive(material: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"citygrid {purpose}".encode()).derive(material)


def _parse(raw: str, where: str) -> Keyring:
    try:
        doc = json.loads(raw)
        keys = {str(k): base64.b64decode(v, validate=True) for k, v in doc["keys"].items()}
        active = str(doc["active"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RuntimeError(f"keyring {where} is malformed: {exc}") from exc
    if active not in keys or any(len(v) < 32 for v in keys.values()):
        raise RuntimeError(f"keyring {where}: the active key must be in the ring and every key at least 32 bytes")
    return Keyring(active, keys)


def keyring_path() -> Path:
    s = get_settings()
    return s.keyring_file or s.data_dir / "keyring.json"


@lru_cache(maxsize=1)
def get_keyring() -> Keyring:
    """The process's keyring; created (one fresh random key) the first time a deployment needs one."""
    s = get_settings()
    if s.keyring:
        return _parse(s.keyring, "CITYGRID_KEYRING")
    path = keyring_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        ring = Keyring("k1", {"k1": secrets.token_bytes(32)})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(ring.to_json())
    return _parse(path.read_text(encoding="utf-8"), str(path))


_seen: dict[str, object] = {"at": 0.0, "stamp": None}


def current(every: float = 2.0) -> Keyring:
    """The keyring, re-read when its file changed (looked at no more than every `every` seconds), so a running
    server picks up a rotation made by `citygrid crypto rotate` in another process without a restart."""
    if not get_settings().keyring:
        now = time.monotonic()
        if now - float(_seen["at"]) >= every:  # type: ignore[arg-type]
            _seen["at"] = now
            path = keyring_path()
            try:
                st = path.stat()
                stamp: object = (str(path), st.st_mtime_ns, st.st_size)
            except OSError:
                stamp = None
            if stamp != _seen["stamp"]:
                if _seen["stamp"] is not None:
                    get_keyring.cache_clear()
                _seen["stamp"] = stamp
    return get_keyring()


def rotate() -> Keyring:
    """Add a fresh key to the file keyring and make it active; old keys stay for verification and decryption."""
    if get_settings().keyring:
        raise RuntimeError("the keyring comes from CITYGRID_KEYRING: rotate it in the secret store that sets it")
    ring = get_keyring()
    n = 1 + max(int(k[1:]) for k in ring.keys if k[1:].isdigit())
    new = Keyring(f"k{n}", ring.keys | {f"k{n}": secrets.token_bytes(32)})
    _write(new)
    return new


def _write(ring: Keyring) -> None:
    """Replace the keyring file atomically (mode 0600) and forget the cached copy."""
    path = keyring_path()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(ring.to_json())
    tmp.replace(path)
    get_keyring.cache_clear()


def retire(kid: str) -> Keyring:
    """Remove a key from the file keyring. Callers check first that nothing still needs it (`citygrid crypto
    retire-key` does: encrypted rows, live API keys); tokens it signed stop verifying at once."""
    if get_settings().keyring:
        raise RuntimeError("the keyring comes from CITYGRID_KEYRING: remove the key in the secret store that sets it")
    ring = get_keyring()
    if kid == ring.active or kid not in ring.keys:
        raise ValueError(f"cannot retire {kid!r}: it is the active key or not in the ring")
    _write(Keyring(ring.active, {k: v for k, v in ring.keys.items() if k != kid}))
    return get_keyring()
