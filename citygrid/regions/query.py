"""Read divisions: by any code of any scheme, children, ancestors, search by name or alias."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

_COLS = "code, level, name, short_name, aliases, kind, parent_code, stat_code, mca_code, sources, geom_source"
LEVEL_NAMES = {1: "省级", 2: "地级", 3: "县级", 4: "乡级", 5: "村级"}


@dataclass
class DivisionOut:
    code: str
    level: int
    name: str
    short_name: str
    aliases: list[str]
    kind: str | None
    parent_code: str | None
    stat_code: str | None
    mca_code: str | None
    sources: list[str]
    geom_source: str | None

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["level_name"] = LEVEL_NAMES.get(self.level)
        d["codes"] = {"statistical": self.stat_code, "civil_affairs": self.mca_code,
                      "gb2260": (self.code[:6].ljust(6, "0") if self.level <= 3 else None)}
        return d


def _row(r: Any) -> DivisionOut:
    return DivisionOut(*r)


def candidates(code: str) -> list[str]:
    """Our short code for any accepted spelling: 42/420000, 4202/420200, 420281, 420281001000, ..."""
    c = code.strip()
    if not c.isdigit():
        return []
    out = [c]
    if len(c) == 12:
        for n in (9, 6, 4, 2):
            if c[n:] == "0" * (12 - n):
                out.append(c[:n])
    if len(c) == 6:
        if c.endswith("0000"):
            out.append(c[:2])
        elif c.endswith("00"):
            out.append(c[:4])
    return out


def get(conn: Connection, code: str) -> DivisionOut | None:
    """Resolve a code in either scheme; the statistical code wins when both name something."""
    for cand in candidates(code):
        r = conn.execute(text(f"SELECT {_COLS} FROM division WHERE code=:c"), {"c": cand}).first()
        if r:
            return _row(r)
    for cand in candidates(code):
        r = conn.execute(
            text(f"SELECT {', '.join('d.' + c.strip() for c in _COLS.split(','))} FROM division_code dc "
                 "JOIN division d ON d.code = dc.division_code WHERE dc.code=:c ORDER BY dc.scheme DESC LIMIT 1"),
            {"c": cand},
        ).first()
        if r:
            return _row(r)
    return None


def exists(conn: Connection, code: str) -> bool:
    return get(conn, code) is not None


def children(conn: Connection, code: str, limit: int = 1000, after: str | None = None) -> list[DivisionOut]:
    rows = conn.execute(
        text(f"SELECT {_COLS} FROM division WHERE parent_code=:c AND (CAST(:a AS text) IS NULL OR code > :a) "
             "ORDER BY code LIMIT :l"),
        {"c": code, "a": after, "l": limit},
    ).all()
    return [_row(r) for r in rows]


def ancestors(conn: Connection, code: str) -> list[DivisionOut]:
    """From the province down to the direct parent."""
    rows = conn.execute(
        text(
            f"WITH RECURSIVE up AS (SELECT {_COLS}, 0 AS depth FROM division WHERE code=:c "
            f"UNION ALL SELECT {', '.join('d.' + c.strip() for c in _COLS.split(','))}, up.depth + 1 "
            "FROM division d JOIN up ON d.code = up.parent_code) "
            f"SELECT {_COLS} FROM up WHERE depth > 0 ORDER BY depth DESC"
        ),
        {"c": code},
    ).all()
    return [_row(r) for r in rows]


def search(conn: Connection, q: str, level: int | None = None, within: str | None = None,
           limit: int = 20) -> list[DivisionOut]:
    """Exact name/short name/alias first, then prefix, then substring; coarse levels first."""
    q = q.strip()
    if not q:
        return []
    rows = conn.execute(
        text(
            f"SELECT {_COLS}, CASE WHEN name=:q THEN 0 WHEN short_name=:q OR :q = ANY(aliases) THEN 1 "
            "WHEN name LIKE :p THEN 2 ELSE 3 END AS rank FROM division "
            "WHERE (name=:q OR short_name=:q OR :q = ANY(aliases) OR name LIKE :s) "
            "AND (CAST(:lvl AS int) IS NULL OR level=:lvl) AND (CAST(:w AS text) IS NULL OR code LIKE :wp) "
            "ORDER BY rank, level, code LIMIT :l"
        ),
        {"q": q, "p": _like(q) + "%", "s": "%" + _like(q) + "%", "lvl": level, "w": within,
         "wp": (within or "") + "%", "l": limit},
    ).all()
    return [_row(r[:-1]) for r in rows]


def _like(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def also_matches(conn: Connection, asked: str, resolved: str) -> list[dict[str, Any]]:
    """Other divisions the code as asked names in some scheme: the statistical and civil-affairs lists disagree at
    township level (citygrid/regions/load.py), so one number can be two townships."""
    rows = conn.execute(text("SELECT dc.scheme, dc.division_code, d.name FROM division_code dc JOIN division d "
                             "ON d.code=dc.division_code WHERE dc.code=:c AND dc.division_code <> :d"),
                        {"c": asked, "d": resolved}).all()
    return [{"scheme": r.scheme, "code": r.division_code, "name": r.name} for r in rows]


def has_boundary(conn: Connection, code: str) -> bool:
    """Whether an outline is loaded: published ones reach county level (citygrid/regions/load.py); townships and
    villages have one only where the demo drew it (citygrid/demo/partition.py)."""
    return bool(conn.execute(text("SELECT geom IS NOT NULL FROM division WHERE code=:c"), {"c": code}).scalar())


@dataclass
class Boundary:
    """A division's outline as GeoJSON and where it came from."""

    geometry: dict[str, Any]
    geom_source: str | None


def boundary(conn: Connection, code: str) -> Boundary | None:
    """The outline as GeoJSON (6 decimals, about 0.1 m), or None when the division has none loaded."""
    r = conn.execute(text("SELECT ST_AsGeoJSON(geom, 6, 0) AS g, geom_source FROM division WHERE code=:c"),
                     {"c": code}).first()
    if r is None or r.g is None:
        return None
    return Boundary(json.loads(r.g), r.geom_source)


def containing(conn: Connection, wkt_point: str, level: int) -> str | None:
    """Code of the division at `level` whose polygon contains the point, when polygons exist."""
    return conn.execute(
        text("SELECT code FROM division WHERE level=:l AND geom IS NOT NULL "
             "AND ST_Intersects(geom, ST_GeomFromText(:p, 4490)) ORDER BY code LIMIT 1"),
        {"l": level, "p": wkt_point},
    ).scalar()
