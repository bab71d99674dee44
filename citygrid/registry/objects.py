"""City objects: create (with a code in the same transaction), read, query, update, retire, split, merge.

Every write bumps the version, copies the new state into `city_object_history` (whose trigger appends to
`change_log`, 0018) and appends to `audit_log` in the same transaction, so history can never disagree with the
present.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from shapely import wkb
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from citygrid import crs as crsmod
from citygrid.catalog import ObjectClass, get_catalog
from citygrid.coding.allocator import allocate
from citygrid.coding.scheme import component_scheme
from citygrid.crs import Crs
from citygrid.errors import CitygridError, E, Problem
from citygrid.geo import bbox_condition, check_geometry, parse_geometry, to_geojson
from citygrid.grid.assign import assign_objects
from citygrid.grid.h3cells import cell_of
from citygrid.regions import query as divisions
from citygrid.security import audit, classification, rules
from citygrid.security.principal import Principal


@dataclass
class NewObject:
    """One object to create; geometry is GeoJSON in `crs` (default EPSG:4490)."""

    class_code: str
    geometry: dict[str, Any] | None  # None (a split part without one) is reported as geom_missing
    attrs: dict[str, Any]
    name: str | None = None
    division_code: str | None = None
    crs: str | None = None


def _class(code: str, row: int | None = None) -> ObjectClass:
    cls = get_catalog().get(code) if isinstance(code, str) else None
    if cls is None:
        raise E.class_unknown("class_code", row, code=code)
    return cls


def attr_problems(cls: ObjectClass, attrs: Any, row: int | None, partial: bool = False) -> list[Problem]:
    if not isinstance(attrs, dict):
        return [E.attrs_type.problem("attrs", row)]
    return [Problem(p.error_code, p.message_zh, p.message_en, f"attrs.{p.field}", row)
            for p in cls.validate_attrs(attrs, partial=partial)]


def name_problems(name: Any, row: int | None) -> list[Problem]:
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        return [E.name_invalid.problem("name", row, label_zh="名称", max=200, nonempty_zh="", nonempty_en="")]
    return []


class _Place(TypedDict):
    county: str
    township: str | None
    village: str | None


def _place(conn: Connection, geom: BaseGeometry, division_code: str | None, row: int | None) -> _Place:
    """County/township/village of the object, from the given code or from polygons; checked against boundary."""
    rep = geom.representative_point().wkt
    county: str | None
    if division_code:
        d = divisions.get(conn, division_code)
        if d is None or d.level < 3:
            raise E.division_unknown("division_code", row, code=division_code, rule_zh="或不是县级及以下",
                                     rule_en=" or is above county level")
        chain = {a.level: a.code for a in divisions.ancestors(conn, d.code)} | {d.level: d.code}
        county = chain.get(3, d.code[:6])
        inside = conn.execute(
            text("SELECT geom IS NULL OR ST_Intersects(geom, ST_GeomFromText(:p, 4490)) FROM division WHERE code=:c"),
            {"c": d.code if d.level <= 3 else county, "p": rep},
        ).scalar()
        if inside is False:
            raise E.geom_outside_division("geometry", row, name_zh=d.name, county=county)
    else:
        county = divisions.containing(conn, rep, 3)
        if county is None:
            raise E.division_required("division_code", row)
        chain = {3: county}
    township = chain.get(4) or divisions.containing(conn, rep, 4)
    village = chain.get(5) or (divisions.containing(conn, rep, 5) if township else None)
    if village and township and not village.startswith(township):
        village = None
    return {"county": county, "township": township, "village": village}


def _audit(s: Session, by: Principal | str, action: str, target: str, detail: dict[str, Any], fields: list[str] | None = None
           ) -> None:
    """The audit row; the change feed's entry is written by the trigger on `city_object_history` (0018)."""
    audit.record(s, by, action, target, fields=fields or (), detail=detail)


