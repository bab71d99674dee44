"""The columns of a class's survey table, derived from the catalog: a name, the location, then the attributes.

Points are located by longitude/latitude (in the row's or the file's coordinate system), Gauss-Krüger X/Y (CGCS2000
3° zones: the zone from the 8-digit easting's prefix, a declaration, or the village's longitude) or a standard
address; lines and polygons by a geometry (WKT or GeoJSON). The header is the Chinese label, with ``*`` for required
columns and the unit in brackets; reading accepts the label with or without them, and the field name.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from citygrid.catalog import Attribute, ObjectClass

# Attributes every class carries for generated data: not for cadres to fill in.
HIDDEN_FIELDS = frozenset({"generated", "generator"})
# Coordinate systems a row or a file may declare, by the words people use for them.
CRS_WORDS: dict[str, str] = {
    "cgcs2000": "CGCS2000", "epsg:4490": "CGCS2000", "4490": "CGCS2000", "国家2000": "CGCS2000", "2000": "CGCS2000",
    "wgs84": "WGS84", "wgs-84": "WGS84", "epsg:4326": "WGS84", "4326": "WGS84", "gps": "WGS84",
    "gcj02": "GCJ-02", "gcj-02": "GCJ-02", "火星坐标": "GCJ-02", "高德": "GCJ-02", "腾讯": "GCJ-02",
}
CRS_CHOICES = ("CGCS2000", "WGS84", "GCJ-02")
# CGCS2000 3° Gauss-Krüger: zones 25-45 with the zone number before the easting (EPSG:4513-4533), or the same
# central meridians 75°E-135°E without it (EPSG:4534-4554).
GK_PREFIXED = range(4513, 4534)
GK_PLAIN = range(4534, 4555)
_EPSG = re.compile(r"(?:epsg:+)?(\d{4})")
_ZONE = re.compile(r"(?:cgcs2000|国家2000|2000)?(?:3度带|三度带)?(?:第)?(\d{2})(?:号)?带|zone(\d{2})")
_CM = re.compile(r"(?:cm|中央经线|中央子午线)(\d{2,3})(?:°|度|e)?")


@dataclass(frozen=True)
class Column:
    """One column of the survey table: `kind` is name, lon, lat, crs, address, geometry or attr; the keys of
    the location columns start with ``loc_`` (attributes may be called address or location)."""

    key: str
    label: str
    kind: str
    required: bool = False
    attribute: Attribute | None = None
    meaning: str = ""
    example: str = ""

    @property
    def header(self) -> str:
        unit = f"（{self.attribute.unit}）" if self.attribute is not None and self.attribute.unit else ""
        return ("*" if self.required else "") + self.label + unit


def is_point(cls: ObjectClass) -> bool:
    return cls.geometry in ("Point", "MultiPoint")


def _example(a: Attribute) -> str:
    if a.enum:
        return a.enum[0]
    if a.type == "string":
        return "" if a.pattern else f"{a.label}示例"[: a.max_length or 100]
    return {"integer": str(int(a.min) if a.min is not None and a.min > 0 else 1),
            "number": str(a.min if a.min is not None and a.min > 0 else 1.5), "boolean": "是",
            "date": "2024-03-05"}.get(a.type, "")


@lru_cache(maxsize=256)
def columns(cls: ObjectClass) -> tuple[Column, ...]:
    cols = [Column("name", "名称", "name", meaning="对象的名称（可不填）", example=f"{cls.name}1号")]
    if is_point(cls):
        cols += [
            Column("loc_lon", "经度", "lon", meaning="经度，十进制度（如 114.98）；与纬度一起填写，或改填标准地址",
                   example="114.9812"),
            Column("loc_lat", "纬度", "lat", meaning="纬度，十进制度（如 30.10）", example="30.1021"),
            Column("loc_crs", "坐标系", "crs", meaning="经纬度的坐标系：CGCS2000（默认）、WGS84（GPS）或 GCJ-02"
                   "（高德、腾讯等手机地图）；整列不填时用上传时声明的坐标系", example="CGCS2000"),
            Column("loc_address", "标准地址", "address", meaning="没有经纬度时填写标准地址（如 XX路12号），由地址库定位",
                   example=""),
            Column("loc_x", "X坐标", "x", meaning="没有经纬度时可填高斯-克吕格平面坐标（CGCS2000 3度带，米）：X 为北向"
                   "（如 3332123.45），与 Y坐标 一起填写；坐标系列可填 EPSG 代码或带号（如 EPSG:4547、38带）",
                   example=""),
            Column("loc_y", "Y坐标", "y", meaning="高斯-克吕格 Y 为东向（如 38512345.67，前两位是带号；不带带号时按"
                   "坐标系列或本村所在的带换算）", example=""),
        ]
    else:
        cols += [
            Column("loc_geometry", "几何", "geometry", required=True,
                   meaning=f"{cls.geometry} 的 WKT 或 GeoJSON 坐标（经度在前）", example=""),
            Column("loc_crs", "坐标系", "crs", meaning="几何的坐标系：CGCS2000（默认）、WGS84 或 GCJ-02", example="CGCS2000"),
        ]
    for a in cls.attributes:
        if a.field in HIDDEN_FIELDS:
            continue
        cols.append(Column(a.field, a.label, "attr", a.required, a, a.description or a.label, _example(a)))
    return tuple(cols)


_BRACKETS = re.compile(r"[（(][^）)]*[）)]")


def header_key(text: str) -> str:
    """A header cell as compared: NFKC (full-width to half-width), no spaces, no `*`, no unit in brackets."""
    t = unicodedata.normalize("NFKC", text).strip().lower()
    t = _BRACKETS.sub("", t)
    return re.sub(r"[\s*＊:：]", "", t)


@lru_cache(maxsize=256)
def header_index(cls: ObjectClass) -> dict[str, Column]:
    """Every spelling of every column's header that reading accepts."""
    out: dict[str, Column] = {}
    for c in columns(cls):
        for spelling in (c.label, c.key, c.header):
            out[header_key(spelling)] = c
    for extra, key in (("longitude", "loc_lon"), ("lng", "loc_lon"), ("lon", "loc_lon"), ("x", "loc_x"),
                       ("latitude", "loc_lat"), ("lat", "loc_lat"), ("y", "loc_y"), ("crs", "loc_crs"),
                       ("北坐标", "loc_x"), ("纵坐标", "loc_x"), ("北坐标x", "loc_x"), ("东坐标", "loc_y"),
                       ("横坐标", "loc_y"), ("东坐标y", "loc_y"), ("epsg", "loc_crs"), ("坐标系统", "loc_crs"),
                       ("投影", "loc_crs"), ("带号", "loc_crs"),
                       ("地址", "loc_address"), ("address", "loc_address"), ("wkt", "loc_geometry"),
                       ("geometry", "loc_geometry")):
        col = next((c for c in columns(cls) if c.key == key), None)
        if col is not None:
            out.setdefault(extra, col)
    key_col = Column("row_key", "行标识", "key", meaning="文件下载回来时附带的行标识：只改正几行再提交时，据此找到要改正的行")
    for spelling in ("行标识", "row_key", "row_id", "rowid"):  # the file with codes carries it (survey.intake)
        out.setdefault(header_key(spelling), key_col)
    if is_point(cls):  # not in the template, but GIS exports of points carry their WKT: read it too
        wkt_col = Column("loc_geometry", "几何", "geometry", meaning="点的 WKT 或 GeoJSON")
        for spelling in ("几何", "wkt", "geometry", "geom", "the_geom"):
            out.setdefault(spelling, wkt_col)
    return out


