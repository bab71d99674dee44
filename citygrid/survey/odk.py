"""ODK Collect (and KoBoCollect) speak OpenRosa: an XLSForm per class generated from the catalog and compiled
to an XForm with pyxform, the Form List API (`GET /formList`) and the Form Submission API (`HEAD`, then a
multipart `POST /submission` with the instance XML and its attachments). A submission lands in the same intake
as a file: stored raw first (the instance XML, its photos as attachments), then validated row by row.

Specs: OpenRosa Form List API and Form Submission API (docs.getodk.org/openrosa-*); Collect sends
`X-OpenRosa-Version: 1.0` on every request, asks for the form list, downloads each form's XML, and on submit
first sends HEAD (expecting 204 with `X-OpenRosa-Accept-Content-Length`), then the POST (answered 201 with an
OpenRosaResponse; 202 when the instance was received before).
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from functools import lru_cache
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from openpyxl import Workbook
from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.catalog import Attribute, ObjectClass, get_catalog
from citygrid.errors import E, detail
from citygrid.survey.columns import HIDDEN_FIELDS

FORM_PREFIX = "citygrid_"
GEO = {"Point": "geopoint", "MultiPoint": "geopoint", "LineString": "geotrace", "MultiLineString": "geotrace",
       "Polygon": "geoshape", "MultiPolygon": "geoshape"}
GEO_FIELD = "cg_location"  # not "location": a class may have an attribute of that name
ACCURACY = 10  # metres: Collect keeps capturing until the fix is this good (capture-accuracy)
OPENROSA = {"X-OpenRosa-Version": "1.0"}
MAX_SUBMISSION = 10 * 1024 * 1024  # X-OpenRosa-Accept-Content-Length: Collect splits larger submissions


def form_id(cls: ObjectClass) -> str:
    return FORM_PREFIX + cls.code


def class_of_form(fid: str) -> ObjectClass | None:
    return get_catalog().get(fid.removeprefix(FORM_PREFIX)) if fid.startswith(FORM_PREFIX) else None


def _version() -> str:
    """The form version changes with the catalog's edition, so Collect fetches new forms after a catalog update."""
    return re.sub(r"[^0-9A-Za-z.]", "", get_catalog().edition) or "1"


def _constraint(a: Attribute) -> tuple[str, str]:
    parts, words = [], []
    if a.type in ("integer", "number"):
        if a.min is not None:
            parts.append(f". >= {a.min}")
            words.append(f"≥ {a.min}")
        if a.max is not None:
            parts.append(f". <= {a.max}")
            words.append(f"≤ {a.max}")
    if a.type == "string" and a.max_length:
        parts.append(f"string-length(.) <= {a.max_length}")
        words.append(f"最多 {a.max_length} 字")
    if a.type == "string" and a.pattern:
        parts.append("regex(., '" + a.pattern.replace("'", "") + "')")
        words.append(a.description or a.pattern)
    unit = f"（{a.unit}）" if a.unit else ""
    return " and ".join(parts), (f"{a.label}{unit}：" + "，".join(words)) if words else ""