def _history(s: Session, uid: uuid.UUID | list[uuid.UUID], op: str, by: str, reason: str | None = None) -> None:
    """The current state of one object (or of several, in one statement) as a new history version."""
    uids = uid if isinstance(uid, list) else [uid]
    s.execute(
        text(
            "INSERT INTO city_object_history (uid, version, code, op, name, geom, attrs, status, division_code, "
            "changed_by, changed_at, reason) SELECT uid, version, code, :op, name, geom, attrs, status, division_code, "
            ":by, updated_at, :r FROM city_object WHERE uid = ANY(CAST(:u AS uuid[]))"
        ),
        {"u": uids, "op": op, "by": by, "r": reason},
    )


def component_codes(s: Session, cls: ObjectClass, county: str, n: int = 1) -> list[str | None]:
    """GB/T 30428.2 component codes for n new objects of a component class (one counter statement for any n;
    None each for other classes): the single path takes one, the bulk path a block."""
    if not cls.component_code:
        return [None] * n
    end = s.execute(
        text("INSERT INTO code_counter (division_code, class_code, next_serial) VALUES (:d, :c, :n + 1) "
             "ON CONFLICT (division_code, class_code) DO UPDATE SET next_serial = code_counter.next_serial + :n "
             "RETURNING next_serial"),
        {"d": county, "c": "c" + cls.component_code, "n": n},
    ).scalar_one()
    first = int(end) - n
    sch = component_scheme()
    limit = 10 ** sch.segment("serial").length - 1
    if int(end) - 1 > limit:
        raise E.alloc_exhausted("class_code", division=county, series="c" + cls.component_code, limit=limit)
    return [sch.encode(division=county, major=cls.component_code[:2], minor=cls.component_code[2:], serial=first + i)
            for i in range(n)]


def create(s: Session, p: Principal, obj: NewObject, row: int | None = None) -> dict[str, Any]:
    """Validate everything first (all problems at once), then allocate the code and insert. Rights are checked
    twice: for the class before validating (a refusal should not come after a list of attribute problems), and
    for the place once it is known."""
    cls = _class(obj.class_code, row)
    rules.require_edit_class(p, cls, None, "登记对象", "creating objects")
    by = p.name
    problems = attr_problems(cls, obj.attrs, row)
    geom: BaseGeometry | None = None
    try:
        geom = parse_geometry(obj.geometry, obj.crs, row=row)
        check_geometry(geom, cls.geometry, row=row)
    except CitygridError as e:
        problems += e.problems
    problems += name_problems(obj.name, row)
    if problems:
        raise CitygridError(problems, "unprocessable")
    assert geom is not None
    conn = s.connection()
    place = _place(conn, geom, obj.division_code, row)
    rules.require_edit_class(p, cls, rules.place_of(place["village"], place["township"], place["county"]),
                             "登记对象", "creating objects")
    code = allocate(s, p, place["county"], cls.code, 1, state="assigned")[0]
    uid = uuid.uuid4()
    s.execute(
        text(
            "INSERT INTO city_object (uid, code, class_code, division_code, township_code, village_code, "
            "component_code, name, geom, h3, attrs, created_by, updated_by) VALUES (:u, :code, :cls, :d, :t, :v, :cc, "
            ":n, ST_GeomFromWKB(:g, 4490), :h3, CAST(:a AS jsonb), :by, :by)"
        ),
        {"u": uid, "code": code, "cls": cls.code, "d": place["county"], "t": place["township"], "v": place["village"],
         "cc": component_codes(s, cls, place["county"])[0], "n": obj.name, "g": geom.wkb, "h3": cell_of(geom),
         "a": json.dumps(obj.attrs, ensure_ascii=False), "by": by},
    )
    assign_objects(conn, codes=[code])
    _history(s, uid, "create", by)
    _audit(s, p, "create", code, {"class": cls.code}, sorted(obj.attrs))
    return get(conn, p, code) or {}


_SELECT = (
    "SELECT o.uid, o.code, o.class_code, o.division_code, o.township_code, o.village_code, o.component_code, o.name, "
    "ST_AsBinary(o.geom) AS g, o.attrs, o.status, o.version, o.valid_from, o.valid_to, o.created_by, o.created_at, "
    "o.updated_by, o.updated_at, o.unit_grid, o.gov_grid, o.bgc FROM city_object o"
)


