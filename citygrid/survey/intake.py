"""Submissions: stored raw before anything reads them, processed (read, validated, placed) idempotently,
listed for their cadre and reviewer, reviewed row by row; approved rows are registered through the registry's
bulk path (`registry.bulk.bulk_create`: codes assigned in the same transaction, the submission named in each
object's history and in the audit log).

States: a submission is `received` (bytes stored, committed) → `validated` (every row valid) or `invalid`
(some row has problems) → `reviewed` (no row left undecided). A row is `valid` or `invalid`, then `approved`
(with its object's code) or `rejected` (with the reviewer's reason). Processing a submission again (after a
crash, or after the catalog changed) replaces its rows, and changes nothing once a row has been reviewed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz
from shapely import wkb
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from citygrid.address.resolve import AddressIndex
from citygrid.catalog import ObjectClass, get_catalog
from citygrid.errors import CitygridError, E, Problem, detail
from citygrid.geo import to_geojson
from citygrid.registry.bulk import BulkItem, bulk_create
from citygrid.security import audit, rules
from citygrid.security.principal import Principal
from citygrid.survey import read, template, validate

MAX_BYTES = 20 * 1024 * 1024
DUP_METRES = 5.0  # registered objects of the class this close to a row are shown to the reviewer as likely the same


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
    if not data:
        raise E.file_empty("file")
    if len(data) > MAX_BYTES:
        raise E.file_too_large("file", limit=f"{MAX_BYTES >> 20} MB")
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


def _place_problems(conn: Connection, rows: list[validate.Row], village: str) -> None:
    """Points and shapes outside the cadre's village (with the distance and, when it is near, the hint that
    phone map apps give GCJ-02)."""
    located = [r for r in rows if r.geom is not None and not r.problems]
    if not located:
        return
    found = conn.execute(text(
        "SELECT g.i, d.name, ST_Intersects(d.geom, g.geom) AS inside, CASE WHEN ST_Intersects(d.geom, g.geom) "
        "THEN 0 ELSE round(ST_Distance(d.geom::geography, g.geom::geography))::bigint END AS dist "
        "FROM unnest(CAST(:i AS int[]), CAST(:g AS text[])) AS u(i, wkt) "
        "CROSS JOIN LATERAL (SELECT u.i, ST_GeomFromText(u.wkt, 4490) AS geom) g "
        "JOIN division d ON d.code = :v WHERE d.geom IS NOT NULL"),
        {"i": list(range(len(located))), "g": [r.geom.wkt for r in located if r.geom is not None], "v": village}).all()
    for f in found:
        if not f.inside:
            r = located[f.i]
            r.problems.append(E.location_outside_village.problem(
                "loc_lon" if r.cells.get("loc_lon") is not None else "loc_geometry", r.row, village_zh=f.name, village=village,
                distance=f.dist, hint_zh="；若用手机地图取点，请在“坐标系”列填写 GCJ-02" if f.dist < 1500 else "",
                hint_en="; points taken from a phone map app are GCJ-02: say so in the coordinate system column"
                if f.dist < 1500 else ""))


def _duplicates(conn: Connection, rows: list[validate.Row], cls: ObjectClass) -> None:
    """Registered objects of the class within `DUP_METRES` of a valid row (or touching its shape), with the
    distance and how alike the names are: flagged for the reviewer (a new object, an update, or a drop), never
    an error, since two real manholes can lie a metre apart."""
    located = [r for r in rows if r.geom is not None and not r.problems]
    if not located:
        return
    found = conn.execute(text(
        "SELECT u.i, o.code, o.name, round(ST_Distance(o.geom::geography, g.geom::geography)::numeric, 1) AS dist "
        "FROM unnest(CAST(:i AS int[]), CAST(:g AS text[])) AS u(i, wkt) "
        "CROSS JOIN LATERAL (SELECT ST_GeomFromText(u.wkt, 4490) AS geom) g "
        "JOIN city_object o ON o.geom && ST_Expand(g.geom, :deg) AND o.class_code = :c AND o.status = 'active' "
        "AND ST_DWithin(o.geom::geography, g.geom::geography, :m) ORDER BY u.i, dist"),
        {"i": list(range(len(located))), "g": [r.geom.wkt for r in located if r.geom is not None], "c": cls.code,
         "m": DUP_METRES, "deg": DUP_METRES / 50_000}).all()  # the bbox the spatial index answers: 5 m < 0.0001°
    for f in found:
        r = located[f.i]
        if len(r.duplicates) < 5:
            similar = fuzz.ratio(r.name or "", f.name or "") / 100 if r.name and f.name else None
            r.duplicates.append({"code": f.code, "name": f.name, "distance_m": float(f.dist),
                                 "name_similarity": similar})


def process(s: Session, p: Principal, sid: str, resolve: validate.Resolver | None = None,
            cells: CellReader | None = None) -> dict[str, Any]:
    """Read, validate and place every row of a stored submission; replaces its rows, so running it again (after
    a crash mid-way, whose transaction left nothing) gives the same rows, none twice."""
    conn = s.connection()
    sub = conn.execute(text("SELECT id, class_code, village_code, township_code, submitter, source, raw, crs, status "
                            "FROM submission s WHERE id = :id FOR UPDATE"), {"id": sid}).first()
    if sub is None or not rules.may_read_submission(p, sub.submitter, sub.village_code, sub.township_code):
        raise E.submission_not_found("id", submission=sid)
    cls = _class(sub.class_code)
    reviewed = conn.execute(text("SELECT count(*) FROM submission_row WHERE submission_id = :id "
                                 "AND status IN ('approved', 'rejected')"), {"id": sid}).scalar_one()
    if reviewed:
        return summary(conn, p, sid)
    try:
        table = (cells or _reader(sub.source))(cls, bytes(sub.raw))
    except CitygridError as e:  # the file itself: the submission is kept, invalid, with the reason
        s.execute(text("DELETE FROM submission_row WHERE submission_id = :id"), {"id": sid})
        s.execute(text("UPDATE submission SET status = 'invalid', errors = CAST(:e AS jsonb), processed_at = now() "
                       "WHERE id = :id"), {"id": sid, "e": json.dumps([x.to_dict() for x in e.problems],
                                                                      ensure_ascii=False)})
        return summary(conn, p, sid) | {"error": e}
    rows = validate.check(cls, table, sub.crs, resolve)
    _place_problems(conn, rows, sub.village_code)
    _duplicates(conn, rows, cls)
    s.execute(text("DELETE FROM submission_row WHERE submission_id = :id"), {"id": sid})
    if rows:
        s.execute(text(
            "INSERT INTO submission_row (submission_id, row, cells, name, attrs, geom, errors, duplicates, status) "
            "SELECT :id, u.row, u.cells, u.name, u.attrs, ST_GeomFromText(u.wkt, 4490), u.errors, u.duplicates, "
            "u.status FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS u(row int, cells jsonb, name text, attrs jsonb, "
            "wkt text, errors jsonb, duplicates jsonb, status text)"),
            {"id": sid, "rows": json.dumps([{
                "row": r.row, "cells": r.cells_json(), "name": r.name, "attrs": r.attrs,
                "wkt": r.geom.wkt if r.geom is not None else None,
                "errors": [x.to_dict() for x in r.problems], "duplicates": r.duplicates, "status": "invalid" if r.problems else "valid"}
                for r in rows], ensure_ascii=False, default=str)})
    n_invalid = sum(1 for r in rows if r.problems)
    s.execute(text("UPDATE submission SET status = :st, n_rows = :n, n_invalid = :bad, errors = '[]', "
                   "processed_at = now() WHERE id = :id"),
              {"id": sid, "st": "invalid" if n_invalid else "validated", "n": len(rows), "bad": n_invalid})
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


def submit_odk(transaction: Transaction, p: Principal, xml: bytes | None,
               attachments: list[tuple[str, str | None, bytes]], index: AddressIndex | None = None
               ) -> tuple[bool, str]:
    """An OpenRosa submission: (created, the message for Collect). Resent instances (same instanceID from the
    same principal) are acknowledged without a second submission; rows with problems are still received (the
    cadre sees them in the intake), since Collect cannot show them."""
    from citygrid.survey import odk

    if not xml:
        raise E.odk_instance_invalid("xml_submission_file", **detail("：缺少 xml_submission_file",
                                                                     ": xml_submission_file is missing"))
    rules.require_login(p, "提交调查数据", "submitting survey data")
    cls, iid, _ = odk.parse_instance(xml)
    with transaction() as s:
        before = odk.seen_before(s.connection(), iid, p.name)
    if before:
        return False, f"已收到（{before}）"
    with transaction() as s:
        rec = receive(s, p, cls.code, None, xml, source="odk", filename=iid, content_type="text/xml",
                      attachments=attachments)

    def resolve(address: str) -> dict[str, Any]:
        return index.geocode(address, rec.village, 1) if index is not None else {"candidates": []}

    with transaction() as s:
        out = process(s, p, rec.id, resolve)
    return True, f"已收到 {out['id']}：{'通过校验' if out['status'] == 'validated' else '有需要修改的地方，请在网页上查看'}"


def pending(conn: Connection) -> list[str]:
    """Submissions stored but never processed (the process stopped in between), oldest first."""
    return [str(r.id) for r in conn.execute(text("SELECT id FROM submission WHERE status = 'received' "
                                                 "ORDER BY created_at"))]


def _sub_out(r: Any) -> dict[str, Any]:
    return {"id": str(r.id), "class_code": r.class_code, "village_code": r.village_code,
            "township_code": r.township_code, "submitter": r.submitter, "source": r.source, "filename": r.filename,
            "status": r.status, "rows": r.n_rows, "invalid": r.n_invalid, "errors": r.errors,
            "created_at": r.created_at, "processed_at": r.processed_at}


_SUB = ("SELECT s.id, s.class_code, s.village_code, s.township_code, s.submitter, s.source, s.filename, s.status, "
        "s.n_rows, s.n_invalid, s.errors, s.created_at, s.processed_at FROM submission s")


def summary(conn: Connection, p: Principal, sid: str) -> dict[str, Any]:
    try:
        uuid.UUID(sid)
    except ValueError as exc:
        raise E.submission_not_found("id", submission=sid) from exc
    r = conn.execute(text(_SUB + " WHERE s.id = :id"), {"id": sid}).first()
    if r is None or not rules.may_read_submission(p, r.submitter, r.village_code, r.township_code):
        raise E.submission_not_found("id", submission=sid)
    return _sub_out(r)


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
        "SELECT row, cells, name, attrs, ST_AsBinary(geom) AS g, errors, duplicates, status, reason, object_code, "
        "reviewed_by, "
        "reviewed_at FROM submission_row WHERE submission_id = :id ORDER BY row"), {"id": sid})
    out["items"] = [{"row": r.row, "cells": r.cells, "name": r.name, "attrs": r.attrs,
                     "geometry": to_geojson(wkb.loads(bytes(r.g))) if r.g is not None else None, "errors": r.errors,
                     "duplicates": r.duplicates, "status": r.status, "reason": r.reason, "object_code": r.object_code,
                     "reviewed_by": r.reviewed_by, "reviewed_at": r.reviewed_at} for r in rows]
    return out


def review(s: Session, p: Principal, sid: str, decisions: list[dict[str, Any]]) -> dict[str, Any]:
    """Approve or reject rows (`{"row": n, "decision": "approve"|"reject", "reason": ...}`), all or nothing:
    the approved rows are registered in this transaction (`registry.bulk.bulk_create`: one code block, the same
    attribute and geometry checks, `submission <id> row <n>` in each object's history), so a failure registers
    none. Repeating a decision already made (a reviewer's retry after a lost answer, a server killed after its
    commit) answers it again with the object's code and changes nothing; the opposite decision is a conflict."""
    rules.require_login(p, "审核调查数据", "reviewing survey data")
    conn = s.connection()
    sub = conn.execute(text("SELECT id, class_code, village_code, township_code, submitter FROM submission "
                            "WHERE id = :id FOR UPDATE"), {"id": sid}).first() if _is_uuid(sid) else None
    if sub is None or not rules.may_read_submission(p, sub.submitter, sub.village_code, sub.township_code):
        raise E.submission_not_found("id", submission=sid)
    rules.require_review(p, sub.township_code)
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
    open_rows = conn.execute(text("SELECT count(*) FROM submission_row WHERE submission_id = :id AND status = 'valid'"),
                             {"id": sid}).scalar_one()
    if not open_rows:
        s.execute(text("UPDATE submission SET status = 'reviewed' WHERE id = :id"), {"id": sid})
    audit.record(s, p, "review", sid, detail={"approved": sum(1 for x in results if x["object_code"]),
                                              "rejected": sum(1 for x in results if not x["object_code"])})
    return {"submission": summary(conn, p, sid), "results": sorted(results + repeated, key=lambda x: int(x["row"]))}


def file_with_codes(conn: Connection, p: Principal, sid: str) -> tuple[bytes, str]:
    """The cadre's own file back with two columns added to each data row: the object's code (编码) once
    approved, and the row's outcome (通过 / 退回：reason / the problems to fix). (bytes, "xlsx" | "csv")."""
    sub = summary(conn, p, sid)
    raw, source = conn.execute(text("SELECT raw, source FROM submission WHERE id = :id"), {"id": sid}).one()
    if source not in ("xlsx", "csv"):
        raise E.submission_not_found("id", submission=sid)
    rows = {r.row: r for r in conn.execute(text(
        "SELECT row, status, reason, object_code, errors FROM submission_row WHERE submission_id = :id"), {"id": sid})}

    def outcome(n: int) -> tuple[str, str]:
        r = rows.get(n)
        if r is None:
            return "", ""
        text_ = {"approved": "通过", "rejected": f"退回：{r.reason}", "valid": "待审核"}.get(
            r.status, "；".join(e["message_zh"] for e in r.errors))
        return r.object_code or "", text_

    cls = _class(sub["class_code"])
    table = read.read(cls, bytes(raw))
    if source == "xlsx":
        from openpyxl import load_workbook

        wb = load_workbook(io.BytesIO(bytes(raw)))
        ws = wb[template.DATA_SHEET] if template.DATA_SHEET in wb.sheetnames else wb.active
        assert ws is not None
        col = ws.max_column + 1
        ws.cell(table.header_row, col, "统一识别代码")
        ws.cell(table.header_row, col + 1, "审核结果")
        for n, _ in table.rows:
            code, what = outcome(n)
            ws.cell(n, col, code)
            ws.cell(n, col + 1, what)
        buf = io.BytesIO()
        wb.save(buf)
        return buf.getvalue(), "xlsx"
    lines = list(csv.reader(io.StringIO(read.decode(bytes(raw)))))
    out = io.StringIO()
    w = csv.writer(out)
    for i, line in enumerate(lines, start=1):
        extra = ["统一识别代码", "审核结果"] if i == table.header_row else list(outcome(i)) if i > table.header_row else []
        w.writerow(line + extra)
    return out.getvalue().encode("utf-8-sig"), "csv"


def _is_uuid(v: str) -> bool:
    try:
        uuid.UUID(v)
    except ValueError:
        return False
    return True