def crs_of(value: str) -> str | None:
    """What someone wrote for a coordinate system: CGCS2000, WGS84, GCJ-02, `EPSG:n` (a CGCS2000 3° Gauss-Krüger
    system), or `GK:<central meridian>` (a zone or meridian named, the easting's prefix decides the EPSG code);
    None when not recognised."""
    t = unicodedata.normalize("NFKC", value).strip().lower().replace(" ", "").replace("-", "")
    if t.upper() in CRS_CHOICES:
        return t.upper()
    if t in CRS_WORDS or t.replace("wgs", "wgs-") in CRS_WORDS:
        return CRS_WORDS.get(t) or CRS_WORDS[t.replace("wgs", "wgs-")]
    if t == "gcj02":
        return "GCJ-02"
    if (m := _EPSG.fullmatch(t)) is not None:
        srid = int(m[1])
        if srid in GK_PREFIXED or srid in GK_PLAIN:
            return f"EPSG:{srid}"
        return {4490: "CGCS2000", 4326: "WGS84"}.get(srid)
    if (m := _ZONE.fullmatch(t)) is not None:
        zone = int(m[1] or m[2])
        return f"GK:{zone * 3}" if 25 <= zone <= 45 else None
    if (m := _CM.fullmatch(t)) is not None:
        cm = int(m[1])
        return f"GK:{cm}" if 75 <= cm <= 135 and cm % 3 == 0 else None
    return None
