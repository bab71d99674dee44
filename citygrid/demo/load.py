"""Loading and unloading the demo county: one transaction that builds every stage and inserts the result.

The stages run in a fixed order — partition, roads, buildings, components — each from its own random stream
(`common.stream`), then every object is transformed to EPSG:4490, placed in its township and village, completed
and bulk-created through the registry (`citygrid/registry/bulk.py`) with `created_by = 'demo'`, so a reload
can purge exactly the previous demo. The load is recorded in `data_source` (`demo-420281`). The address base
on top of it (`load_address_base`) is a separate step, run after the grids (`citygrid/cli.py`).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import shapely
from shapely import STRtree
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from citygrid.address.base import build_from_registry
from citygrid.catalog import ObjectClass
from citygrid.crs import gauss_kruger_srid
from citygrid.demo.buildings import build_buildings
from citygrid.demo.common import (
    BY,
    DAYE,
    DEMO_COUNTY,
    County,
    generator_tag,
    geom_source,
    stream,
)
from citygrid.demo.components import build_components
from citygrid.demo.geometry import local_plane, to_4490
from citygrid.demo.names import Names, village_label
from citygrid.demo.objects import Generated, rounded
from citygrid.demo.partition import Division, Partition, build_partition, store_partition
from citygrid.demo.people import facts_writer
from citygrid.demo.roads import build_roads
from citygrid.errors import E
from citygrid.jobs import Progress
from citygrid.regions import query as regions
from citygrid.registry.bulk import BulkItem, bulk_create
from citygrid.security import audit
from citygrid.security.principal import system_as

CHUNK = 20_000


def county_of(s: Session, code: str) -> County:
    """The county to fill: 大冶 as it always was; any other county-level division with an outline, by its real
    names, its outline's point on surface as the seat, and the Gauss-Krüger zone of its centre."""
    if code == DEMO_COUNTY:
        return DAYE
    conn = s.connection()
    d = regions.get(conn, code)
    if d is None or d.level != 3:
        raise E.division_unknown("division", code=code, rule_zh="或不是县级", rule_en=" or is not county-level")
    wkb = conn.execute(text("SELECT ST_AsBinary(geom) FROM division WHERE code = :c"), {"c": d.code}).scalar()
    if wkb is None:
        raise E.demo_no_outline("division", county=d.code)
    outline = shapely.from_wkb(bytes(wkb))
    seat = outline.point_on_surface()
    chain = [a.name for a in regions.ancestors(conn, d.code) if a.level < 3]
    short = d.short_name or d.name
    return County(d.code, d.name, short, "".join(chain) + d.name, (round(seat.x, 4), round(seat.y, 4)),
                  f"EPSG:{gauss_kruger_srid(outline.centroid.x)}")


def counties_in(engine: Engine, code: str) -> list[str]:
    """The county-level divisions to fill for `code`: itself when it is one, else every county-level division
    under it (a city, a province) that has an outline, in code order."""
    with engine.connect() as c:
        d = regions.get(c, code)
        if d is None or d.level > 3:
            raise E.division_unknown("division", code=code, rule_zh="或低于县级", rule_en=" or is below county level")
        if d.level == 3:
            return [d.code]
        return list(c.execute(text("SELECT code FROM division WHERE level = 3 AND code LIKE :p AND geom IS NOT NULL "
                                   "AND EXISTS (SELECT 1 FROM division t WHERE t.parent_code = division.code "
                                   "AND t.level = 4) ORDER BY code"), {"p": d.code[:4 if d.level == 2 else 2] + "%"})
                    .scalars())


def load_demo(engine: Engine, seed: int = 42, force: bool = False, progress: Progress | None = None,
              scale: float = 1.0, county: str = DEMO_COUNTY) -> dict[str, Any]:
    """Generate the demo in a county (大冶 by default; any county-level division with an outline and townships),
    idempotent per county, seed and scale; returns a summary with counts.

    With the same seed and scale already loaded and no `force`, the stored summary is returned and nothing is
    written (the township and village polygons are regenerated, identically, if a division reload wiped them).
    Otherwise the previous demo objects are deleted (their codes stay issued and are never reused) and the county
    is generated again, all in one transaction.
    """
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError("scale must be a positive number")
    scale = float(scale)
    progress = progress or (lambda stage, done, total: None)
    t0 = time.perf_counter()
    with Session(engine) as s, s.begin():
        c = county_of(s, county)
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": c.lock_key})
        with local_plane(c.local_crs):
            return _load(s, c, seed, force, progress, scale, t0)