def _place_of(r: Any) -> str | None:
    return rules.place_of(r.village_code, r.township_code, r.division_code)


def _readable(p: Principal, r: Any) -> bool:
    cls = get_catalog().get(r.class_code)
    return (cls is None and p.is_admin) or (cls is not None and rules.may_read_object(p, cls, _place_of(r)))


def _out(p: Principal, r: Any, crs: Crs = crsmod.CGCS2000) -> dict[str, Any]:
    cls = get_catalog().get(r.class_code)
    return classification.object_view(p, cls, _place_of(r), {
        "uid": str(r.uid), "code": r.code, "class_code": r.class_code, "class_name": cls.name if cls else None,
        "division_code": r.division_code, "township_code": r.township_code, "village_code": r.village_code,
        "component_code": r.component_code, "grids": {"unit": r.unit_grid, "governance": r.gov_grid, "beidou": r.bgc}, "name": r.name, "geometry": to_geojson(wkb.loads(bytes(r.g)), crs), "crs": crs.key,
        "attrs": r.attrs, "status": r.status, "version": r.version,
        "valid_from": r.valid_from,
        "valid_to": r.valid_to, "created_by": r.created_by, "created_at": r.created_at,
        "updated_by": r.updated_by, "updated_at": r.updated_at,
    })


def get(conn: Connection, p: Principal, code: str, crs: str | None = None) -> dict[str, Any] | None:
    """The object as the caller may see it, its geometry in the CRS `crs` names (`citygrid.crs.lookup`, default
    CGCS2000); None when there is none or the caller may not read it (the same answer, so codes of classified
    objects do not reveal that they exist)."""
    out = crsmod.lookup(crs, "crs")
    # the county (the first 6 digits of both codes) beside the code: one shard under Citus, not all of them
    r = conn.execute(text(_SELECT + " WHERE (o.code=:c OR o.component_code=:c) AND o.division_code=:county"),
                     {"c": code, "county": code[:6]}).first()
    return _out(p, r, out) if r and _readable(p, r) else None


def _require(conn: Connection, p: Principal, code: str, for_write: bool = True) -> Any:
    r = conn.execute(text("SELECT uid, code, class_code, status, version, updated_at, division_code, township_code, "
                          "village_code, attrs FROM city_object WHERE code=:c AND division_code=:county"
                          + (" FOR UPDATE" if for_write else "")), {"c": code, "county": code[:6]}).first()
    if r is None or not _readable(p, r):
        raise E.object_not_found("code", code=code)
    return r


def _writable(conn: Connection, p: Principal, code: str, action_zh: str, action_en: str) -> Any:
    """The object locked for a write the caller may make: 401 before anything is looked up for anonymous
    callers, 404 for objects it may not even read, 403 for classes or places it may not edit."""
    rules.require_login(p, action_zh, action_en)
    cur = _require(conn, p, code)
    rules.require_edit_class(p, _class(cur.class_code), _place_of(cur), action_zh, action_en)
    return cur


def lock(s: Session, p: Principal, code: str, action_zh: str, action_en: str) -> Any:
    """The object's row (version, updated_at, class, place, attrs) locked for a write the caller may make, with
    the refusals of every write (`_writable`): for callers that check a precondition of their own (OGC API
    If-Match) before writing through `update` or `retire` in the same transaction."""
    return _writable(s.connection(), p, code, action_zh, action_en)


