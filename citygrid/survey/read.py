"""Reading a survey file as people really fill it: xlsx or CSV (UTF-8 with or without BOM, GBK/GB18030), the
header row wherever it is in the first rows (titles and merged cells above it are skipped, a second header row
under merged cells joined), extra columns ignored, blank rows skipped; or a GIS file (GeoJSON, GeoPackage, zipped
Shapefile, through pyogrio and its bundled GDAL) whose attributes are named by label or field name and whose
geometry stays in the file's CRS for `validate` to transform. Every problem with the file itself is a coded 4xx
before anything is processed."""

from __future__ import annotations

import csv
import io
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from citygrid import crs as crsmod
from citygrid.catalog import ObjectClass
from citygrid.errors import CitygridError, E, detail
from citygrid.survey.columns import Column, columns, crs_of, header_index, header_key
from citygrid.survey.template import DATA_SHEET

HEADER_SCAN = 20  # rows searched for the header
MAX_UNZIPPED = 200 * 1024 * 1024  # an xlsx whose parts unpack to more is refused (zip bomb)
MAX_RATIO = 200  # nor one that packs better than this (real sheets: ~10)
MAX_ROWS = 50_000


GIS_KINDS = ("geojson", "gpkg", "shapefile")


@dataclass(frozen=True)
class Table:
    kind: str  # xlsx | csv | geojson | gpkg | shapefile
    header_row: int  # 1-based row of the header in the file (its first row when it spans two)
    columns: dict[int, Column]  # position → column
    rows: list[tuple[int, dict[str, Any]]]  # (1-based row in the file, {column key: cell value})


def source_of(data: bytes) -> str:
    """What kind of file the bytes are, as `submission.source` records it (never raises: a file that cannot be
    read is stored as received and refused by `read`, with the reason)."""
    try:
        return sniff(data)
    except CitygridError:
        return "xlsx" if data.startswith(b"PK") else "csv"


def _zip_names(data: bytes) -> list[str]:
    """The member names of a zip, after the checks that keep a zip bomb out (total and ratio)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
    except zipfile.BadZipFile as exc:
        raise E.survey_file_bad("file", **detail("（压缩文件已损坏）", " (the zip is damaged)")) from exc
    unpacked = sum(i.file_size for i in infos)
    if unpacked > MAX_UNZIPPED or unpacked > MAX_RATIO * max(1, len(data)):
        raise E.survey_file_bad("file", **detail("（解压后过大，疑似压缩炸弹）", " (it unpacks too large)"))
    return [i.filename for i in infos]


def sniff(data: bytes) -> str:
    if not data:
        raise E.file_empty("file")
    if data.startswith(b"PK\x03\x04"):
        names = _zip_names(data)
        if "xl/workbook.xml" in names:
            return "xlsx"
        if any(n.lower().endswith(".shp") for n in names):
            return "shapefile"
        raise E.survey_file_bad("file", **detail("（压缩包里既没有 xlsx 工作簿也没有 Shapefile）",
                                                 " (a zip with neither an xlsx workbook nor a Shapefile)"))
    if data.startswith(b"SQLite format 3\x00"):
        return "gpkg"
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{") and b'"type"' in data[:4096] and (b"Feature" in data[:4096]):
        return "geojson"
    if data.startswith(b"\xd0\xcf\x11\xe0"):  # OLE: an encrypted xlsx or an old .xls
        raise E.survey_file_bad("file", **detail("（加密的 Excel 或旧版 .xls，请另存为不加密的 .xlsx）",
                                                 " (an encrypted workbook or an old .xls: save as plain .xlsx)"))
    if b"\x00" in data[:4096]:
        raise E.survey_file_bad("file", **detail("（不是表格文件）", " (not a spreadsheet)"))
    return "csv"


def _xlsx_rows(data: bytes) -> list[list[Any]]:
    """The data sheet's cells, row by row from A1 (calamine: about ten times openpyxl's reading speed; openpyxl
    still writes the templates). Merged cells give their value in their first cell and blanks elsewhere."""
    if "xl/workbook.xml" not in _zip_names(data):
        raise E.survey_file_bad("file", **detail("（压缩包不是 xlsx 工作簿）", " (a zip, not an xlsx workbook)"))
    from python_calamine import CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
        name = DATA_SHEET if DATA_SHEET in wb.sheet_names else wb.sheet_names[0]
        return wb.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except IndexError as exc:
        raise E.file_empty("file") from exc
    except Exception as exc:  # calamine raises its own kinds (XmlError, ZipError, CalamineError) for a broken file
        raise E.survey_file_bad("file", **detail("（xlsx 已损坏）", " (the xlsx is damaged)")) from exc


def decode(data: bytes) -> str:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise E.file_encoding("file")


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _header_cells(r: Sequence[Any], index: dict[str, Column]) -> dict[int, Column]:
    """The columns a row names, by position: the row as a header."""
    out = {}
    for j, v in enumerate(r):
        if not _blank(v) and isinstance(v, str | int | float):
            c = index.get(header_key(str(v)))
            if c is not None:
                out[j] = c
    return out


def _gis_encoding(data: bytes) -> str | None:
    """A zipped Shapefile without a .cpg names no encoding and GDAL would take Latin-1: Chinese DBFs are GBK
    when they are not UTF-8."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        if any(n.lower().endswith(".cpg") for n in names):
            return None
        dbf = next((n for n in names if n.lower().endswith(".dbf")), None)
        if dbf is None:
            return None
        try:
            z.read(dbf).decode("utf-8")
        except UnicodeDecodeError:
            return "GB18030"
    return "UTF-8"