def _load(s: Session, c: County, seed: int, force: bool, progress: Progress, scale: float, t0: float
          ) -> dict[str, Any]:
    old = _stored(s, c)
    if old and not force and old.get("seed") == seed and float(old.get("scale", -1)) == scale:
        expected = int(old.get("townships", 0)) + int(old.get("villages", 0))
        if not _partition_present(s, seed, expected, c):
            part = build_partition(s, seed, progress, c)
            store_partition(s, part, seed)
        return old | {"reused": True}
    progress("demo: remove previous demo objects", 0, None)
    deleted = _purge(s, c)
    progress("demo: remove previous demo objects", deleted, deleted)
    if old is not None and old.get("seed") != seed:
        _drop_grids(s, c)
    part = build_partition(s, seed, progress, c)
    store_partition(s, part, seed)
    out = _generate(part, seed, scale, progress)
    by_class, by_town, codes, discarded = _insert(s, out, part, seed, progress)
    _age(s, seed, c)
    total = sum(by_class.values())
    detail = {
        "seed": seed, "scale": scale, "townships": len(part.townships), "villages": len(part.villages),
        "objects_total": total, "objects_by_class": by_class, "objects_by_township": by_town,
        "class_codes": codes, "generator": generator_tag(seed), "geom_source": geom_source(seed),
        "local_crs": c.local_crs, "deleted_previous": deleted, "discarded": discarded,
        "elapsed_s": round(time.perf_counter() - t0, 2),
    } | ({} if c.code == DEMO_COUNTY else {"county": c.code})
    s.execute(text("INSERT INTO data_source (name, edition, detail) VALUES (:n, :e, CAST(:d AS jsonb)) "
                   "ON CONFLICT (name) DO UPDATE SET edition = :e, detail = CAST(:d AS jsonb), loaded_at = now()"),
              {"n": c.source, "e": f"seed={seed}", "d": json.dumps(detail, ensure_ascii=False)})
    audit.record(s, BY, "demo_load", c.code, detail={k: detail[k] for k in (
        "seed", "scale", "objects_total", "elapsed_s")})
    return detail | {"reused": False}


def unload_demo(engine: Engine, county: str = DEMO_COUNTY) -> dict[str, Any]:
    """Remove a county's demo: its objects (codes stay issued), the generated polygons and the grids cut from
    them, and the data_source row."""
    with Session(engine) as s, s.begin():
        c = county_of(s, county)
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": c.lock_key})
        deleted = _purge(s, c)
        _drop_grids(s, c)  # cut from the generated outlines cleared below
        cleared = s.connection().execute(
            text("UPDATE division SET geom = NULL, geom_source = NULL WHERE code LIKE :p "
                 "AND level IN (4, 5) AND geom_source LIKE 'generated-demo%'"),
            {"p": c.code + "%"}).rowcount  # the connection's result has the rowcount the session's lacks
        s.execute(text("DELETE FROM data_source WHERE name = :n"), {"n": c.source})
    return {"objects_deleted": deleted, "divisions_cleared": cleared}


def load_address_base(engine: Engine, county: str = DEMO_COUNTY, *, seed: int = 42,
                      progress: Progress | None = None) -> dict[str, Any]:
    """(Re)build the demo county's address base from its registry objects, with fake 三实 drawn from `seed`."""
    return build_from_registry(engine, county, facts=facts_writer(seed), provenance={"seed": seed}, progress=progress)


def _generate(part: Partition, seed: int, scale: float, progress: Progress) -> Generated:
    """Every object of the county, stage by stage, in the local plane."""
    out = Generated(stream(seed, "attributes"), part.county.name)
    names = Names(stream(seed, "names"))
    net = build_roads(out, part, names, seed, progress)
    blk = build_buildings(out, part, net, names, seed, scale, progress)
    progress("demo: components", 0, None)
    build_components(out, part, net, blk, seed, scale)
    n = sum(len(c.geoms) for c in out.by.values())
    progress("demo: components", n, n)
    return out