def query(conn: Connection, p: Principal, *, class_code: str | None = None, division: str | None = None,
          bbox: tuple[float, float, float, float] | None = None, status: str | None = "active",
          limit: int = 100, after: str | None = None, crs: str | None = None) -> dict[str, Any]:
    """Keyset paging by code (stable and fast at any depth, unlike OFFSET); only objects the caller may read;
    geometries in the CRS `crs` names (`bbox` is CGCS2000 already: `citygrid.geo.parse_bbox_in`)."""
    out_crs = crsmod.lookup(crs, "crs")
    where = ["TRUE"]
    params: dict[str, Any] = {"l": limit + 1}
    readable, rparams = rules.readable_sql(p)
    if readable != "TRUE":
        where.append(readable)
        params |= rparams
    if class_code:
        where.append("o.class_code=:cls")
        params["cls"] = class_code
    if division:
        where.append("(o.division_code=:d OR o.township_code=:d OR o.village_code=:d OR o.division_code LIKE :dp)")
        params |= {"d": division, "dp": division + "%"}
    if bbox:
        where.append(bbox_condition("o.geom", bbox, params))
    if status:
        where.append("o.status=:st")
        params["st"] = status
    if after:
        where.append("o.code > :after")
        params["after"] = after
    rows = conn.execute(text(_SELECT + " WHERE " + " AND ".join(where) + " ORDER BY o.code LIMIT :l"), params).all()
    items = [_out(p, r, out_crs) for r in rows[:limit]]
    return {"items": items, "next": items[-1]["code"] if len(rows) > limit else None}


def update(s: Session, p: Principal, code: str, *, attrs: dict[str, Any] | None = None, name: str | None = None,
           geometry: dict[str, Any] | None = None, crs: str | None = None, expected_version: int | None = None,
           reason: str | None = None) -> dict[str, Any]:
    """A new version; `attrs` are merged into the current ones (a key set to null removes it)."""
    conn = s.connection()
    cur = _writable(conn, p, code, "修改对象", "updating objects")
    by = p.name
    if cur.status != "active":
        raise E.object_retired("code", code=code)
    if expected_version is not None and expected_version != cur.version:
        raise E.version_conflict("version", version=cur.version)
    cls = _class(cur.class_code)
    merged = dict(conn.execute(text("SELECT attrs FROM city_object WHERE uid=:u"), {"u": cur.uid}).scalar_one())
    if attrs is not None:
        if not isinstance(attrs, dict):
            raise E.attrs_type("attrs")
        for k, v in attrs.items():
            if v is None:
                merged.pop(k, None)
            else:
                merged[k] = v
    problems = attr_problems(cls, merged, None)
    geom_wkb = None
    h3cell = None
    if geometry is not None:
        try:
            g = parse_geometry(geometry, crs)
            check_geometry(g, cls.geometry)
            geom_wkb = g.wkb
            h3cell = cell_of(g)
        except CitygridError as e:
            problems += e.problems
    if problems:
        raise CitygridError(problems, "unprocessable")
    place = {"county": cur.division_code, "township": cur.township_code, "village": cur.village_code}
    if geometry is not None:
        # a move: county, township and village are where the object now is (its code stays: codes identify, they
        # do not locate), and the caller must be allowed to edit it there too
        moved = _place(conn, g, divisions.containing(conn, g.representative_point().wkt, 3) or cur.division_code,
                       None)
        same_county = moved["county"] == cur.division_code
        township = moved["township"] or (cur.township_code if same_county else None)  # no outline: as it was
        village = moved["village"] or (cur.village_code if township == cur.township_code else None)
        place = {"county": moved["county"], "township": township, "village": village}
        rules.require_edit_class(p, cls, rules.place_of(place["village"], place["township"], place["county"]),
                                 "修改对象", "updating objects")
    s.execute(
        text("UPDATE city_object SET attrs=CAST(:a AS jsonb), name=COALESCE(:n, name), "
             "geom=COALESCE(ST_GeomFromWKB(:g, 4490), geom), h3=COALESCE(:h3, h3), division_code=:d, "
             "township_code=:t, village_code=:v, version=version+1, updated_by=:by, updated_at=now() WHERE uid=:u"),
        {"a": json.dumps(merged, ensure_ascii=False), "n": name, "g": geom_wkb, "h3": h3cell, "by": by, "u": cur.uid,
         "d": place["county"], "t": place["township"], "v": place["village"]},
    )
    if geom_wkb is not None:
        assign_objects(conn, codes=[code])
    _history(s, cur.uid, "update", by, reason)
    _audit(s, p, "update", code, {"fields": sorted((attrs or {}).keys()), "geometry": geometry is not None},
           sorted(attrs or {}))
    return get(conn, p, code) or {}


