"""Submissions: stored raw before anything reads them, processed (read, validated, placed) idempotently,
listed for their cadre and reviewer, reviewed row by row; approved rows are registered through the registry's
bulk path (`registry.bulk.bulk_create`: codes assigned in the same transaction, the submission named in each
object's history and in the audit log).

States (issue 11): a submission is `received` (bytes stored, committed) → `validated` (every row valid) or
`invalid` (some row has problems; the cadre corrects and resubmits) → `submitted` (its cadre handed it in: only
now do reviewers see it as pending and decide rows; an `invalid` one only as `partial`, its rows with problems
staying with the cadre) → `coded` (every handed-in row decided, the approved ones registered with their codes:
the file with the code column is ready) or `rejected` (every row rejected). A row is `valid` or `invalid`, then
`approved` (with its object's code) or `rejected` (with the reviewer's reason). `TRANSITIONS` is the one list
of which act is allowed in which state; anything else is a 409 `submission_state` naming the state.

Processing runs as a job (`citygrid.jobs`, kind `survey-intake`, the submission in its detail), in one
transaction: a process killed mid-file leaves the submission `received` with no row, and `resume_pending` (the
API's start-up) takes the interrupted job up again. A resubmission (`resubmit`) puts corrected bytes into the
same submission, `received` again (so it goes through validation and is handed in again): the earlier file and
its rows are kept in `submission_revision`. Its file may carry only the corrected rows: each is matched to the
row it corrects by the row key column (行标识) of the file the cadre downloaded, or else by name and place
(`match_rows`); rows it does not mention stay as they were, approved rows are never replaced, and a rejected row
that is sent again is validated again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from rapidfuzz import fuzz
from rapidfuzz import process as rf_process
from shapely import STRtree, wkb
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from citygrid import crs as gcj
from citygrid import jobs
from citygrid.address.resolve import AddressIndex
from citygrid.catalog import ObjectClass, get_catalog
from citygrid.errors import CitygridError, E, Problem, detail
from citygrid.geo import to_geojson
from citygrid.jobs import JobRecorder, Progress
from citygrid.registry.bulk import BulkItem, bulk_create
from citygrid.security import audit, rules
from citygrid.security.principal import Principal, system_as
from citygrid.security.scope import scoped_engine, scoped_session
from citygrid.survey import read, template, validate
from citygrid.survey.columns import columns, crs_of

MAX_BYTES = 20 * 1024 * 1024
CHUNK = 2000  # rows validated between two progress reports
DUP_METRES = 5.0  # registered objects of the class this close to a row are shown to the reviewer as likely the same
ROW_KEY = "row_key"  # the cells' key of the row key column (行标识) a downloaded file carries

# state → the acts allowed in it (hand_in, review, resubmit); `_require_state` answers anything else with a 409
TRANSITIONS: dict[str, frozenset[str]] = {
    "received": frozenset(),
    "validated": frozenset({"hand_in", "resubmit"}),
    "invalid": frozenset({"hand_in", "resubmit"}),  # hand_in only as partial: the valid rows go to review
    "submitted": frozenset({"review"}),
    "rejected": frozenset({"resubmit"}),
    "coded": frozenset({"resubmit"}),  # its rejected rows, corrected
}
OPEN = ("received", "validated", "invalid", "submitted")  # not yet decided whole: their rows count as duplicates
STATE_ZH = {"received": "已收到，校验中", "validated": "已通过校验", "invalid": "有错误", "submitted": "已提交审核",
            "rejected": "已退回", "coded": "已审核赋码"}
ACTS = {"hand_in": ("提交审核", "handed in", "：请先改正有错误的行并重新提交，或只提交无误的行（partial）",
                    ": correct the rows with problems and resubmit, or hand in only the valid rows (partial)"),
        "review": ("审核", "reviewed", "：村干部提交审核后才能审核", ": its cadre has not handed it in for review"),
        "resubmit": ("重新提交", "resubmitted", "：审核中的提交不能修改，审核完成后可更正退回的行",
                     ": it is under review; rejected rows can be corrected once the review is done")}


def _require_state(sid: str, state: str, act: str) -> None:
    if act in TRANSITIONS.get(state, frozenset()):
        return
    zh, en, hint_zh, hint_en = ACTS[act]
    raise E.submission_state("id", submission=sid, state=state, state_zh=STATE_ZH.get(state, state),
                             action_zh=zh, action_en=en, hint_zh=hint_zh, hint_en=hint_en)


@dataclass(frozen=True)
class Received:
    id: str
    village: str
    township: str


def _class(code: str) -> ObjectClass:
    cls = get_catalog().get(code)
    if cls is None:
        raise E.class_not_found("class_code", code=code)
    return cls


def home_village(conn: Connection, p: Principal, village: str | None) -> tuple[str, str]:
    """The village a cadre submits for (its only one when it names none) and its township; rights checked."""
    if village is None:
        mine = sorted({g.division for g in p.grants_of("cadre") if g.division and len(g.division) == 12})
        if len(mine) != 1:
            raise E.village_ambiguous("village", villages=", ".join(mine) or "-")
        village = mine[0]
    rules.require_submit(p, village)
    row = conn.execute(text("SELECT code, parent_code FROM division WHERE code = :v AND level = 5"),
                       {"v": village}).first()
    if row is None:
        raise E.division_unknown("village", code=village, rule_zh="或不是村级", rule_en=" or is not a village")
    return row.code, row.parent_code


def receive(s: Session, p: Principal, class_code: str, village: str | None, data: bytes, *, source: str,
            filename: str | None = None, content_type: str | None = None, crs: str | None = None,
            attachments: list[tuple[str, str | None, bytes]] | None = None, sid: str | None = None) -> Received:
    """Store the submission as received, before anything reads it; the caller commits at once."""
    rules.require_login(p, "提交调查数据", "submitting survey data")
    cls = _class(class_code)
    conn = s.connection()
    village_code, township = home_village(conn, p, village)
    _check_upload(data, crs)
    sid = sid or str(uuid.uuid4())
    s.execute(text(
        "INSERT INTO submission (id, class_code, village_code, township_code, submitter, source, filename, "
        "content_type, raw, sha256, crs) VALUES (:id, :c, :v, :t, :by, :src, :fn, :ct, :raw, :h, :crs)"),
        {"id": sid, "c": cls.code, "v": village_code, "t": township, "by": p.name, "src": source, "fn": filename,
         "ct": content_type, "raw": data, "h": hashlib.sha256(data).digest(), "crs": crs})
    for name, ctype, blob in attachments or []:
        s.execute(text("INSERT INTO submission_attachment (submission_id, name, content_type, data) "
                       "VALUES (:id, :n, :ct, :d)"), {"id": sid, "n": name, "ct": ctype, "d": blob})
    audit.record(s, p, "submit", sid, detail={"class": cls.code, "village": village_code, "source": source,
                                              "bytes": len(data)})
    return Received(sid, village_code, township)


CellReader = Callable[[ObjectClass, bytes], list[tuple[int, dict[str, Any]]]]


def _file_cells(cls: ObjectClass, data: bytes) -> list[tuple[int, dict[str, Any]]]:
    return read.read(cls, data).rows


def _reader(source: str) -> CellReader:
    if source == "odk":
        from citygrid.survey.odk import instance_cells

        return instance_cells
    return _file_cells


@dataclass(frozen=True)
class Village:
    code: str
    name: str
    geom: BaseGeometry | None
    lon: float | None  # a point inside it: its 3° Gauss-Krüger zone is the default one


def _village(conn: Connection, code: str) -> Village:
    v = conn.execute(text("SELECT name, ST_AsBinary(geom) AS g, ST_X(ST_PointOnSurface(geom)) AS lon FROM division "
                          "WHERE code = :v"), {"v": code}).first()
    if v is None:
        return Village(code, code, None, None)
    g = wkb.loads(bytes(v.g)) if v.g is not None else None
    if g is not None:
        shapely.prepare(g)
    return Village(code, v.name, g, v.lon)


def _hex(rows: list[validate.Row]) -> list[str]:
    """The rows' geometries as hex WKB, in one vectorised call (text parameters PostGIS reads without parsing
    WKT)."""
    return list(shapely.to_wkb(np.array([r.geom for r in rows], dtype=object), hex=True))


def _place_problems(conn: Connection, rows: list[validate.Row], village: Village) -> None:
    """Points and shapes outside the cadre's village (with the distance and, when it is near, the hint that
    phone map apps give GCJ-02). Inside or not is one vectorised shapely call against the prepared outline;
    only the rows outside go to PostGIS for their distance on the ellipsoid."""
    located = [r for r in rows if r.geom is not None and not r.problems]
    if not located or village.geom is None:
        return
    inside = shapely.intersects(village.geom, np.array([r.geom for r in located], dtype=object))
    outside = [r for r, ok in zip(located, inside.tolist(), strict=True) if not ok]
    if not outside:
        return
    dist = conn.execute(text(
        "SELECT round(ST_Distance(d.geom::geography, ST_GeomFromWKB(decode(u.h, 'hex'), 4490)::geography))::bigint "
        "FROM unnest(CAST(:h AS text[])) WITH ORDINALITY AS u(h, i) JOIN division d ON d.code = :v ORDER BY u.i"),
        {"h": _hex(outside), "v": village.code}).scalars().all()
    for r, d in zip(outside, dist, strict=True):
        r.problems.append(E.location_outside_village.problem(
            "loc_geometry" if r.cells.get("loc_geometry") is not None and r.cells.get("loc_lon") is None
            else "loc_x" if r.cells.get("loc_x") is not None and r.cells.get("loc_lon") is None else "loc_lon",
            r.row, village_zh=village.name, village=village.code, distance=d,
            hint_zh="；若用手机地图取点，请在“坐标系”列填写 GCJ-02" if d < 1500 else "",
            hint_en="; points taken from a phone map app are GCJ-02: say so in the coordinate system column"
            if d < 1500 else ""))


def _name_similarity(a: str | None, b: str | None) -> float | None:
    """How alike two names are (rapidfuzz's ratio, 0–1), None when either is missing: for duplicate candidates
    and for matching resubmitted rows alike."""
    return fuzz.ratio(a, b) / 100 if a and b else None


def _local_metres(geoms: Any, lat0: float) -> Any:
    """Geometries in a local equirectangular plane in metres around `lat0`: within a village its error is far
    below a millimetre at the 5 m that matter here."""
    kx, ky = 111_320.0 * math.cos(math.radians(lat0)), 110_574.0
    return shapely.transform(geoms, lambda xy: xy * np.array([kx, ky]))


def _duplicates(conn: Connection, rows: list[validate.Row], cls: ObjectClass, sid: str) -> None:
    """Registered objects of the class within `DUP_METRES` of a valid row (or touching its shape), and valid rows
    of the class's other open submissions (not yet reviewed) as close, with the distance and how alike the names
    are: flagged for the reviewer (a new object, an update, or a drop), never an error, since two real manholes
    can lie a metre apart. The candidates in the file's box come in two statements; the matching is one
    vectorised STRtree query (10,000 index probes in PostGIS cost seconds)."""
    located = [r for r in rows if r.geom is not None and not r.problems]
    if not located:
        return
    geoms = np.array([r.geom for r in located], dtype=object)
    x0, y0, x1, y1 = (float(v) for v in shapely.total_bounds(geoms))
    pad = DUP_METRES / 50_000  # 5 m < 0.0001°
    box = {"x0": x0 - pad, "y0": y0 - pad, "x1": x1 + pad, "y1": y1 + pad, "c": cls.code, "sid": sid, "open": list(OPEN)}
    objects = conn.execute(text(
        "SELECT o.code, o.name, ST_AsBinary(o.geom) AS g FROM city_object o WHERE o.class_code = :c "
        "AND o.status = 'active' AND o.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)"), box).all()
    others = conn.execute(text(
        "SELECT t.submission_id AS sub, t.row, t.name, ST_AsBinary(t.geom) AS g FROM submission_row t "
        "JOIN submission s ON s.id = t.submission_id AND s.class_code = :c AND s.id <> CAST(:sid AS uuid) "
        "AND s.status = ANY(CAST(:open AS text[])) WHERE t.status = 'valid' AND t.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)"),
        box).all()
    found: list[tuple[dict[str, Any], Any]] = [({"code": o.code}, o) for o in objects] + [
        ({"submission": str(o.sub), "row": o.row}, o) for o in others]
    if not found:
        return
    lat0 = (y0 + y1) / 2
    mine = _local_metres(geoms, lat0)
    theirs = _local_metres(shapely.from_wkb([bytes(o.g) for _, o in found]), lat0)
    pairs = STRtree(theirs).query(mine, predicate="dwithin", distance=DUP_METRES)
    dist = shapely.distance(mine[pairs[0]], theirs[pairs[1]])
    # registered objects first (the reviewer decides new, update or drop against those), then rows of other
    # open submissions, each by distance; at most 5 per row
    for i, j, d in sorted(zip(pairs[0].tolist(), pairs[1].tolist(), dist.tolist(), strict=True),
                          key=lambda t: (t[0], t[1] >= len(objects), t[2])):
        r = located[i]
        if len(r.duplicates) >= 5:
            continue
        key, o = found[j]
        similar = _name_similarity(r.name, o.name)
        r.duplicates.append(key | {"name": o.name, "distance_m": round(d, 1), "name_similarity": similar})


def _across(conn: Connection, rows: list[validate.Row], cls: ObjectClass, village: Village, sid: str) -> None:
    """Registered objects of the class, and valid rows of other villages' open submissions, just across the
    village boundary that the caller's row-level security hides (an area-scoped cadre reads its own village's
    submissions, and objects of non-public classes in its own village only, so `_duplicates` cannot see them):
    `citygrid_survey_neighbours` and `citygrid_survey_open_neighbours` (0027, SECURITY DEFINER) give their code
    (or submission and row), class, distance and name similarity and nothing else, marked `hidden`; the reviewer
    opens them with its own rights (`detail_of`). Only rows within reach of the village's edge are asked, and for
    callers who see everything the functions answer nothing."""
    located = [r for r in rows if r.geom is not None and not r.problems]
    if village.geom is not None and located:
        inner = village.geom.buffer(-3 * DUP_METRES / 100_000)  # ~15 m inside the outline: nothing hidden in reach
        inside = shapely.contains(inner, np.array([r.geom for r in located], dtype=object))
        located = [r for r, ok in zip(located, inside.tolist(), strict=True) if not ok]
    if not located:
        return
    args = {"c": cls.code, "h": _hex(located), "n": [r.name or "" for r in located], "m": DUP_METRES}
    found: list[tuple[int, dict[str, Any]]] = [
        (f.i, {"code": f.code, "class_code": f.class_code, "distance_m": f.distance_m,
               "name_similarity": f.name_similarity, "hidden": True})
        for f in conn.execute(text(
            "SELECT i, code, class_code, distance_m, name_similarity FROM citygrid_survey_neighbours(:c, "
            "CAST(:h AS text[]), CAST(:n AS text[]), :m) ORDER BY i, distance_m, code"), args)]
    found += [(f.i, {"submission": str(f.submission_id), "row": f.row_key, "distance_m": f.distance_m,
                     "name_similarity": f.name_similarity, "hidden": True})
              for f in conn.execute(text(
                  "SELECT i, submission_id, row_key, distance_m, name_similarity FROM "
                  "citygrid_survey_open_neighbours(:c, CAST(:h AS text[]), CAST(:n AS text[]), :m, CAST(:sid AS uuid), "
                  "CAST(:open AS text[])) ORDER BY i, distance_m, submission_id, row_key"),
                  args | {"sid": sid, "open": list(OPEN)})]
    for i, candidate in found:
        r = located[i - 1]
        r.duplicates = sorted(r.duplicates + [candidate], key=lambda d: ("submission" in d, d["distance_m"]))[:5]


GCJ_SAMPLE = 200  # points a file's GCJ-02 test looks at (spread over the file)
GCJ_MIN = 5  # fewer located points say nothing about a systematic shift
GCJ_REACH = 0.02  # degrees around a point searched for the nearest registered object or address (~2 km)


def _nearest(conn: Connection, xs: list[float], ys: list[float]) -> list[float | None]:
    """Metres from each point to the nearest registered point object or door/building of the address base (within
    `GCJ_REACH`), by the spatial indexes' nearest-neighbour order; None where nothing is that near. Points only:
    a point inside a land parcel or a grid cell is 0 m from it wherever it lies."""
    return list(conn.execute(text(
        "SELECT (SELECT min(d) FROM ("
        " (SELECT ST_Distance(o.geom::geography, g.p::geography) AS d FROM city_object o "
        "  WHERE o.status = 'active' AND o.geom && ST_Expand(g.p, :r) AND GeometryType(o.geom) = 'POINT' "
        "  ORDER BY o.geom <-> g.p LIMIT 1) UNION ALL "
        " (SELECT ST_Distance(a.point::geography, g.p::geography) FROM addr_node a WHERE a.level IN ('door', "
        "  'building') AND a.point && ST_Expand(g.p, :r) ORDER BY a.point <-> g.p LIMIT 1)) n) "
        "FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[])) WITH ORDINALITY AS u(x, y, i) "
        "CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(u.x, u.y), 4490) AS p) g ORDER BY u.i"),
        {"x": xs, "y": ys, "r": GCJ_REACH}).scalars().all())


def _gcj_suspects(conn: Connection, rows: list[validate.Row], village: Village) -> Problem | None:
    """Points declared CGCS2000/WGS84 that are really GCJ-02 (a phone map app's coordinates): the whole file
    sits ~300-700 m off the address base and registered objects, and the GCJ-02 inverse brings it onto them.
    Judged on a sample for the file, then row by row; each such row gets `location_gcj02` (the fix: declare
    GCJ-02) and the file a note with the figures."""
    cand = [r for r in rows if r.xy_storage is not None and r.declared in ("CGCS2000", "WGS84") and not any(
        p.field in ("loc_lon", "loc_lat", "loc_x", "loc_y") and p.error_code != "location_outside_village"
        for p in r.problems)]
    if len(cand) < GCJ_MIN:
        return None
    step = max(1, len(cand) // GCJ_SAMPLE)
    sample = cand[::step][:GCJ_SAMPLE]

    def judged(group: list[validate.Row]) -> tuple[list[float], list[float], list[tuple[float, float]]]:
        xs = [r.xy_storage[0] for r in group if r.xy_storage]
        ys = [r.xy_storage[1] for r in group if r.xy_storage]
        fx, fy = gcj.from_gcj02(xs, ys)
        fixed = list(zip(fx.tolist(), fy.tolist(), strict=True))
        near = _nearest(conn, xs + fx.tolist(), ys + fy.tolist())
        far = float(GCJ_REACH * 100_000)
        d0 = [far if d is None else float(d) for d in near[:len(xs)]]
        d1 = [far if d is None else float(d) for d in near[len(xs):]]
        return d0, d1, fixed

    d0, d1, fixed0 = judged(sample)
    m0, m1 = float(np.median(d0)), float(np.median(d1))
    outside = {id(r) for r in sample if any(p.error_code == "location_outside_village" for p in r.problems)}
    back_inside = sum(1 for r, (x, y) in zip(sample, fixed0, strict=True) if id(r) in outside
                      and village.geom is not None and shapely.intersects_xy(village.geom, x, y))
    # the whole file comes onto the address base and registered objects: in a town centre a shifted point still
    # lands some 30 m from something, so the test is relative (half the distance) with a floor of 15 m
    nearer = m1 <= m0 / 2 and m0 - m1 >= 15
    home = len(outside) >= max(3, len(sample) // 2) and back_inside >= 0.8 * len(outside)  # … or into the village
    if not (nearer or home):
        return None
    d0, d1, fixed = judged(cand)
    n = 0
    for r, a, b, (fx_, fy_) in zip(cand, d0, d1, fixed, strict=True):
        inside = village.geom is not None and shapely.intersects_xy(village.geom, fx_, fy_)
        if a > 2 * b + 20 or (inside and any(p.error_code == "location_outside_village" for p in r.problems)):
            n += 1
            r.problems = [p for p in r.problems if p.error_code != "location_outside_village"]
            r.problems.append(E.location_gcj02.problem(
                "loc_crs", r.row, declared=r.declared, near=round(a), near_fixed=round(b),
                lon=round(fx_, 7), lat=round(fy_, 7)))
    shift = float(np.median([gcj.to_gcj02(x, y)[0] - x for x, y in fixed[:50]])) * 96_000 if fixed else 0.0
    return E.survey_gcj02.problem("crs", None, n=n, total=len(cand), median=round(m0), median_fixed=round(m1),
                                  shift=round(abs(shift)))


def _row_key(v: Any) -> int | None:
    """A row key cell as written back (5, "5", 5.0, "５"); None when it is none."""
    v = validate.clean(v)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


MATCH_METRES = 15.0  # a corrected row without a key this close to a row, and alike in name, corrects it
MATCH_ALIKE = 0.6  # … alike meaning this rapidfuzz ratio at least ("井1" and "井2" are 0.5: not alike)
MATCH_NAME = 0.8  # a row with no usable place (or an earlier one without) is matched by a name this alike


def match_rows(rows: list[validate.Row], before: Sequence[Any], lat0: float | None) -> dict[int, int]:
    """Each row of a resubmitted file (by its line) → the key of the row it corrects: the row key column (行标识)
    when it names a row of the submission; else the nearest-matching row by name and place, each taken once, best
    pairs first (an approved row matched is then left as it is); a row that matches none gets the next free key
    (a row added). `before`: the submission's rows (row, name, status, g: WKB or None)."""
    keys = {b.row for b in before}
    out: dict[int, int] = {}
    for r in rows:
        k = _row_key(r.cells.get(ROW_KEY))
        if k is not None and k in keys and k not in out.values():
            out[r.row] = k
    free = [b for b in before if b.row not in out.values()]  # approved rows too: matched, then left as they are
    todo = [r for r in rows if r.row not in out]
    lat = lat0 if lat0 is not None else 30.0
    pairs: list[tuple[float, int, int]] = []

    # both placed: the pairs within MATCH_METRES, from one STRtree query (a whole file resent without keys is
    # thousands of rows)
    mine = [r for r in todo if r.geom is not None]
    theirs = [b for b in free if b.g is not None]
    if mine and theirs:
        gm = _local_metres(np.array([r.geom for r in mine], dtype=object), lat)
        gt = _local_metres(shapely.from_wkb([bytes(b.g) for b in theirs]), lat)
        i, j = STRtree(gt).query(gm, predicate="dwithin", distance=MATCH_METRES)
        for a, b, d in zip(i.tolist(), j.tolist(), shapely.distance(gm[i], gt[j]).tolist(), strict=True):
            sim = _name_similarity(mine[a].name, theirs[b].name)
            if sim is None and d <= 1 or sim is not None and sim >= MATCH_ALIKE:
                pairs.append((-(2 + (sim or 0) - d / MATCH_METRES), mine[a].row, theirs[b].row))
    # one of the two without a place: by name alone, one rapidfuzz cdist per group (a place and a name, scored
    # above 1, beat a name alone)
    for rs, bs in (([r for r in todo if r.geom is None], free),
                   (mine, [b for b in free if b.g is None])):
        if not rs or not bs:
            continue
        sims = rf_process.cdist([r.name or "" for r in rs], [b.name or "" for b in bs], scorer=fuzz.ratio,
                                score_cutoff=MATCH_NAME * 100)
        for a, b in np.argwhere(sims > 0).tolist():
            pairs.append((-float(sims[a, b]) / 100, rs[a].row, bs[b].row))
    taken: set[int] = set()
    for _, line, key in sorted(pairs):
        if line not in out and key not in taken:
            out[line] = key
            taken.add(key)
    nxt = max(keys, default=0)
    for r in rows:
        if r.row not in out:
            nxt += 1
            out[r.row] = nxt
    return out


def process(s: Session, p: Principal, sid: str, resolve: validate.Resolver | None = None,
            cells: CellReader | None = None, progress: Progress | None = None, if_received: bool = False
            ) -> dict[str, Any]:
    """Read, validate and place every row of a stored submission. The first file's rows are keyed by their line;
    a resubmission's rows replace the rows they correct (`match_rows`), approved rows never. One transaction:
    running it again (after a crash mid-way, whose transaction left nothing) gives the same rows, none twice.
    `progress(stage, done, total)` hears of each stage (the job's record, the CLI's bar); `if_received`: only a
    submission nobody has processed yet (a resumed job that another process already finished leaves it alone).
    A valid ODK instance is handed in at once: finalising a form in Collect is the enumerator's hand-in."""
    say = progress or (lambda stage, done, total: None)
    conn = s.connection()
    sub = conn.execute(text("SELECT id, class_code, village_code, township_code, submitter, source, raw, crs, status, "
                            "revision FROM submission s WHERE id = :id FOR UPDATE"), {"id": sid}).first()
    if sub is None or not rules.may_read_submission(p, sub.submitter, sub.village_code, sub.township_code):
        raise E.submission_not_found("id", submission=sid)
    cls = _class(sub.class_code)
    before = conn.execute(text("SELECT row, name, status, ST_AsBinary(geom) AS g FROM submission_row "
                               "WHERE submission_id = :id ORDER BY row"), {"id": sid}).all()
    decided = any(b.status in ("approved", "rejected") for b in before)
    if (decided or if_received) and sub.status != "received":  # reviewed rows change only by a resubmission
        return summary(conn, p, sid)
    say("read", 0, None)
    merging = sub.revision > 1 and bool(before)
    try:
        table = (cells or _reader(sub.source))(cls, bytes(sub.raw))
    except CitygridError as e:  # the file itself: the submission is kept, invalid, with the reason
        if not merging:
            s.execute(text("DELETE FROM submission_row WHERE submission_id = :id"), {"id": sid})
        s.execute(text("UPDATE submission SET status = 'invalid', errors = CAST(:e AS jsonb), processed_at = now() "
                       "WHERE id = :id"), {"id": sid, "e": json.dumps([x.to_dict() for x in e.problems],
                                                                      ensure_ascii=False)})
        return summary(conn, p, sid) | {"error": e}
    total = len(table)
    village = _village(conn, sub.village_code)
    rows: list[validate.Row] = []
    for at in range(0, total, CHUNK):  # validation in chunks, so the job's progress moves
        say("validate", at, total)
        rows += validate.check(cls, table[at:at + CHUNK], sub.crs, resolve, village.lon)
    validate.file_duplicates(rows)
    say("place", total, total)
    _place_problems(conn, rows, village)
    file_notes = [x for x in [_gcj_suspects(conn, rows, village)] if x is not None]
    _duplicates(conn, rows, cls, sid)
    _across(conn, rows, cls, village, sid)
    say("store", total, total)
    lat0 = float(village.geom.centroid.y) if village.geom is not None else None
    keys = match_rows(rows, before, lat0) if merging else {r.row: r.row for r in rows}
    approved = {b.row for b in before if b.status == "approved"}
    rows = [r for r in rows if keys[r.row] not in approved]  # approved rows keep their review and their code
    for r in rows:
        r.cells.pop(ROW_KEY, None)
    if merging:
        s.execute(text("DELETE FROM submission_row WHERE submission_id = :id AND row = ANY(CAST(:k AS int[]))"),
                  {"id": sid, "k": [keys[r.row] for r in rows]})
    else:
        s.execute(text("DELETE FROM submission_row WHERE submission_id = :id"), {"id": sid})
    if rows:
        hexes = _hex([r for r in rows if r.geom is not None])
        it = iter(hexes)
        s.execute(text(
            "INSERT INTO submission_row (submission_id, row, file_row, revision, cells, name, attrs, geom, errors, "
            "duplicates, status) SELECT :id, u.key, u.row, :rev, u.cells, u.name, u.attrs, "
            "ST_GeomFromWKB(decode(u.g, 'hex'), 4490), u.errors, u.duplicates, u.status "
            "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS u(key int, row int, cells jsonb, name text, "
            "attrs jsonb, g text, errors jsonb, duplicates jsonb, status text)"),
            {"id": sid, "rev": sub.revision, "rows": json.dumps([{
                "key": keys[r.row], "row": r.row, "cells": r.cells_json(), "name": r.name, "attrs": r.attrs,
                "g": next(it) if r.geom is not None else None,
                "errors": [x.to_dict() for x in r.problems], "duplicates": r.duplicates,
                "status": "invalid" if r.problems else "valid"} for r in rows], ensure_ascii=False, default=str)})
    counts: dict[str, int] = {r.status: r.n for r in conn.execute(text(
        "SELECT status, count(*) AS n FROM submission_row WHERE submission_id = :id GROUP BY status"), {"id": sid})}
    state = ("invalid" if counts.get("invalid") else "validated" if counts.get("valid")
             else "coded" if counts.get("approved") else "rejected")
    handed = state == "validated" and sub.source == "odk"
    s.execute(text("UPDATE submission SET status = :st, n_rows = :n, n_invalid = :bad, errors = CAST(:e AS jsonb), "
                   "processed_at = now(), submitted_at = CASE WHEN :handed THEN now() ELSE submitted_at END "
                   "WHERE id = :id"),
              {"id": sid, "st": "submitted" if handed else state, "n": sum(counts.values()),
               "bad": counts.get("invalid", 0), "handed": handed,
               "e": json.dumps([x.to_dict() for x in file_notes], ensure_ascii=False)})
    if handed:
        audit.record(s, p, "hand_in", sid, detail={"rows": counts.get("valid", 0), "source": "odk"})
    say("done", total, total)
    return summary(conn, p, sid)


Transaction = Callable[[], AbstractContextManager[Session]]


def submit(transaction: Transaction, p: Principal, class_code: str, village: str | None, data: bytes, *,
           source: str, filename: str | None = None, content_type: str | None = None, crs: str | None = None,
           index: AddressIndex | None = None, attachments: list[tuple[str, str | None, bytes]] | None = None,
           cells: CellReader | None = None) -> dict[str, Any]:
    """Receive (committed on its own: from then on nothing is lost), then process in a second transaction. A
    file that cannot be read is kept as an invalid submission with the reason, and answered with that 4xx."""
    with transaction() as s:
        rec = receive(s, p, class_code, village, data, source=source, filename=filename, content_type=content_type,
                      crs=crs, attachments=attachments)

    def resolve(address: str) -> dict[str, Any]:
        return index.geocode(address, rec.village, 1) if index is not None else {"candidates": []}

    with transaction() as s:
        out = process(s, p, rec.id, resolve, cells)
    error = out.pop("error", None)
    if isinstance(error, CitygridError):
        raise error
    return out


KIND = "survey-intake"
ODK_LANE = "survey-odk"  # ODK instances are processed one after another in this lane (`jobs.queue_job`)
WAIT = 20.0  # seconds an upload's answer waits for its job: small files come back validated, large ones 202


Index = AddressIndex | Callable[[], AddressIndex] | None  # the resolver's index, or how to get it when needed


def _resolver(index: Index, village: str) -> validate.Resolver:
    """The resolver for one processing run: the index (in memory: no SQL per row) is fetched at the first address
    (a file without addresses never loads it) and then kept; each distinct address is resolved once."""
    got: list[AddressIndex | None] = []
    seen: dict[str, dict[str, Any]] = {}  # rows of one file often share a door plate: each address once

    def resolve(address: str) -> dict[str, Any]:
        if address in seen:
            return seen[address]
        if not got:
            got.append(index() if callable(index) and not isinstance(index, AddressIndex) else index)
        ix = got[0]
        seen[address] = ix.geocode(address, village, 1) if ix is not None else {"candidates": []}
        return seen[address]
    return resolve


def processing(engine: Engine, p: Principal, sid: str, index: Index) -> Callable[[Progress], dict[str, Any]]:
    """The job that processes a stored submission in its own transaction, in `p`'s scope; its result is the
    submission's summary (a file that cannot be read ends it `invalid` with the reason, not failed)."""
    def run(progress: Progress) -> dict[str, Any]:
        with scoped_session(engine, p) as s:
            village = s.connection().execute(text("SELECT village_code FROM submission WHERE id = :i"),
                                             {"i": sid}).scalar()
            out = process(s, p, sid, _resolver(index, str(village)), progress=progress, if_received=True)
        out.pop("error", None)
        out.pop("job", None)
        return {"submission": sid, "status": out["status"], "rows": out["rows"], "invalid": out["invalid"]}
    return run


def start_processing(engine: Engine, p: Principal, sid: str, index: Index, job: JobRecorder | None = None
                     ) -> JobRecorder:
    """Process a stored submission as a background job (`citygrid.jobs`: progress in the job table, found
    `interrupted` after a kill and taken up again by `resume_pending`)."""
    return jobs.start(scoped_engine(engine, p), p.name, KIND, processing(engine, p, sid, index),
                      detail={"submission": sid}, job=job)


def submit_job(engine: Engine, p: Principal, class_code: str, village: str | None, data: bytes, *, source: str,
               filename: str | None = None, content_type: str | None = None, crs: str | None = None,
               index: Index = None, wait: float = WAIT) -> tuple[dict[str, Any], bool]:
    """Receive (committed: from then on nothing is lost), then process as a job, waiting up to `wait` seconds:
    (summary, finished). A file that cannot be read is kept as an invalid submission and answered with its 4xx."""
    with scoped_session(engine, p) as s:
        rec = receive(s, p, class_code, village, data, source=source, filename=filename, content_type=content_type,
                      crs=crs)
    job = start_processing(engine, p, rec.id, index)
    finished = jobs.wait(str(job.id), wait)
    with scoped_session(engine, p) as s:
        out = summary(s.connection(), p, rec.id)
    if finished and out["status"] == "invalid" and not out["rows"] and out["errors"]:
        raise CitygridError([Problem(**e) for e in out["errors"]])
    return out, finished


def _check_upload(data: bytes, crs: str | None) -> None:
    """What a file (first or corrected) must be before it is stored: not empty, within the size limit, and in a
    coordinate system citygrid knows when one is declared."""
    if not data:
        raise E.file_empty("file")
    if len(data) > MAX_BYTES:
        raise E.file_too_large("file", limit=f"{MAX_BYTES >> 20} MB")
    if crs is not None and crs.strip() and crs_of(crs) is None:
        raise E.location_crs("crs", value=crs[:40])


def _locked(conn: Connection, p: Principal, sid: str, columns: str) -> Any:
    """The submission's row (`columns`, which must include submitter, village_code and township_code), locked
    for this transaction; the same 404 whether it does not exist or the caller may not read it."""
    sub = conn.execute(text(f"SELECT {columns} FROM submission WHERE id = :id FOR UPDATE"),
                       {"id": sid}).first() if _is_uuid(sid) else None
    if sub is None or not rules.may_read_submission(p, sub.submitter, sub.village_code, sub.township_code):
        raise E.submission_not_found("id", submission=sid)
    return sub


def hand_in(s: Session, p: Principal, sid: str, partial: bool = False) -> dict[str, Any]:
    """The cadre hands a validated submission in for review (`submitted`: the township's reviewers now see it as
    pending). One with rows that have problems only as `partial`: its valid rows go to review, the others stay
    with the cadre to correct. Handing in again what is already handed in answers the same and changes nothing
    (a retry after a lost answer)."""
    rules.require_login(p, "提交审核", "handing in for review")
    conn = s.connection()
    sub = _locked(conn, p, sid, "id, submitter, village_code, township_code, status, n_rows, n_invalid")
    rules.require_submit(p, sub.village_code)
    if sub.submitter != p.name and not p.is_admin:  # its reviewer reads it, but only its cadre hands it in
        raise E.submission_not_found("id", submission=sid)
    if sub.status == "submitted":
        return summary(conn, p, sid)
    _require_state(sid, sub.status, "hand_in")
    valid = conn.execute(text("SELECT count(*) FROM submission_row WHERE submission_id = :id AND status = 'valid'"),
                         {"id": sid}).scalar_one()
    if sub.status == "invalid" and not (partial and valid):
        zh, en, hint_zh, hint_en = ACTS["hand_in"]
        if partial:  # nothing valid to hand in
            hint_zh, hint_en = "：没有无误的行", ": no row is valid"
        raise E.submission_state("id", submission=sid, state=sub.status, state_zh=STATE_ZH[sub.status],
                                 action_zh=zh, action_en=en, hint_zh=hint_zh, hint_en=hint_en)
    s.execute(text("UPDATE submission SET status = 'submitted', submitted_at = now() WHERE id = :id"), {"id": sid})
    audit.record(s, p, "hand_in", sid, detail={"rows": valid, "left_with_problems": sub.n_invalid})
    return summary(conn, p, sid)


def resubmit(s: Session, p: Principal, sid: str, data: bytes, *, source: str, filename: str | None = None,
             crs: str | None = None) -> int:
    """Corrected rows sent into the same submission (the cadre's file back, fixed, or only the corrected rows):
    the file and the rows it replaces are kept as a revision (`submission_revision`), the submission is
    `received` again with the new bytes (validated again, then handed in again), and processing replaces the rows
    the file corrects, never an approved one (`process`). Before it is handed in, or after its review (its
    rejected rows); not while it is under review. Returns the new revision."""
    rules.require_login(p, "重新提交调查数据", "resubmitting survey data")
    conn = s.connection()
    sub = _locked(conn, p, sid, "id, submitter, village_code, township_code, revision, status")
    rules.require_submit(p, sub.village_code)
    if sub.submitter != p.name and not p.is_admin:  # a reviewer of the township reads it, but only its cadre sends
        raise E.submission_not_found("id", submission=sid)
    _check_upload(data, crs)
    open_rows = conn.execute(text("SELECT count(*) FROM submission_row WHERE submission_id = :id AND status <> "
                                  "'approved'"), {"id": sid}).scalar_one()
    if sub.status == "coded" and not open_rows:
        raise E.resubmit_closed("id", submission=sid)
    _require_state(sid, sub.status, "resubmit")
    s.execute(text(
        "INSERT INTO submission_revision (submission_id, revision, submitter, source, filename, raw, sha256, crs, "
        "status, n_rows, n_invalid, errors, rows, created_at) SELECT s.id, s.revision, s.submitter, s.source, "
        "s.filename, s.raw, s.sha256, s.crs, s.status, s.n_rows, s.n_invalid, s.errors, COALESCE((SELECT "
        "jsonb_agg(jsonb_build_object('row', r.row, 'file_row', r.file_row, 'revision', r.revision, 'status', "
        "r.status, 'errors', r.errors, 'cells', r.cells, 'object_code', r.object_code, 'reason', r.reason) "
        "ORDER BY r.row) FROM submission_row r WHERE "
        "r.submission_id = s.id), '[]'), COALESCE(s.processed_at, s.created_at) FROM submission s WHERE s.id = :id"),
        {"id": sid})
    s.execute(text("UPDATE submission SET raw = :raw, sha256 = :h, source = :src, filename = :fn, crs = :crs, "
                   "status = 'received', revision = revision + 1, errors = '[]', processed_at = NULL, submitted_at = NULL "
                   "WHERE id = :id"),
              {"id": sid, "raw": data, "h": hashlib.sha256(data).digest(), "src": source, "fn": filename, "crs": crs})
    audit.record(s, p, "resubmit", sid, detail={"revision": sub.revision + 1, "bytes": len(data)})
    return int(sub.revision) + 1


def resubmit_job(engine: Engine, p: Principal, sid: str, data: bytes, *, source: str, filename: str | None = None,
                 crs: str | None = None, index: Index = None, wait: float = WAIT) -> tuple[dict[str, Any], bool]:
    """`resubmit` (committed), then processed as a job like an upload: (summary, finished)."""
    with scoped_session(engine, p) as s:
        resubmit(s, p, sid, data, source=source, filename=filename, crs=crs)
    job = start_processing(engine, p, sid, index)
    finished = jobs.wait(str(job.id), wait)
    with scoped_session(engine, p) as s:
        return summary(s.connection(), p, sid), finished


def revisions(conn: Connection, p: Principal, sid: str) -> list[dict[str, Any]]:
    """The submission's earlier revisions, oldest first: what each send was and how its rows came out."""
    summary(conn, p, sid)
    return [dict(r._mapping) for r in conn.execute(text(
        "SELECT revision, filename, source, crs, status, n_rows AS rows, n_invalid AS invalid, errors, rows AS items, "
        "created_at, replaced_at FROM submission_revision WHERE submission_id = :id ORDER BY revision"), {"id": sid})]


def resume_pending(engine: Engine, index: Index = None) -> list[str]:
    """Submissions stored but not processed (their process died: kill -9, a crash) processed again as jobs,
    each taking up its interrupted job when there is one. Processing replaces a submission's rows in one
    transaction, so a resumed submission has every row once (one that another process is about to process,
    from its ODK lane, is then left alone by whichever comes second). ODK instances without a job go to the ODK
    lane, as when they arrived, so that a burst left behind does not start a thread each. Returns the
    submissions' ids."""
    p = system_as("intake-resume")
    eng = scoped_engine(engine, p)
    with eng.connect() as c:
        todo = c.execute(text(
            "SELECT s.id, s.source, (SELECT j.id FROM job j WHERE j.kind = :k AND j.detail->>'submission' = s.id::text "
            "ORDER BY j.started_at DESC LIMIT 1) AS job, (SELECT j.state FROM job j WHERE j.kind = :k "
            "AND j.detail->>'submission' = s.id::text ORDER BY j.started_at DESC LIMIT 1) AS state "
            "FROM submission s WHERE s.status = 'received' ORDER BY s.created_at"), {"k": KIND}).all()
    out = []
    for r in todo:
        if r.state in ("running", "cancelling"):  # a live process has it
            continue
        job = None
        if r.job is not None and r.state in jobs.STOPPED:
            try:
                job = jobs.JobRecorder.attach(eng, str(r.job), KIND, fresh=True)
            except CitygridError:  # another process took it up first
                continue
        if job is None and r.source == "odk":
            jobs.queue_job(ODK_LANE, eng, p.name, KIND, processing(engine, p, str(r.id), index),
                           detail={"submission": str(r.id)})
        else:
            start_processing(engine, p, str(r.id), index, job)
        out.append(str(r.id))
    return out


def submit_odk(engine: Engine, p: Principal, xml: bytes | None, attachments: list[tuple[str, str | None, bytes]],
               index: Index = None) -> tuple[bool, str]:
    """An OpenRosa submission: (created, the message for Collect). The instance and its attachments are stored
    and committed before the answer (201, as OpenRosa requires once the server holds the data); processing runs
    afterwards as a `survey-intake` job like a file's, queued in one lane so that a burst of phones syncing does
    not take a thread and a connection each. A process killed before the job ran leaves the submission
    `received`, and `resume_pending` processes it at the next start. Resent instances (same instanceID from the
    same principal) are acknowledged without a second submission; rows with problems are still received (the
    cadre sees them in the intake), since Collect cannot show them."""
    from citygrid.survey import odk

    if not xml:
        raise E.odk_instance_invalid("xml_submission_file", **detail("：缺少 xml_submission_file",
                                                                     ": xml_submission_file is missing"))
    rules.require_login(p, "提交调查数据", "submitting survey data")
    cls, iid, _ = odk.parse_instance(xml)
    with scoped_session(engine, p) as s:
        before = odk.seen_before(s.connection(), iid, p.name)
        if before:
            return False, f"已收到（{before}）"
        rec = receive(s, p, cls.code, None, xml, source="odk", filename=iid, content_type="text/xml",
                      attachments=attachments)
    jobs.queue_job(ODK_LANE, scoped_engine(engine, p), p.name, KIND, processing(engine, p, rec.id, index),
                   detail={"submission": rec.id})
    return True, f"已收到 {rec.id}，正在校验；结果请在网页上查看"


def pending(conn: Connection) -> list[str]:
    """Submissions stored but never processed (the process stopped in between), oldest first."""
    return [str(r.id) for r in conn.execute(text("SELECT id FROM submission WHERE status = 'received' "
                                                 "ORDER BY created_at"))]


def _sub_out(r: Any) -> dict[str, Any]:
    return {"id": str(r.id), "class_code": r.class_code, "village_code": r.village_code,
            "township_code": r.township_code, "submitter": r.submitter, "source": r.source, "filename": r.filename,
            "status": r.status, "rows": r.n_rows, "invalid": r.n_invalid, "errors": r.errors,
            "revision": r.revision, "created_at": r.created_at, "processed_at": r.processed_at,
            "submitted_at": r.submitted_at}


_SUB = ("SELECT s.id, s.class_code, s.village_code, s.township_code, s.submitter, s.source, s.filename, s.status, "
        "s.n_rows, s.n_invalid, s.errors, s.revision, s.created_at, s.processed_at, s.submitted_at FROM submission s")


def summary(conn: Connection, p: Principal, sid: str) -> dict[str, Any]:
    try:
        uuid.UUID(sid)
    except ValueError as exc:
        raise E.submission_not_found("id", submission=sid) from exc
    r = conn.execute(text(_SUB + " WHERE s.id = :id"), {"id": sid}).first()
    if r is None or not rules.may_read_submission(p, r.submitter, r.village_code, r.township_code):
        raise E.submission_not_found("id", submission=sid)
    job = conn.execute(text("SELECT id, state, done, total, detail->>'stage' AS stage FROM job WHERE kind = :k "
                            "AND detail->>'submission' = :s ORDER BY started_at DESC LIMIT 1"),
                       {"k": KIND, "s": sid}).first()
    out = _sub_out(r)
    if job is not None:  # the processing job: its state and how far it got
        out["job"] = {"id": str(job.id), "state": job.state, "stage": job.stage, "done": job.done,
                      "total": job.total}
    return out


def list_submissions(conn: Connection, p: Principal, status: str | None = None, limit: int = 100
                     ) -> list[dict[str, Any]]:
    """A cadre's own submissions, a reviewer's township's, all for admins; newest first."""
    rules.require_login(p, "查看调查提交", "listing submissions")
    where, params = rules.submissions_sql(p)
    if status:
        where += " AND s.status = :st"
        params["st"] = status
    rows = conn.execute(text(_SUB + f" WHERE {where} ORDER BY s.created_at DESC LIMIT :l"), params | {"l": limit})
    return [_sub_out(r) for r in rows]


def detail_of(conn: Connection, p: Principal, sid: str) -> dict[str, Any]:
    """The submission with every row: its cells, values, location, problems and review."""
    out = summary(conn, p, sid)
    rows = conn.execute(text(
        "SELECT row, file_row, revision, cells, name, attrs, ST_AsBinary(geom) AS g, errors, duplicates, status, "
        "reason, object_code, reviewed_by, reviewed_at FROM submission_row WHERE submission_id = :id ORDER BY row"),
        {"id": sid}).all()
    out["revisions"] = [{k: v for k, v in x.items() if k != "items"} for x in revisions(conn, p, sid)]
    out["items"] = [{"row": r.row, "file_row": r.file_row, "revision": r.revision, "cells": r.cells, "name": r.name,
                     "attrs": r.attrs, "geometry": to_geojson(wkb.loads(bytes(r.g))) if r.g is not None else None,
                     "errors": r.errors, "duplicates": r.duplicates, "status": r.status, "reason": r.reason,
                     "object_code": r.object_code, "reviewed_by": r.reviewed_by, "reviewed_at": r.reviewed_at}
                    for r in rows]
    _open_hidden(conn, p, out)
    return out


def _open_hidden(conn: Connection, p: Principal, sub: dict[str, Any]) -> None:
    """Candidates found across the village boundary (`_across`) carry only code (or submission and row), class,
    distance and similarity; the township's reviewer gets each one's name and village as far as its own rights
    read the object or the submission (row-level security decides, as for `GET /objects`), the cadre nothing
    more."""
    if not rules.may_review(p, sub["township_code"]):
        return
    hidden = [d for i in sub["items"] for d in i["duplicates"] if d.get("hidden")]
    if not hidden:
        return
    seen = {r.code: r for r in conn.execute(text(
        "SELECT code, name, village_code FROM city_object WHERE code = ANY(CAST(:c AS text[]))"),
        {"c": sorted({d["code"] for d in hidden if "code" in d})})}
    rows = {(str(r.sid), r.row): r for r in conn.execute(text(
        "SELECT t.submission_id AS sid, t.row, t.name, s.village_code FROM submission_row t "
        "JOIN submission s ON s.id = t.submission_id WHERE t.submission_id = ANY(CAST(:s AS uuid[]))"),
        {"s": sorted({d["submission"] for d in hidden if "submission" in d})})}
    for d in hidden:
        o = seen.get(d["code"]) if "code" in d else rows.get((d["submission"], d["row"]))
        if o is not None:
            d |= {"name": o.name, "village_code": o.village_code}


def review(s: Session, p: Principal, sid: str, decisions: list[dict[str, Any]]) -> dict[str, Any]:
    """Approve or reject rows (`{"row": n, "decision": "approve"|"reject", "reason": ...}`), all or nothing:
    the approved rows are registered in this transaction (`registry.bulk.bulk_create`: one code block, the same
    attribute and geometry checks, `submission <id> row <n>` in each object's history), so a failure registers
    none. Repeating a decision already made (a reviewer's retry after a lost answer, a server killed after its
    commit) answers it again with the object's code and changes nothing; the opposite decision is a conflict."""
    rules.require_login(p, "审核调查数据", "reviewing survey data")
    conn = s.connection()
    sub = _locked(conn, p, sid, "id, class_code, village_code, township_code, submitter, status")
    rules.require_review(p, sub.township_code)
    if sub.status not in ("submitted", "coded", "rejected"):  # decided ones still answer a repeated decision
        _require_state(sid, sub.status, "review")
    problems: list[Problem] = []
    done = []
    again: list[Any] = []  # rows whose decision is the one already made: answered as they are
    asked = [d.get("row") for d in decisions if isinstance(d.get("row"), int)]
    found = {r.row: r for r in conn.execute(text(
        "SELECT row, name, attrs, ST_AsBinary(geom) AS g, status, object_code FROM submission_row "
        "WHERE submission_id = :id "
        "AND row = ANY(CAST(:rows AS int[])) ORDER BY row FOR UPDATE"), {"id": sid, "rows": asked})}
    for d in decisions:
        n, decision, reason = d.get("row"), d.get("decision"), d.get("reason")
        r = found.get(n) if isinstance(n, int) else None
        if r is None:
            problems.append(E.submission_row_not_found.problem("row", n if isinstance(n, int) else None, n=n))
            continue
        if decision not in ("approve", "reject"):
            problems.append(E.review_decision.problem("decision", r.row, n=r.row, value=str(decision)[:20]))
            continue
        if (r.status, decision) in (("approved", "approve"), ("rejected", "reject")):
            again.append(r)
            continue
        if r.status != "valid" and decision == "approve" or r.status in ("approved", "rejected"):
            state_zh = {"invalid": "有错误", "approved": "已通过", "rejected": "已退回"}.get(r.status, r.status)
            problems.append(E.review_not_valid.problem("row", r.row, n=r.row, state_zh=state_zh, state_en=r.status))
            continue
        if decision == "reject" and not (isinstance(reason, str) and reason.strip()):
            problems.append(E.review_reason.problem("reason", r.row, n=r.row))
            continue
        done.append((r, decision, reason))
    if problems:
        raise CitygridError(problems, "conflict" if any(x.error_code == "review_not_valid" for x in problems)
                            else "invalid")
    repeated = [{"row": r.row, "status": r.status, "object_code": r.object_code} for r in again]
    if not done:  # only repeats: nothing changes, nothing to record
        return {"submission": summary(conn, p, sid), "results": repeated}
    _require_state(sid, sub.status, "review")
    approve = [(r, reason) for r, decision, reason in done if decision == "approve"]
    codes: dict[int, str] = {}
    if approve:  # one code block, one insert: approving a whole file is one statement, not a create per row
        county = sub.village_code[:6]
        items = [BulkItem(geom=wkb.loads(bytes(r.g)), attrs=dict(r.attrs), name=r.name,
                          township_code=sub.township_code, village_code=sub.village_code) for r, _ in approve]
        made = bulk_create(s, p, sub.class_code, county, items, batch=f"submission:{sub.id}", reviewed=str(sub.id),
                           reasons=[f"submission {sub.id} row {r.row}" for r, _ in approve])
        codes = {r.row: c for (r, _), c in zip(approve, made, strict=True)}
    s.execute(text(
        "UPDATE submission_row t SET status = u.status, reason = u.reason, object_code = u.code, reviewed_by = :by, "
        "reviewed_at = now() FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS u(row int, status text, reason text, "
        "code text) WHERE t.submission_id = :id AND t.row = u.row"),
        {"by": p.name, "id": sid, "rows": json.dumps([
            {"row": r.row, "status": "approved" if decision == "approve" else "rejected", "reason": reason,
             "code": codes.get(r.row)} for r, decision, reason in done], ensure_ascii=False)})
    results = [{"row": r.row, "status": "approved" if decision == "approve" else "rejected",
                "object_code": codes.get(r.row)} for r, decision, reason in done]
    # every handed-in row decided: coded (the approved rows have their codes, the file with them is ready), or
    # rejected when no row was approved; rows with problems (a partial hand-in) stay with the cadre
    left, approved_n = conn.execute(text(
        "SELECT count(*) FILTER (WHERE status = 'valid'), count(*) FILTER (WHERE status = 'approved') "
        "FROM submission_row WHERE submission_id = :id"), {"id": sid}).one()
    if not left:
        s.execute(text("UPDATE submission SET status = :st WHERE id = :id"),
                  {"id": sid, "st": "coded" if approved_n else "rejected"})
    audit.record(s, p, "review", sid, detail={"approved": sum(1 for x in results if x["object_code"]),
                                              "rejected": sum(1 for x in results if not x["object_code"]),
                                              "state": "submitted" if left else "coded" if approved_n else "rejected"})
    return {"submission": summary(conn, p, sid), "results": sorted(results + repeated, key=lambda x: int(x["row"]))}


KEY_HEADER, CODE_HEADER, OUTCOME_HEADER = "行标识", "统一识别代码", "审核结果"


def file_with_codes(conn: Connection, p: Principal, sid: str) -> tuple[bytes, str]:
    """The cadre's own file back with three columns added to each data row: the row's key (行标识: a file sent
    back with only some rows is matched by it), the object's code (编码) once approved, and the row's outcome
    (通过 / 退回：reason / the problems to fix). After a resubmission the rows come from several files: the file
    is then the class's template with every row's cells. (bytes, "xlsx" | "csv")."""
    sub = summary(conn, p, sid)
    raw, source, rev = conn.execute(text("SELECT raw, source, revision FROM submission WHERE id = :id"),
                                    {"id": sid}).one()
    if source not in ("xlsx", "csv", *read.GIS_KINDS):
        raise E.submission_not_found("id", submission=sid)
    rows = {r.row: r for r in conn.execute(text(
        "SELECT row, name, status, reason, object_code, errors, cells FROM submission_row WHERE submission_id = :id"),
        {"id": sid})}

    def outcome(n: int) -> tuple[str, str]:
        r = rows.get(n)
        if r is None:
            return "", ""
        text_ = {"approved": "通过", "rejected": f"退回：{r.reason}", "valid": "待审核"}.get(
            r.status, "；".join(e["message_zh"] for e in r.errors))
        return r.object_code or "", text_

    if source in read.GIS_KINDS:  # a GIS file is not rewritten: its features' codes and outcomes, by feature
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["要素", "名称", CODE_HEADER, OUTCOME_HEADER])
        for n in sorted(rows):
            w.writerow([n, rows[n].name or "", *outcome(n)])
        return out.getvalue().encode("utf-8-sig"), "csv"
    cls = _class(sub["class_code"])
    from openpyxl import load_workbook

    if rev > 1:  # rows from several files: the template, each row's cells under its column
        wb = load_workbook(io.BytesIO(template.build(cls)))
        ws = wb[template.DATA_SHEET]
        cols = columns(cls)
        col = len(cols) + 1
        for i, n in enumerate(sorted(rows), start=2):
            for j, c in enumerate(cols, start=1):
                ws.cell(i, j, rows[n].cells.get(c.key))
            ws.cell(i, col, n)
            ws.cell(i, col + 1, outcome(n)[0])
            ws.cell(i, col + 2, outcome(n)[1])
        header = 1
    elif source == "xlsx":
        table = read.read(cls, bytes(raw))
        wb = load_workbook(io.BytesIO(bytes(raw)))
        sheet = wb[template.DATA_SHEET] if template.DATA_SHEET in wb.sheetnames else wb.active
        assert sheet is not None
        ws = sheet
        col = ws.max_column + 1
        for n, _ in table.rows:  # in the first file a row's key is its line
            ws.cell(n, col, n if n in rows else None)
            ws.cell(n, col + 1, outcome(n)[0])
            ws.cell(n, col + 2, outcome(n)[1])
        header = table.header_row
    else:
        table = read.read(cls, bytes(raw))
        lines = list(csv.reader(io.StringIO(read.decode(bytes(raw)))))
        out = io.StringIO()
        w = csv.writer(out)
        for i, line in enumerate(lines, start=1):
            extra = [KEY_HEADER, CODE_HEADER, OUTCOME_HEADER] if i == table.header_row else \
                [str(i) if i in rows else "", *outcome(i)] if i > table.header_row else []
            w.writerow(line + extra)
        return out.getvalue().encode("utf-8-sig"), "csv"
    for k, h in enumerate((KEY_HEADER, CODE_HEADER, OUTCOME_HEADER)):
        ws.cell(header, col + k, h)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue(), "xlsx"


def _is_uuid(v: str) -> bool:
    try:
        uuid.UUID(v)
    except ValueError:
        return False
    return True
