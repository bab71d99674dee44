"""Typed model of the object class catalog (classes, attributes, departments) and attribute validation.

The catalog is reference data loaded once and shared process-wide (see `get_catalog`), so every model is a
frozen dataclass. Validation never converts values: a survey row that says "12" for an integer field is
reported, not silently fixed, because the cadre who typed it must see what the registry will store.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from citygrid.errors import E, ErrorEntry

GEOMETRY_TYPES: tuple[str, ...] = (
    "Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
)
ATTRIBUTE_TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean", "date", "enum")
DEFAULT_LEVEL = "L2"
# Values of fields at these levels are never echoed in error messages: messages end up in submission
# reports, logs and API responses that people without the right to see personal data can read.
HIDDEN_VALUE_LEVELS: frozenset[str] = frozenset({"L3", "L4"})

_TYPE_ZH = {
    "string": "文本", "integer": "整数", "number": "数值", "boolean": "布尔值（true/false）",
    "date": "日期（YYYY-MM-DD）", "enum": "文本（枚举值）",
}
_TYPE_EN = {
    "string": "a string", "integer": "an integer", "number": "a finite number",
    "boolean": "a boolean (true/false)", "date": "a date (YYYY-MM-DD)", "enum": "a string (enum value)",
}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _show(value: Any, limit: int = 40) -> str:
    """Short printable form of a value for messages (long pastes would drown the message)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(x: float | int) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one attribute value; `error_code` is stable for machines, messages are for people."""

    error_code: str
    field: str
    message_zh: str
    message_en: str

    @classmethod
    def of(cls, entry: ErrorEntry, field: str, **params: Any) -> FieldProblem:
        p = entry.problem(**params)
        return cls(p.error_code, field, p.message_zh, p.message_en)

    def to_dict(self) -> dict[str, str]:
        return {"error_code": self.error_code, "field": self.field,
                "message_zh": self.message_zh, "message_en": self.message_en}


@dataclass(frozen=True)
class Department:
    """A responsible department (责任分工目录 entry): owns the classes assigned to it."""

    id: str
    name: str
    name_en: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "name_en": self.name_en}


@dataclass(frozen=True)
class Attribute:
    """One row of a class's attribute table, with the constraints `check` enforces."""

    field: str
    label: str
    type: str
    required: bool = False
    enum: list[str] | None = None
    min: int | float | None = None
    max: int | float | None = None
    unit: str | None = None
    max_length: int | None = None
    pattern: str | None = None
    level: str = DEFAULT_LEVEL
    description: str | None = None

    def __hash__(self) -> int:  # enum is a list; hash on the identifying part only (consistent with eq)
        return hash((self.field, self.label, self.type))

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field, "label": self.label, "type": self.type, "required": self.required,
            "enum": list(self.enum) if self.enum is not None else None, "min": self.min, "max": self.max,
            "unit": self.unit, "max_length": self.max_length, "pattern": self.pattern, "level": self.level,
            "description": self.description,
        }

    # -- value checking -------------------------------------------------------------------------------

    def _problem(self, entry: ErrorEntry, value: Any = None, **params: Any) -> FieldProblem:
        """A problem naming this attribute and, unless its level hides values, the value."""
        return FieldProblem.of(entry, self.field, attr_zh=f"属性“{self.label}”({self.field})",
                               attr_en=f"attribute '{self.field}' ({self.label})", **self._value_words(value), **params)

    def _value_words(self, value: Any) -> dict[str, str]:
        if self.level in HIDDEN_VALUE_LEVELS:
            return {"value_zh": "的值", "value_en": "the value"}
        shown = _show(value)
        if isinstance(value, str):
            return {"value_zh": f"的值“{shown}”", "value_en": f"value '{shown}'"}
        return {"value_zh": f"的值 {shown} ", "value_en": f"value {shown}"}  # unquoted, so 1 is not mistaken for "1"

    def is_empty(self, value: Any) -> bool:
        """None and blank strings mean "no value" (a blank spreadsheet cell), for every type."""
        return value is None or (isinstance(value, str) and value.strip() == "")

    def check(self, value: Any) -> list[FieldProblem]:
        """All problems with one value of this attribute (empty list when it is acceptable)."""
        if self.is_empty(value):
            return [self.missing()] if self.required else []
        if not self._type_ok(value):
            return [self._problem(E.attr_type, value, type_zh=_TYPE_ZH[self.type], type_en=_TYPE_EN[self.type])]
        problems: list[FieldProblem] = []
        if self.type == "enum" and self.enum is not None and value not in self.enum:
            problems.append(self._problem(E.attr_enum, value, choices_zh="、".join(self.enum),
                                          choices_en=", ".join(self.enum)))
        if self.type in ("integer", "number"):
            unit = f" {self.unit}" if self.unit else ""
            if self.min is not None and value < self.min:
                problems.append(self._problem(E.attr_range, value, bound_zh="小于最小值", bound_en="below the minimum",
                                              limit=_num(self.min), unit=unit))
            if self.max is not None and value > self.max:
                problems.append(self._problem(E.attr_range, value, bound_zh="大于最大值", bound_en="above the maximum",
                                              limit=_num(self.max), unit=unit))
        if self.type == "string":
            if self.max_length is not None and len(value) > self.max_length:
                problems.append(self._problem(E.attr_length, value, length=len(value), limit=self.max_length))
            if self.pattern is not None and not _regex(self.pattern).fullmatch(value):
                hint = f"：{self.description}" if self.description else ""
                problems.append(self._problem(E.attr_pattern, value, hint_zh=hint, pattern=self.pattern))
        return problems

    def missing(self) -> FieldProblem:
        """A required attribute that is absent or blank (blank would clear it)."""
        return self._problem(E.attr_required)

    def _type_ok(self, value: Any) -> bool:
        t = self.type
        if t in ("string", "enum"):
            return isinstance(value, str)
        if t == "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        if t == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return False
            return not isinstance(value, float) or math.isfinite(value)
        if t == "boolean":
            return isinstance(value, bool)
        if t == "date":
            if isinstance(value, dt.datetime):  # a timestamp is not a date: the time part would be lost
                return False
            if isinstance(value, dt.date):
                return True
            if isinstance(value, str) and _ISO_DATE.fullmatch(value):
                try:
                    dt.date.fromisoformat(value)
                except ValueError:
                    return False
                return True
            return False
        return False