def _gis(cls: ObjectClass, data: bytes, kind: str, max_rows: int = MAX_ROWS) -> Table:
    """A GIS file's features as rows: attributes by field name or label, the geometry as WKT in the file's CRS
    with that CRS in `loc_crs` (a Gauss-Krüger zone or WGS84 as such; any other EPSG system transformed to
    CGCS2000 here); a file without a CRS takes the declared one. Row n is the n-th feature."""
    from pyogrio.errors import DataLayerError, DataSourceError, FieldError, GeometryError
    from pyogrio.raw import read as ogr_read

    try:
        if kind == "shapefile":  # read in place inside the zip, in whatever folder it was zipped
            encoding = _gis_encoding(data)
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                shp = sorted(n for n in z.namelist() if n.lower().endswith(".shp"))[0]
            with tempfile.NamedTemporaryFile(suffix=".zip") as f:
                f.write(data)
                f.flush()
                meta, _, wkbs, fields = ogr_read(f"/vsizip/{f.name}/{shp}", encoding=encoding)
        else:
            meta, _, wkbs, fields = ogr_read(io.BytesIO(data))
    except (DataSourceError, DataLayerError, FieldError, GeometryError, RuntimeError, ValueError) as exc:
        raise E.survey_file_bad("file", **detail(f"（{kind} 无法打开）", f" (the {kind} cannot be opened)")) from exc
    index = header_index(cls)
    cols: dict[int, Column] = {}
    for j, name in enumerate(meta["fields"]):
        c = index.get(header_key(str(name)))
        if c is not None:
            cols[j] = c  # a column may come under two names (状态 in some features, state in others)
    declared = meta.get("crs") if kind != "geojson" or b'"crs"' in data[:65536] else None
    crs_key = crs_of(str(declared)) if declared else None
    transform: Any = None
    if declared and crs_key is None:
        source = crsmod.lookup(str(declared), "crs", any_epsg=True)
        if not source.is_storage:
            def transform(xy: Any) -> Any:
                return np.column_stack(source.into_storage(xy[:, 0], xy[:, 1]))
        crs_key = "CGCS2000"
    geoms = shapely.from_wkb(wkbs) if wkbs is not None else np.array([], dtype=object)
    if transform is not None:
        geoms = shapely.transform(geoms, transform)
    texts = shapely.to_wkt(geoms, rounding_precision=-1)
    rows = []
    for i in range(len(geoms)):
        cells: dict[str, Any] = {}
        for j, c in cols.items():
            v = _plain(fields[j][i])
            if cells.get(c.key) is None:
                cells[c.key] = v
        cells["loc_geometry"] = texts[i]
        if crs_key:
            cells["loc_crs"] = crs_key
        rows.append((i + 1, cells))
        if len(rows) > max_rows:
            raise E.file_too_large("file", limit=f"{max_rows} 行 / rows")
    if not rows:
        raise E.survey_no_rows("file")
    return Table(kind, 0, cols, rows)


def _plain(v: Any) -> Any:
    """A numpy scalar as the Python value it holds (JSON and the validators know those); NaN as blank."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v != v:  # GDAL's null in a numeric column
        return None
    return v


def read(cls: ObjectClass, data: bytes, max_rows: int = MAX_ROWS) -> Table:
    """The file's header and data rows; `max_rows`: an upload's limit (a county import, `citygrid import`, has
    its own)."""
    kind = sniff(data)
    if kind in GIS_KINDS:
        return _gis(cls, data, kind, max_rows)
    raw: list[list[Any]] | list[list[str]]
    if kind == "xlsx":
        raw = list(_xlsx_rows(data))
    else:
        raw = list(csv.reader(io.StringIO(decode(data))))
    index = header_index(cls)
    found = [_header_cells(r, index) for r in raw[:HEADER_SCAN]]
    best, best_at, best_cols, band = 0, -1, {}, 1
    for i, cols_i in enumerate(found):
        n = len({c.key for c in cols_i.values()})
        if n > best:
            best, best_at, best_cols, band = n, i, cols_i, 1
    if best_at >= 0 and best_at + 1 < len(found):  # a second header row under merged cells (位置 → 经度 | 纬度)
        below, under = found[best_at + 1], raw[best_at + 1]
        new = {j: c for j, c in below.items() if c.key not in {x.key for x in best_cols.values()}}
        if new and all(j >= len(under) or _blank(under[j]) for j in best_cols):
            best_cols, band = best_cols | new, 2
            best = len({c.key for c in best_cols.values()})
    if best < 2:
        labels = [c.label for c in columns(cls)[:6]]
        raise E.survey_header("file", scan=HEADER_SCAN, columns_zh="、".join(labels), columns_en=", ".join(labels))
    seen: set[str] = set()
    cols = {}
    for j, c in sorted(best_cols.items()):
        if c.key not in seen:  # a repeated header: the first column counts
            cols[j] = c
            seen.add(c.key)
    rows = []
    for i, r in enumerate(raw[best_at + band:], start=best_at + band + 1):
        cells = {c.key: r[j] for j, c in cols.items() if j < len(r)}
        if all(_blank(v) for v in cells.values()):
            continue
        rows.append((i, cells))
        if len(rows) > max_rows:
            raise E.file_too_large("file", limit=f"{max_rows} 行 / rows")
    if not rows:
        raise E.survey_no_rows("file")
    return Table(kind, best_at + 1, cols, rows)
