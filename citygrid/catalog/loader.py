"""Load and check `schemas/catalog/{departments,classes}.yaml`.

The catalog is edited by hand by county staff, so the loader checks everything it can and reports every
problem at once, each naming the file, the path inside it (``classes[12].attributes[3].type``) and the line.
A malformed catalog must fail at start-up, not when the first survey row of a mistyped class arrives.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from citygrid.catalog.model import (
    ATTRIBUTE_TYPES,
    DEFAULT_LEVEL,
    GEOMETRY_TYPES,
    Attribute,
    Catalog,
    Department,
    ObjectClass,
)
from citygrid.settings import REPO_ROOT, get_settings

DEPARTMENTS_FILE = "departments.yaml"
CLASSES_FILE = "classes.yaml"

CLASS_KEYS = ("code", "name", "name_en", "geometry", "department", "component_code", "update_period_days",
              "include", "attributes", "note", "personal", "public")
CLASS_REQUIRED = ("code", "name", "name_en", "geometry", "department", "update_period_days")
ATTRIBUTE_KEYS = ("field", "label", "type", "required", "enum", "min", "max", "unit", "max_length", "pattern",
                  "level", "description")
DEPARTMENT_KEYS = ("id", "name", "name_en")
CLASSES_TOP_KEYS = ("source", "edition", "classification_levels", "attribute_sets", "majors", "middles",
                    "classes")
DEPARTMENTS_TOP_KEYS = ("note", "departments")

_SLUG = re.compile(r"[a-z][a-z0-9_]*")
_LEVEL = re.compile(r"L\d")


class CatalogError(Exception):
    """The catalog files are malformed; `problems` lists every one, each naming file, path and line."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


# -- YAML with line numbers and duplicate-key detection --------------------------------------------------

class _Map(dict[Any, Any]):
    """A YAML mapping that remembers where it and each of its keys start (1-based lines)."""

    line: int | None = None
    key_lines: dict[Any, int]


class _Seq(list[Any]):
    line: int | None = None


# libyaml parses the catalog about 10x faster than pure-Python PyYAML; both give line marks.
if TYPE_CHECKING:  # one base for the checker: both offer SafeLoader's constructor interface
    _SafeBase = yaml.SafeLoader
else:
    _SafeBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeBase):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _Map()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable mapping key", key_node.start_mark) from None
        if key in out:  # PyYAML would silently keep the last one, hiding a copy-paste mistake
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _Seq:
    out = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def _display(path: Path) -> str:
    """Paths inside the repository are shown relative to it (as people refer to them), others in full."""
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def _read_yaml(path: Path) -> Any:
    label = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"{label}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{label}: cannot read: {exc}") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from (C)SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{problem} ({context})" if context else problem
        raise CatalogError(f"{label}: YAML syntax error at {where}{detail}") from None


# -- checking -----------------------------------------------------------------------------------------------

def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", _Map: "mapping",
            _Seq: "list", type(None): "null"}.get(type(value), type(value).__name__)
    return f"{kind} {value!r}" if kind in ("boolean", "integer", "number", "string") else kind