def retire(s: Session, p: Principal, code: str, *, reason: str | None = None, op: str = "retire") -> dict[str, Any]:
    conn = s.connection()
    cur = _writable(conn, p, code, "注销对象", "retiring objects")
    if cur.status != "active":
        raise E.object_retired("code", code=code)
    s.execute(text("UPDATE city_object SET status='retired', valid_to=now(), version=version+1, updated_by=:by, "
                   "updated_at=now() WHERE uid=:u"), {"by": p.name, "u": cur.uid})
    _history(s, cur.uid, op, p.name, reason)
    _audit(s, p, op, code, {"reason": reason})
    return get(conn, p, code) or {}


def confirm(s: Session, p: Principal, code: str, *, reason: str | None = None) -> dict[str, Any]:
    """The owner checked the object and it is still right (数据鲜活性): nothing but the version and the time of
    the last update change; history records a `confirm` version, and the feed a `confirmed` entry."""
    conn = s.connection()
    cur = _writable(conn, p, code, "确认对象", "confirming objects")
    if cur.status != "active":
        raise E.object_retired("code", code=code)
    _confirm_rows(s, p, [cur.uid], reason)
    _audit(s, p, "confirm", code, {"reason": reason})
    return get(conn, p, code) or {}


def _confirm_rows(s: Session, p: Principal, uids: list[uuid.UUID], reason: str | None) -> None:
    """Confirming, whether one object or an area: a new version and `updated_at` (so the objects are fresh
    again, `citygrid.registry.freshness`), a `confirm` history version each (and by its trigger a `confirmed`
    feed entry each)."""
    s.execute(text("UPDATE city_object SET version=version+1, updated_by=:by, updated_at=now() "
                   "WHERE uid = ANY(CAST(:u AS uuid[]))"), {"by": p.name, "u": uids})
    _history(s, uids, "confirm", p.name, reason)


def confirm_area(s: Session, p: Principal, division: str, class_code: str, *, reason: str | None = None
                 ) -> dict[str, Any]:
    """Confirm every active object of a class in an area (a county, township or village) at once: the bulk form
    of `confirm`, for the class's owning department where the area lies wholly in its scope (else 403; 401 for
    anonymous callers). One audit row for the act, a history version and a feed entry per object."""
    rules.require_login(p, "批量确认对象", "confirming objects in bulk")
    cls = _class(class_code)
    conn = s.connection()
    d = divisions.get(conn, division)
    if d is None or d.level < 3:
        raise E.division_unknown("division", code=division, rule_zh="或不是县级及以下", rule_en=" or is above county level")
    rules.require_edit_class(p, cls, d.code, "批量确认对象", "confirming objects in bulk")
    uids = list(s.execute(text(
        f"SELECT o.uid FROM city_object o WHERE o.class_code = :c AND o.status = 'active' AND {rules.PLACE_SQL} "
        "LIKE :dp ORDER BY o.uid FOR UPDATE"), {"c": cls.code, "dp": d.code + "%"}).scalars())
    if uids:
        _confirm_rows(s, p, uids, reason)
    _audit(s, p, "confirm_area", d.code, {"class": cls.code, "objects": len(uids), "reason": reason})
    return {"division": d.code, "class_code": cls.code, "confirmed": len(uids)}


def _new_like(cur: Any, part: dict[str, Any], i: int) -> NewObject:
    if not isinstance(part, dict):
        raise E.part_invalid("parts", i, n=i + 1)
    return NewObject(class_code=part.get("class_code", cur.class_code), geometry=part.get("geometry"),
                     attrs=part.get("attrs", {}), name=part.get("name"),
                     division_code=part.get("division_code"), crs=part.get("crs"))