def xlsform(cls: ObjectClass) -> bytes:
    """The class's XLSForm (survey, choices, settings) as an xlsx workbook."""
    wb = Workbook()
    survey = wb.active
    assert survey is not None
    survey.title = "survey"
    choices = wb.create_sheet("choices")
    settings = wb.create_sheet("settings")
    survey.append(["type", "name", "label", "hint", "required", "constraint", "constraint_message", "parameters"])
    choices.append(["list_name", "name", "label"])
    survey.append(["text", "name", "名称", "对象的名称（可不填）", "", "", "", ""])
    survey.append([GEO[cls.geometry], GEO_FIELD, "位置", "在现场取点（GPS，WGS84）", "yes", "", "",
                   f"capture-accuracy={ACCURACY}" if GEO[cls.geometry] == "geopoint" else ""])
    lists: set[str] = set()
    for a in cls.attributes:
        if a.field in HIDDEN_FIELDS:
            continue
        constraint, message = _constraint(a)
        if a.type == "enum" and a.enum:
            kind = f"select_one {a.field}"
            for v in a.enum:
                choices.append([a.field, v, v])
        elif a.type == "boolean":
            kind = "select_one yes_no"
            if "yes_no" not in lists:
                lists.add("yes_no")
                choices.append(["yes_no", "是", "是"])
                choices.append(["yes_no", "否", "否"])
        else:
            kind = {"integer": "integer", "number": "decimal", "date": "date"}.get(a.type, "text")
        unit = f"（{a.unit}）" if a.unit else ""
        survey.append([kind, a.field, a.label + unit, a.description or "", "yes" if a.required else "", constraint,
                       message, ""])
    survey.append(["image", "photo", "照片", "现场照片（可不拍）", "", "", "", "max-pixels=1600"])
    settings.append(["form_title", "form_id", "version", "default_language"])
    settings.append([f"{cls.name}（{cls.code}）", form_id(cls), _version(), "zh"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@lru_cache(maxsize=256)
def xform(class_code: str) -> str:
    """The class's XForm XML, compiled from its XLSForm by pyxform (once per process and class)."""
    from pyxform.xls2xform import convert

    cls = get_catalog().get(class_code)
    if cls is None:
        raise E.odk_form_unknown("formID", form=class_code)
    return str(convert(xlsform=xlsform(cls), file_type=".xlsx", form_name="data").xform)


def form_list(base_url: str, only: str | None = None) -> str:
    """The OpenRosa xformsList document: every class's form (or the one asked for with formID)."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<xforms xmlns="http://openrosa.org/xforms/xformsList">']
    base = base_url.rstrip("/")
    for cls in get_catalog().classes.values():
        fid = form_id(cls)
        if only and only != fid:
            continue
        md5 = hashlib.md5(xform(cls.code).encode(), usedforsecurity=False).hexdigest()
        out.append(f"<xform><formID>{fid}</formID><name>{_esc(cls.name)}（{cls.code}）</name>"
                   f"<version>{_version()}</version><hash>md5:{md5}</hash>"
                   f"<descriptionText>{_esc(cls.middle_name)} / {_esc(cls.name_en)}</descriptionText>"
                   f"<downloadUrl>{base}/forms/{fid}.xml</downloadUrl></xform>")
    out.append("</xforms>")
    return "\n".join(out)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def response_xml(message: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<OpenRosaResponse xmlns="http://openrosa.org/http/response">'
            f'<message nature="submit_success">{_esc(message)}</message></OpenRosaResponse>')


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_instance(xml: bytes) -> tuple[ObjectClass, str | None, Element]:
    """The form's class, the instanceID and the root of an instance; no entities, no DTDs (defusedxml)."""
    try:
        root = SafeET.fromstring(xml)
    except Exception as exc:  # defusedxml and expat raise several kinds
        raise E.odk_instance_invalid("xml_submission_file", **detail(f"：{str(exc)[:80]}", f": {str(exc)[:80]}")
                                     ) from exc
    fid = root.attrib.get("id", "")
    cls = class_of_form(fid)
    if cls is None:
        raise E.odk_form_unknown("xml_submission_file", form=fid[:60])
    iid = None
    for el in root.iter():
        if _local(el.tag) == "instanceID" and el.text:
            iid = el.text.strip()
    return cls, iid, root


def _coords(value: str) -> list[tuple[float, float]]:
    """ODK geo values: "lat lon alt acc" points separated by ";" → (lon, lat) pairs."""
    pts = []
    for part in value.split(";"):
        nums = part.split()
        if len(nums) >= 2:
            pts.append((float(nums[1]), float(nums[0])))
    return pts


def instance_cells(cls: ObjectClass, xml: bytes) -> list[tuple[int, dict[str, Any]]]:
    """One instance as the one row of a table, the location in WGS84 (what phones' GNSS gives)."""
    _, _, root = parse_instance(xml)
    values = {_local(el.tag): (el.text or "").strip() for el in root.iter() if len(el) == 0}
    cells: dict[str, Any] = {k: v for k, v in values.items() if v and k not in (GEO_FIELD, "instanceID")}
    cells["loc_crs"] = "WGS84"
    loc = values.get(GEO_FIELD, "")
    try:
        pts = _coords(loc)
    except ValueError:
        pts = []
    if loc and not pts:
        cells["loc_lon"] = loc
        cells["loc_geometry"] = loc
    elif GEO[cls.geometry] == "geopoint" and pts:
        cells["loc_lon"], cells["loc_lat"] = pts[0]
    elif pts:
        ring = ", ".join(f"{x} {y}" for x, y in pts)
        cells["loc_geometry"] = f"LINESTRING({ring})" if GEO[cls.geometry] == "geotrace" else f"POLYGON(({ring}))"
    return [(1, cells)]


def seen_before(conn: Connection, instance_id: str | None, submitter: str) -> str | None:
    """The submission that already holds this instance (Collect resends when an answer was lost)."""
    if not instance_id:
        return None
    sid = conn.execute(text("SELECT id FROM submission WHERE source = 'odk' AND submitter = :by "
                            "AND filename = :iid"), {"by": submitter, "iid": instance_id}).scalar()
    return str(sid) if sid else None


def new_id() -> str:
    return str(uuid.uuid4())
