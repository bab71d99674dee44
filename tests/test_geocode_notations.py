"""The resolver reads building / unit / room the ways people write them, reads names with one wrong character, and
never answers a wrong room: when the room cannot be decided it answers the building or unit, at that level."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid.address.resolve import AddressIndex, NodeRow, _parse_tail


@pytest.mark.parametrize(("tail", "want"), [
    ("3栋2单元501室", {"building": 3, "unit": 2, "room": 501}),
    ("3-2-501", {"building": 3, "unit": 2, "room": 501}),
    ("3-2-501室", {"building": 3, "unit": 2, "room": 501}),
    ("3栋2-501", {"building": 3, "unit": 2, "room": 501}),
    ("3栋2单501", {"building": 3, "unit": 2, "room": 501}),
    ("3栋2门501室", {"building": 3, "unit": 2, "room": 501}),
    ("3栋2单元501房", {"building": 3, "unit": 2, "room": 501}),
    ("3号2单元501号", {"building": 3, "unit": 2, "room": 501}),
    ("3栋2单元5楼501", {"building": 3, "unit": 2, "floor": 5, "room": 501}),
    ("2单元3栋501室", {"building": 3, "unit": 2, "room": 501}),
    ("3栋二单五零一", {"building": 3, "unit": 2, "room": 501}),
    ("12栋2单元十二层1202", {"building": 12, "unit": 2, "floor": 12, "room": 1202}),
    ("3-501", {"building": 3, "room": 501}),
    ("3楼2单元501", {"building": 3, "unit": 2, "room": 501}),
    ("附近", {}),
])
def test_tail_notations(tail: str, want: dict[str, int]) -> None:
    parts, spans = _parse_tail(tail)
    assert parts == want
    assert set(spans) == set(want)


@dataclass
class Room:
    node: NodeRow
    head: str  # the compound's full name, without province and city
    b: int
    u: int
    r: int
    units: int


@pytest.fixture(scope="module")
def index(engine: Engine, demo_county: dict) -> AddressIndex:  # noqa: ARG001
    with engine.connect() as c:
        return AddressIndex.load(c)


def _rooms(idx: AddressIndex, units: Callable[[int], bool], n: int = 12) -> list[Room]:
    out = []
    for nid in sorted(k for k, v in idx.nodes.items() if v.level == "room"):
        rm = idx.nodes[nid]
        ch = idx._chain(rm)
        b = ch["building"]
        nu = sum(1 for v in idx.children[b.id].values() if idx.nodes[v[0]].level == "unit")
        if units(nu) and int(ch["unit"].name[:-2]) == nu:  # the last unit: a room number that exists in every unit
            out.append(Room(rm, ch["compound"].full_name.replace("湖北省黄石市", ""), int(b.name[:-1]),
                            int(ch["unit"].name[:-2]), int(rm.name[:-1]), nu))
        if len(out) >= n:
            break
    return out


@pytest.fixture(scope="module")
def rooms(index: AddressIndex) -> list[Room]:
    rooms = _rooms(index, lambda nu: nu >= 2)
    assert rooms, "the demo county has buildings of several units"
    return rooms


NOTATIONS: dict[str, Callable[[Room], str]] = {
    "standard": lambda x: f"{x.b}栋{x.u}单元{x.r}室",
    "dash3": lambda x: f"{x.b}-{x.u}-{x.r}",
    "dash3_suffix": lambda x: f"{x.b}-{x.u}-{x.r}室",
    "zhuang": lambda x: f"{x.b}幢{x.u}单元{x.r}",
    "haolou": lambda x: f"{x.b}号楼{x.u}单元{x.r}室",
    "zuo": lambda x: f"{x.b}座{x.u}单元{x.r}",
    "dan": lambda x: f"{x.b}栋{x.u}单{x.r}",
    "men": lambda x: f"{x.b}栋{x.u}门{x.r}室",
    "unit_dash_room": lambda x: f"{x.b}幢{x.u}-{x.r}",
    "fang": lambda x: f"{x.b}栋{x.u}单元{x.r}房",
    "hu": lambda x: f"{x.b}栋{x.u}单元{x.r}户",
    "bare": lambda x: f"{x.b}栋{x.u}单元{x.r}",
    "floor_lou": lambda x: f"{x.b}栋{x.u}单元{x.r // 100}楼{x.r}",
    "floor_ceng": lambda x: f"{x.b}栋{x.u}单元{x.r // 100}层{x.r}室",
    "reorder": lambda x: f"{x.u}单元{x.b}栋{x.r}室",
    "cn_numerals": lambda x: f"{_cn(x.b)}号楼{_cn(x.u)}单元" + "".join("零一二三四五六七八九"[int(c)] for c in str(x.r)),
    "phone_tail": lambda x: f"{x.b}栋{x.u}单元{x.r} 13912345678",
    "phone_word": lambda x: f"{x.b}-{x.u}-{x.r}电联13912345678",
    "assist": lambda x: f"{x.b}栋{x.u}单元{x.r}室附近",
}


def _cn(n: int) -> str:
    import cn2an

    return str(cn2an.an2cn(str(n)))


@pytest.mark.parametrize("notation", list(NOTATIONS))
def test_room_notations_resolve_to_the_room(index: AddressIndex, rooms: list[Room], notation: str) -> None:
    for x in rooms:
        q = x.head + NOTATIONS[notation](x)
        top = index.geocode(q, limit=1)["candidates"][0]
        assert top["level"] == "room" and top["address_code"] == x.node.code, (q, top)
        assert top["confidence"] > 0.8


def test_room_without_unit_answers_the_building_never_a_room(index: AddressIndex, rooms: list[Room]) -> None:
    for x in rooms:
        top = index.geocode(f"{x.head}{x.b}栋{x.r}室", limit=1)["candidates"][0]
        assert top["level"] == "building", top
        assert top["codes"]["building_address"] == index.nodes[index._chain(x.node)["building"].id].code
        assert top["confidence"] < 0.8
        assert any("单元" in n for n in top["notes"])


@pytest.mark.parametrize("tail", [
    lambda x: f"{x.b}栋{x.u}单元{x.r // 100 + 1}楼{x.r}",  # floor and room disagree
    lambda x: f"{x.b}栋{x.u}单元{x.r + 90}室",  # a room that does not exist
    lambda x: f"{x.b}栋{x.u + 7}单元{x.r}室",  # a unit that does not exist
])
def test_undecidable_room_is_never_a_wrong_room(index: AddressIndex, rooms: list[Room],
                                                tail: Callable[[Room], str]) -> None:
    for x in rooms:
        top = index.geocode(x.head + tail(x), limit=1)["candidates"][0]
        assert top["level"] in ("building", "unit"), top
        assert top["codes"]["building_address"] == index.nodes[index._chain(x.node)["building"].id].code
        assert top["confidence"] < 0.85


def test_phone_digits_never_join_the_room(index: AddressIndex, rooms: list[Room]) -> None:
    x = rooms[0]
    res = index.geocode(f"{x.head}{x.b}栋{x.u}单元{x.r} 13812345678", limit=1)
    assert res["candidates"][0]["address_code"] == x.node.code
    assert res["input"].endswith("13812345678")  # the caller's text is answered unchanged


def _doors(idx: AddressIndex, n: int = 10) -> list[tuple[NodeRow, NodeRow]]:
    out = []
    for nid in sorted(k for k, v in idx.nodes.items() if v.level == "door"):
        d = idx.nodes[nid]
        road = idx.nodes.get(d.parent) if d.parent is not None else None
        if road is not None and road.level == "road" and len(road.name) >= 3:
            out.append((d, road))
        if len(out) >= n:
            break
    return out


def test_homophone_typo_in_a_road_name(index: AddressIndex) -> None:
    from pypinyin import lazy_pinyin

    common = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学"
    by_py: dict[str, list[str]] = {}
    for ch in common:
        by_py.setdefault(lazy_pinyin(ch)[0], []).append(ch)
    tested = 0
    for door, road in _doors(index, 40):
        for i, ch in enumerate(road.name[:-1]):
            alt = [o for o in by_py.get(lazy_pinyin(ch)[0], []) if o != ch]
            if not alt:
                continue
            typo = road.name[:i] + alt[0] + road.name[i + 1:]
            if typo in index.road_names:
                continue
            q = door.full_name.replace("湖北省黄石市", "").replace(road.name, typo)
            top = index.geocode(q, limit=1)["candidates"][0]
            assert top["address_code"] == door.code, (q, top)
            assert top["confidence"] < 0.95 and any("近似" in n for n in top["notes"])
            tested += 1
            break
    assert tested >= 1


def test_wrong_township_still_finds_the_door(index: AddressIndex) -> None:
    towns = sorted({v[1] for v in index.divisions.values() if v[0] == 4})
    for door, _road in _doors(index, 5):
        own = next(t for t in towns if t in door.full_name)  # the road's township, written in the full name
        other = next(t for t in towns if t != own and t not in door.full_name)
        top = index.geocode(door.full_name.replace(own, other), limit=1)["candidates"][0]
        assert top["address_code"] == door.code


def test_index_of_the_test_database(engine: Engine, index: AddressIndex) -> None:
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM addr_node WHERE status='active'")).scalar() == len(index)


def test_group_door_without_township(index: AddressIndex) -> None:
    """刘仁八村3组4号: a township's short name inside its own village's name belongs to the village."""
    tested = 0
    for nid in sorted(k for k, v in index.nodes.items() if v.level == "door"):
        d = index.nodes[nid]
        g = index.nodes.get(d.parent) if d.parent is not None else None
        if g is None or g.level != "village_group" or not d.village:
            continue
        village = index.divisions[d.village][1]
        top = index.geocode(f"{village}{g.name}{d.name}", limit=1)["candidates"][0]
        assert top["address_code"] == d.code, (village, g.name, d.name, top)
        tested += 1
        if tested >= 10:
            break
    assert tested


# ---- lettered buildings, 5楼2, lanes, shape-alike typos among several names (issue 12, part 4)

@pytest.mark.parametrize(("tail", "want"), [
    ("A栋2单元501室", {"building": "A", "unit": 2, "room": 501}),  # A座 / A幢 / A号楼 reach here as A栋
    ("a栋2单元501室", {"building": "A", "unit": 2, "room": 501}),
    ("A楼12楼", {"building": "A", "floor": 12}),  # 楼 after a letter is the building
    ("B6栋2单元501", {"building": "B6", "unit": 2, "room": 501}),
    ("8D栋5楼", {"building": "8D", "floor": 5}),
    ("B6-2-501", {"building": "B6", "unit": 2, "room": 501}),
    ("B6-37号", {"building": "B6", "room": 37}),
    ("E15号", {"building": "E", "room": 15}),
    ("3栋2单元5F501", {"building": 3, "unit": 2, "floor": 5, "room": 501}),  # F is a floor, never a designator
    ("3栋2单元5楼2", {"building": 3, "unit": 2, "floor": 5, "room": 2}),  # 5楼2: floor and the room on it
    ("3栋5楼2", {"building": 3, "floor": 5, "room": 2}),  # never unit 2
    ("12楼1581", {"floor": 12, "room": 1581}),
    ("KTV3栋2单元501", {"building": 3, "unit": 2, "room": 501}),  # letters that name no building are skipped
    ("B区3栋2单元501", {"building": 3, "unit": 2, "room": 501}),  # a zone letter is not a building
])
def test_tail_designators(tail: str, want: dict[str, int | str]) -> None:
    parts, spans = _parse_tail(tail)
    assert parts == want
    assert set(spans) == set(want)


@pytest.mark.parametrize(("raw", "name"), [
    ("3号楼", "3栋"), ("3幢", "3栋"), ("三号楼", "3栋"), ("A座", "A栋"), ("a幢", "A栋"), ("Ａ座", "A栋"), ("A楼", "A栋"),
    ("B6", "B6栋"), ("8D幢", "8D栋"), ("12栋", "12栋"),
])
def test_building_names_in_the_base(raw: str, name: str) -> None:
    from citygrid.address.base import building_name

    assert building_name(raw) == name


def _twin(idx: AddressIndex, building: NodeRow, name: str) -> dict[int, int]:
    """A copy of a building (units, floors, rooms) under the same compound, named `name`, registered in the index the
    way a load registers nodes; original id → copy id."""
    next_id = max(idx.nodes) + 1
    copies: dict[int, int] = {}
    stack = [building.id]
    full = building.full_name[:-len(building.name)] + name
    while stack:
        nid = stack.pop()
        n = idx.nodes[nid]
        parent = copies.get(n.parent, n.parent) if n.parent is not None else None
        idx._add(NodeRow(next_id, f"T{next_id}", n.level, parent, name if nid == building.id else n.name, n.number,
                         n.full_name.replace(building.full_name, full, 1), n.township, n.village, n.x, n.y, None), [])
        copies[nid] = next_id
        next_id += 1
        stack += sorted(k for ks in idx.children.get(nid, {}).values() for k in ks)
    return copies


@pytest.fixture(scope="module")
def twins(engine: Engine, demo_county: dict) -> tuple[AddressIndex, list[tuple[Room, dict[str, int]]]]:  # noqa: ARG001
    """An index of its own (the shared one must keep matching the database) where sampled buildings of several units
    have lettered twins: A栋 and A<b>栋 (A3栋 beside 3栋, which a reader of digits alone would take for 3栋)."""
    with engine.connect() as c:
        idx = AddressIndex.load(c)
    out = []
    for x in _rooms(idx, lambda nu: nu >= 2, 6):
        b = idx._chain(x.node)["building"]
        if idx._child(b.parent, "A栋") is not None or idx._child(b.parent, f"A{x.b}栋") is not None:  # type: ignore[arg-type]
            continue
        out.append((x, {"A": _twin(idx, b, "A栋")[x.node.id], f"A{x.b}": _twin(idx, b, f"A{x.b}栋")[x.node.id]}))
    assert out
    return idx, out


@pytest.mark.parametrize("write", [
    lambda d, x: f"{d}座{x.u}单元{x.r}室", lambda d, x: f"{d}栋{x.u}单元{x.r}", lambda d, x: f"{d}幢{x.u}单元{x.r}室",
    lambda d, x: f"{d.lower()}座{x.u}单元{x.r}室", lambda d, x: f"{d}号楼{x.u}单元{x.r}室", lambda d, x: f"{d}-{x.u}-{x.r}",
])
def test_lettered_buildings_resolve_to_their_rooms(twins: tuple[AddressIndex, list[tuple[Room, dict[str, int]]]],
                                                   write: Callable[[str, Room], str]) -> None:
    idx, rooms = twins
    for x, twin in rooms:
        for d, rid in twin.items():
            q = x.head + write(d, x)
            top = idx.geocode(q, limit=1)["candidates"][0]
            assert top["level"] == "room" and top["address_code"] == idx.nodes[rid].code, (q, top)


def test_lettered_building_without_unit_is_the_building(
        twins: tuple[AddressIndex, list[tuple[Room, dict[str, int]]]]) -> None:
    idx, rooms = twins
    for x, twin in rooms:
        top = idx.geocode(f"{x.head}A{x.b}座{x.r}室", limit=1)["candidates"][0]
        assert top["level"] == "building" and top["address"].endswith(f"A{x.b}栋"), top
        assert top["confidence"] < 0.8
        assert idx.nodes[twin[f"A{x.b}"]].code != top["address_code"]


def test_floor_and_short_room(index: AddressIndex, rooms: list[Room]) -> None:
    for x in rooms:
        f, k = x.r // 100, x.r % 100
        for tail in (f"{f}楼{k}", f"{f}楼{k:02d}", f"{f}楼{k}号"):
            top = index.geocode(f"{x.head}{x.b}栋{x.u}单元{tail}", limit=1)["candidates"][0]
            assert top["level"] == "room" and top["address_code"] == x.node.code, (tail, top)
            assert top["confidence"] < 1 and any("读作" in n for n in top["notes"])
        top = index.geocode(f"{x.head}{x.b}栋{x.u}单元{f}楼{k + 50}", limit=1)["candidates"][0]  # no such room
        assert top["level"] == "unit", top


def _gate_rooms(idx: AddressIndex) -> list[tuple[Room, NodeRow]]:
    """Rooms of compounds behind a gate plate on a road: (room, gate)."""
    out = []
    for x in _rooms(idx, lambda nu: nu >= 1, 400):
        gate = idx._chain(x.node).get("door")
        if gate is not None and gate.parent is not None and idx.nodes[gate.parent].level == "road":
            out.append((x, gate))
        if len(out) >= 8:
            break
    return out


def test_lane_is_the_gate_plate_and_its_number_the_building(index: AddressIndex) -> None:
    cases = _gate_rooms(index)
    rooms = 0
    for x, gate in cases:
        head = gate.full_name.replace("湖北省黄石市", "")[:-len(gate.name)]
        top = index.geocode(f"{head}{gate.number}弄{x.b}号{x.u}单元{x.r}室", limit=1)["candidates"][0]
        chain = index._chain(index.nodes[index.by_code[top["address_code"]]])
        assert chain["door"].code == gate.code, top
        if top["level"] == "room":  # several compounds behind the gate with the building in more than one: the door
            assert top["address_code"] == x.node.code
            rooms += 1
        else:
            assert top["level"] == "door"
        assert any("弄" in n for n in top["notes"]) and top["confidence"] < 1
        top = index.geocode(f"{head}{gate.number}弄", limit=1)["candidates"][0]
        assert top["level"] == "door" and top["address_code"] == gate.code
    assert rooms >= len(cases) // 2 > 0


def test_lane_without_its_gate_never_answers_another_door(index: AddressIndex) -> None:
    tested = 0
    for door, road in _doors(index, 200):
        nums = {index.nodes[d[0]].number for d in index.children[road.id].values()}
        free = next((n for n in range(1, 10) if n not in nums), None)
        if free is None or door.number is None:
            continue
        q = door.full_name.replace("湖北省黄石市", "")[:-len(door.name)] + f"{free}弄{door.number}号"
        top = index.geocode(q, limit=1)["candidates"][0]
        assert top["level"] == "road" and top["address_code"] == road.code, (q, top)  # not door.number号 of the road
        tested += 1
        if tested >= 5:
            break
    assert tested


def test_lane_that_is_a_road_of_the_base(engine: Engine, demo_county: dict) -> None:  # noqa: ARG001
    """Where the base has the lane itself as a road (上海: 宛平南路500弄), 500弄9号 is that road's door 9."""
    idx = AddressIndex()
    idx._add(NodeRow(1, "R1", "road", None, "宛平南路", None, "宛平南路", None, None, 121.4, 31.2, None), [])
    idx._add(NodeRow(2, "R2", "road", None, "宛平南路500弄", None, "宛平南路500弄", None, None, 121.4, 31.2, None), [])
    idx._add(NodeRow(3, "D3", "door", 2, "9号", 9, "宛平南路500弄9号", None, None, 121.4, 31.2, None), [])
    idx._add(NodeRow(4, "D4", "door", 1, "9号", 9, "宛平南路9号", None, None, 121.4, 31.2, None), [])
    top = idx.geocode("宛平南路500弄9号", limit=1)["candidates"][0]
    assert top["address_code"] == "D3" and top["level"] == "door"