class _Checker:
    """Collects problems for one file; each names the path inside the file and the line where known."""

    def __init__(self, path: Path) -> None:
        self.label = _display(path)
        self.problems: list[str] = []

    def error(self, path: str, message: str, where: Any = None, key: Any = None) -> None:
        line = None
        if isinstance(where, _Map) and key is not None:
            line = where.key_lines.get(key, where.line)
        elif isinstance(where, _Map | _Seq):
            line = where.line
        suffix = f" (line {line})" if line else ""
        self.problems.append(f"{self.label}: {path}: {message}{suffix}")

    def unknown_keys(self, raw: _Map, allowed: Iterable[str], path: str) -> None:
        allowed = list(allowed)
        for key in raw:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.error(f"{path}.{key}", f"unknown key '{key}'{hint}; allowed: {', '.join(allowed)}",
                           raw, key)

    def text(self, raw: _Map, key: str, path: str, *, required: bool = True) -> str | None:
        """A non-empty string value (numbers are refused: `edition: 2025.1` would lose its zeros)."""
        if key not in raw or raw[key] is None:
            if required:
                self.error(f"{path}.{key}" if path else key, "is required", raw)
            return None
        value = raw[key]
        if not isinstance(value, str) or not value.strip():
            self.error(f"{path}.{key}" if path else key, f"must be a non-empty string, got {_describe(value)}",
                       raw, key)
            return None
        return value

    def digits(self, value: Any, n: int, path: str, where: Any, key: Any) -> str | None:
        """A code of exactly n digits, which must be quoted in YAML (010101 unquoted is an octal number)."""
        if isinstance(value, int) and not isinstance(value, bool):
            self.error(path, f"must be a quoted string of {n} digits, got an unquoted number (YAML read it as "
                             f"{value}); write the code in quotes, e.g. \"{'0' * (n - 1)}1\"", where, key)
            return None
        if not isinstance(value, str) or not re.fullmatch(rf"\d{{{n}}}", value):
            self.error(path, f"must be {n} digits, got {_describe(value)}", where, key)
            return None
        return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_attribute(ck: _Checker, raw: Any, path: str, levels: dict[str, str]) -> Attribute | None:
    if not isinstance(raw, _Map):
        ck.error(path, f"must be a mapping with field/label/type, got {_describe(raw)}", raw)
        return None
    ck.unknown_keys(raw, ATTRIBUTE_KEYS, path)
    ok = True
    field_name = ck.text(raw, "field", path)
    if field_name is not None and not _SLUG.fullmatch(field_name):
        ck.error(f"{path}.field", f"'{field_name}' must be lower-case ascii snake_case", raw, "field")
        ok = False
    label = ck.text(raw, "label", path)
    typ = ck.text(raw, "type", path)
    if typ is not None and typ not in ATTRIBUTE_TYPES:
        close = difflib.get_close_matches(typ, ATTRIBUTE_TYPES, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        ck.error(f"{path}.type", f"unknown type '{typ}'{hint}; allowed: {', '.join(ATTRIBUTE_TYPES)}",
                 raw, "type")
        typ = None
    if field_name is None or label is None or typ is None:
        ok = False

    required = raw.get("required", False)
    if not isinstance(required, bool):
        ck.error(f"{path}.required", f"must be true or false, got {_describe(required)}", raw, "required")
        ok = False

    enum: Any = raw.get("enum")  # unchecked YAML until the checks below
    if typ == "enum":
        if not isinstance(enum, list) or not enum:
            ck.error(f"{path}.enum", "type 'enum' needs a non-empty list of allowed values", raw,
                     "enum" if "enum" in raw else None)
            ok = False
        else:
            for i, v in enumerate(enum):
                if not isinstance(v, str) or not v.strip():
                    ck.error(f"{path}.enum[{i}]", f"must be a non-empty string, got {_describe(v)}", raw, "enum")
                    ok = False
            dupes = sorted({v for v in enum if isinstance(v, str) and enum.count(v) > 1})
            if dupes:
                ck.error(f"{path}.enum", f"duplicate values: {', '.join(dupes)}", raw, "enum")
                ok = False
    elif enum is not None and typ is not None:
        ck.error(f"{path}.enum", f"'enum' is only allowed with type 'enum', not '{typ}'", raw, "enum")
        ok = False

    bounds: dict[str, int | float | None] = {}
    for key in ("min", "max"):
        v = raw.get(key)
        bounds[key] = None
        if v is None:
            continue
        if typ is not None and typ not in ("integer", "number"):
            ck.error(f"{path}.{key}", f"'{key}' is only allowed with type integer or number, not '{typ}'",
                     raw, key)
            ok = False
        elif not _is_number(v) or (typ == "integer" and not isinstance(v, int)):
            ck.error(f"{path}.{key}", f"must be {'an integer' if typ == 'integer' else 'a number'}, "
                                      f"got {_describe(v)}", raw, key)
            ok = False
        else:
            bounds[key] = v
    if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
        ck.error(f"{path}.min", f"min {bounds['min']} is greater than max {bounds['max']}", raw, "min")
        ok = False

    def string_only(key: str, problem: Callable[[Any], str | None]) -> Any:
        """A constraint only strings take (`max_length`, `pattern`): its value, None when absent, False once reported."""
        value = raw.get(key)
        if value is None:
            return None
        why = (f"'{key}' is only allowed with type string, not '{typ}'" if typ is not None and typ != "string"
               else problem(value))
        if why:
            ck.error(f"{path}.{key}", why, raw, key)
            return False
        return value

    def bad_length(v: Any) -> str | None:
        ok_ = isinstance(v, int) and not isinstance(v, bool) and v >= 1
        return None if ok_ else f"must be a positive integer, got {_describe(v)}"

    def bad_pattern(v: Any) -> str | None:
        if not isinstance(v, str):
            return f"must be a string, got {_describe(v)}"
        try:
            re.compile(v)
        except re.error as exc:
            return f"invalid regular expression {v!r}: {exc}"
        return None

    max_length = string_only("max_length", bad_length)
    pattern = string_only("pattern", bad_pattern)
    if max_length is False or pattern is False:
        ok = False

    level = raw.get("level", DEFAULT_LEVEL)
    if level not in levels:
        ck.error(f"{path}.level", f"unknown level {level!r}; allowed: {', '.join(levels)}", raw, "level")
        ok = False
    unit = ck.text(raw, "unit", path, required=False)
    description = ck.text(raw, "description", path, required=False)
    if ("unit" in raw and unit is None) or ("description" in raw and description is None):
        ok = False
    if not ok:
        return None
    assert field_name is not None and label is not None and typ is not None
    return Attribute(
        field=field_name, label=label, type=typ, required=required,
        enum=[str(v) for v in enum] if typ == "enum" else None,
        min=bounds["min"], max=bounds["max"], unit=unit, max_length=max_length, pattern=pattern,
        level=level, description=description,
    )


def _parse_attribute_list(ck: _Checker, raw: Any, path: str, levels: dict[str, str],
                          where: Any, key: str) -> list[tuple[int, Attribute]] | None:
    """Parsed attributes with their index in the file (for messages); None if `raw` is not a list."""
    if not isinstance(raw, _Seq):
        ck.error(path, f"must be a list of attributes, got {_describe(raw)}", where, key)
        return None
    out: list[tuple[int, Attribute]] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        attr = _parse_attribute(ck, item, f"{path}[{i}]", levels)
        if attr is None:
            continue
        if attr.field in seen:
            ck.error(f"{path}[{i}].field", f"duplicate field '{attr.field}' (also {path}[{seen[attr.field]}])",
                     item, "field")
            continue
        seen[attr.field] = i
        out.append((i, attr))
    return out


def _load_departments(path: Path) -> dict[str, Department]:
    ck = _Checker(path)
    raw = _read_yaml(path)
    if not isinstance(raw, _Map):
        raise CatalogError(f"{ck.label}: top level must be a mapping with a 'departments' list")
    ck.unknown_keys(raw, DEPARTMENTS_TOP_KEYS, "")
    items = raw.get("departments")
    departments: dict[str, Department] = {}
    if not isinstance(items, _Seq) or not items:
        ck.error("departments", "must be a non-empty list", raw, "departments")
    else:
        for i, item in enumerate(items):
            p = f"departments[{i}]"
            if not isinstance(item, _Map):
                ck.error(p, f"must be a mapping with id/name/name_en, got {_describe(item)}", items)
                continue
            ck.unknown_keys(item, DEPARTMENT_KEYS, p)
            dep_id = ck.text(item, "id", p)
            name = ck.text(item, "name", p)
            name_en = ck.text(item, "name_en", p)
            if dep_id is not None and not _SLUG.fullmatch(dep_id):
                ck.error(f"{p}.id", f"'{dep_id}' must be a lower-case ascii slug", item, "id")
                continue
            if dep_id is not None and dep_id in departments:
                ck.error(f"{p}.id", f"duplicate department id '{dep_id}'", item, "id")
                continue
            if dep_id and name and name_en:
                departments[dep_id] = Department(dep_id, name, name_en)
    if ck.problems:
        raise CatalogError(ck.problems)
    return departments


def _code_map(ck: _Checker, raw: _Map, key: str, n: int) -> dict[str, str]:
    """`majors` / `middles`: quoted n-digit code -> non-empty Chinese name."""
    out: dict[str, str] = {}
    value = raw.get(key)
    if not isinstance(value, _Map) or not value:
        ck.error(key, f"must be a non-empty mapping of \"{'0' * n}\"-style codes to names", raw, key)
        return out
    for code, name in value.items():
        p = f"{key}.{code}"
        c = ck.digits(code, n, p, value, code)
        if c is None:
            continue
        if not isinstance(name, str) or not name.strip():
            ck.error(p, f"name must be a non-empty string, got {_describe(name)}", value, code)
            continue
        out[c] = name
    return out


def _load_classes(path: Path, departments: dict[str, Department]) -> Catalog:
    ck = _Checker(path)
    raw = _read_yaml(path)
    if not isinstance(raw, _Map):
        raise CatalogError(f"{ck.label}: top level must be a mapping with keys {', '.join(CLASSES_TOP_KEYS)}")
    ck.unknown_keys(raw, CLASSES_TOP_KEYS, "")
    source = ck.text(raw, "source", "") or ""
    edition = ck.text(raw, "edition", "") or ""

    levels: dict[str, str] = {}
    raw_levels = raw.get("classification_levels")
    if not isinstance(raw_levels, _Map) or not raw_levels:
        ck.error("classification_levels", "must be a mapping like {L1: 公开, L2: 内部}", raw,
                 "classification_levels")
    else:
        for k, v in raw_levels.items():
            if not isinstance(k, str) or not _LEVEL.fullmatch(k) or not isinstance(v, str) or not v.strip():
                ck.error(f"classification_levels.{k}", "must map a level like L1 to its name", raw_levels, k)
            else:
                levels[k] = v
        if DEFAULT_LEVEL not in levels:
            ck.error("classification_levels", f"must define the default level {DEFAULT_LEVEL}", raw_levels)

    majors = _code_map(ck, raw, "majors", 2)
    middles = _code_map(ck, raw, "middles", 4)
    for code in middles:
        if majors and code[:2] not in majors:
            ck.error(f"middles.{code}", f"major '{code[:2]}' is not defined in majors", raw["middles"], code)

    attribute_sets: dict[str, list[Attribute]] = {}
    raw_sets = raw.get("attribute_sets", _Map())
    if not isinstance(raw_sets, _Map):
        ck.error("attribute_sets", f"must be a mapping of name -> attribute list, got {_describe(raw_sets)}",
                 raw, "attribute_sets")
    else:
        for name, items in raw_sets.items():
            p = f"attribute_sets.{name}"
            if not isinstance(name, str) or not _SLUG.fullmatch(name):
                ck.error(p, "set names must be lower-case ascii slugs", raw_sets, name)
                continue
            parsed = _parse_attribute_list(ck, items, p, levels, raw_sets, name)
            if parsed is not None:
                attribute_sets[name] = [a for _, a in parsed]

    classes: dict[str, ObjectClass] = {}
    names: dict[str, str] = {}
    component_codes: dict[str, str] = {}
    raw_classes = raw.get("classes")
    if not isinstance(raw_classes, _Seq) or not raw_classes:
        ck.error("classes", "must be a non-empty list", raw, "classes")
        raw_classes = _Seq()
    for i, item in enumerate(raw_classes):
        p = f"classes[{i}]"
        if not isinstance(item, _Map):
            ck.error(p, f"must be a mapping, got {_describe(item)}", raw_classes)
            continue
        cls = _parse_class(ck, item, p, departments=departments, majors=majors, middles=middles,
                           levels=levels, attribute_sets=attribute_sets)
        if cls is None:
            continue
        if cls.code in classes:
            ck.error(f"{p}.code", f"duplicate code '{cls.code}' (already used by {classes[cls.code].name})",
                     item, "code")
            continue
        if cls.name in names:
            ck.error(f"{p}.name", f"duplicate class name '{cls.name}' (already class {names[cls.name]})",
                     item, "name")
            continue
        if cls.component_code is not None and cls.component_code in component_codes:
            ck.error(f"{p}.component_code", f"duplicate component code '{cls.component_code}' "
                                            f"(already class {component_codes[cls.component_code]})",
                     item, "component_code")
            continue
        classes[cls.code] = cls
        names[cls.name] = cls.code
        if cls.component_code is not None:
            component_codes[cls.component_code] = cls.code
    if ck.problems:
        raise CatalogError(ck.problems)
    return Catalog(classes=classes, departments=departments, majors=majors, middles=middles, source=source,
                   edition=edition, levels=levels, attribute_sets=attribute_sets)


def _parse_class(ck: _Checker, item: _Map, p: str, *, departments: dict[str, Department],
                 majors: dict[str, str], middles: dict[str, str], levels: dict[str, str],
                 attribute_sets: dict[str, list[Attribute]]) -> ObjectClass | None:
    n_before = len(ck.problems)
    ck.unknown_keys(item, CLASS_KEYS, p)
    for key in CLASS_REQUIRED:
        if key not in item:
            ck.error(f"{p}.{key}", "is required", item)

    code = None
    if "code" in item:
        code = ck.digits(item["code"], 6, f"{p}.code", item, "code")
    if code is not None:
        if code[:2] not in majors:
            ck.error(f"{p}.code", f"'{code}': major '{code[:2]}' is not defined in majors", item, "code")
        elif code[:4] not in middles:
            ck.error(f"{p}.code", f"'{code}': middle '{code[:4]}' is not defined in middles", item, "code")
        elif code[4:] == "00":
            ck.error(f"{p}.code", f"'{code}': minor '00' is reserved for the middle class itself", item, "code")

    name = ck.text(item, "name", p) if "name" in item else None
    name_en = ck.text(item, "name_en", p) if "name_en" in item else None
    geometry = item.get("geometry")
    if "geometry" in item and geometry not in GEOMETRY_TYPES:
        ck.error(f"{p}.geometry", f"unknown geometry {geometry!r}; allowed: {', '.join(GEOMETRY_TYPES)}",
                 item, "geometry")
    department = None
    if "department" in item:
        dep = item["department"]
        department = departments.get(dep) if isinstance(dep, str) else None
        if department is None:
            close = difflib.get_close_matches(str(dep), list(departments), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            ck.error(f"{p}.department", f"unknown department {dep!r}{hint}; not in departments.yaml",
                     item, "department")

    component_code = None
    if item.get("component_code") is not None:
        component_code = ck.digits(item["component_code"], 4, f"{p}.component_code", item, "component_code")

    period = item.get("update_period_days")
    if "update_period_days" in item and (not isinstance(period, int) or isinstance(period, bool)
                                         or period < 1):
        ck.error(f"{p}.update_period_days", f"must be a positive integer, got {_describe(period)}",
                 item, "update_period_days")
    note = ck.text(item, "note", p, required=False)
    personal = item.get("personal", False)
    if not isinstance(personal, bool):
        ck.error(f"{p}.personal", f"must be true or false, got {_describe(personal)}", item, "personal")
        personal = False
    public = item.get("public", True)
    if not isinstance(public, bool):
        ck.error(f"{p}.public", f"must be true or false, got {_describe(public)}", item, "public")
        public = True

    includes: list[str] = []
    attributes: list[Attribute] = []
    origin: dict[str, str] = {}
    raw_include = item.get("include", [])
    if not isinstance(raw_include, list):
        ck.error(f"{p}.include", f"must be a list of attribute set names, got {_describe(raw_include)}",
                 item, "include")
        raw_include = []
    for j, set_name in enumerate(raw_include):
        if not isinstance(set_name, str) or set_name not in attribute_sets:
            known = ", ".join(attribute_sets) or "none defined"
            ck.error(f"{p}.include[{j}]", f"unknown attribute set {set_name!r}; known: {known}",
                     item, "include")
            continue
        includes.append(set_name)
        for attr in attribute_sets[set_name]:
            if attr.field in origin:
                ck.error(f"{p}.include[{j}]", f"field '{attr.field}' of set '{set_name}' duplicates "
                                              f"{origin[attr.field]}", item, "include")
                continue
            origin[attr.field] = f"attribute set '{set_name}'"
            attributes.append(attr)
    if "attributes" in item:
        own = _parse_attribute_list(ck, item["attributes"], f"{p}.attributes", levels, item, "attributes")
        for j, attr in own or []:
            if attr.field in origin:
                ck.error(f"{p}.attributes[{j}].field",
                         f"duplicate field '{attr.field}' (already in {origin[attr.field]})",
                         item["attributes"][j], "field")
                continue
            origin[attr.field] = f"{p}.attributes"
            attributes.append(attr)
    if not attributes and len(ck.problems) == n_before:
        ck.error(f"{p}.attributes", "a class needs at least one attribute (own or from include)", item)
    # The set named `every_class` (provenance such as generated data) is appended to every class.
    for attr in attribute_sets.get("every_class", []):
        if attr.field in origin:
            ck.error(f"{p}.attributes", f"field '{attr.field}' is reserved by attribute set 'every_class'", item)
            continue
        attributes.append(attr)

    if len(ck.problems) > n_before:
        return None
    assert code is not None and name is not None and name_en is not None and department is not None
    assert isinstance(geometry, str) and isinstance(period, int)  # both required and checked above
    return ObjectClass(
        code=code, name=name, name_en=name_en, geometry=geometry, department=department,
        attributes=attributes, major_name=majors[code[:2]], middle_name=middles[code[:4]],
        component_code=component_code, update_period_days=period, note=note, includes=includes, personal=personal, public=public,
    )


def default_catalog_dir() -> Path:
    """The settings' schemas directory's `catalog/` (`CITYGRID_SCHEMAS`, default the repository's)."""
    return get_settings().catalog_dir


def load_catalog(path: Path | str | None = None) -> Catalog:
    """Load and check the catalog in directory `path` (default: `default_catalog_dir()`).

    Raises CatalogError listing every problem found.
    """
    directory = Path(path) if path is not None else default_catalog_dir()
    if not directory.is_dir():
        raise CatalogError(f"{_display(directory)}: catalog directory not found")
    departments = _load_departments(directory / DEPARTMENTS_FILE)
    return _load_classes(directory / CLASSES_FILE, departments)


@lru_cache(maxsize=1)
def get_catalog() -> Catalog:
    """The default catalog, loaded once per process (call `get_catalog.cache_clear()` after editing)."""
    return load_catalog()
