"""Authentication: logins and lockout, bearer tokens (expiry, forgery, key rotation), API keys (revocation, last
use), disabled principals, demo credentials only with the demo flag, and the author of history is the caller."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from citygrid.security import credentials, keys
from citygrid.security.principal import Grant
from citygrid.settings import get_settings

PASSWORD = "correct horse battery"


def _user(engine: Engine, grants: list[Grant] | None = None, demo: bool = False, **kw: object) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    with engine.begin() as c:
        credentials.add_principal(c, name, password=PASSWORD, grants=grants or [], demo=demo, **kw)  # type: ignore[arg-type]
    return name


def _login(client: TestClient, name: str, password: str = PASSWORD) -> object:
    return client.post("/auth/token", data={"username": name, "password": password})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_gives_a_token_that_names_the_principal(client: TestClient, engine: Engine) -> None:
    name = _user(engine, [Grant("department", "420281", "natural_resources")], clearance="L3")
    r = _login(client, name)
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["token_type"] == "bearer" and body["expires_in"] == get_settings().token_minutes * 60
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["iss"] == "citygrid" and claims["aud"] == "citygrid-api" and claims["exp"] > claims["iat"]
    assert jwt.get_unverified_header(body["access_token"])["kid"] == keys.get_keyring().active
    me = client.get("/auth/me", headers=_bearer(body["access_token"])).json()
    assert me["username"] == name and me["clearance"] == "L3" and me["via"] == "token"
    assert me["roles"] == [{"role": "department", "division": "420281", "department": "natural_resources",
                            "classes": None}]
    assert client.get("/auth/me").json()["kind"] == "anonymous"


def test_wrong_password_and_unknown_user_look_the_same_and_lock_after_repeated_failures(
        client: TestClient, engine: Engine) -> None:
    name = _user(engine)
    unknown = _login(client, "nobody-" + uuid.uuid4().hex[:6])
    wrong = _login(client, name, "wrong password!")
    for r in (unknown, wrong):
        assert r.status_code == 401 and r.json()["error_code"] == "login_failed"  # type: ignore[attr-defined]
    for _ in range(get_settings().login_max_failures - 1):
        _login(client, name, "wrong password!")
    locked = _login(client, name)  # the right password no longer helps
    assert locked.status_code == 429 and locked.json()["error_code"] == "account_locked"  # type: ignore[attr-defined]
    assert int(locked.headers["Retry-After"]) > 0  # type: ignore[attr-defined]
    with engine.begin() as c:  # the lock ends by itself
        c.execute(text("UPDATE principal SET locked_until = now() - interval '1 s' WHERE username = :u"), {"u": name})
    assert _login(client, name).status_code == 200  # type: ignore[attr-defined]
    with engine.connect() as c:
        assert c.execute(text("SELECT failed_logins FROM principal WHERE username = :u"), {"u": name}).scalar() == 0


def test_expired_and_forged_tokens_are_refused(client: TestClient, engine: Engine) -> None:
    name = _user(engine)
    with engine.connect() as c:
        pid = c.execute(text("SELECT id FROM principal WHERE username = :u"), {"u": name}).scalar()
    s = get_settings()
    kid, key = keys.get_keyring().active_key("jwt")
    now = dt.datetime.now(dt.UTC)
    base = {"sub": str(pid), "iss": s.token_issuer, "aud": s.token_audience, "iat": now - dt.timedelta(hours=2)}
    expired = jwt.encode(base | {"exp": now - dt.timedelta(hours=1)}, key, headers={"kid": kid})
    r = client.get("/auth/me", headers=_bearer(expired))
    assert r.status_code == 401 and r.json()["error_code"] == "token_expired"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    good = base | {"exp": now + dt.timedelta(hours=1)}
    forged = jwt.encode(good, b"k" * 32, headers={"kid": kid})  # another key under our key id
    unknown_kid = jwt.encode(good, key, headers={"kid": "k999"})
    wrong_aud = jwt.encode(good | {"aud": "someone-else"}, key, headers={"kid": kid})
    none_alg = jwt.encode(good, None, algorithm="none", headers={"kid": kid})
    for t in (forged, unknown_kid, wrong_aud, none_alg, "not-a-token"):
        r = client.get("/auth/me", headers=_bearer(t))
        assert r.status_code == 401 and r.json()["error_code"] == "token_invalid", t
    assert client.get("/auth/me", headers=_bearer(jwt.encode(good, key, headers={"kid": kid}))).status_code == 200


@pytest.fixture()
def own_keyring(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:  # noqa: ANN001
    monkeypatch.setenv("CITYGRID_KEYRING_FILE", str(tmp_path / "ring.json"))
    get_settings.cache_clear()
    keys.get_keyring.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    keys.get_keyring.cache_clear()


def test_key_rotation_keeps_old_tokens_working(client: TestClient, engine: Engine, own_keyring: None) -> None:
    name = _user(engine)
    old = _login(client, name).json()["access_token"]  # type: ignore[attr-defined]
    ring = keys.rotate()
    assert len(ring.keys) == 2 and ring.active == "k2"
    new = _login(client, name).json()["access_token"]  # type: ignore[attr-defined]
    assert jwt.get_unverified_header(old)["kid"] == "k1" and jwt.get_unverified_header(new)["kid"] == "k2"
    for t in (old, new):
        assert client.get("/auth/me", headers=_bearer(t)).json()["username"] == name


def test_api_keys_work_until_revoked_and_record_their_use(client: TestClient, engine: Engine) -> None:
    name = _user(engine, [Grant("department", "420281", "housing")])
    with engine.begin() as c:
        k = credentials.create_api_key(c, name, "test system")
    assert k["key"].startswith("cg_")
    for headers in ({"X-API-Key": k["key"]}, _bearer(k["key"])):
        me = client.get("/auth/me", headers=headers).json()
        assert me["username"] == name and me["via"] == "api_key"
    with engine.connect() as c:
        row = c.execute(text("SELECT last_used_at, secret_hash FROM api_key WHERE id = :i"), {"i": k["id"]}).first()
    assert row.last_used_at is not None and k["key"].encode() not in bytes(row.secret_hash)
    wrong = k["key"][:-3] + ("aaa" if not k["key"].endswith("aaa") else "bbb")
    assert client.get("/auth/me", headers={"X-API-Key": wrong}).status_code == 401
    with engine.begin() as c:
        credentials.revoke_api_key(c, k["id"])
    r = client.get("/auth/me", headers={"X-API-Key": k["key"]})
    assert r.status_code == 401 and r.json()["error_code"] == "token_invalid"


def test_disabled_principal_is_refused_at_once(client: TestClient, engine: Engine) -> None:
    name = _user(engine)
    token = _login(client, name).json()["access_token"]  # type: ignore[attr-defined]
    with engine.begin() as c:
        k = credentials.create_api_key(c, name, "x")
        credentials.set_disabled(c, name)
    assert client.get("/auth/me", headers=_bearer(token)).status_code == 401
    assert client.get("/auth/me", headers={"X-API-Key": k["key"]}).status_code == 401
    assert _login(client, name).status_code == 401  # type: ignore[attr-defined]


def test_demo_credentials_work_only_with_the_demo_flag(client: TestClient, engine: Engine,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    name = _user(engine, demo=True)
    assert not get_settings().demo
    assert _login(client, name).status_code == 401  # type: ignore[attr-defined]
    monkeypatch.setenv("CITYGRID_DEMO", "1")
    get_settings.cache_clear()
    try:
        token = _login(client, name).json()["access_token"]  # type: ignore[attr-defined]
        assert client.get("/auth/me", headers=_bearer(token)).status_code == 200
        monkeypatch.delenv("CITYGRID_DEMO")
        get_settings.cache_clear()
        assert client.get("/auth/me", headers=_bearer(token)).status_code == 401  # flag off: its tokens stop too
    finally:
        get_settings.cache_clear()


def test_history_records_the_caller_not_a_header(client: TestClient, engine: Engine) -> None:
    name = _user(engine, [Grant("admin")], clearance="L4")
    token = _login(client, name).json()["access_token"]  # type: ignore[attr-defined]
    body = {"class_code": "050402", "geometry": {"type": "Point", "coordinates": [114.95, 30.1]},
            "attrs": {"state": "完好"}}
    r = client.post("/objects", json=body, headers=_bearer(token) | {"X-Citygrid-User": "mallory"})
    assert r.status_code == 201, r.text
    hist = client.get(f"/objects/{r.json()['code']}/history", headers=_bearer(token)).json()["versions"]
    assert hist[0]["changed_by"] == name


def _principal_reads(client: TestClient, headers: dict[str, str]) -> tuple[int, int]:
    """Status of GET /auth/me and how many statements it sent that read the credential tables."""
    seen: list[str] = []

    def spy(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    engine = client.app.state.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", spy)
    try:
        status = client.get("/auth/me", headers=headers).status_code
    finally:
        event.remove(engine, "before_cursor_execute", spy)
    return status, sum(("FROM principal" in s or "FROM api_key" in s) for s in seen)


def test_a_known_credential_is_not_loaded_again_but_every_change_of_rights_is_seen_at_once(
        client: TestClient, engine: Engine) -> None:
    """The credential cache (citygrid/security/caller.py): the second request of a token or key reads no
    credential table; a changed clearance, a new role, a revoked key and a disabled principal are all seen on
    the very next request, because the version migration 0021's triggers keep comes back with the scope."""
    name = _user(engine, [Grant("department", "420281", "natural_resources")], clearance="L2")
    token = _login(client, name).json()["access_token"]  # type: ignore[attr-defined]
    with engine.begin() as c:
        key = credentials.create_api_key(c, name, "cache")["key"]
    for headers in (_bearer(token), {"X-API-Key": key}):
        assert _principal_reads(client, headers)[1] > 0
        assert _principal_reads(client, headers) == (200, 0)
    with engine.begin() as c:
        c.execute(text("UPDATE principal SET clearance = 'L3' WHERE username = :u"), {"u": name})
    assert client.get("/auth/me", headers=_bearer(token)).json()["clearance"] == "L3"
    with engine.begin() as c:
        c.execute(text("INSERT INTO principal_role (principal_id, role, division) "
                       "SELECT id, 'reviewer', '420281001' FROM principal WHERE username = :u"), {"u": name})
    assert {r["role"] for r in client.get("/auth/me", headers={"X-API-Key": key}).json()["roles"]} == \
        {"department", "reviewer"}
    with engine.begin() as c:
        credentials.revoke_api_key(c, key.split("_")[1])
    assert client.get("/auth/me", headers={"X-API-Key": key}).status_code == 401
    assert client.get("/auth/me", headers=_bearer(token)).status_code == 200
    with engine.begin() as c:
        credentials.set_disabled(c, name)
    assert client.get("/auth/me", headers=_bearer(token)).status_code == 401


def test_login_bookkeeping_does_not_invalidate_cached_credentials(client: TestClient, engine: Engine) -> None:
    """Failed logins and key use are written often and change no rights, so they leave the version alone."""
    name = _user(engine)

    def version() -> int:
        with engine.connect() as c:
            return int(c.execute(text("SELECT version FROM layer_version WHERE layer = 'principals'")).scalar_one())

    before = version()
    assert _login(client, name, "wrong password!").status_code == 401  # type: ignore[attr-defined]
    assert _login(client, name).status_code == 200  # type: ignore[attr-defined]
    assert version() == before