def _roads(names: list[str]) -> AddressIndex:
    idx = AddressIndex()
    for i, name in enumerate(names):
        idx._add(NodeRow(2 * i + 1, f"R{i}", "road", None, name, None, name, None, None, 115.0, 30.1, None), [])
        idx._add(NodeRow(2 * i + 2, f"D{i}", "door", 2 * i + 1, "9号", 9, f"{name}9号", None, None, 115.0, 30.1, None),
                 [])
    return idx


def test_shape_alike_typo_decides_among_several_roads() -> None:
    idx = _roads(["冶金路", "黄金路", "白金路"])  # ?金路 names three roads, each with a 9号
    top = idx.geocode("治金路9号", limit=1)["candidates"][0]  # 治 looks like 冶 (four-corner 33160 both)
    assert top["address_code"] == "D0" and top["level"] == "door"
    assert top["confidence"] < 0.9 and any("近似" in n for n in top["notes"])
    idx.levers = idx.levers - {"shape"}
    assert idx.geocode("治金路9号", limit=1)["candidates"] == []  # without it: undecided


def test_shape_alike_typo_left_undecided_when_two_look_alike() -> None:
    idx = _roads(["灵东路", "灵一路"])  # 车 is as close to 东 as to 一 by their four-corner codes: no guess
    assert idx.geocode("灵车路9号", limit=1)["candidates"] == []


