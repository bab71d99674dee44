"""The demo's city components (部件, GB/T 30428.2): street furniture and utility covers along the roads.

Manhole covers of several utilities, street lights, storm-water grates, hydrants, poles, bus stops, signals,
road-name plates, traffic signs, bins, toilets and street trees, sampled at intervals along the roads of
`roads.py` (kept clear of intersections where a real one would be) and in village centres. Intervals scale
with the demo's `scale`, so a small demo stays a sparse but complete picture.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely import STRtree
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from citygrid.demo.buildings import Blocks
from citygrid.demo.common import stream
from citygrid.demo.geometry import frame
from citygrid.demo.names import village_label
from citygrid.demo.objects import Generated, component_attrs, pick, rounded
from citygrid.demo.partition import Partition
from citygrid.demo.roads import Network, Road


@dataclass
class _Samples:
    """Points along roads: position, road index, distance along it, side (+1 left), tangent and left normal."""

    xy: np.ndarray
    road: np.ndarray
    s: np.ndarray
    side: np.ndarray
    tangent: np.ndarray
    normal: np.ndarray

    def __len__(self) -> int:
        return len(self.road)


def _along(roads: Sequence[Road], idx: Sequence[int], interval: float, rng: np.random.Generator,
           offset: Callable[[Road], float] | float, sides: str = "one", margin: float = 12.0,
           s_range: dict[int, tuple[float, float]] | None = None) -> _Samples:
    """Points every `interval` metres along roads[idx], offset to the side(s) of the centreline.

    sides: 'one' (a random side per road), 'both' (staggered), 'alt' (alternating), 'left'.
    """
    ri: list[np.ndarray] = []
    ss: list[np.ndarray] = []
    sd: list[np.ndarray] = []
    offs: list[np.ndarray] = []
    for i in idx:
        r = roads[i]
        lo, hi = (margin, r.line.length - margin)
        if s_range and i in s_range:
            lo, hi = max(lo, s_range[i][0]), min(hi, s_range[i][1])
        if hi <= lo:
            continue
        start = lo + rng.uniform(0, min(interval, hi - lo))
        s = np.arange(start, hi, interval)
        if len(s) == 0:
            continue
        off = offset(r) if callable(offset) else offset
        if sides == "both":
            s2 = np.arange(start + interval / 2, hi, interval)
            s = np.concatenate([s, s2])
            side = np.concatenate([np.ones(len(s) - len(s2)), -np.ones(len(s2))])
        elif sides == "alt":
            side = np.where(np.arange(len(s)) % 2 == 0, 1.0, -1.0) * (1 if rng.random() < 0.5 else -1)
        elif sides == "left":
            side = np.ones(len(s))
        else:
            side = np.full(len(s), 1.0 if rng.random() < 0.5 else -1.0)
        ri.append(np.full(len(s), i))
        ss.append(s)
        sd.append(side)
        offs.append(np.full(len(s), off))
    if not ri:
        z = np.empty((0, 2))
        return _Samples(z, np.empty(0, int), np.empty(0), np.empty(0), z, z)
    road = np.concatenate(ri)
    s = np.concatenate(ss)
    side = np.concatenate(sd)
    shift = np.concatenate(offs)
    lines = np.array([roads[i].line for i in road], dtype=object)
    p, t, n = frame(lines, s)
    xy = p + n * (side * shift)[:, None]
    return _Samples(xy, road, s, side, t, n)


def _away_from(xy: np.ndarray, nodes: np.ndarray, r: float) -> np.ndarray:
    """Mask: points at least r from every node (intersections are kept clear of lamps, trees, plates)."""
    if len(xy) == 0 or len(nodes) == 0:
        return np.ones(len(xy), bool)
    tree = STRtree(cast(NDArray[np.object_], shapely.points(nodes)))
    hit = tree.query(shapely.points(xy), predicate="dwithin", distance=r)
    mask = np.ones(len(xy), bool)
    mask[hit[0]] = False
    return mask


def _subset(sm: _Samples, mask: np.ndarray) -> _Samples:
    return _Samples(sm.xy[mask], sm.road[mask], sm.s[mask], sm.side[mask], sm.tangent[mask], sm.normal[mask])


def build_components(out: Generated, part: Partition, net: Network, blk: Blocks, seed: int, scale: float) -> None:
    """Street furniture and utility covers along the roads, at intersections and in village centres."""
    roads, per_village, node_xy, nodes = net.roads, net.per_village, net.node_xy, net.nodes
    rng = stream(seed, "components")
    sc = max(scale, 1e-3)
    urban = [i for i, r in enumerate(roads) if r.kind == "urban"]
    town = [i for i, r in enumerate(roads) if r.kind == "town"]
    mains = [i for i in urban if roads[i].grade == "主干路"]
    seconds = [i for i in urban if roads[i].grade == "次干路"]
    minors = [i for i in urban if roads[i].grade == "支路"]
    highway = [i for i, r in enumerate(roads) if r.kind == "highway"]
    village = [i for i, r in enumerate(roads) if r.kind == "village"]
    a = out.rng

    def clear(sm: _Samples, r: float = 14.0) -> _Samples:
        return _subset(sm, _away_from(sm.xy, node_xy, r))

    # street lights
    lights = [clear(_along(roads, mains, 60 / sc, rng, lambda r: r.hw + 1.5, "both")),
              clear(_along(roads, seconds, 60 / sc, rng, lambda r: r.hw + 1.5, "one")),
              clear(_along(roads, minors, 80 / sc, rng, lambda r: r.hw + 1.5, "one")),
              clear(_along(roads, town, 60 / sc, rng, lambda r: r.hw + 1.5, "one"))]
    vr = {}
    for i in village:
        r = roads[i]
        v = next((x for x in part.villages if x.code == r.hub), None)
        if v is not None:
            s0 = r.line.project(Point(v.centre))
            vr[i] = (s0 - 120, s0 + 120)
    lights.append(_along(roads, list(vr), 75 / sc, rng, lambda r: r.hw + 1.0, "one", s_range=vr))
    n_l = [len(x) for x in lights]
    xy = np.vstack([x.xy for x in lights])
    n = len(xy)
    solar = np.array([False] * (n - n_l[-1]) + [True] * n_l[-1])
    out.add("路灯", _points(xy), component_attrs(out, "路灯", n, {
        "light_source": pick(a, ["LED", "高压钠灯", "LED"], n),
        "power_w": [int(x) for x in np.where(solar, a.choice([30, 40, 60], n), a.choice([100, 150, 200, 250], n))],
        "pole_height": [int(x) for x in np.where(solar, a.choice([6, 7], n), a.choice([8, 10, 12], n))],
        "lamp_heads": [int(x) for x in a.choice([1, 1, 2], n)],
        "remark": ["太阳能路灯" if s else None for s in solar]}))

    # manhole covers of several utilities, in the carriageway and sidewalks
    mh = _along(roads, urban, 45 / sc, rng, lambda r: 0.0, "one")
    mh_town = _along(roads, town, 70 / sc, rng, lambda r: 0.0, "one")
    mh = _Samples(*(np.concatenate([getattr(mh, f), getattr(mh_town, f)]) for f in
                    ("xy", "road", "s", "side", "tangent", "normal")))
    lateral = np.array([a.uniform(-0.6, 0.6) * roads[i].hw for i in mh.road]) if len(mh) else np.empty(0)
    mxy = mh.xy + mh.normal * lateral[:, None] if len(mh) else mh.xy
    kinds = ["污水井盖", "雨水井盖", "上水井盖", "电力井盖", "通信井盖", "燃气井盖", "路灯井盖"]
    kind = np.array(pick(a, kinds, len(mxy), [0.24, 0.24, 0.16, 0.12, 0.12, 0.08, 0.04]), dtype=object)
    for k in kinds:
        sel = np.flatnonzero(kind == k)
        if len(sel) == 0:
            continue
        m = len(sel)
        on_road = np.abs(lateral[sel]) < np.array([roads[i].hw - 3.5 for i in mh.road[sel]])
        extra: dict[str, Sequence[Any]] = {
            "material": pick(a, ["球墨铸铁", "复合材料", "铸铁"], m, [0.7, 0.2, 0.1]),
            "cover_size": [int(x) for x in a.choice([600, 700, 800], m, p=[0.2, 0.6, 0.2])],
            "load_class": ["D400" if o else "B125" for o in on_road],
            "anti_fall": [bool(x) for x in a.random(m) < 0.7],
        }
        if k == "燃气井盖":
            extra["pressure_class"] = pick(a, ["中压", "低压"], m, [0.4, 0.6])
        if k == "通信井盖":
            extra["operator"] = pick(a, ["中国电信", "中国移动", "中国联通", "中国广电", "中国铁塔"], m)
        out.add(k, _points(mxy[sel]), component_attrs(out, k, m, extra))

    # storm-water grates at the kerb
    gr = clear(_along(roads, urban + town, 100 / sc, rng, lambda r: r.hw - 0.5, "alt"), 10)
    m = len(gr)
    out.add("雨水箅子", _points(gr.xy), component_attrs(out, "雨水箅子", m, {
        "material": pick(a, ["球墨铸铁", "复合材料", "不锈钢"], m, [0.6, 0.3, 0.1]),
        "grate_length": [750] * m, "grate_width": [450] * m,
        "grate_count": [int(x) for x in a.choice([1, 2, 3], m, p=[0.5, 0.35, 0.15])]}))

    # hydrants every ~120 m
    hy = clear(_along(roads, mains + seconds + town, 120 / sc, rng, lambda r: r.hw + 1.0, "alt"), 8)
    hy2 = clear(_along(roads, minors, 160 / sc, rng, lambda r: r.hw + 1.0, "alt"), 8)
    vh = [v.centre + a.uniform(-15, 15, 2) for v in part.villages
          if v.code in per_village and a.random() < 0.3 * min(1.0, scale)]
    hxy = np.vstack([hy.xy, hy2.xy, np.array(vh).reshape(-1, 2)])
    m = len(hxy)
    out.add("消防栓", _points(hxy), component_attrs(out, "消防栓", m, {
        "hydrant_type": pick(a, ["地上式", "地下式"], m, [0.85, 0.15]),
        "hydrant_no": [f"XF{i + 1:05d}" for i in range(m)],
        "pipe_diameter": [int(x) for x in a.choice([100, 150], m, p=[0.7, 0.3])],
        "water_pressure": [rounded(x, 2) for x in a.uniform(0.2, 0.5, m)]}))

    # poles along highways and village roads
    po = _along(roads, highway, 200 / sc, rng, lambda r: r.hw + 4.0, "one")
    pv = _along(roads, village, 250 / sc, rng, lambda r: r.hw + 2.5, "one")
    pxy = np.vstack([po.xy, pv.xy])
    m = len(pxy)
    use = pick(a, ["电力", "通信", "多杆合一"], m, [0.7, 0.25, 0.05])
    out.add("立杆", _points(pxy), component_attrs(out, "立杆", m, {
        "pole_use": use, "pole_material": pick(a, ["水泥杆", "钢杆"], m, [0.85, 0.15]),
        "pole_height": [int(x) for x in a.choice([10, 12, 15], m)],
        "pole_no": [f"{'DL' if u == '电力' else 'TX'}{i + 1:05d}" for i, u in enumerate(use)]}))

    # bus stops: urban main roads, highways
    bs = clear(_along(roads, mains + seconds, 600 / sc, rng, lambda r: r.hw + 2.0, "alt"), 40)
    bh = _along(roads, highway, 2500 / sc, rng, lambda r: r.hw + 3.0, "alt")
    stops: list[str | None] = [_stop_name(roads, bs, k, node_xy, nodes) for k in range(len(bs))]
    stops += [None] * len(bh)  # named after the village they stand in, once it is known
    sxy = np.vstack([bs.xy, bh.xy])
    m = len(sxy)
    routes = [
        "、".join(f"{x}路" for x in sorted(set(int(v) for v in a.integers(1, 40, int(a.integers(1, 4))))))
        for _ in range(m)]
    out.add("公交站亭", _points(sxy), component_attrs(out, "公交站亭", m, {
        "stop_name": stops, "routes": routes,
        "shelter_type": pick(a, ["站亭", "站牌", "港湾式站台"], m, [0.5, 0.35, 0.15]),
        "has_seat": [bool(x) for x in a.random(m) < 0.6], "e_board": [bool(x) for x in a.random(m) < 0.2]}))

    # signals and road-name plates at intersections
    sig_xy, sig_int, nm_xy, nm_road, nm_face = [], [], [], [], []
    for p, i, j in nodes:
        ri, rj = roads[i], roads[j]
        ti = _tangent_at(ri.line, p)
        tj = _tangent_at(rj.line, p)
        ni = np.array([-ti[1], ti[0]])
        nj = np.array([-tj[1], tj[0]])
        corners = [p + sx * ni * (ri.hw + 2) + sy * nj * (rj.hw + 2) for sx in (1, -1) for sy in (1, -1)]
        if {ri.grade, rj.grade} & {"主干路", "次干路"} and ri.kind == "urban" and rng.random() < min(1.0, scale):
            sig_xy += corners
            sig_int += [f"{ri.name}与{rj.name}交叉口"] * 4
        if rng.random() < min(1.0, scale):
            nm_xy += [corners[0], corners[3]]
            nm_road += [ri.name, rj.name]
            nm_face += [_facing(ni), _facing(nj)]
    m = len(sig_xy)
    out.add("交通信号灯", _points(np.array(sig_xy).reshape(-1, 2)), component_attrs(out, "交通信号灯", m, {
        "signal_type": pick(a, ["机动车信号灯", "人行横道信号灯", "非机动车信号灯", "方向指示信号灯"], m,
                            [0.55, 0.25, 0.12, 0.08]),
        "intersection": sig_int, "control_mode": pick(a, ["定周期", "感应控制", "自适应控制"], m, [0.6, 0.25, 0.15]),
        "networked": [bool(x) for x in a.random(m) < 0.7]}))
    m = len(nm_xy)
    out.add("路名牌", _points(np.array(nm_xy).reshape(-1, 2)), component_attrs(out, "路名牌", m, {
        "road_name": nm_road, "plate_material": pick(a, ["铝合金", "不锈钢", "反光膜"], m, [0.6, 0.2, 0.2]),
        "facing": nm_face}))

    # traffic signs: near intersections and along highways
    sg = _along(roads, urban + town, 150 / sc, rng, lambda r: r.hw + 1.2, "alt")
    sg = _subset(sg, ~_away_from(sg.xy, node_xy, 60) & _away_from(sg.xy, node_xy, 12))
    sh = _along(roads, highway, 1500 / sc, rng, lambda r: r.hw + 2.0, "alt")
    gxy = np.vstack([sg.xy, sh.xy])
    m = len(gxy)
    klass = pick(a, ["禁令标志", "指示标志", "警告标志", "告示标志"], len(sg), [0.4, 0.3, 0.2, 0.1]) + \
        pick(a, ["指路标志", "警告标志", "禁令标志"], len(sh), [0.5, 0.3, 0.2])
    content = {"禁令标志": ["限速40", "禁止鸣喇叭", "禁止停车", "禁止左转", "限速60"],
               "指示标志": ["直行和右转", "人行横道", "靠右侧道路行驶", "非机动车道"],
               "警告标志": ["注意行人", "注意儿童", "急弯路", "陡坡", "注意信号灯"],
               "告示标志": ["前方学校 减速慢行", "电子警察 抓拍"]}
    texts = []
    for j, c in enumerate(klass):
        if c == "指路标志":
            r = roads[int(sh.road[j - len(sg)])]
            texts.append(f"{r.end_point or r.name} {int(a.integers(2, 25))} km")
        else:
            texts.append(content[c][int(a.integers(len(content[c])))])
    out.add("交通标志牌", _points(gxy), component_attrs(out, "交通标志牌", m, {
        "sign_class": klass, "sign_content": texts,
        "support_type": pick(a, ["单柱式", "双柱式", "悬臂式", "附着式"], m, [0.6, 0.15, 0.15, 0.1])}))

    # bins, toilets, street trees
    bn = clear(_along(roads, urban + town, 150 / sc, rng, lambda r: r.hw + 2.0, "alt"), 10)
    vb = []
    for v in part.villages:
        if v.code in per_village:
            for _ in range(int(a.integers(1, 4))):
                if a.random() < min(1.0, scale):
                    vb.append(v.centre + a.uniform(-60, 60, 2))
    bxy = np.vstack([bn.xy, np.array(vb).reshape(-1, 2)])
    m = len(bxy)
    out.add("垃圾箱", _points(bxy), component_attrs(out, "垃圾箱", m, {
        "bin_type": pick(a, ["分类双桶", "分类四桶", "单桶"], m, [0.6, 0.2, 0.2]),
        "capacity_l": [int(x) for x in a.choice([120, 240, 660], m, p=[0.3, 0.6, 0.1])],
        "material": pick(a, ["不锈钢", "塑料", "钢板"], m, [0.4, 0.4, 0.2])}))
    tl = clear(_along(roads, mains + town, 900 / sc, rng, lambda r: r.hw + 8.0, "alt"), 30)
    txy = [*tl.xy, *blk.toilets]
    tnames = [f"{roads[int(tl.road[k])].name}公厕" for k in range(len(tl))] + ["公园公厕"] * len(blk.toilets)
    for v in part.villages:
        if v.code in per_village and a.random() < 0.7 * min(1.0, scale):
            txy.append(v.centre + a.uniform(-30, 30, 2))
            tnames.append(f"{village_label(v.name)}公厕")
    m = len(txy)
    out.add("公共厕所", _points(np.array(txy).reshape(-1, 2)), component_attrs(out, "公共厕所", m, {
        "toilet_name": tnames, "toilet_grade": pick(a, ["一类", "二类", "三类"], m, [0.15, 0.5, 0.35]),
        "toilet_type": pick(a, ["独立式", "附属式"], m, [0.8, 0.2]),
        "stalls_male": [int(x) for x in a.integers(2, 8, m)], "stalls_female": [int(x) for x in a.integers(3, 10, m)],
        "accessible": [bool(x) for x in a.random(m) < 0.6],
        "open_hours": pick(a, ["全天", "06:00-22:00", "06:00-23:00"], m)}), tnames)
    tr = clear(_along(roads, mains, 50 / sc, rng, lambda r: r.hw + 3.0, "both"), 16)
    tr2 = clear(_along(roads, seconds + town, 60 / sc, rng, lambda r: r.hw + 3.0, "one"), 16)
    rxy = np.vstack([tr.xy, tr2.xy])
    m = len(rxy)
    out.add("行道树", _points(rxy), component_attrs(out, "行道树", m, {
        "species": pick(a, ["香樟", "桂花", "栾树", "银杏", "悬铃木", "女贞", "广玉兰", "水杉"], m,
                        [0.3, 0.15, 0.12, 0.1, 0.12, 0.08, 0.08, 0.05]),
        "dbh": [rounded(x) for x in a.uniform(8, 45, m)], "height": [rounded(x) for x in a.uniform(4, 16, m)],
        "planting_year": [int(x) for x in a.integers(1990, 2022, m)],
        "pit_cover": pick(a, ["树池箅子", "透水铺装", "植被覆盖", "无"], m, [0.4, 0.3, 0.2, 0.1])}))


def _stop_name(roads: list[Road], sm: _Samples, k: int, node_xy: np.ndarray,
               nodes: list[tuple[np.ndarray, int, int]]) -> str:
    ri = int(sm.road[k])
    if len(node_xy):
        d = np.hypot(*(node_xy - sm.xy[k]).T)
        j = int(np.argmin(d))
        _, a, b = nodes[j]
        other = roads[b if a == ri else a].name
        if other != roads[ri].name:
            return f"{other}口"
    return f"{roads[ri].name}站"


def _tangent_at(line: LineString, p: np.ndarray) -> np.ndarray:
    s = line.project(Point(p))
    _, t, _ = frame(np.array([line], dtype=object), np.array([s]))
    tangent: np.ndarray = t[0]
    return tangent


def _facing(v: np.ndarray) -> str:
    ang = math.degrees(math.atan2(v[1], v[0])) % 360  # 0 = east, counter-clockwise
    return ["东", "东北", "北", "西北", "西", "西南", "南", "东南"][int(((ang + 22.5) % 360) // 45)]


def _points(xy: np.ndarray) -> list[BaseGeometry]:
    # an (n, 2) array gives an array of points; the stubs also allow a single Point
    return list(cast(NDArray[np.object_], shapely.points(xy))) if len(xy) else []

