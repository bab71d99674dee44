"""The schema is ready for Citus (issue 14, part 7), checked against the migrated database's catalog: every large
table carries its county as distribution column (NOT NULL, one type), in every primary key, unique constraint
and foreign key between large tables; every table is distributed, reference or coordinator-only; and every join
between two large tables — in citygrid's SQL and in the database's own functions and policies — matches the
county. Citus itself is not installable here, so these are the rules it enforces, checked without it."""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid.db import citus

ROOT = Path(__file__).resolve().parents[1]
LARGE = citus.DISTRIBUTED


def _constraints(engine: Engine, kinds: str) -> list[tuple[str, str, str, list[str], str | None, list[str]]]:
    """(table, name, kind, columns, referenced table, referenced columns), in key order."""
    with engine.connect() as c:
        rows = c.execute(text(
            "SELECT c.conrelid::regclass::text, c.conname, c.contype::text, "
            "  ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i) "
            "        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i)::text[], "
            "  nullif(c.confrelid, 0)::regclass::text, "
            "  ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i) "
            "        JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)::text[] "
            "FROM pg_constraint c WHERE c.connamespace = 'public'::regnamespace AND c.contype = ANY(:k)"),
            {"k": list(kinds)}).all()
    return [(r[0], r[1], r[2], list(r[3]), r[4], list(r[5] or [])) for r in rows]


