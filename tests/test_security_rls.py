"""Defence in depth in PostgreSQL: the application's role owns nothing and holds exactly its grants, and row-level
security keeps a query that forgot its WHERE inside the caller's division scope (migration 0017,
`citygrid/db/roles.py`, `citygrid/security/scope.py`).

The rules are tested by connecting as the application role directly (psycopg, no citygrid code in between) and
running SQL without any WHERE, as a buggy router would. That the whole suite passes with the web application
connected as `citygrid_app` is the proof that the grants and policies are enough for what it does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from fastapi.testclient import TestClient
from shapely import wkt
from sqlalchemy import make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from citygrid.db import bootstrap, roles
from citygrid.db.engine import app_database_url, app_engine_for
from citygrid.registry.bulk import BulkItem, bulk_create
from citygrid.security.principal import ANONYMOUS, SYSTEM, Grant, Principal, system_as
from citygrid.security.scope import Scope, scope_of, scoped
from citygrid.settings import get_settings

HIDDEN = "050402"  # 人防工事: catalog `public: false`


def _conninfo(url: str) -> str:
    u = make_url(url)
    return f"host={u.host} port={u.port} user={u.username} dbname={u.database}" + (
        f" password={u.password}" if u.password else "")


@pytest.fixture(scope="module")
def app_url(database_url: str) -> str:
    return app_database_url(database_url)


@contextmanager
def as_app(app_url: str, role: str | None = None, divisions: str | None = None,
           personal: str | None = None) -> Iterator[psycopg.Connection]:
    """A transaction of the application role with the given settings (None: left unset)."""
    with psycopg.connect(_conninfo(app_url)) as c:
        for name, value in (("role", role), ("citygrid.divisions", divisions), ("citygrid.personal", personal)):
            if value is not None:
                c.execute("SELECT set_config(%s, %s, true)", (name, value))
        yield c
        c.rollback()


@pytest.fixture(scope="module")
def towns(engine: Engine, demo_county: dict) -> list[str]:
    """Two demo townships with outlines and persons, each with one object of a class kept out of public layers."""
    with engine.connect() as c:
        rows = c.execute(text(
            "SELECT a.township_code, count(*) FROM person p JOIN addr_node a ON a.id = p.room_id "
            "WHERE a.township_code IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 2")).all()
        assert len(rows) == 2, "the demo county should have persons in two townships"
        towns = [r[0] for r in rows]
        points = {t: c.execute(text("SELECT ST_AsText(ST_PointOnSurface(geom)) FROM division WHERE code = :t"),
                               {"t": t}).scalar_one() for t in towns}
    with Session(engine) as s, s.begin():
        for t in towns:
            bulk_create(s, system_as("test-rls"), HIDDEN, "420281", [BulkItem(wkt.loads(points[t]), {}, "人防测试", t)],
                        validate=False)
    return towns


# --- the role ----------------------------------------------------------------------------------------------------


def test_the_application_connects_as_its_own_role(client: TestClient, database_url: str) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    assert engine.url.username == roles.APP_LOGIN != make_url(database_url).username
    with engine.connect() as c:
        scoped(c, ANONYMOUS)
        who = c.execute(text("SELECT session_user, current_user")).one()
        owners = c.execute(text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")).scalars()
        assert tuple(who) == (roles.APP_LOGIN, roles.ALL) and roles.APP_LOGIN not in set(owners)


def test_the_login_role_is_no_superuser_and_has_nothing_of_its_own(app_url: str) -> None:
    with as_app(app_url) as c:
        r = c.execute("SELECT rolsuper, rolinherit, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
                      "WHERE rolname = current_user").fetchone()
        assert r == (False, False, False, False, False)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT count(*) FROM city_object")  # forgot the scope: refused, not empty


def test_grants_are_exactly_the_pictured_ones(engine: Engine) -> None:
    privileges = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    with engine.connect() as c:
        tables = c.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                "AND tablename NOT IN ('spatial_ref_sys', 'alembic_version')")).scalars().all()
        for role, expected in roles.GRANTS.items():
            got = {t: frozenset(p for p in privileges if c.execute(text(
                "SELECT has_table_privilege(:r, :t, :p)"), {"r": role, "t": f"public.{t}", "p": p}).scalar())
                for t in tables}
            assert {t: p for t, p in got.items() if p} == expected, role


def test_policies_are_exactly_the_pictured_ones(engine: Engine) -> None:
    with engine.connect() as c:
        enabled = set(c.execute(text("SELECT relname FROM pg_class WHERE relrowsecurity AND relkind = 'r' "
                                     "AND relnamespace = 'public'::regnamespace")).scalars())
        rows = c.execute(text("SELECT tablename, policyname, cmd, roles FROM pg_policies "
                              "WHERE schemaname = 'public'")).all()
    assert enabled == set(roles.RLS_TABLES)
    got: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {}
    for table, name, cmd, who in rows:
        got.setdefault(table, {})[name] = (cmd, tuple(sorted(who)))
    assert got == {t: {n: (cmd, tuple(sorted(r))) for n, (cmd, r) in p.items()} for t, p in roles.POLICIES.items()}


def test_the_app_role_cannot_switch_security_off_or_become_the_owner(app_url: str, database_url: str) -> None:
    owner = make_url(database_url).username
    for statement in ("ALTER TABLE city_object DISABLE ROW LEVEL SECURITY", "ALTER TABLE person NO FORCE ROW LEVEL "
                      "SECURITY", f"SET ROLE {owner}", "DROP POLICY person_area ON person",
                      "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change", "SET session_replication_role = "
                      "replica", "CREATE TABLE sneaky (x int)"):
        with as_app(app_url, roles.ALL, "*", "on") as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(statement)
    with as_app(app_url, roles.AREA, "420281001", "off") as c:
        c.execute("SET row_security = off")  # allowed, but then any query its policies would filter is an error
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT count(*) FROM city_object")


# --- scopes ------------------------------------------------------------------------------------------------------


def test_scope_of_each_kind_of_principal() -> None:
    def user(*grants: Grant, personal: bool = False) -> Principal:
        return Principal(kind="user", name="u", grants=grants, clearance="L4" if personal else "L2",
                         personal=personal)

    assert scope_of(ANONYMOUS) == Scope(roles.ALL, "*", False)
    assert scope_of(SYSTEM) == scope_of(user(Grant("admin"))) == Scope(roles.ALL, "*", True)
    assert scope_of(user()) == Scope(roles.ALL, "*", False)  # logged in, no roles: the public's
    assert scope_of(user(Grant("department", None, "public_security"), personal=True)) == Scope(roles.ALL, "*", True)
    assert scope_of(user(Grant("department", "420281001", "natural_resources"))) == Scope(roles.AREA, "420281001",
                                                                                           False)
    assert scope_of(user(Grant("cadre", "420281001002"), Grant("reviewer", "420281001"),
                         Grant("cadre", "420281003004"), personal=True)) == Scope(
        roles.AREA, "420281001,420281003004", True)


def test_an_area_sees_its_rows_and_public_classes_only_without_any_where(app_url: str, towns: list[str]) -> None:
    mine, other = towns
    with as_app(app_url, roles.AREA, mine, "on") as c:
        rows = c.execute("SELECT coalesce(village_code, township_code, division_code), class_code, o.public "
                         "FROM city_object JOIN object_class o ON o.code = class_code").fetchall()
        persons = c.execute("SELECT a.township_code FROM person p JOIN addr_node a ON a.id = p.room_id").fetchall()
        houses = c.execute("SELECT a.township_code FROM house h JOIN addr_node a ON a.id = h.room_id").fetchall()
    assert rows and all(place.startswith(mine) or public for place, _, public in rows)
    hidden = {place[:9] for place, cls, _ in rows if cls == HIDDEN}
    assert hidden == {mine}, "the other township's 人防工事 must stay invisible"
    assert persons and {t for (t,) in persons} == {mine}
    assert houses and {t for (t,) in houses} == {mine}
    with as_app(app_url, roles.AREA, other, "on") as c:
        theirs = c.execute("SELECT DISTINCT a.township_code FROM person p JOIN addr_node a ON a.id = p.room_id"
                           ).fetchall()
    assert theirs == [(other,)]


def test_no_scope_no_rows(app_url: str, towns: list[str]) -> None:
    with as_app(app_url, roles.AREA) as c:  # the role, but no divisions: nothing at all
        for table in roles.RLS_TABLES:
            if table not in ("addr_node", "organization"):  # door plates and organizations are public
                assert c.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


def test_personal_off_no_persons_or_houses(app_url: str, towns: list[str], engine: Engine) -> None:
    with engine.connect() as c:
        total = c.execute(text("SELECT count(*) FROM person")).scalar_one()
    assert total > 0
    for role, divisions in ((roles.ALL, "*"), (roles.AREA, towns[0])):
        with as_app(app_url, role, divisions, "off") as c:
            assert c.execute("SELECT count(*) FROM person").fetchone() == (0,)
            assert c.execute("SELECT count(*) FROM house").fetchone() == (0,)
            assert c.execute("SELECT count(*) FROM city_object").fetchone()[0] > 0  # type: ignore[index]
    with as_app(app_url, roles.ALL, "*", "on") as c:
        assert c.execute("SELECT count(*) FROM person").fetchone() == (total,)


def test_writes_outside_the_area_are_refused(app_url: str, towns: list[str], engine: Engine) -> None:
    mine, other = towns
    with engine.connect() as c:
        room = c.execute(text("SELECT id FROM addr_node WHERE level = 'room' AND township_code = :t LIMIT 1"),
                         {"t": other}).scalar_one()
        theirs = c.execute(text("SELECT code FROM city_object WHERE township_code = :t AND class_code <> :h "
                                "LIMIT 1"), {"t": other, "h": HIDDEN}).scalar_one()
    code = "4202819" + uuid.uuid4().hex[:14]
    insert = ("INSERT INTO city_object (uid, code, class_code, division_code, township_code, geom, created_by, "
              "updated_by) VALUES (gen_random_uuid(), %s, '050402', '420281', %s, "
              "ST_SetSRID(ST_MakePoint(114.9, 30.1), 4490), 't', 't')")
    with as_app(app_url, roles.AREA, mine, "on") as c:
        c.execute("INSERT INTO issued_code (code, division_code, class_code, serial, state) "
                  "VALUES (%s, '420281', '050402', 999999, 'assigned')", (code,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), c.transaction():
            c.execute(insert, (code, other))
        c.execute(insert, (code, mine))  # the same row inside the area is fine
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), c.transaction():
            c.execute("UPDATE city_object SET name = 'x' WHERE code = %s", (theirs,))  # readable, not writable
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), c.transaction():
            c.execute("UPDATE city_object SET township_code = %s WHERE code = %s", (other, code))  # moving it out
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), c.transaction():
            c.execute("INSERT INTO person (room_id, county, name) VALUES (%s, '420281', '外乡人')", (room,))
    with as_app(app_url, roles.ALL, "*", "off") as c, \
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        c.execute("INSERT INTO person (room_id, county, name) VALUES (%s, '420281', '无授权')", (room,))


def test_scope_survives_a_commit_in_the_middle(database_url: str) -> None:
    engine = app_engine_for(app_database_url(database_url))
    with engine.connect() as c:
        scoped(c, SYSTEM)
        assert c.execute(text("SELECT current_user")).scalar() == roles.ALL
        c.commit()  # logins commit their bookkeeping, then read on
        assert c.execute(text("SELECT current_user, current_setting('citygrid.personal')")).one() == (roles.ALL, "on")
    with engine.connect() as c:  # the next user of the pooled connection starts with nothing
        assert c.execute(text("SELECT current_user, coalesce(current_setting('citygrid.divisions', true), '')")
                         ).one() == (roles.APP_LOGIN, "")


def test_county_wide_reads_keep_their_spatial_index(app_url: str, towns: list[str]) -> None:
    """The county-wide role's policies are `true` and vanish at planning; the area role's are real, and the bbox
    still uses the GiST index because `&&` is marked LEAKPROOF (0017)."""
    query = ("EXPLAIN SELECT count(*) FROM city_object WHERE class_code = '050402' AND status = 'active' "
             "AND geom && ST_MakeEnvelope(114.9, 30.0, 115.0, 30.1, 4490)")
    for role, divisions in ((roles.ALL, "*"), (roles.AREA, towns[0])):
        with as_app(app_url, role, divisions, "off") as c:
            c.execute("SET enable_seqscan = off")  # a tiny table: ask whether the index *can* be used
            plan = "\n".join(r[0] for r in c.execute(query))
        assert "Index" in plan and "Seq Scan" not in plan, plan
        if role == roles.ALL:
            assert "InitPlan" not in plan, plan



def test_tiles_of_every_kind_keep_their_spatial_index_in_an_area(app_url: str, towns: list[str]) -> None:
    """A tile's bbox test must not pass a column through a function that is not LEAKPROOF (`ST_Transform(b.e)` of
    a CTE did): under the area role's policy the planner then keeps it behind the policy and scans the whole
    class (27.9 → 1.2 ms for a z15 tile of the demo's largest class once fixed)."""
    from citygrid.layers import sources

    area = Principal(kind="user", name="t", grants=(Grant("department", towns[0], "natural_resources"),))
    for layer_id in ("class-050402", "divisions", "doorplates"):
        layer = sources.find(layer_id)
        assert layer is not None
        view = layer.view(area) or layer.view(SYSTEM)
        assert view is not None
        sql, params = layer.tile_sql(15, view)
        params |= {"z": 15, "x": 26847, "y": 13498, "ext": 4096, "buf": 64, "cap": 20000, "layer": "t"}
        used = {k: v for k, v in params.items() if f":{k}" in sql}
        query = text(sql).bindparams(**used).compile(compile_kwargs={"literal_binds": True})
        with as_app(app_url, roles.AREA, towns[0], "off") as c:
            c.execute("SET enable_seqscan = off")
            plan = "\n".join(r[0] for r in c.execute(f"EXPLAIN {query}"))
        assert "Index Cond" in plan and "&&" in plan.split("Index Cond", 1)[1].split("\n", 1)[0], (layer_id, plan)

def test_deployments_give_the_app_role_its_own_url_and_password(database_url: str, engine: Engine,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """CITYGRID_APP_DATABASE_URL wins over the derived URL; its password is given to the role as a SCRAM verifier
    (never in clear, which pgaudit would log); a role that cannot log in stops the start with what to set."""
    with engine.connect() as c:
        if not c.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar():
            pytest.skip("reading pg_authid needs a superuser")
    given = make_url(app_database_url(database_url)).set(password="s3cret-app").render_as_string(hide_password=False)
    monkeypatch.setenv("CITYGRID_APP_DATABASE_URL", given)
    get_settings.cache_clear()
    try:
        assert app_database_url(database_url) == given
        bootstrap._set_app_password(engine)
        with engine.begin() as c:
            stored = c.execute(text("SELECT rolpassword FROM pg_authid WHERE rolname = :r"),
                               {"r": roles.APP_LOGIN}).scalar()
            c.execute(text(f"ALTER ROLE {roles.APP_LOGIN} PASSWORD NULL"))  # back to trust only
        assert stored.startswith("SCRAM-SHA-256$") and "s3cret-app" not in stored
    finally:
        monkeypatch.delenv("CITYGRID_APP_DATABASE_URL")
        get_settings.cache_clear()
    unreachable = make_url(app_database_url(database_url)).set(port=1).render_as_string(hide_password=False)
    with pytest.raises(bootstrap.AppRoleError, match="CITYGRID_APP_DATABASE_URL"):
        bootstrap.check_app_login(app_engine_for(unreachable))