@dataclass(frozen=True)
class ObjectClass:
    """A 小类 of the catalog: what kind of city object it is, who owns it, and its attribute table."""

    code: str
    name: str
    name_en: str
    geometry: str
    department: Department
    attributes: list[Attribute]
    major_name: str
    middle_name: str
    component_code: str | None = None
    update_period_days: int = 365
    note: str | None = None
    includes: list[str] = field(default_factory=list)
    # Objects of this class describe people or households: aggregates suppress small groups (k-anonymity).
    personal: bool = False
    # False keeps the class out of public collections, tiles and aggregates (classified objects such as 人防工事)
    public: bool = True
    major: str = field(init=False)
    middle: str = field(init=False)
    minor: str = field(init=False)
    _by_field: dict[str, Attribute] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "major", self.code[0:2])
        object.__setattr__(self, "middle", self.code[2:4])
        object.__setattr__(self, "minor", self.code[4:6])
        object.__setattr__(self, "_by_field", {a.field: a for a in self.attributes})

    def __hash__(self) -> int:  # codes are unique within a catalog
        return hash(self.code)

    @property
    def middle_code(self) -> str:
        """The 4-digit 大类+中类 code, the key of `Catalog.middles`."""
        return self.code[:4]

    def attribute(self, field_name: str) -> Attribute | None:
        return self._by_field.get(field_name)

    @property
    def required_fields(self) -> list[str]:
        return [a.field for a in self.attributes if a.required]

    def validate_attrs(self, attrs: Mapping[str, Any], *, partial: bool = False) -> list[FieldProblem]:
        """Every problem in `attrs` (not just the first); `partial=True` skips missing required fields.

        `partial` is for updates that send only changed fields; a required field that *is* sent empty is
        still reported, because that would clear it.
        """
        if not isinstance(attrs, Mapping):
            return [FieldProblem.of(E.attr_type, "", attr_zh="属性", attr_en="attributes", value_zh="",
                                    value_en=f"a {type(attrs).__name__}", type_zh="“字段名: 值”形式的对象",
                                    type_en="an object of field: value")]
        by_field = self._by_field
        problems: list[FieldProblem] = []
        for attr in self.attributes:
            if attr.field in attrs:
                problems.extend(attr.check(attrs[attr.field]))
            elif attr.required and not partial:
                problems.append(attr.missing())
        for key in attrs:
            if key in by_field:
                continue
            shown = _show(key) if isinstance(key, str) else _show(repr(key))
            close = difflib.get_close_matches(shown, list(by_field), n=1) if isinstance(key, str) else []
            hint_zh = f"，是否应为“{close[0]}”（{by_field[close[0]].label}）？" if close else ""
            hint_en = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(FieldProblem.of(E.attr_unknown, shown, key=shown, class_name_zh=self.name,
                                            class_code=self.code, class_name_en=self.name_en, hint_zh=hint_zh,
                                            hint_en=hint_en))
        return problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description, for the API and for survey templates."""
        return {
            "code": self.code, "major": self.major, "middle": self.middle, "minor": self.minor,
            "major_name": self.major_name, "middle_name": self.middle_name,
            "name": self.name, "name_en": self.name_en, "geometry": self.geometry,
            "department": self.department.to_dict(), "component_code": self.component_code,
            "update_period_days": self.update_period_days, "note": self.note, "personal": self.personal, "public": self.public,
            "includes": list(self.includes), "attributes": [a.to_dict() for a in self.attributes],
        }


@dataclass(frozen=True, eq=False)
class Catalog:
    """The whole catalog: classes by 6-digit code (file order), departments, level names, sources."""

    classes: dict[str, ObjectClass]
    departments: dict[str, Department]
    majors: dict[str, str]
    middles: dict[str, str]
    source: str
    edition: str
    levels: dict[str, str] = field(default_factory=dict)
    attribute_sets: dict[str, list[Attribute]] = field(default_factory=dict)
    _by_component: dict[str, ObjectClass] = field(init=False, repr=False)
    _by_name: dict[str, ObjectClass] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_component", {
            c.component_code: c for c in self.classes.values() if c.component_code})
        object.__setattr__(self, "_by_name", {c.name: c for c in self.classes.values()})

    def get(self, code6: str) -> ObjectClass | None:
        return self.classes.get(code6) if isinstance(code6, str) else None

    def by_component_code(self, code4: str) -> ObjectClass | None:
        """The class carrying a GB/T 30428.2 component code, to join digital urban-management systems."""
        return self._by_component.get(code4)

    def by_name(self, name: str) -> ObjectClass | None:
        return self._by_name.get(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "edition": self.edition, "classification_levels": dict(self.levels),
            "majors": dict(self.majors), "middles": dict(self.middles),
            "departments": [d.to_dict() for d in self.departments.values()],
            "classes": [c.to_dict() for c in self.classes.values()],
        }
