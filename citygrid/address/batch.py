"""Batch geocoding of CSV/Excel files: streamed in and out, so a million rows never sit in memory.

The upload is streamed to disk untouched before anything reads it (nothing an accepted upload held is ever lost;
a rejected upload leaves nothing behind). Every input row gives exactly one output row: a match, or an error code
saying why not — never a silent drop. A job killed mid-way is marked interrupted at the next start-up with its
result file cut back to its last checkpoint, and can be resumed from there or retried (`restart`).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.engine import Engine

from citygrid import crs as crsmod
from citygrid import jobs
from citygrid.address.answer import geocode_row, present_all
from citygrid.address.resolve import AddressIndex
from citygrid.crs import Crs
from citygrid.errors import CitygridError, E, detail
from citygrid.jobs import Progress
from citygrid.security import rules
from citygrid.security.principal import Principal
from citygrid.settings import get_settings

MAX_FIELD = 2000
MAX_LEN = 500  # one address typed or sent in a list (a field of an uploaded file may be longer: MAX_FIELD)
OUT_COLUMNS = ["row", "input", "status", "error_code", "address", "address_code", "level", "level_amap", "precise",
               "confidence", "lon", "lat", "crs", "township", "village", "door_code", "building_code",
               "room_address_code", "unused"]


CHUNK = 1 << 20


def _safe_name(filename: str | None) -> str:
    return "".join(ch for ch in Path(filename or "upload").name if ch.isalnum() or ch in "._-") or "upload"


def store_upload(root: Path, filename: str | None, src: BinaryIO, limit: int) -> Path:
    """Copy an upload to `root/batches/<id>/input-<name>` in chunks (never whole in memory), at most `limit`
    bytes; a file over the limit, or an empty one, leaves nothing behind."""
    d = root / "batches" / uuid.uuid4().hex
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"input-{_safe_name(filename)}"
    try:
        size = 0
        with open(path, "wb") as f:
            while chunk := src.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise E.file_too_large("file", limit=f"{limit >> 20} MB")
                f.write(chunk)
        if size == 0:
            raise E.file_empty("file")
    except BaseException:
        shutil.rmtree(d, ignore_errors=True)
        raise
    return path


@dataclass(frozen=True)
class Upload:
    """An upload that is stored and whose header names an address column: ready to be geocoded as a job."""

    filename: str | None
    path: Path
    column: str | None
    header: list[str]
    hint: str | None = None  # the division the caller named (a township hint for every row)

    @property
    def result(self) -> Path:
        return self.path.parent / "result.csv"

    def detail(self, root: Path) -> dict[str, Any]:
        """What the job row records about its input: where it is stored relative to the data directory (the
        server's business: never shown to callers, `jobs.public`), and what a resume needs."""
        return {"file": self.filename, "stored": self.path.relative_to(root).as_posix(), "column": self.column,
                "division": self.hint}

    @classmethod
    def of_job(cls, root: Path, job: dict[str, Any]) -> Upload:
        """The upload of a recorded batch job (its full row, `jobs.load`)."""
        d = job["detail"]
        stored = Path(d["stored"])
        return cls(d.get("file"), stored if stored.is_absolute() else root / stored, d.get("column"), [],
                   d.get("division"))


def check_address(q: Any, field: str = "q", row: int | None = None) -> str:
    """One address as sent: text, not blank, at most MAX_LEN characters."""
    if not isinstance(q, str) or not q.strip():
        raise E.address_empty(field, row)
    if len(q) > MAX_LEN:
        raise E.address_too_long(field, row, length=len(q), limit=MAX_LEN)
    return q


def geocode_many(p: Principal, index: AddressIndex, addresses: list[Any], division: str | None, limit: int,
                 crs: str | None = None) -> list[dict[str, Any]]:
    """Geocode a list in one request (departments and admins): a bad row is answered in its place, the others
    are still geocoded; points in `crs` (`citygrid.crs.lookup`)."""
    rules.require_bulk_resolve(p)
    out_crs = crsmod.lookup(crs, "crs")
    storage = crsmod.CGCS2000
    results = []
    for i, a in enumerate(addresses):
        try:
            check_address(a, "addresses", i)
        except CitygridError as e:
            results.append({"row": i, "input": a[:MAX_LEN] if a else a, "candidates": [],
                            "error": e.problems[0].to_dict()})
            continue
        results.append({"row": i} | geocode_row(index, a, division, limit, storage))
    return present_all(results, out_crs)


def accept(p: Principal, root: Path, filename: str | None, src: BinaryIO, column: str | None, hint: str | None,
           limit: int) -> Upload:
    """Store the upload (streamed, at most `limit` bytes), then read its header, so a wrong type, encoding or
    column fails now, in the request, rather than later in the job; a rejected upload leaves nothing on disk.
    Departments and admins only."""
    rules.require_bulk_resolve(p)
    path = store_upload(root, filename, src, limit)
    try:
        header, _ = iter_rows(path, column)
    except BaseException:
        shutil.rmtree(path.parent, ignore_errors=True)
        raise
    return Upload(filename, path, column, header, hint)


KIND = "address-batch"


def geocode_job(index: AddressIndex, upload: Upload, resume: dict[str, int] | None = None
                ) -> Callable[[Progress], dict[str, Any]]:
    """The job's work (citygrid/jobs.py runs it): geocode every row into `upload.result`, from the start or from
    a checkpoint (`resume`); the counts are the job's result (the file is found from the job's input, never
    named to callers). With a `JobRecorder` as progress, every 1000 rows the file is flushed and the rows
    written so far recorded with its length in one statement, so record and file agree after a kill."""
    def work(progress: Progress) -> dict[str, Any]:
        cp = progress.checkpoint if isinstance(progress, jobs.JobRecorder) else None
        return run(index, upload.path, upload.column, upload.result, progress, upload.hint, checkpoint=cp,
                   resume=resume)

    return work


def settle(job: dict[str, Any]) -> None:
    """An interrupted batch: its result file is cut back to the last checkpoint, where the record says it is
    (rows written after it by the dead process are written again by a resume)."""
    upload = Upload.of_job(get_settings().data_dir, job)
    cp = (job["detail"] or {}).get("checkpoint")
    if upload.result.exists():
        with open(upload.result, "r+b") as f:
            f.truncate(int(cp["bytes"]) if cp else 0)


jobs.on_interrupted(KIND, settle)


def restart(engine: Engine, index: AddressIndex, job: dict[str, Any], fresh: bool, background: bool,
            forward: Progress | None = None) -> jobs.JobRecorder:
    """Take up a stopped batch job again (interrupted, failed or cancelled): from its checkpoint (resume) or from
    the first row (`fresh`, retry), under the same id, in a background thread or here (the CLI)."""
    upload = Upload.of_job(get_settings().data_dir, job)
    if not upload.path.exists():
        raise E.job_state("job_id", state=job["state"], action_zh="继续或重新运行（输入文件已不存在）",
                          action_en="resumed or retried (its input file is gone)")
    rec = jobs.JobRecorder.attach(engine, job["id"], KIND, fresh, forward)
    cp = None if fresh else (job["detail"] or {}).get("checkpoint")
    work = geocode_job(index, upload, cp)
    if background:
        return jobs.start(engine, job["detail"].get("owner", "system"), KIND, work, job=rec)
    jobs.run_recorded(rec, work)
    return rec


def sniff_kind(path: Path) -> str:
    with open(path, "rb") as f:  # the head only: uploads can be hundreds of MB
        head = f.read(4096)
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if b"\x00" in head:
        raise E.file_type("file", **detail(None))
    return "csv"


def _decode_lines(path: Path) -> Iterator[str]:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            with open(path, encoding=enc, newline="") as f:
                for _ in f:
                    pass
            break
        except UnicodeDecodeError:
            continue
    else:
        raise E.file_encoding("file")
    with open(path, encoding=enc, newline="") as f:
        yield from f


def iter_rows(path: Path, column: str | None) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """(header, rows) where each row is (1-based data row number, {column: value})."""
    kind = sniff_kind(path)
    if kind == "csv":
        reader = csv.reader(_decode_lines(path))
        try:
            header = next(reader)
        except StopIteration as exc:
            raise E.file_empty("file") from exc
        rows: Iterator[list[Any]] = reader
    else:
        from openpyxl import load_workbook

        try:
            wb = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a broken file
            raise E.file_type("file", **detail(str(exc))) from exc
        sheet = wb.active
        if sheet is None:  # a workbook without sheets has no rows either
            raise E.file_empty("file")
        it = sheet.iter_rows(values_only=True)
        first = next(it, None)
        if first is None:
            raise E.file_empty("file")
        header = ["" if v is None else str(v) for v in first]
        rows = ([("" if v is None else v) for v in r] for r in it)
    header = [h.strip() for h in header]
    col = pick_column(header, column)

    def gen() -> Iterator[tuple[int, dict[str, Any]]]:
        for i, r in enumerate(rows, start=1):
            rec = {header[j] if j < len(header) else f"col{j + 1}": r[j] for j in range(len(r))}
            rec["__address__"] = rec.get(col, "")
            yield i, rec

    return header, gen()


def pick_column(header: list[str], column: str | None) -> str:
    if column:
        if column not in header:
            raise _column_missing(header, column)
        return column
    for cand in ("地址", "address", "详细地址", "住址", "addr"):
        for h in header:
            if h.lower() == cand:
                return h
    for h in header:
        if "地址" in h or "address" in h.lower():
            return h
    raise _column_missing(header, None)


def _column_missing(header: list[str], column: str | None) -> CitygridError:
    return E.column_missing("column", column_zh=f"“{column}”" if column else "",
                            column_en=f" {column!r}" if column else "", columns_zh="、".join(header), columns_en=header)


def result_row(i: int, text: str, res: dict[str, Any]) -> tuple[bool, list[Any]]:
    """One geocoded row as the `OUT_COLUMNS` of a batch's result (CSV here, Parquet from the Spark job,
    `citygrid.export.spark`), and whether it matched below county level."""
    top = res["candidates"][0] if res.get("candidates") else None
    if top and top["level"] not in ("province", "city", "county"):
        codes = top["codes"]
        pt = top["point"] or {}
        return True, [i, text, "matched", "", top["address"], top["address_code"], top["level"], top["level_amap"],
                      "true" if top["precise"] else "false", top["confidence"], pt.get("lon"), pt.get("lat"),
                      pt.get("crs"), (top["township"] or {}).get("name"), (top["village"] or {}).get("name"),
                      codes.get("door"), codes.get("building"), codes.get("room_address"), "|".join(top["unused"])]
    err = (res.get("error") or {}).get("error_code") or E.no_match.code
    return False, [i, text[:MAX_FIELD], "failed", err] + [""] * (len(OUT_COLUMNS) - 4)


def run(index: AddressIndex, path: Path, column: str | None, out: Path, progress: Any = None,
        hint: str | None = None, checkpoint: Callable[..., None] | None = None,
        resume: dict[str, int] | None = None) -> dict[str, int]:
    """Geocode `path` into `out` (one output row per input row). `checkpoint(rows, state[, total])` is called
    every 1000 rows and at the end, after the file is flushed, `state` holding the counts and the file's length;
    `resume` is such a state: the file is cut to that length and the rows it holds are skipped."""
    header, rows = iter_rows(path, column)
    extra = [h for h in header if h]
    counts = {"rows": 0, "matched": 0, "failed": 0}
    if resume:
        counts = {k: int(resume[k]) for k in counts}
        with open(out, "r+b") as raw:
            raw.truncate(int(resume["bytes"]))
    with open(out, "a" if resume else "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        if not resume:
            w.writerow(OUT_COLUMNS + [f"in:{h}" for h in extra])
        skip = counts["rows"]
        for i, rec in rows:
            if i <= skip:  # written before the interruption
                continue
            value = rec["__address__"]
            text = "" if value is None else str(value)
            if len(text) > MAX_FIELD:
                res: dict[str, Any] = {"error": {"error_code": E.address_too_long.code}, "candidates": []}
            else:
                res = geocode_row(index, text, hint, 1, crsmod.CGCS2000)
            matched, out_row = result_row(i, text, res)
            counts["rows"] += 1
            counts["matched" if matched else "failed"] += 1
            w.writerow(out_row + [rec.get(h, "") for h in extra])
            if counts["rows"] % 1000 == 0:
                if checkpoint is not None:
                    f.flush()
                    checkpoint(counts["rows"], counts | {"bytes": f.tell()})
                elif progress:
                    progress("geocode", counts["rows"], None)
        f.flush()
        if checkpoint is not None:
            checkpoint(counts["rows"], counts | {"bytes": f.tell()}, counts["rows"])
        elif progress:
            progress("geocode", counts["rows"], counts["rows"])
    return counts


def _records(result_csv: Path, crs: Crs, chunk: int = 5000) -> Iterator[list[str]]:
    """The stored result's rows (header first) with lon/lat in `crs` (columns x/y when it is projected), transformed
    a chunk of rows at a time (one numpy call per chunk, not per row)."""
    with open(result_csv, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        ix, iy = header.index("lon"), header.index("lat")
        ic = header.index("crs") if "crs" in header else None  # results written before the column existed
        if not crs.geographic:
            header = [{"lon": "x", "lat": "y"}.get(h, h) for h in header]
        yield header
        nd = 7 if crs.geographic else 3
        while rows := list(itertools.islice(reader, chunk)):
            if not crs.is_storage:
                todo = [r for r in rows if len(r) > iy and r[ix] and r[iy]]
                if todo:
                    # stored points lie inside China (geometry intake), so GCJ-02/BD-09 always express them
                    xs, ys = crs.out_of_storage([float(r[ix]) for r in todo], [float(r[iy]) for r in todo])
                    for r, x, y in zip(todo, xs.tolist(), ys.tolist(), strict=True):
                        r[ix], r[iy] = str(round(x, nd)), str(round(y, nd))
                        if ic is not None:
                            r[ic] = crs.key
            yield from rows


def convert(result_csv: Path, fmt: str, crs_name: str | None = None) -> tuple[bytes | Iterator[bytes], str, str]:
    """Stream the stored CSV result (CGCS2000) as csv, xlsx or geojson with points in the CRS `crs_name` names
    (`citygrid.crs.lookup`): (body, media type, file suffix). GeoJSON in another CRS than CGCS2000 names it in a
    `crs` member (GeoJSON 2008 style)."""
    crs = crsmod.lookup(crs_name, "crs")
    if fmt == "csv" and not crs.is_storage:
        def rewritten() -> Iterator[bytes]:
            buf = io.StringIO()
            w = csv.writer(buf)
            buf.write("\ufeff")
            for n, r in enumerate(_records(result_csv, crs)):
                w.writerow(r)
                if n % 1000 == 0:
                    yield buf.getvalue().encode()
                    buf.seek(0)
                    buf.truncate()
            yield buf.getvalue().encode()
        return rewritten(), "text/csv; charset=utf-8", "csv"
    if fmt == "csv":
        def chunks() -> Iterator[bytes]:
            with open(result_csv, "rb") as f:
                while b := f.read(1 << 16):
                    yield b
        return chunks(), "text/csv; charset=utf-8", "csv"
    if fmt == "geojson":
        xk, yk = ("lon", "lat") if crs.geographic else ("x", "y")

        def feats() -> Iterator[bytes]:
            named = b"" if crs.is_storage else b'"crs":{"type":"name","properties":{"name":"%s"}},' % crs.uri.encode()
            yield b'{"type":"FeatureCollection",' + named + b'"features":['
            first = True
            rows = _records(result_csv, crs)
            header = next(rows)
            for r in rows:
                rec = dict(zip(header, r, strict=False))
                geom = None
                if rec.get(xk):
                    geom = {"type": "Point", "coordinates": [float(rec[xk]), float(rec[yk])]}
                feat = {"type": "Feature", "geometry": geom, "properties": rec}
                yield (b"" if first else b",") + json.dumps(feat, ensure_ascii=False).encode()
                first = False
            yield b"]}"
        return feats(), "application/geo+json", "geojson"
    if fmt == "xlsx":
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        ws = wb.create_sheet("result")
        for r in _records(result_csv, crs):
            ws.append(r)
        buf = io.BytesIO()
        wb.save(buf)
        return buf.getvalue(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"
    raise E.format_invalid("format")