def _insert(s: Session, out: Generated, part: Partition, seed: int, progress: Progress
            ) -> tuple[dict[str, int], dict[str, int], dict[str, str], int]:
    """Transform, place (township/village by representative point), validate and bulk-create every class."""
    tag = generator_tag(seed)
    divs = {d.code: d for d in [*part.townships, *part.villages]}
    outline = part.outline4490
    shapely.prepare(outline)
    by_class: dict[str, int] = {}
    by_town: dict[str, int] = {t.code: 0 for t in part.townships}
    codes: dict[str, str] = {}
    arng = stream(seed, "complete")
    cat_order = list(out.classes)
    names_in_order = sorted(out.by, key=cat_order.index)
    total = sum(len(out.by[n].geoms) for n in names_in_order)
    done = discarded = 0
    for name in names_in_order:
        co = out.by[name]
        cls = out.classes[name]
        g = to_4490(np.array(co.geoms, dtype=object))
        ok = ~shapely.is_empty(g) & shapely.is_valid(g) & shapely.within(g, outline)
        ti, vi = _assign(g, part)
        ok &= (ti >= 0) & (vi >= 0)
        keep = np.flatnonzero(ok)
        discarded += len(g) - len(keep)
        done += len(g) - len(keep)  # progress counts discarded ones as done
        attrs = [co.attrs[i] for i in keep]
        names = [co.names[i] for i in keep]
        tcodes = [part.townships[int(ti[i])].code for i in keep]
        vcodes = [part.villages[int(vi[i])].code for i in keep]
        _finalize(name, attrs, names, tcodes, vcodes, divs, part.county)
        items = []
        for k, i in enumerate(keep):
            d = _complete(cls, {kk: vv for kk, vv in attrs[k].items() if not kk.startswith("_")}, arng)
            d["generated"] = True
            d["generator"] = tag
            items.append(BulkItem(geom=g[i], attrs=d, name=names[k], township_code=tcodes[k], village_code=vcodes[k]))
        for start in range(0, len(items), CHUNK):  # provenance attributes exist on every class (every_class set)
            chunk = items[start:start + CHUNK]
            bulk_create(s, system_as(BY), cls.code, part.county.code, chunk, batch=f"demo-{seed}")
            done += len(chunk)
            progress("demo: insert objects", done, total)
        by_class[name] = len(items)
        codes[name] = cls.code
        for t in tcodes:
            by_town[t] += 1
    return by_class, by_town, codes, discarded


def _age(s: Session, seed: int, county: County) -> None:
    """Plausible, varied ages (数据鲜活性), deterministic from the seed: each object was last created, updated or
    confirmed up to 0.4–1.8 times its class's update period ago, the factor drawn per township, so some townships
    are up to date and others have up to ~45% stale objects (`citygrid.registry.freshness`). The creation's
    history version is moved back with the object, so history keeps agreeing with the present."""
    tag = generator_tag(seed)
    s.execute(text(
        "UPDATE city_object o SET created_at = o.created_at - a.age, updated_at = o.updated_at - a.age "
        "FROM (SELECT o2.uid, make_interval(secs => 86400.0 * coalesce(oc.update_period_days, 365) "
        "      * (0.4 + 1.4 * (abs(hashtext(coalesce(o2.township_code, '') || :s)::bigint) % 1000) / 1000.0) "
        "      * (abs(hashtext(o2.code || :s)::bigint) % 10000) / 10000.0) AS age "
        "      FROM city_object o2 JOIN object_class oc ON oc.code = o2.class_code "
        "      WHERE o2.attrs->>'generator' = :tag AND o2.division_code = :c) a "
        "WHERE o.uid = a.uid"), {"s": str(seed), "tag": tag, "c": county.code})
    s.execute(text(
        "UPDATE city_object_history h SET changed_at = o.updated_at FROM city_object o "
        "WHERE h.uid = o.uid AND h.division_code = o.division_code AND h.version = o.version AND o.attrs->>'generator' = :tag AND o.division_code = :c"),
        {"tag": tag, "c": county.code})


# ---------------------------------------------------------------------------------------------------------------
# public API


def _assign(geoms: np.ndarray, part: Partition) -> tuple[np.ndarray, np.ndarray]:
    """Index of the township and village whose polygons contain each geometry's representative point."""
    n = len(geoms)
    rep = shapely.point_on_surface(geoms)
    tpolys = np.array([t.geom for t in part.townships], dtype=object)
    vpolys = np.array([v.geom for v in part.villages], dtype=object)
    big = np.iinfo(np.int64).max
    ti = np.full(n, big, dtype=np.int64)
    a, b = STRtree(tpolys).query(rep, predicate="intersects")
    np.minimum.at(ti, a, b)
    tcode = np.array([t.code for t in part.townships] + [""], dtype=object)
    parent = np.array([v.parent for v in part.villages], dtype=object)
    vi = np.full(n, big, dtype=np.int64)
    a, b = STRtree(vpolys).query(rep, predicate="intersects")
    ok = parent[b] == tcode[np.where(ti[a] == big, len(part.townships), ti[a])]
    np.minimum.at(vi, a[ok], b[ok])
    ti[ti == big] = -1
    vi[vi == big] = -1
    return ti, vi


