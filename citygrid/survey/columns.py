"""The columns of a class's survey table, derived from the catalog: a name, the location, then the attributes.

Points are located by longitude/latitude (in the row's or the file's coordinate system) or a standard address;
lines and polygons by a geometry (WKT or GeoJSON). The header is the Chinese label, with ``*`` for required
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
    for extra, key in (("longitude", "loc_lon"), ("lng", "loc_lon"), ("lon", "loc_lon"), ("x", "loc_lon"),
                       ("latitude", "loc_lat"), ("lat", "loc_lat"), ("y", "loc_lat"), ("crs", "loc_crs"),
                       ("地址", "loc_address"), ("address", "loc_address"), ("wkt", "loc_geometry"),
                       ("geometry", "loc_geometry")):
        col = next((c for c in columns(cls) if c.key == key), None)
        if col is not None:
            out.setdefault(extra, col)
    return out


def crs_of(value: str) -> str | None:
    """CGCS2000, WGS84 or GCJ-02 from what someone wrote; None when not recognised."""
    t = unicodedata.normalize("NFKC", value).strip().lower().replace(" ", "")
    if t.upper() in CRS_CHOICES:
        return t.upper()
    return CRS_WORDS.get(t)
