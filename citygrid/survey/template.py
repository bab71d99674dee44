"""`GET /templates/{class}.xlsx`: the survey table of a class as an Excel workbook, from the catalog.

Sheet 数据 has the header row (Chinese labels, ``*`` marks required columns) and data validation on 2,000
rows: drop-downs for enumerations, 是/否, the coordinate systems; whole numbers, decimals and dates within
the attribute's range. The validations warn rather than stop, so a cadre pasting a column is told, not blocked:
the upload reports every problem anyway. Sheet 说明 explains every column (meaning, required, allowed values,
unit, an example); sheet 选项 holds the drop-down lists (a list typed into the validation is limited to 255
characters).
"""

from __future__ import annotations

import io
from typing import Literal

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from citygrid.catalog import ObjectClass
from citygrid.survey.columns import CRS_CHOICES, Column, columns

DATA_SHEET = "数据"
HELP_SHEET = "说明"
LIST_SHEET = "选项"
ROWS = 2000
_REQUIRED = PatternFill("solid", fgColor="FFF2CC")
_TYPE_ZH = {"string": "文本", "integer": "整数", "number": "数值", "boolean": "是/否", "date": "日期", "enum": "从列表选择"}


def _allowed(c: Column) -> str:
    a = c.attribute
    if c.kind == "crs":
        return "、".join(CRS_CHOICES)
    if c.kind in ("lon", "lat"):
        return "73–136" if c.kind == "lon" else "3–54"
    if a is None:
        return ""
    if a.enum:
        return "、".join(a.enum)
    parts = [_TYPE_ZH.get(a.type, a.type)]
    if a.min is not None:
        parts.append(f"≥ {a.min}")
    if a.max is not None:
        parts.append(f"≤ {a.max}")
    if a.max_length:
        parts.append(f"最多 {a.max_length} 字")
    return "，".join(parts)


def _dv(kind: Literal["whole", "decimal", "list", "date", "textLength"], formula1: str, formula2: str | None = None,
        operator: Literal["between", "greaterThan", "lessThanOrEqual"] | None = None) -> DataValidation:
    return DataValidation(type=kind, formula1=formula1, formula2=formula2, operator=operator, allow_blank=True,
                          showErrorMessage=True, errorStyle="warning")


def _validation(c: Column, lists: dict[str, str]) -> DataValidation | None:
    a = c.attribute
    if c.kind == "crs" or (a is not None and (a.enum or a.type == "boolean")):
        dv = _dv("list", lists[c.key])
    elif c.kind in ("lon", "lat"):
        lo, hi = (73, 136) if c.kind == "lon" else (3, 54)
        dv = _dv("decimal", str(lo), str(hi), "between")
    elif a is not None and a.type in ("integer", "number"):
        low = a.min if a.min is not None else -1e15
        high = a.max if a.max is not None else 1e15
        dv = _dv("whole" if a.type == "integer" else "decimal", str(low), str(high), "between")
    elif a is not None and a.type == "date":
        dv = _dv("date", "1", None, "greaterThan")
    elif a is not None and a.max_length:
        dv = _dv("textLength", str(a.max_length), None, "lessThanOrEqual")
    else:
        return None
    dv.error = f"{c.label}：{_allowed(c)}"
    dv.errorTitle = "请检查"
    dv.prompt = c.meaning[:250]
    dv.showInputMessage = True
    return dv


def build(cls: ObjectClass) -> bytes:
    cols = columns(cls)
    wb = Workbook()
    data = wb.active
    assert data is not None
    data.title = DATA_SHEET
    lists_ws = wb.create_sheet(LIST_SHEET)
    lists_ws.sheet_state = "hidden"
    help_ws = wb.create_sheet(HELP_SHEET)
    lists: dict[str, str] = {}
    n = 0
    for c in cols:
        values: list[str] | None = None
        if c.kind == "crs":
            values = list(CRS_CHOICES)
        elif c.attribute is not None and c.attribute.enum:
            values = list(c.attribute.enum)
        elif c.attribute is not None and c.attribute.type == "boolean":
            values = ["是", "否"]
        if values:
            n += 1
            letter = get_column_letter(n)
            lists_ws.cell(1, n, c.label)
            for i, v in enumerate(values, start=2):
                lists_ws.cell(i, n, v)
            lists[c.key] = f"'{LIST_SHEET}'!${letter}$2:${letter}${len(values) + 1}"
    for j, c in enumerate(cols, start=1):
        cell = data.cell(1, j, c.header)
        cell.font = Font(bold=True, color="C00000" if c.required else "000000")
        if c.required:
            cell.fill = _REQUIRED
        letter = get_column_letter(j)
        data.column_dimensions[letter].width = max(10, min(40, 2 * len(c.header) + 4))
        dv = _validation(c, lists)
        if dv is not None:
            dv.add(f"{letter}2:{letter}{ROWS + 1}")
            data.add_data_validation(dv)
        if c.attribute is not None and c.attribute.type == "date":
            for r in range(2, 52):
                data.cell(r, j).number_format = "yyyy-mm-dd"
    data.freeze_panes = "A2"
    help_ws.append([f"{cls.name}（{cls.code}）调查表填写说明：每行一个对象，从“{DATA_SHEET}”表第 2 行开始填写；"
                    "带 * 的列必填；上传后系统会逐行逐列指出需要修改的地方。"])
    help_ws.append(["列名", "字段", "含义", "必填", "允许值", "单位", "示例"])
    for c in cols:
        unit = c.attribute.unit if c.attribute is not None and c.attribute.unit else ""
        help_ws.append([c.label, c.key, c.meaning, "是" if c.required else "否", _allowed(c), unit, c.example])
    help_ws.append([])
    help_ws.append(["示例行（复制到“数据”表）"] + [""] * 6)
    help_ws.append([c.header for c in cols])
    help_ws.append([c.example for c in cols])
    for col, width in zip("ABCDEFG", (14, 16, 50, 6, 40, 8, 16), strict=True):
        help_ws.column_dimensions[col].width = width
    for cell in help_ws[2]:
        cell.font = Font(bold=True)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