def _finalize(name: str, attrs: list[dict[str, Any]], names: list[str | None], tcodes: list[str], vcodes: list[str],
              divs: dict[str, Division], county: County) -> None:
    """The attributes that need the object's township or village: parcel codes and locations, standard
    addresses of door plates, names of bus stops outside the streets."""
    if name == "宗地":
        serial: dict[tuple[str, str], int] = {}
        for d, t, v in zip(attrs, tcodes, vcodes, strict=True):
            feat = d.pop("_feature", "GB")
            key = (v, feat)
            serial[key] = serial.get(key, 0) + 1
            d["parcel_code"] = f"{county.code}{t[6:9]}{v[9:12]}{feat}{serial[key]:05d}"
            d["location"] = f"{county.prefix}{divs[t].name}{village_label(divs[v].name)}"
    elif name == "门牌":
        for d, t in zip(attrs, tcodes, strict=True):
            d["standard_address"] = f"{county.prefix}{divs[t].name}{d['road_name']}{d['number']}号"
    elif name == "公交站亭":
        for i, (d, v) in enumerate(zip(attrs, vcodes, strict=True)):
            if not d.get("stop_name"):
                d["stop_name"] = f"{village_label(divs[v].name)}站"
                names[i] = d["stop_name"]


def _complete(cls: ObjectClass, attrs: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Fill any required attribute still missing (a catalog may grow new ones) with a plausible value."""
    for a in cls.attributes:
        if not a.required or attrs.get(a.field) not in (None, ""):
            continue
        if a.type == "enum" and a.enum:
            attrs[a.field] = a.enum[int(rng.integers(len(a.enum)))]
        elif a.type in ("integer", "number"):
            lo = a.min if a.min is not None else 0
            hi = a.max if a.max is not None else lo + 10
            v = lo + (hi - lo) * 0.1
            attrs[a.field] = int(math.ceil(v)) if a.type == "integer" else rounded(v)
        elif a.type == "boolean":
            attrs[a.field] = False
        elif a.type == "date":
            attrs[a.field] = "2020-01-01"
        elif a.type == "string" and a.pattern is None:
            attrs[a.field] = f"示例{a.label}"[: a.max_length or 50]
    return attrs


def _purge(s: Session, county: County) -> int:
    """Delete the previous demo objects with their history and lineage; their codes stay issued (never reused)."""
    conn = s.connection()
    conn.execute(text("DROP TABLE IF EXISTS _demo_old"))
    conn.execute(text("CREATE TEMP TABLE _demo_old ON COMMIT DROP AS SELECT uid, code FROM city_object "
                      "WHERE created_by = :by AND division_code = :c"), {"by": BY, "c": county.code})
    conn.execute(text("ANALYZE _demo_old"))
    n = int(conn.execute(text("SELECT count(*) FROM _demo_old")).scalar_one())
    if n:
        conn.execute(text("DELETE FROM lineage WHERE parent_uid IN (SELECT uid FROM _demo_old) "
                          "OR child_uid IN (SELECT uid FROM _demo_old)"))
        conn.execute(text("DELETE FROM city_object_history WHERE uid IN (SELECT uid FROM _demo_old)"))
        # the feed says so (as the owner: the application may not write change_log), with class and place
        conn.execute(text("INSERT INTO change_log (entity, key, op, class_code, place, county) SELECT 'object', o.code, "
                          "'delete', o.class_code, coalesce(o.village_code, o.township_code, o.division_code), "
                          "o.division_code "
                          "FROM city_object o JOIN _demo_old d ON d.uid = o.uid ORDER BY o.code"))
        conn.execute(text("DELETE FROM city_object WHERE uid IN (SELECT uid FROM _demo_old)"))
        audit.record(s, BY, "demo_purge", county.code, detail={"deleted": n})
    conn.execute(text("DROP TABLE _demo_old"))
    return n


def _drop_grids(s: Session, county: County) -> None:
    """The county's generated unit and governance grids, cut from village outlines a new seed is about to replace:
    gone with them, so no object is placed in a stale cell (`citygrid load-demo` generates them again,
    `citygrid.grid.generate`). The same seed regenerates the same outlines, and keeps its grids."""
    conn = s.connection()
    conn.execute(text("DELETE FROM grid_membership WHERE grid_code LIKE :p"), {"p": county.code + "%"})
    conn.execute(text("DELETE FROM grid WHERE system IN ('unit', 'governance') AND code LIKE :p"),
                 {"p": county.code + "%"})
    conn.execute(text("DELETE FROM data_source WHERE name = :n"), {"n": f"grids-{county.code}"})


def _stored(s: Session, county: County) -> dict[str, Any] | None:
    row = s.execute(text("SELECT detail FROM data_source WHERE name = :n"), {"n": county.source}).scalar()
    return dict(row) if row else None


def _partition_present(s: Session, seed: int, expected: int, county: County) -> bool:
    n = s.execute(text("SELECT count(*) FROM division WHERE code LIKE :p AND level IN (4, 5) AND geom IS NOT NULL "
                       "AND geom_source = :src"), {"p": county.code + "%", "src": geom_source(seed)}).scalar_one()
    return int(n) == expected and expected > 0