def split(s: Session, p: Principal, code: str, parts: list[dict[str, Any]], *, reason: str | None = None
          ) -> dict[str, Any]:
    """Retire the parent; each part becomes a new object with a new code; lineage parent→children."""
    if not isinstance(parts, list) or len(parts) < 2:
        raise E.split_parts("parts")
    conn = s.connection()
    cur = _writable(conn, p, code, "拆分对象", "splitting objects")
    retire(s, p, code, reason=reason, op="split")
    children = []
    for i, part in enumerate(parts):
        child = create(s, p, _new_like(cur, part, i), row=i)
        s.execute(text("INSERT INTO lineage (parent_uid, child_uid, kind, by, county, parent_county) "
                       "VALUES (:p, :c, 'split', :by, :cc, :pc)"),
                  {"p": cur.uid, "c": uuid.UUID(child["uid"]), "by": p.name, "cc": child["code"][:6],
                   "pc": cur.code[:6]})
        children.append(child)
    return {"parent": get(conn, p, code), "children": children}


def merge(s: Session, p: Principal, codes: list[str], result: dict[str, Any], *, reason: str | None = None
          ) -> dict[str, Any]:
    """Retire every part; the result gets a new code; lineage parts→result."""
    if not isinstance(codes, list) or len(set(codes)) < 2:
        raise E.merge_parts("codes")
    conn = s.connection()
    curs = [_writable(conn, p, c, "合并对象", "merging objects") for c in codes]
    if len({c.class_code for c in curs}) > 1 and "class_code" not in (result or {}):
        raise E.merge_classes("class_code")
    for c in codes:
        retire(s, p, c, reason=reason, op="merge")
    merged = create(s, p, _new_like(curs[0], result, 0))
    for c in curs:
        s.execute(text("INSERT INTO lineage (parent_uid, child_uid, kind, by, county, parent_county) "
                       "VALUES (:p, :c, 'merge', :by, :cc, :pc)"),
                  {"p": c.uid, "c": uuid.UUID(merged["uid"]), "by": p.name, "cc": merged["code"][:6],
                   "pc": c.code[:6]})
    return {"parents": [get(conn, p, c) for c in codes], "result": merged}


def history(conn: Connection, p: Principal, code: str) -> list[dict[str, Any]]:
    """Every version, each as the caller may see the object today (its clearance at the object's place)."""
    cur = _require(conn, p, code, for_write=False)
    rows = conn.execute(
        text("SELECT version, op, name, ST_AsBinary(geom) AS g, attrs, status, changed_by, changed_at, reason "
             "FROM city_object_history WHERE uid=:u ORDER BY version"), {"u": cur.uid}).all()
    cls, place = get_catalog().get(cur.class_code), _place_of(cur)
    return [classification.object_view(p, cls, place, {
        "version": r.version, "op": r.op, "name": r.name, "geometry": to_geojson(wkb.loads(bytes(r.g))),
        "attrs": r.attrs, "status": r.status, "changed_by": r.changed_by, "changed_at": r.changed_at,
        "reason": r.reason}) for r in rows]


def lineage(conn: Connection, p: Principal, code: str) -> dict[str, Any]:
    """Parents and children the caller may read (a split into a classified object does not reveal it)."""
    cur = _require(conn, p, code, for_write=False)
    place = _place_of(cur)
    related = ("SELECT o.code, o.class_code, o.division_code, o.township_code, o.village_code, l.kind, l.at, l.by "
               "FROM lineage l JOIN city_object o ON o.uid=l.{other}_uid AND o.division_code=l.{other_county} "
               "WHERE l.{self}_uid=:u ORDER BY o.code")
    parents = conn.execute(text(related.format(other="parent", other_county="parent_county", self="child")),
                           {"u": cur.uid}).all()
    children = conn.execute(text(related.format(other="child", other_county="county", self="parent")),
                            {"u": cur.uid}).all()

    def entries(rows: Sequence[Any]) -> list[dict[str, Any]]:
        return [classification.redact_meta(p, place, {"code": r.code, "kind": r.kind, "at": r.at, "by": r.by})
                for r in rows if _readable(p, r)]

    return {"code": code, "parents": entries(parents), "children": entries(children)}