def test_building_decides_between_compounds_behind_one_gate() -> None:
    """A gate plate with two compounds behind it: the building written decides when only one of them has it."""
    idx = AddressIndex()
    rows = [(1, "road", None, "冶金路", None), (2, "door", 1, "88号", 88), (3, "compound", 2, "东园小区", None),
            (4, "compound", 2, "西园小区", None), (5, "building", 3, "3栋", 3), (6, "building", 4, "3栋", 3),
            (7, "building", 4, "5栋", 5), (8, "unit", 7, "1单元", 1), (9, "floor", 8, "2层", 2), (10, "room", 9, "201室", 201)]
    full: dict[int, str] = {}
    for nid, level, parent, name, number in rows:
        full[nid] = (full[parent] if parent else "") + name
        idx._add(NodeRow(nid, f"N{nid}", level, parent, name, number, full[nid], None, None, 115.0, 30.1, None), [])
    top = idx.geocode("冶金路88弄5号1单元201室", limit=1)["candidates"][0]
    assert top["address_code"] == "N10" and top["level"] == "room" and top["confidence"] < 0.9
    top = idx.geocode("冶金路88号3栋", limit=1)["candidates"][0]  # 3栋 behind both: no guess
    assert top["address_code"] == "N2" and top["level"] == "door"
    assert any("多个院落" in n for n in top["notes"])
