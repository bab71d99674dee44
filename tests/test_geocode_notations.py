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
