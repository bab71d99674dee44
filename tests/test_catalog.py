"""Tests for citygrid.catalog: the shipped catalog, attribute validation, and errors on malformed catalogs.

No database: the catalog is plain YAML. Malformed variants are written to temporary directories from a small
valid catalog, so each test shows exactly which mistake is made and what the error must say about it.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from citygrid.catalog import (
    GEOMETRY_TYPES,
    Attribute,
    Catalog,
    CatalogError,
    Department,
    FieldProblem,
    ObjectClass,
    get_catalog,
    load_catalog,
)
from citygrid.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
CATALOG_DIR = REPO / "schemas" / "catalog"
NATIONAL_COMPONENT_CODES = [f"01{i:02d}" for i in range(1, 28)]  # GB/T 30428.2 0101–0127


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog(CATALOG_DIR)


# ---------------------------------------------------------------------------------------------------------
# the shipped catalog
# ---------------------------------------------------------------------------------------------------------

def test_shipped_catalog_shape(cat: Catalog) -> None:
    assert list(cat.majors) == ["01", "02", "03", "04", "05", "06", "07", "08", "99"]
    assert cat.majors["01"] == "公用设施" and cat.majors["99"] == "地方扩展"
    assert all(code[:2] in cat.majors for code in cat.middles)
    assert 50 <= len(cat.classes) <= 90
    assert {c.middle_code for c in cat.classes.values()} == set(cat.middles)  # no empty middle class
    assert cat.edition
    for needle in ("CJ/T 553-2024", "GB/T 30428.2", "0101–0127"):
        assert needle in cat.source
    assert cat.levels == {"L1": "公开", "L2": "内部", "L3": "敏感", "L4": "个人信息/涉密"}
    assert list(cat.classes) == [c.code for c in cat.classes.values()]  # keyed by code


def test_every_class_is_complete_and_consistent(cat: Catalog) -> None:
    for code, cls in cat.classes.items():
        assert isinstance(cls, ObjectClass)
        assert code == cls.code == cls.major + cls.middle + cls.minor
        assert cls.major_name == cat.majors[cls.major]
        assert cls.middle_name == cat.middles[cls.middle_code]
        assert cls.geometry in GEOMETRY_TYPES
        assert cat.departments[cls.department.id] is cls.department
        assert cls.update_period_days > 0
        assert len(cls.attributes) >= 3, code
        fields = [a.field for a in cls.attributes]
        assert len(fields) == len(set(fields)), code
        assert all(a.label for a in cls.attributes)
        if cls.component_code:
            # components carry the GB/T 30428.2 common attributes, with the state enum of the standard
            assert "component_common" in cls.includes
            state = cls.attribute("state")
            assert state is not None and state.enum == ["完好", "破损", "丢失", "占用"] and state.required


def test_required_families_are_present(cat: Catalog) -> None:
    def one(name: str, geometry: str) -> ObjectClass:
        cls = cat.by_name(name)
        assert cls is not None, name
        assert cls.geometry == geometry, name
        return cls

    lamp = one("路灯", "Point")
    assert lamp.component_code == "0118" and lamp.major_name == "公用设施"

    building = one("建筑物", "Polygon")
    floors = building.attribute("floors_above")
    assert floors is not None and floors.type == "integer" and floors.required
    assert {"floors_below", "height", "structure", "main_use", "year_built", "building_no"} <= {
        a.field for a in building.attributes}

    house = one("实有房屋", "Point")
    assert house.attribute("owner_id_number").level == "L4"
    assert house.attribute("house_use").type == "enum"

    plate = one("门牌", "Point")
    assert plate.attribute("road_name").required and plate.attribute("number").type == "integer"

    road = one("道路", "LineString")
    assert {"grade", "width", "lanes", "surface"} <= {a.field for a in road.attributes}

    bridges = [c for c in cat.classes.values() if c.middle_code == "0202" and c.attribute("bridge_name")]
    assert len(bridges) >= 3 and all(c.geometry == "LineString" for c in bridges)

    parcel = one("宗地", "Polygon")
    assert parcel.validate_attrs({"parcel_code": "420281001001GB00001", "land_use": "住宅用地", "area": 1200.5}) == []
    assert "耕地" in parcel.attribute("land_use").enum

    org = one("实有单位", "Point")
    good = {"org_name": "测试有限公司", "org_category": "企业", "credit_code": "91110000600037341L"}
    assert org.validate_attrs(good) == []
    bad = org.validate_attrs({**good, "credit_code": "91110000600037341I"})  # I is not in the alphabet
    assert [p.error_code for p in bad] == ["attr_pattern"]

    covers = {"上水井盖", "污水井盖", "雨水井盖", "电力井盖", "路灯井盖", "通信井盖", "燃气井盖", "热力井盖"}
    for name in covers:
        cover = one(name, "Point")
        assert cover.component_code and cover.attribute("load_class") is not None
    for name in ("消防栓", "立杆", "电力设施", "变压器", "公交站亭", "交通信号灯", "交通标志牌", "垃圾箱",
                 "公共厕所", "广告牌匾", "古树名木", "行道树", "花坛"):
        one(name, "Point")
    for name in ("停车场", "绿地", "公园", "湖泊", "垃圾转运站"):
        one(name, "Polygon")
    for name in ("交通护栏", "河流", "堤防"):
        one(name, "LineString")
    assert [c.major for c in cat.classes.values()].count("99") >= 1


def test_national_component_codes_are_all_present(cat: Catalog) -> None:
    for code4 in NATIONAL_COMPONENT_CODES:
        assert cat.by_component_code(code4) is not None, code4
    assert cat.by_component_code("0101").name == "上水井盖"
    assert cat.by_component_code("0102").name == "污水井盖"
    assert cat.by_component_code("0103").name == "雨水井盖"
    assert cat.by_component_code("0127").name == "中水井盖"


def test_unverified_component_codes_say_so(cat: Catalog) -> None:
    """Codes outside the verified 0101–0127 must carry a note, so nobody mistakes them for certain."""
    for cls in cat.classes.values():
        if cls.component_code and cls.component_code not in NATIONAL_COMPONENT_CODES:
            assert cls.note and ("未核实" in cls.note), cls.code



def test_classes_whose_note_keeps_them_off_public_layers_are_not_public(cat: Catalog) -> None:
    """A note saying 不进公开图层 is a rule, not prose: 人防工事, 监控电子眼 and 重大危险源 were served publicly
    while their notes said otherwise, until `public: false` was set on all three."""
    said = {c.code for c in cat.classes.values() if c.note and "公开图层" in c.note}
    assert said >= {"050402", "010703", "080201"}
    assert {c.code for c in cat.classes.values() if not c.public} == said

def test_lookups(cat: Catalog) -> None:
    assert cat.get("010101") is cat.classes["010101"]
    assert cat.get("999999") is None
    assert cat.get(10101) is None  # type: ignore[arg-type]
    assert cat.by_component_code("9999") is None
    assert cat.by_name("不存在") is None
    water = cat.departments["water_supply"]
    assert isinstance(water, Department) and water.to_dict() == {
        "id": "water_supply", "name": water.name, "name_en": water.name_en}


def test_to_dict_is_json_and_expands_includes(cat: Catalog) -> None:
    cls = cat.by_component_code("0101")
    data = json.loads(json.dumps(cls.to_dict(), ensure_ascii=False))
    assert data["code"] == "010101" and data["major"] == "01" and data["middle"] == "01" and data["minor"] == "01"
    assert data["department"]["id"] == "water_supply"
    assert data["component_code"] == "0101"
    fields = [a["field"] for a in data["attributes"]]
    assert fields[:5] == ["dept_supervisor", "dept_owner", "dept_maintainer", "unit_grid_code", "state"]
    state = next(a for a in data["attributes"] if a["field"] == "state")
    assert state == {"field": "state", "label": "状态", "type": "enum", "required": True,
                     "enum": ["完好", "破损", "丢失", "占用"], "min": None, "max": None, "unit": None,
                     "max_length": None, "pattern": None, "level": "L1", "description": None}
    whole = json.loads(json.dumps(cat.to_dict(), ensure_ascii=False))
    assert len(whole["classes"]) == len(cat.classes) and whole["majors"]["99"] == "地方扩展"


def test_default_location_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(CATALOG_DIR, schemas / "catalog")
    text = (schemas / "catalog" / "classes.yaml").read_text(encoding="utf-8")
    edition_line = next(line for line in text.splitlines() if line.startswith("edition:"))
    (schemas / "catalog" / "classes.yaml").write_text(
        text.replace(edition_line, "edition: env-copy"), encoding="utf-8")

    monkeypatch.setenv("CITYGRID_SCHEMAS", str(schemas))
    get_settings.cache_clear()  # settings are read once per process
    assert load_catalog().edition == "env-copy"
    monkeypatch.delenv("CITYGRID_SCHEMAS")
    get_settings.cache_clear()
    assert load_catalog().edition == load_catalog(CATALOG_DIR).edition != "env-copy"

    get_catalog.cache_clear()
    try:
        first = get_catalog()
        assert get_catalog() is first
        assert first.edition != "env-copy"
    finally:
        get_catalog.cache_clear()


# ---------------------------------------------------------------------------------------------------------
# a small catalog written to a temp dir: the base for validation and malformed-catalog tests
# ---------------------------------------------------------------------------------------------------------

def _departments() -> dict[str, Any]:
    return {"departments": [
        {"id": "water_supply", "name": "供水公司", "name_en": "Water Supply Company"},
        {"id": "housing", "name": "住房和城乡建设局", "name_en": "Housing Bureau"},
    ]}


def _classes() -> dict[str, Any]:
    return {
        "source": "test catalog",
        "edition": "t1",
        "classification_levels": {"L1": "公开", "L2": "内部", "L3": "敏感", "L4": "个人信息/涉密"},
        "attribute_sets": {"common": [
            {"field": "state", "label": "状态", "type": "enum", "required": True,
             "enum": ["完好", "破损", "丢失", "占用"], "level": "L1"},
        ]},
        "majors": {"01": "公用设施", "05": "房屋土地"},
        "middles": {"0101": "供水设施", "0501": "建筑物"},
        "classes": [
            {"code": "010101", "name": "上水井盖", "name_en": "water supply manhole cover", "geometry": "Point",
             "department": "water_supply", "component_code": "0101", "update_period_days": 365,
             "include": ["common"],
             "attributes": [
                 {"field": "material", "label": "材质", "type": "enum", "enum": ["铸铁", "复合材料", "混凝土"]},
                 {"field": "diameter", "label": "直径", "type": "number", "min": 0, "max": 5000, "unit": "mm"},
             ]},
            {"code": "050101", "name": "建筑物", "name_en": "building", "geometry": "Polygon",
             "department": "housing", "update_period_days": 365,
             "attributes": [
                 {"field": "floors", "label": "地上层数", "type": "integer", "required": True, "min": 0, "max": 200},
                 {"field": "building_no", "label": "楼栋号", "type": "string", "max_length": 5,
                  "pattern": "[0-9A-Z]+栋"},
                 {"field": "completed", "label": "竣工日期", "type": "date"},
                 {"field": "elevator", "label": "有电梯", "type": "boolean"},
                 {"field": "owner_id", "label": "产权人证件号码", "type": "string", "pattern": r"\d{17}[\dX]",
                  "level": "L4"},
             ]},
        ],
    }


def _write(directory: Path, departments: dict[str, Any], classes: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in (("departments.yaml", departments), ("classes.yaml", classes)):
        (directory / name).write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return load_catalog(_write(tmp_path_factory.mktemp("small"), _departments(), _classes()))


def test_small_catalog_loads(small: Catalog) -> None:
    cover = small.get("010101")
    assert [a.field for a in cover.attributes] == ["state", "material", "diameter"]
    assert cover.includes == ["common"]
    diameter = cover.attribute("diameter")
    assert isinstance(diameter, Attribute)
    assert (diameter.type, diameter.min, diameter.max, diameter.unit, diameter.level, diameter.required) == (
        "number", 0, 5000, "mm", "L2", False)
    assert small.by_component_code("0101") is cover
    assert small.get("050101").component_code is None


# ---------------------------------------------------------------------------------------------------------
# validate_attrs
# ---------------------------------------------------------------------------------------------------------

def test_valid_attrs_have_no_problems(small: Catalog) -> None:
    assert small.get("010101").validate_attrs({"state": "完好", "material": "铸铁", "diameter": 700}) == []
    assert small.get("050101").validate_attrs({
        "floors": 6, "building_no": "3栋", "completed": "2019-06-30", "elevator": True,
        "owner_id": "11010519491231002X"}) == []
    assert small.get("050101").validate_attrs({"floors": 6, "completed": dt.date(2019, 6, 30)}) == []


def test_enum_message_matches_the_agreed_wording(cat: Catalog) -> None:
    [problem] = cat.by_component_code("0101").validate_attrs({"state": "坏了"})
    assert problem == FieldProblem(
        "attr_enum", "state",
        "属性“状态”(state) 的值“坏了”不在允许值中：完好、破损、丢失、占用",
        "attribute 'state' (状态): value '坏了' is not one of: 完好, 破损, 丢失, 占用")
    assert problem.to_dict() == {"error_code": "attr_enum", "field": "state",
                                 "message_zh": problem.message_zh, "message_en": problem.message_en}


@pytest.mark.parametrize(("code", "attrs", "error_code", "field", "zh_part", "en_part"), [
    ("010101", {"material": "铸铁"}, "attr_required", "state", "缺少必填属性“状态”(state)",
     "missing required attribute 'state' (状态)"),
    ("010101", {"state": "完好", "colour": "red"}, "attr_unknown", "colour", "未知属性“colour”",
     "unknown attribute 'colour'"),
    ("010101", {"state": "完好", "diameter": "700"}, "attr_type", "diameter", "属性“直径”(diameter) 的值“700”不是数值",
     "attribute 'diameter' (直径): value '700' is not a finite number"),
    ("010101", {"state": "完好", "material": "木头"}, "attr_enum", "material", "不在允许值中：铸铁、复合材料、混凝土",
     "is not one of: 铸铁, 复合材料, 混凝土"),
    ("010101", {"state": "完好", "diameter": -1}, "attr_range", "diameter", "的值 -1 小于最小值 0 mm",
     "value -1 is below the minimum 0 mm"),
    ("010101", {"state": "完好", "diameter": 5000.5}, "attr_range", "diameter", "大于最大值 5000 mm",
     "is above the maximum 5000 mm"),
    ("050101", {"floors": 3, "building_no": "123456栋"}, "attr_length", "building_no",
     "属性“楼栋号”(building_no) 的长度 7 超过上限 5 个字符", "length 7 exceeds the maximum of 5 characters"),
    ("050101", {"floors": 3, "building_no": "3号楼"}, "attr_pattern", "building_no",
     "属性“楼栋号”(building_no) 的值“3号楼”不符合格式要求", "does not match the required pattern [0-9A-Z]+栋"),
])
def test_each_problem_kind(small: Catalog, code: str, attrs: dict[str, Any], error_code: str, field: str,
                           zh_part: str, en_part: str) -> None:
    problems = small.get(code).validate_attrs(attrs)
    assert [(p.error_code, p.field) for p in problems] == [(error_code, field)]
    assert zh_part in problems[0].message_zh
    assert en_part in problems[0].message_en


def test_all_problems_reported_at_once_with_both_languages(small: Catalog) -> None:
    building = small.get("050101")
    problems = building.validate_attrs({
        "building_no": "12345678",    # too long and not matching the pattern
        "completed": "2024-02-30",    # not a real date
        "elevator": "是",             # not a boolean
        "floors_above": 3,            # unknown (and `floors`, required, is missing)
    })
    kinds = sorted((p.error_code, p.field) for p in problems)
    assert kinds == sorted([
        ("attr_required", "floors"), ("attr_length", "building_no"), ("attr_pattern", "building_no"),
        ("attr_type", "completed"), ("attr_type", "elevator"), ("attr_unknown", "floors_above"),
    ])
    labels = {a.field: a.label for a in building.attributes}
    for p in problems:
        if p.error_code == "attr_unknown":
            assert "“floors_above”" in p.message_zh and "'floors_above'" in p.message_en
            assert "did you mean 'floors'" in p.message_en
            continue
        assert f"“{labels[p.field]}”({p.field})" in p.message_zh
        assert f"'{p.field}' ({labels[p.field]})" in p.message_en


def test_partial_skips_missing_required_but_not_blanked_required(small: Catalog) -> None:
    building = small.get("050101")
    assert building.validate_attrs({}, partial=True) == []
    assert building.validate_attrs({"elevator": False}, partial=True) == []
    assert [p.error_code for p in building.validate_attrs({})] == ["attr_required"]
    blanked = building.validate_attrs({"floors": None}, partial=True)
    assert [(p.error_code, p.field) for p in blanked] == [("attr_required", "floors")]
    assert [(p.error_code, p.field) for p in building.validate_attrs({"floors": "  "}, partial=True)] == [
        ("attr_required", "floors")]
    # an optional field may be blank (a blank spreadsheet cell means "no value")
    assert building.validate_attrs({"floors": 1, "completed": None, "building_no": ""}) == []


@pytest.mark.parametrize(("field", "value", "ok"), [
    ("floors", 3, True),
    ("floors", "3", False),         # numeric strings are not converted
    ("floors", 3.0, False),         # strict: a float is not an integer
    ("floors", True, False),        # bool is not an integer, although it is a Python int
    ("completed", "2024-01-02", True),
    ("completed", dt.date(2024, 1, 2), True),
    ("completed", dt.datetime(2024, 1, 2, 8, 0), False),
    ("completed", "2024/01/02", False),
    ("completed", "20240102", False),
    ("completed", "2024-1-2", False),
    ("completed", 20240102, False),
    ("elevator", True, True),
    ("elevator", "true", False),
    ("elevator", 1, False),
    ("building_no", 3, False),
])
def test_type_strictness(small: Catalog, field: str, value: Any, ok: bool) -> None:
    problems = small.get("050101").validate_attrs({"floors": 1, field: value})
    assert (problems == []) is ok, problems
    if not ok:
        assert [p.error_code for p in problems] == ["attr_type"]


@pytest.mark.parametrize(("value", "ok"), [
    (700, True), (700.5, True), ("700", False), (False, False), (math.nan, False), (math.inf, False)])
def test_number_accepts_ints_and_floats_only(small: Catalog, value: Any, ok: bool) -> None:
    problems = small.get("010101").validate_attrs({"state": "完好", "diameter": value})
    assert (problems == []) is ok
    if not ok:
        assert [p.error_code for p in problems] == ["attr_type"]


def test_enum_value_of_wrong_type_is_a_type_problem(small: Catalog) -> None:
    problems = small.get("010101").validate_attrs({"state": 1})
    assert [(p.error_code, p.field) for p in problems] == [("attr_type", "state")]
    assert "的值 1 不是" in problems[0].message_zh  # unquoted: 1 is not the string "1"


def test_personal_data_values_are_not_echoed(small: Catalog) -> None:
    [problem] = small.get("050101").validate_attrs({"floors": 2, "owner_id": "4202811990"})
    assert problem.error_code == "attr_pattern" and problem.field == "owner_id"
    assert "4202811990" not in problem.message_zh and "4202811990" not in problem.message_en
    assert "“产权人证件号码”(owner_id)" in problem.message_zh


def test_non_mapping_attrs(small: Catalog) -> None:
    [problem] = small.get("010101").validate_attrs(["state", "完好"])  # type: ignore[arg-type]
    assert problem.error_code == "attr_type"


# ---------------------------------------------------------------------------------------------------------
# malformed catalogs
# ---------------------------------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any], dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """Mutation setting classes[...] by a path like 'classes.1.attributes.0.type'."""
    def apply(deps: dict[str, Any], classes: dict[str, Any]) -> None:
        # list indexes become ints; zero-padded codes such as "0201" stay mapping keys
        keys: list[Any] = [int(k) if k.isdigit() and (k == "0" or k[0] != "0") else k for k in path.split(".")]
        target: Any = deps if keys[0] == "departments" else classes
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
    return apply


def _delete(path: str) -> Mutation:
    def apply(deps: dict[str, Any], classes: dict[str, Any]) -> None:
        *head, last = [int(k) if k.isdigit() else k for k in path.split(".")]
        target: Any = classes
        for k in head:
            target = target[k]
        del target[last]
    return apply


def _append_attr(cls_index: int, attr: dict[str, Any]) -> Mutation:
    def apply(deps: dict[str, Any], classes: dict[str, Any]) -> None:
        classes["classes"][cls_index]["attributes"].append(attr)
    return apply


def _load_broken(tmp_path: Path, *mutations: Mutation) -> CatalogError:
    deps, classes = copy.deepcopy(_departments()), copy.deepcopy(_classes())
    for mutate in mutations:
        mutate(deps, classes)
    _write(tmp_path / "catalog", deps, classes)
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path / "catalog")
    return info.value


@pytest.mark.parametrize(("mutation", "file", "expected"), [
    pytest.param(_set("classes.0.code", "01011"), "classes.yaml",
                 ["classes[0].code: must be 6 digits, got string '01011'"], id="bad-code"),
    pytest.param(_set("classes.0.code", 10101), "classes.yaml",
                 ["classes[0].code: must be a quoted string of 6 digits"], id="unquoted-code"),
    pytest.param(_set("classes.0.code", "010201"), "classes.yaml",
                 ["classes[0].code: '010201': middle '0102' is not defined"], id="unknown-middle"),
    pytest.param(_set("classes.0.code", "020101"), "classes.yaml",
                 ["classes[0].code: '020101': major '02' is not defined"], id="unknown-major"),
    pytest.param(_set("classes.0.code", "010100"), "classes.yaml", ["minor '00' is reserved"], id="minor-00"),
    pytest.param(_set("classes.1.department", "housng"), "classes.yaml",
                 ["classes[1].department: unknown department 'housng' (did you mean 'housing'?)"],
                 id="unknown-department"),
    pytest.param(_set("classes.1.attributes.1.type", "strin"), "classes.yaml",
                 ["classes[1].attributes[1].type: unknown type 'strin' (did you mean 'string'?)"],
                 id="unknown-type"),
    pytest.param(_set("classes.0.attributes.0.requird", True), "classes.yaml",
                 ["classes[0].attributes[0].requird: unknown key 'requird' (did you mean 'required'?)"],
                 id="typo-attribute-key"),
    pytest.param(_set("classes.1.departement", "housing"), "classes.yaml",
                 ["classes[1].departement: unknown key 'departement' (did you mean 'department'?)"],
                 id="typo-class-key"),
    pytest.param(_set("classes.1.code", "010101"), "classes.yaml",
                 ["classes[1].code: duplicate code '010101' (already used by 上水井盖)"], id="duplicate-code"),
    pytest.param(_set("classes.1.name", "上水井盖"), "classes.yaml",
                 ["classes[1].name: duplicate class name '上水井盖'"], id="duplicate-name"),
    pytest.param(_set("classes.1.geometry", "Polgon"), "classes.yaml",
                 ["classes[1].geometry: unknown geometry 'Polgon'"], id="unknown-geometry"),
    pytest.param(_delete("classes.0.attributes.0.enum"), "classes.yaml",
                 ["classes[0].attributes[0].enum: type 'enum' needs a non-empty list"], id="enum-without-values"),
    pytest.param(_set("classes.1.attributes.0.enum", ["a"]), "classes.yaml",
                 ["classes[1].attributes[0].enum: 'enum' is only allowed with type 'enum'"], id="enum-on-integer"),
    pytest.param(_append_attr(1, {"field": "floors", "label": "层数", "type": "integer"}), "classes.yaml",
                 ["classes[1].attributes[5].field: duplicate field 'floors' (also classes[1].attributes[0])"],
                 id="duplicate-field"),
    pytest.param(_append_attr(0, {"field": "state", "label": "状态", "type": "string"}), "classes.yaml",
                 ["classes[0].attributes[2].field: duplicate field 'state' (already in attribute set 'common')"],
                 id="field-duplicates-include"),
    pytest.param(_set("classes.0.include", ["comon"]), "classes.yaml",
                 ["classes[0].include[0]: unknown attribute set 'comon'; known: common"], id="unknown-include"),
    pytest.param(_set("classes.0.component_code", "101"), "classes.yaml",
                 ["classes[0].component_code: must be 4 digits"], id="bad-component-code"),
    pytest.param(_set("classes.1.component_code", "0101"), "classes.yaml",
                 ["classes[1].component_code: duplicate component code '0101' (already class 010101)"],
                 id="duplicate-component-code"),
    pytest.param(_set("classes.1.attributes.0.level", "L5"), "classes.yaml",
                 ["classes[1].attributes[0].level: unknown level 'L5'"], id="unknown-level"),
    pytest.param(_set("classes.1.attributes.0.min", 300), "classes.yaml",
                 ["classes[1].attributes[0].min: min 300 is greater than max 200"], id="min-above-max"),
    pytest.param(_set("classes.1.attributes.1.pattern", "[0-9"), "classes.yaml",
                 ["classes[1].attributes[1].pattern: invalid regular expression"], id="bad-regex"),
    pytest.param(_set("classes.1.attributes.2.max_length", 10), "classes.yaml",
                 ["classes[1].attributes[2].max_length: 'max_length' is only allowed with type string"],
                 id="max-length-on-date"),
    pytest.param(_delete("classes.0.geometry"), "classes.yaml", ["classes[0].geometry: is required"],
                 id="missing-geometry"),
    pytest.param(_set("classes.0.update_period_days", 0), "classes.yaml",
                 ["classes[0].update_period_days: must be a positive integer"], id="bad-period"),
    pytest.param(_set("middles.0201", "道路"), "classes.yaml",
                 ["middles.0201: major '02' is not defined in majors"], id="middle-without-major"),
    pytest.param(_set("edition", 2025.1), "classes.yaml", ["edition: must be a non-empty string"],
                 id="numeric-edition"),
    pytest.param(_set("departments.1.id", "water_supply"), "departments.yaml",
                 ["departments[1].id: duplicate department id 'water_supply'"], id="duplicate-department"),
    pytest.param(_set("departments.0.nmae", "x"), "departments.yaml",
                 ["departments[0].nmae: unknown key 'nmae' (did you mean 'name'?)"], id="typo-department-key"),
])
def test_malformed_catalog_names_file_and_path(tmp_path: Path, mutation: Mutation, file: str,
                                               expected: list[str]) -> None:
    error = _load_broken(tmp_path, mutation)
    assert len(error.problems) == 1, error.problems
    message = str(error)
    assert message.startswith(str(tmp_path / "catalog" / file) + ": "), message
    for part in expected:
        assert part in message, message


def test_error_gives_the_line_of_the_offending_key(tmp_path: Path) -> None:
    error = _load_broken(tmp_path, _set("classes.1.attributes.1.type", "strin"))
    lines = (tmp_path / "catalog" / "classes.yaml").read_text(encoding="utf-8").splitlines()
    line_no = next(i for i, text in enumerate(lines, 1) if text.strip() == "type: strin")
    assert str(error).endswith(f"(line {line_no})")


def test_all_problems_reported_together(tmp_path: Path) -> None:
    error = _load_broken(tmp_path, _set("classes.0.code", "0101"), _set("classes.1.department", "nobody"),
                         _set("classes.1.attributes.3.type", "bool"))
    assert len(error.problems) == 3
    assert all(p.startswith(str(tmp_path / "catalog" / "classes.yaml")) for p in error.problems)
    assert str(error) == "\n".join(error.problems)
    assert "classes[1].attributes[3].type: unknown type 'bool'" in str(error)


def _write_text(tmp_path: Path, classes_text: str) -> Path:
    directory = tmp_path / "catalog"
    directory.mkdir()
    (directory / "departments.yaml").write_text(
        yaml.safe_dump(_departments(), allow_unicode=True), encoding="utf-8")
    (directory / "classes.yaml").write_text(classes_text, encoding="utf-8")
    return directory


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    text = yaml.safe_dump(_classes(), allow_unicode=True, sort_keys=False)
    broken = text.replace("name: 建筑物", "name: [建筑物")  # unclosed flow sequence
    directory = _write_text(tmp_path, broken)
    with pytest.raises(CatalogError) as info:
        load_catalog(directory)
    message = str(info.value)
    assert message.startswith(f"{directory / 'classes.yaml'}: YAML syntax error at line "), message


def test_duplicate_yaml_key_is_an_error_not_silently_overwritten(tmp_path: Path) -> None:
    text = yaml.safe_dump(_classes(), allow_unicode=True, sort_keys=False)
    text = text.replace("  '0501': 建筑物\n", "  '0501': 建筑物\n  '0101': 重复\n")
    assert "'0101': 重复" in text
    directory = _write_text(tmp_path, text)
    with pytest.raises(CatalogError) as info:
        load_catalog(directory)
    message = str(info.value)
    assert "classes.yaml" in message and "duplicate key '0101'" in message and "line" in message


def test_missing_directory_and_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="catalog directory not found"):
        load_catalog(tmp_path / "nope")
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "departments.yaml").write_text(yaml.safe_dump(_departments()), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"classes\.yaml: file not found"):
        load_catalog(tmp_path / "catalog")


def test_shipped_files_show_repo_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages about the shipped catalog read `schemas/catalog/...` however the process was started."""
    from citygrid.catalog import loader

    fake_repo = tmp_path / "repo"
    directory = _write(fake_repo / "schemas" / "catalog", _departments(), _classes())
    text = (directory / "classes.yaml").read_text(encoding="utf-8").replace("type: date", "type: daet")
    (directory / "classes.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setattr(loader, "REPO_ROOT", fake_repo.resolve())
    with pytest.raises(CatalogError) as info:
        load_catalog(directory)
    assert str(info.value).startswith(
        "schemas/catalog/classes.yaml: classes[1].attributes[2].type: unknown type 'daet'")