def test_every_table_is_classified(engine: Engine) -> None:
    """A new table must be placed: distributed by county, reference, or coordinator-only."""
    with engine.connect() as c:
        tables = set(c.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
    placed = [*LARGE, *citus.REFERENCE, *citus.LOCAL]
    assert len(placed) == len(set(placed)), "a table is placed twice"
    assert tables == set(placed)


def test_distribution_columns_exist_not_null_one_type(engine: Engine) -> None:
    with engine.connect() as c:
        cols = {(r.table_name, r.column_name): (r.data_type, r.is_nullable) for r in c.execute(text(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = ANY(:t)"), {"t": list(LARGE)})}
    for table, col in LARGE.items():
        assert (table, col) in cols, f"{table} has no distribution column {col}"
        assert cols[(table, col)][1] == "NO", f"{table}.{col} may be NULL"
    # co-located tables need one type for their distribution columns (Citus compares the type, not its length)
    assert {cols[(t, c)][0] for t, c in LARGE.items()} == {"character varying"}


def test_every_key_of_a_large_table_includes_the_county(engine: Engine) -> None:
    for table, name, _, columns, _, _ in _constraints(engine, "pu"):
        if table in LARGE:
            assert LARGE[table] in columns, f"{table}: {name} {columns} lacks {LARGE[table]}"
    with engine.connect() as c:  # unique indexes that are no constraint (partial ones: link_record_idx)
        idx = c.execute(text(
            "SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, "
            "  ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = i.indrelid "
            "        AND a.attnum = ANY(i.indkey))::text[] "
            "FROM pg_index i WHERE i.indisunique AND i.indrelid::regclass::text = ANY(:t)"), {"t": list(LARGE)}).all()
    assert idx
    for table, name, columns in idx:
        assert LARGE[table] in columns, f"{table}: unique index {name} {columns} lacks {LARGE[table]}"


def test_foreign_keys_are_colocated(engine: Engine) -> None:
    """Between large tables a foreign key pairs the two distribution columns; reference tables point only at
    reference tables; nothing distributed points at a coordinator-only table."""
    fks = _constraints(engine, "f")
    between = [fk for fk in fks if fk[0] in LARGE and fk[4] in LARGE]
    assert len(between) >= 8
    for table, name, _, cols, ref, ref_cols in fks:
        if table in LARGE and ref in LARGE:
            assert ref is not None
            assert LARGE[table] in cols, f"{name}: {cols} lacks {LARGE[table]}"
            assert ref_cols[cols.index(LARGE[table])] == LARGE[ref], f"{name}: county not paired with county"
        if table in citus.REFERENCE:
            assert ref in citus.REFERENCE, f"{name}: reference table {table} points at {ref}"
        if table in LARGE:
            assert ref not in citus.LOCAL, f"{name}: distributed {table} points at coordinator-only {ref}"


def test_county_is_the_codes_first_six_digits(engine: Engine) -> None:
    """Uniqueness of a code alone is kept by (code, county) only while the county is a function of the code."""
    with engine.connect() as c:
        checks = {r[0]: r[1] for r in c.execute(text(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'c' AND conname LIKE '%\\_county'"))}
    for table in ("issued_code", "city_object", "addr_node", "link"):
        col = LARGE[table]
        assert checks.get(table) == f'CHECK (("left"((code)::text, 6) = ({col})::text))', table


def test_distribute_sql_is_generated() -> None:
    sql = (ROOT / "deploy" / "citus" / "distribute.sql").read_text()
    assert sql == citus.distribute_sql(), "regenerate deploy/citus/distribute.sql from citygrid.db.citus"
    for table, col in LARGE.items():
        assert f"create_distributed_table('{table}', '{col}'" in sql
    for table in citus.REFERENCE:
        assert f"create_reference_table('{table}')" in sql


# --- joins on the county ---------------------------------------------------------------------------------------

_KEYWORDS = {"on", "where", "join", "left", "right", "inner", "full", "cross", "set", "using", "group", "order",
             "limit", "union", "select", "values", "returning", "natural", "lateral", "as", "and", "or", "when",
             "default", "for", "with"}
# a table and its alias after FROM, JOIN, UPDATE, INTO, or a comma (FROM a, b: only large tables' names count)
_TABLE_REF = re.compile(r"(?:\b(?:from|join|update|into)\s+|,\s*)(\w+)(?:\s+(?:as\s+)?(\w+))?", re.I)
_EQ = re.compile(r"\b(\w+)\.(\w+)\s*=\s*(\w+)\.(\w+)")
_CAST = re.compile(r"::\s*(?:character varying|double precision|\w+)(?:\[\])?")


def join_problems(sql: str, aliases: dict[str, str] | None = None) -> list[str]:
    """The pairs of large tables that `sql` equates a column of without also equating their counties."""
    sql = _CAST.sub("", sql).replace("(", " ").replace(")", " ")
    alias = {k.lower(): v for k, v in (aliases or {}).items()}
    for m in _TABLE_REF.finditer(sql):
        name, a = m.group(1).lower(), (m.group(2) or "").lower()
        table = name if name in LARGE else alias.get(name)  # a transition table stands for its table
        if table is not None:
            alias[name] = table
            if a and a not in _KEYWORDS:
                alias[a] = table
    related: set[tuple[str, str]] = set()
    county_eq: set[tuple[str, str]] = set()
    for m in _EQ.finditer(sql):
        a, ca, b, cb = (x.lower() for x in m.groups())
        if a == b or a not in alias or b not in alias:
            continue
        pair = (min(a, b), max(a, b))
        related.add(pair)
        if ca in citus.COUNTY_COLUMNS[alias[a]] and cb in citus.COUNTY_COLUMNS[alias[b]]:
            county_eq.add(pair)
    return [f"{alias[a]} {a} ⋈ {alias[b]} {b}" for a, b in sorted(related - county_eq)]


def _render(node: ast.expr, consts: dict[str, str]) -> str | None:
    """The text of a string expression: literals, f-strings and `+` chains; names of module constants are
    replaced by their text, anything else by a placeholder."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) and isinstance(v.value, str)
                       else (_render(v.value, consts) or " _x_ ") if isinstance(v, ast.FormattedValue) else " _x_ "
                       for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _render(node.left, consts), _render(node.right, consts)
        if left is None and right is None:
            return None
        return (left if left is not None else " _x_ ") + (right if right is not None else " _x_ ")
    if isinstance(node, ast.Name) and node.id in consts:
        return consts[node.id]
    return None


def sql_strings(source: str) -> Iterator[str]:
    """Every maximal string expression of a module (SQL is built from literals, f-strings and `+`)."""
    tree = ast.parse(source)
    consts: dict[str, str] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            value = _render(stmt.value, consts)
            if value is not None:
                consts[stmt.targets[0].id] = value

    def walk(node: ast.AST) -> Iterator[str]:
        if isinstance(node, ast.expr) and not isinstance(node, ast.Name):
            s = _render(node, consts)
            if s is not None:
                yield s
                return
        for child in ast.iter_child_nodes(node):
            yield from walk(child)

    yield from walk(tree)


def _modules() -> list[Path]:
    return [p for p in sorted((ROOT / "citygrid").rglob("*.py")) if "migrations" not in p.parts]


def test_join_rule_catches_a_join_without_the_county() -> None:
    """The checker itself: it must flag what Citus could not run on one shard, and pass what it could."""
    assert join_problems("SELECT 1 FROM link k JOIN city_object o ON o.code = k.code") == [
        "link k ⋈ city_object o"]
    assert join_problems("SELECT 1 FROM link k JOIN city_object o ON o.code = k.code "
                         "AND o.division_code = k.county") == []
    assert join_problems("SELECT 1 FROM person p, addr_node a WHERE a.id = p.room_id") == [
        "addr_node a ⋈ person p"]
    assert join_problems("EXISTS (SELECT 1 FROM city_object o WHERE (o.code)::text = (link.code)::text)",
                         {"link": "link"}) == ["link link ⋈ city_object o"]
    assert join_problems("SELECT 1 FROM addr_node n LEFT JOIN addr_node pa ON pa.id = n.parent_id") == [
        "addr_node n ⋈ addr_node pa"]
    # a module's SQL, as the scan reads it: constants and `+` chains resolved
    src = ('_COLS = "k.id, o.code"\n'
           'q = text("SELECT " + _COLS + " FROM link k JOIN city_object o "\n'
           '         f"ON o.code = k.code WHERE k.id = {x}")\n')
    assert [p for s in sql_strings(src) for p in join_problems(s)] == ["link k ⋈ city_object o"]


def test_citygrid_sql_joins_large_tables_on_the_county() -> None:
    problems = [f"{path.relative_to(ROOT)}: {p}" for path in _modules()
                for s in sql_strings(path.read_text()) for p in join_problems(s)]
    assert problems == []


@pytest.fixture(scope="module")
def trigger_tables(engine: Engine) -> dict[str, list[tuple[str, list[str]]]]:
    """function → [(table, names that stand for the table's rows inside it: NEW, OLD, transition tables)]."""
    out: dict[str, list[tuple[str, list[str]]]] = {}
    with engine.connect() as c:
        for fn, table, new, old in c.execute(text(
                "SELECT p.proname, t.tgrelid::regclass::text, t.tgnewtable, t.tgoldtable "
                "FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal")):
            out.setdefault(fn, []).append((table, ["new", "old", *(n for n in (new, old) if n)]))
    return out


def test_database_functions_and_policies_join_on_the_county(engine: Engine,
                                                            trigger_tables: dict[str, list[tuple[str, list[str]]]]
                                                            ) -> None:
    with engine.connect() as c:
        functions = c.execute(text(
            "SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
            "WHERE p.pronamespace = 'public'::regnamespace AND l.lanname IN ('sql', 'plpgsql') "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass "
            "                AND d.objid = p.oid AND d.deptype = 'e')")).all()
        policies = c.execute(text(
            "SELECT polrelid::regclass::text, polname, "
            "  coalesce(pg_get_expr(polqual, polrelid), '') || ' ' || coalesce(pg_get_expr(polwithcheck, polrelid), '') "
            "FROM pg_policy")).all()
    assert any(name == "change_log_objects" for name, _ in functions)
    problems = []
    for name, src in functions:
        contexts = [{n: table for n in names} for table, names in trigger_tables.get(name, [])] or [{}]
        problems += [f"function {name}: {p}" for ctx in contexts for p in join_problems(src, ctx)]
    for table, name, expr in policies:
        problems += [f"policy {name} on {table}: {p}" for p in join_problems(expr, {table: table})]
    assert problems == []


def test_citus_compose_file_is_valid() -> None:
    """Syntax and shape only: no Docker daemon here, and Citus's images are not reachable (deploy/citus/README.md)."""
    res = subprocess.run(["docker-compose", "-f", str(ROOT / "deploy" / "citus" / "compose.yaml"), "config"],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    services = yaml.safe_load(res.stdout)["services"]
    nodes = {k for k, v in services.items() if "shared_preload_libraries=citus" in " ".join(v.get("command") or [])}
    assert nodes == {"coordinator", "worker1", "worker2"}
    register = " ".join(services["register"]["command"])
    assert "citus_add_node('worker1'" in register and "citus_add_node('worker2'" in register
    assert "CREATE EXTENSION IF NOT EXISTS postgis" in register
    assert "postgis" in (ROOT / "deploy" / "citus" / "Dockerfile").read_text()
