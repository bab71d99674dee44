"""The standard address base (一标) built from the registry, and the 三实 that hang on it.

One row per address node in `addr_node`, in a strict tree after DB42/T 2175-2024:
road (街路巷) → door plate (门牌) → compound (院落/小区) → building (楼栋) → unit (单元) → floor (楼层) → room (户室),
and village → group (组) → door plate for rural plates. Every node gets a permanent address code
(county 6 + level 2 + serial 9 + MOD 11,10 check digit; see `schemas/code_rules.yaml`).

`build_from_registry` derives the tree from door-plate, road, compound and building objects already in the
registry (the demo county puts them there), then generates units, floors and rooms for residential buildings
in compounds. The 三实 (houses, persons, organizations) on the new rooms and doors come from the caller through
`facts`: the address base itself has no source of them, and the demo's fake ones live in
`citygrid/demo/people.py` (passed in by `citygrid.demo.load.load_address_base`), so nothing here depends on the demo.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from citygrid.address import index
from citygrid.address.normalize import AddressInputError, normalize
from citygrid.coding.allocator import advance
from citygrid.coding.scheme import load_schemes
from citygrid.db.engine import driver_connection
from citygrid.jobs import Progress
from citygrid.regions.load import drop_secondary

LEVEL_CODES = {"village_group": "34", "road": "41", "compound": "42", "door": "45", "building": "50", "unit": "61",
               "room": "62", "floor": "63"}
_CN_GROUP = {c: i for i, c in enumerate("一二三四五六七八九十", start=1)}


@dataclass
class Node:
    id: int
    level: str
    name: str
    full_name: str
    township: str | None
    village: str | None
    parent: int | None = None
    number: int | None = None
    suffix: str | None = None
    aliases: list[str] = field(default_factory=list)
    point: tuple[float, float] | None = None
    object_code: str | None = None
    code: str = ""
    unit_grid: str | None = None
    gov_grid: str | None = None


FactsWriter = Callable[[psycopg.Cursor[Any], str, list[Node], list[Node]], dict[str, int]]
"""Writes the 三实 of a freshly built address base: given the open COPY cursor, the county, the new room nodes and
door nodes, it COPYs rows into house, person and organization and returns how many of each it wrote."""


def group_name(raw: str) -> str:
    """一组 → 1组, 十二组 → 12组, 小箕铺村一组 → 1组 (a group is named by its number within the village)."""
    m = re.search(r"(\d+)组$", raw)
    if m:
        return f"{int(m.group(1))}组"
    m = re.search(r"([一二三四五六七八九十]+)组$", raw)
    if not m:
        return raw
    s = m.group(1)
    if s == "十":
        n = 10
    elif s.startswith("十"):
        n = 10 + _CN_GROUP[s[1]]
    elif s.endswith("十"):
        n = _CN_GROUP[s[0]] * 10
    elif "十" in s:
        n = _CN_GROUP[s[0]] * 10 + _CN_GROUP[s[2]]
    else:
        n = _CN_GROUP[s]
    return f"{n}组"


def building_name(raw: str) -> str:
    """A building's name in the base, in the one form the resolver looks up: 3号楼 / 3幢 / 三号楼 → 3栋, A座 / a幢 /
    A楼 / Ａ座 → A栋, bare B6 → B6栋 (the catalog's building_no pattern is [0-9A-Z]+栋; tags are painted otherwise)."""
    try:
        no = normalize(raw)
    except AddressInputError:
        return raw
    no = re.sub(r"(?<=[A-Za-z])楼$", "栋", no)
    if re.fullmatch(r"[0-9A-Za-z-]+", no):
        no += "栋"
    return re.sub(r"[a-z]", lambda m: m.group(0).upper(), no)


def _esc(v: Any) -> str:
    if v is None:
        return "\\N"
    return str(v).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


def _arr(items: list[str]) -> str:
    return "{" + ",".join('"' + i.replace('"', "") + '"' for i in items) + "}"


def build_from_registry(engine: Engine, county: str, *, facts: FactsWriter | None = None,
                        provenance: Mapping[str, Any] | None = None,
                        progress: Progress | None = None) -> dict[str, Any]:
    """(Re)build the address base of one county from its registry objects. One transaction.

    `facts`, when given, writes the 三实 of the new rooms and doors (none otherwise). `provenance` says where the
    load comes from; it is recorded in the county's `data_source` row (edition `k=v ...`, and in the detail).
    """
    progress = progress or (lambda s, d, t: None)
    provenance = dict(provenance or {})
    with Session(engine) as s, s.begin():
        c = s.connection()
        names: dict[str, str] = dict(c.execute(
            text("SELECT code, name FROM division WHERE code = :c OR parent_code = :c OR "
                 "parent_code IN (SELECT code FROM division WHERE parent_code = :c)"), {"c": county}).tuples().all())
        chain = c.execute(text("WITH RECURSIVE up AS (SELECT code, name, parent_code FROM division WHERE code=:c "
                               "UNION ALL SELECT d.code, d.name, d.parent_code FROM division d JOIN up "
                               "ON d.code = up.parent_code) SELECT name FROM up"), {"c": county}).scalars().all()
        prefix = "".join(reversed(chain))  # 湖北省黄石市大冶市
        village_short: dict[str, str] = dict(
            c.execute(text("SELECT code, short_name FROM division WHERE level=5 AND code LIKE :p"),
                      {"p": county + "%"}).tuples().all())

        def objs(cls_name: str, extra: str = "") -> Sequence[Any]:
            return c.execute(text(
                "SELECT o.code, o.name, o.attrs, o.township_code, o.village_code, "
                "ST_X(ST_PointOnSurface(o.geom)) AS x, ST_Y(ST_PointOnSurface(o.geom)) AS y" + extra +
                " FROM city_object o JOIN object_class k ON k.code = o.class_code "
                "WHERE k.name = :n AND o.division_code = :c AND o.status = 'active' ORDER BY o.code"),
                {"n": cls_name, "c": county}).all()

        c.execute(text("DELETE FROM organization WHERE door_id IN (SELECT id FROM addr_node WHERE division_code=:c)"),
                  {"c": county})
        c.execute(text("DELETE FROM person WHERE room_id IN (SELECT id FROM addr_node WHERE division_code=:c)"),
                  {"c": county})
        c.execute(text("DELETE FROM house WHERE room_id IN (SELECT id FROM addr_node WHERE division_code=:c)"),
                  {"c": county})
        c.execute(text("DELETE FROM addr_node WHERE division_code = :c"), {"c": county})  # FK checked at statement end
        c.execute(text("LOCK TABLE addr_node IN EXCLUSIVE MODE"))
        next_id = int(c.execute(text("SELECT coalesce(max(id), 0) + 1 FROM addr_node")).scalar_one())
        nodes: list[Node] = []

        def add(**kw: Any) -> Node:
            nonlocal next_id
            n = Node(id=next_id, **kw)
            next_id += 1
            nodes.append(n)
            return n

        def town_prefix(t: str | None) -> str:
            return prefix + (names.get(t, "") if t else "")

        progress("address: roads", 0, None)
        roads: dict[str, Node] = {}
        for r in objs("道路"):
            rn = r.attrs.get("road_name") or r.name
            if not rn or rn in roads:
                continue
            roads[rn] = add(level="road", name=rn, full_name=town_prefix(r.township_code) + rn, township=r.township_code,
                            village=None, point=(r.x, r.y), object_code=r.code,
                            aliases=[a for a in {rn.replace("大道", "路")} if a != rn])
        progress("address: door plates", 0, None)
        groups: dict[tuple[str, str], Node] = {}
        doors: list[Node] = []
        gate_doors: list[Node] = []
        for d in objs("门牌"):
            a = d.attrs
            rn, num = a.get("road_name"), a.get("number")
            if not rn or not isinstance(num, int):
                continue
            parent: Node | None
            if a.get("plate_type") == "村组门牌":
                if not d.village_code:
                    continue
                g = group_name(rn)
                key = (d.village_code, g)
                if key not in groups:
                    vfull = town_prefix(d.township_code) + village_short.get(d.village_code, "")
                    groups[key] = add(level="village_group", name=g, full_name=vfull + g, township=d.township_code,
                                      village=d.village_code, point=(d.x, d.y), aliases=[rn] if rn != g else [])
                parent = groups[key]
            else:
                parent = roads.get(rn)
                if parent is None:
                    continue
            door = add(level="door", name=f"{num}号", full_name=f"{parent.full_name}{num}号", township=d.township_code,
                       village=d.village_code, parent=parent.id, number=num, point=(d.x, d.y), object_code=d.code)
            doors.append(door)
            if a.get("plate_type") == "院落门牌":
                gate_doors.append(door)
        progress("address: compounds and buildings", 0, None)
        gate_xy = np.array([g.point for g in gate_doors]) if gate_doors else np.zeros((0, 2))
        compounds: dict[str, Node] = {}
        for cp in objs("小区院落"):
            cname = cp.attrs.get("compound_name") or cp.name
            if not cname:
                continue
            parent_door = None
            if len(gate_xy):
                dist = np.hypot(gate_xy[:, 0] - cp.x, gate_xy[:, 1] - cp.y)
                k = int(np.argmin(dist))
                if dist[k] < 0.004:  # ~400 m: the gate plate of this compound
                    parent_door = gate_doors[k]
            full = (parent_door.full_name if parent_door else town_prefix(cp.township_code)) + cname
            compounds[cp.code] = add(level="compound", name=cname, full_name=full, township=cp.township_code,
                                     village=cp.village_code, parent=parent_door.id if parent_door else None,
                                     point=(cp.x, cp.y), object_code=cp.code)
        blds = c.execute(text(
            "SELECT b.code, b.attrs, b.township_code, b.village_code, ST_X(ST_PointOnSurface(b.geom)) AS x, "
            "ST_Y(ST_PointOnSurface(b.geom)) AS y, ST_Length(ST_LongestLine(b.geom, b.geom)::geography) AS span, "
            "(SELECT p.code FROM city_object p JOIN object_class pk ON pk.code = p.class_code WHERE pk.name = '小区院落' "
            " AND p.status='active' AND ST_Intersects(p.geom, ST_PointOnSurface(b.geom)) LIMIT 1) AS compound "
            "FROM city_object b JOIN object_class k ON k.code = b.class_code WHERE k.name = '建筑物' "
            "AND b.division_code = :c AND b.status = 'active' AND b.attrs ? 'building_no' ORDER BY b.code"),
            {"c": county}).all()
        n_rooms = 0
        rooms: list[Node] = []
        for b in blds:
            comp = compounds.get(b.compound)
            if comp is None:
                continue
            no = building_name(str(b.attrs["building_no"]))
            bn = add(level="building", name=no, full_name=comp.full_name + no, township=b.township_code,
                     village=b.village_code, parent=comp.id, number=_int(no), point=(b.x, b.y), object_code=b.code)
            if b.attrs.get("main_use") not in ("住宅", "商住") and "住" not in str(b.attrs.get("main_use", "")):
                continue
            floors = max(1, min(int(b.attrs.get("floors_above") or 1), 40))
            units = max(1, min(4, round(float(b.span or 20) / 18)))
            for u in range(1, units + 1):
                un = add(level="unit", name=f"{u}单元", full_name=f"{bn.full_name}{u}单元", township=bn.township,
                         village=bn.village, parent=bn.id, number=u, point=bn.point)
                for f in range(1, floors + 1):
                    fl = add(level="floor", name=f"{f}层", full_name=f"{un.full_name}{f}层", township=bn.township,
                             village=bn.village, parent=un.id, number=f, point=bn.point)
                    for k in (1, 2):
                        rn_ = f"{f}{k:02d}室"
                        rooms.append(add(level="room", name=rn_, full_name=f"{un.full_name}{rn_}", township=bn.township,
                                         village=bn.village, parent=fl.id, number=f * 100 + k, point=bn.point))
                        n_rooms += 1
        progress("address: grids", 0, len(nodes))
        _grids(c, county, nodes)
        progress("address: codes", 0, len(nodes))
        scheme = load_schemes()["address"]
        by_level: dict[str, list[Node]] = {}
        for n in nodes:
            by_level.setdefault(n.level, []).append(n)
        for lvl, items in by_level.items():
            first = advance(s, county, "a" + LEVEL_CODES[lvl], len(items))
            for i, n in enumerate(items):
                n.code = scheme.encode(division=county, level=LEVEL_CODES[lvl], serial=first + i)
        buf = io.StringIO()
        for n in nodes:
            pt = f"SRID=4490;POINT({n.point[0]!r} {n.point[1]!r})" if n.point else None
            buf.write("\t".join(_esc(v) for v in (
                n.id, n.code, n.level, n.parent, county, n.township, n.village, n.name, n.number, n.suffix,
                _arr(n.aliases), n.full_name, pt, n.object_code, n.unit_grid, n.gov_grid)) + "\n")
        raw = driver_connection(c)
        with raw.cursor() as cur:
            restore = drop_secondary(cur, ["addr_node", "house", "person", "organization"])
            with cur.copy("COPY addr_node (id, code, level, parent_id, division_code, township_code, village_code, "
                          "name, number, suffix, aliases, full_name, point, object_code, unit_grid, gov_grid) FROM STDIN") as cp:
                cp.write(buf.getvalue())
            cur.execute("SELECT setval(pg_get_serial_sequence('addr_node', 'id'), (SELECT max(id) FROM addr_node))")
            progress("address: codes", len(nodes), len(nodes))
            n_facts = facts(cur, county, rooms, doors) if facts else {}
            progress("address: indexes", 0, len(restore))
            for stmt in restore:
                cur.execute(stmt)
        counts: dict[str, int] = dict(
            c.execute(text("SELECT level, count(*) FROM addr_node WHERE division_code=:c GROUP BY level"),
                      {"c": county}).tuples().all())
        detail = {"nodes": counts, "facts": n_facts, **provenance}
        edition = " ".join(f"{k}={v}" for k, v in provenance.items()) or "registry"
        c.execute(text("INSERT INTO data_source (name, edition, detail) VALUES (:n, :e, CAST(:d AS jsonb)) "
                       "ON CONFLICT (name) DO UPDATE SET edition=:e, detail=CAST(:d AS jsonb), loaded_at=clock_timestamp()"),
                  {"n": f"address-{county}", "e": edition, "d": json.dumps(detail, ensure_ascii=False)})
    index.changed()  # committed: this process's geocodes use the new base from the next request on
    return detail


def _grids(c: Any, county: str, nodes: list[Node]) -> None:
    """Grid codes for every node, in memory: point-in-polygon for placed nodes, inherited below buildings."""
    import shapely
    from shapely import wkb

    by_id = {n.id: n for n in nodes}
    for system, attr in (("unit", "unit_grid"), ("governance", "gov_grid")):
        rows = c.execute(text("SELECT code, ST_AsBinary(geom) FROM grid WHERE system=:s AND code LIKE :p ORDER BY code"),
                         {"s": system, "p": county + "%"}).all()
        if not rows:
            continue
        polys = [wkb.loads(bytes(g)) for _, g in rows]
        tree = shapely.STRtree(polys)
        placed = [n for n in nodes if n.point and n.level in ("road", "door", "village_group", "compound", "building")]
        pts = shapely.points([n.point for n in placed if n.point is not None])  # all are: narrows for the checker
        hit_pt, hit_poly = tree.query(pts, predicate="intersects")
        for i, j in zip(hit_pt, hit_poly, strict=True):
            if getattr(placed[i], attr) is None:
                setattr(placed[i], attr, rows[j][0])
        for n in nodes:  # unit → floor → room come after their parent in creation order
            if n.level in ("unit", "floor", "room") and n.parent in by_id:
                setattr(n, attr, getattr(by_id[n.parent], attr))


def _int(s: str) -> int | None:
    m = re.match(r"\d+", s)
    return int(m.group()) if m else None
