"""Door plates for printing (智慧门牌): a village's door plates, or a compound's building plates, as an A4 PDF.

Each plate carries the standard address in Chinese, its address code and a QR code that opens the node's public
page at the county's public base URL (`settings.public_base_url`, passed in by the caller), never at whatever
host generated the file: the plate hangs on a wall for years. The CJK font is embedded (subset) so the PDF prints
the same on any machine; it is a system font (Debian's fonts-wqy-microhei, installed by scripts/setup.sh) or
`settings.plate_font`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import segno
from fpdf import FPDF
from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.address.nodes import find
from citygrid.errors import E
from citygrid.security import audit, rules
from citygrid.security.principal import Principal
from citygrid.settings import get_settings

# Where Debian's CJK fonts land (fonts-wqy-microhei first: 5 MB, one TrueType collection that fpdf2 reads).
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
# A4 portrait, 2 × 4 plates of 90 × 60 mm with 10 mm margins: the size of a common rural door plate (门牌)
COLS, ROWS = 2, 4
PER_PAGE = COLS * ROWS
PLATE_W, PLATE_H = 90.0, 60.0
BLUE = (0, 71, 157)  # the blue of public-security door plates


@dataclass(frozen=True)
class Plate:
    code: str
    level: str
    name: str  # the number or building: 12号, 3栋
    line: str  # the road, village group or compound above the number
    address: str  # the full standard address
    url: str  # what the QR code opens


@dataclass(frozen=True)
class Batch:
    place_code: str
    place_name: str
    plates: list[Plate]


def font_path() -> Path:
    """The CJK font to embed: the configured one, else the first system font found."""
    configured = get_settings().plate_font
    for candidate in ([configured] if configured else []) + [Path(p) for p in FONT_CANDIDATES]:
        if candidate.is_file():
            return candidate
    raise E.plates_font_missing(None, fonts="、".join([str(configured)] if configured else list(FONT_CANDIDATES)))


def collect(c: Connection, p: Principal, base_url: str, village: str | None = None,
            compound: str | None = None) -> Batch:
    """The plates of one village (its door plates, by road or group then number) or one compound (its building
    plates), checked against what the caller may print."""
    if (village is None) == (compound is None):
        raise E.plates_target("village" if village is not None else None)
    base = base_url.rstrip("/")
    if village is not None:
        d = c.execute(text("SELECT code, name, parent_code FROM division WHERE code = :c AND level = 5"),
                      {"c": village}).first()
        if d is None:
            raise E.division_not_found("village", code=village)
        rules.require_print_plates(p, d.code)
        rows = c.execute(text(
            # the line above the number: the road, or the village and its group (三组 alone says nothing)
            "SELECT n.code, n.level, n.name, n.full_name, CASE WHEN pa.level = 'village_group' "
            "THEN coalesce(v.short_name, v.name, '') || pa.name ELSE coalesce(pa.name, '') END AS line "
            "FROM addr_node n LEFT JOIN addr_node pa ON pa.id = n.parent_id AND pa.division_code = n.division_code "
            "LEFT JOIN division v ON v.code = n.village_code WHERE n.level = 'door' AND n.village_code = :v "
            "AND n.status = 'active' ORDER BY pa.name, n.number NULLS LAST, n.name, n.code"), {"v": d.code}).all()
        place_code, place_name, field = d.code, d.name, "village"
    else:
        node = find(c, str(compound))
        if node.level != "compound":
            raise E.plates_not_compound("compound", code=node.code, level=node.level)
        rules.require_print_plates(p, rules.place_of(node.village_code, node.township_code, None))
        rows = c.execute(text(
            "SELECT n.code, n.level, n.name, n.full_name, :line AS line FROM addr_node n WHERE n.parent_id = :i "
            "AND n.level = 'building' AND n.status = 'active' ORDER BY n.number NULLS LAST, n.name, n.code"),
            {"i": node.id, "line": node.name}).all()
        place_code, place_name, field = node.code, node.full_name, "compound"
    if not rows:
        raise E.plates_none(field, place=place_name, code=place_code)
    plates = [Plate(r.code, r.level, r.name, r.line, r.full_name, f"{base}/a/{r.code}") for r in rows]
    audit.record_apart(c.engine, p, "print_plates", place_code, detail={"plates": len(plates), "base_url": base})
    return Batch(place_code, place_name, plates)


def qr_png(url: str) -> bytes:
    """The QR code of a plate as a 1-bit PNG, 10 px a module (crisp at 24 mm when printed at 300 dpi)."""
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=10, border=2)
    return buf.getvalue()


def render(batch: Batch | Sequence[Plate], title: str = "") -> bytes:
    """An A4 PDF, `PER_PAGE` plates a page with cut marks; the font is embedded as a subset."""
    plates = batch.plates if isinstance(batch, Batch) else list(batch)
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_title(title or (f"门牌 {batch.place_name}" if isinstance(batch, Batch) else "门牌"))
    pdf.set_creator("citygrid")
    pdf.add_font("cjk", fname=str(font_path()))
    margin_x = (210 - COLS * PLATE_W) / 2
    margin_y = (297 - ROWS * PLATE_H) / 2
    for i, plate in enumerate(plates):
        if i % PER_PAGE == 0:
            pdf.add_page()
        k = i % PER_PAGE
        x, y = margin_x + (k % COLS) * PLATE_W, margin_y + (k // COLS) * PLATE_H
        _plate(pdf, plate, x, y)
    return bytes(pdf.output())


def _fit(pdf: FPDF, s: str, size: float, width: float) -> float:
    """The largest font size up to `size` at which `s` fits in `width` mm."""
    pdf.set_font("cjk", size=size)
    w = pdf.get_string_width(s)
    return size if w <= width else max(5.0, size * width / w)


def _plate(pdf: FPDF, plate: Plate, x: float, y: float) -> None:
    pad, qr = 4.0, 30.0
    pdf.set_draw_color(160, 160, 160)
    pdf.set_line_width(0.1)
    pdf.rect(x, y, PLATE_W, PLATE_H)  # the cut line
    pdf.set_fill_color(*BLUE)
    pdf.rect(x + 2, y + 2, PLATE_W - 4, PLATE_H - 4, style="F")
    text_w = PLATE_W - 4 - qr - 3 * pad
    pdf.set_text_color(255, 255, 255)
    pdf.set_font("cjk", size=_fit(pdf, plate.line, 16, text_w))
    pdf.set_xy(x + 2 + pad, y + 2 + pad)
    pdf.cell(text_w, 8, plate.line)
    pdf.set_font("cjk", size=_fit(pdf, plate.name, 40, text_w))
    pdf.set_xy(x + 2 + pad, y + 14)
    pdf.cell(text_w, 18, plate.name)
    pdf.set_font("cjk", size=6.5)
    pdf.set_xy(x + 2 + pad, y + 35)
    pdf.multi_cell(text_w, 3.2, plate.address)
    pdf.set_font("cjk", size=6)
    pdf.set_xy(x + 2 + pad, y + PLATE_H - 2 - pad - 3)
    pdf.cell(text_w, 3, plate.code)
    # the QR on a white square, with what it is for under it
    qx, qy = x + PLATE_W - 2 - pad - qr, y + 2 + pad
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(qx - 1, qy - 1, qr + 2, qr + 2, style="F")
    pdf.image(io.BytesIO(qr_png(plate.url)), x=qx, y=qy, w=qr, h=qr)
    pdf.set_font("cjk", size=7)
    pdf.set_xy(qx - 1, qy + qr + 2)
    pdf.cell(qr + 2, 4, "扫码查看 · 智慧门牌", align="C")
