"""Resolve free-text addresses against the standard address base (geocoding), in memory.

The base of a county (a few hundred thousand nodes) fits in memory, so matching is dictionary scans and
dict lookups, not SQL: every known name (divisions, roads and their aliases, compounds, villages) is
indexed by its first two characters, and one left-to-right pass over the normalized text finds all
occurrences. Numbers (号 栋 单元 层 室 组) are read with anchored patterns after the name they qualify.
Typos fall back to rapidfuzz over names in scope. A door number that does not exist falls back to the
closest existing plate of the same base number (88-1号 → 88号) or to the road itself — never to an
invented point. The answer says which parts of the input were not used.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.address.normalize import AddressInputError, normalize_with_map

LEVEL_RANK = {"province": 1, "city": 2, "county": 3, "township": 4, "village": 5, "village_group": 6, "road": 7,
              "compound": 8, "door": 8, "building": 9, "unit": 10, "floor": 11, "room": 12}
LEVEL_ZH = {"province": "省", "city": "市", "county": "县区", "township": "乡镇街道", "village": "村社区",
            "village_group": "组", "road": "街路巷", "compound": "小区院落", "door": "门牌", "building": "楼栋",
            "unit": "单元", "floor": "楼层", "room": "户室"}
_NUM_DOOR = re.compile(r"(\d+)(?:(?:-|之|附)(\d+))?号(?!楼)")
_NUM_BUILDING = re.compile(r"(\d+)栋")
_NUM_UNIT = re.compile(r"(\d+)单元")
_NUM_FLOOR = re.compile(r"(\d+)(?:层|楼)(?!\d)")
_NUM_ROOM = re.compile(r"(\d+)室|(?<=单元)(\d{3,4})(?!\d)")
_NUM_GROUP = re.compile(r"(\d+)组")
_SUFFIX_ONLY = re.compile(r"[省市区县镇乡街道村社区号]*")


@dataclass
class NodeRow:
    id: int
    code: str
    level: str
    parent: int | None
    name: str
    number: int | None
    full_name: str
    township: str | None
    village: str | None
    x: float | None
    y: float | None
    object_code: str | None


@dataclass
class Hit:
    kind: str  # division level or road/compound
    key: Any  # division code or node id list
    start: int
    end: int
    name: str


@dataclass
class Candidate:
    node: NodeRow | None
    level: str
    confidence: float
    used: list[tuple[int, int]] = field(default_factory=list)
    division: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class AddressIndex:
    """In-memory index of one or more counties' address bases."""

    def __init__(self) -> None:
        self.nodes: dict[int, NodeRow] = {}
        self.children: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        self.door_numbers: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        self.by_prefix: dict[str, list[tuple[str, str, Any]]] = defaultdict(list)
        self.road_names: dict[str, list[int]] = defaultdict(list)
        self.compound_names: dict[str, list[int]] = defaultdict(list)
        self.groups: dict[tuple[str, str], int] = {}
        self.divisions: dict[str, tuple[int, str, str | None]] = {}  # code -> (level, name, parent)
        self.by_code: dict[str, int] = {}

    # ---- building
    @classmethod
    def load(cls, conn: Connection, counties: list[str] | None = None) -> AddressIndex:
        idx = cls()
        if counties is None:
            counties = list(conn.execute(text("SELECT DISTINCT division_code FROM addr_node")).scalars())
        for county in counties:
            idx._load_divisions(conn, county)
            rows = conn.execute(text(
                "SELECT id, code, level, parent_id, name, number, full_name, township_code, village_code, "
                "ST_X(point), ST_Y(point), object_code, aliases FROM addr_node WHERE division_code=:c "
                "AND status='active' ORDER BY id"), {"c": county}).all()
            for r in rows:
                n = NodeRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11])
                idx._add(n, list(r[12] or []))
        return idx

    def _load_divisions(self, conn: Connection, county: str) -> None:
        rows = conn.execute(text(
            "WITH RECURSIVE up AS (SELECT code, level, name, short_name, aliases, parent_code FROM division "
            "WHERE code=:c UNION ALL SELECT d.code, d.level, d.name, d.short_name, d.aliases, d.parent_code "
            "FROM division d JOIN up ON d.code = up.parent_code) SELECT * FROM up "
            "UNION ALL SELECT code, level, name, short_name, aliases, parent_code FROM division "
            "WHERE code LIKE :p AND level IN (4, 5)"), {"c": county, "p": county + "%"}).all()
        kinds = {1: "province", 2: "city", 3: "county", 4: "township", 5: "village"}
        for code, level, name, short, aliases, parent in rows:
            self.divisions[code] = (level, name, parent)
            for nm in {name, short, *(aliases or [])}:
                if nm and len(nm) >= 2:
                    self._index_name(nm, kinds[level], code)

    def _index_name(self, name: str, kind: str, key: Any) -> None:
        self.by_prefix[name[:2]].append((name, kind, key))

    def _add(self, n: NodeRow, aliases: list[str]) -> None:
        self.nodes[n.id] = n
        self.by_code[n.code] = n.id
        if n.parent is not None:
            self.children[n.parent][n.name].append(n.id)
            if n.level == "door" and n.number is not None:
                self.door_numbers[n.parent][n.number].append(n.id)
        if n.level == "road":
            for nm in {n.name, *aliases}:
                if nm not in self.road_names:
                    self._index_name(nm, "road", nm)
                self.road_names[nm].append(n.id)
        elif n.level == "compound":
            for nm in {n.name, *aliases}:
                if nm not in self.compound_names:
                    self._index_name(nm, "compound", nm)
                self.compound_names[nm].append(n.id)
        elif n.level == "village_group" and n.village:
            self.groups[(n.village, n.name)] = n.id

    def __len__(self) -> int:
        return len(self.nodes)

    # ---- matching
    def _scan(self, t: str) -> list[Hit]:
        hits = []
        for i in range(len(t) - 1):
            for name, kind, key in self.by_prefix.get(t[i:i + 2], ()):
                if t.startswith(name, i):
                    hits.append(Hit(kind, key, i, i + len(name), name))
        return hits

    def _fuzzy_roads(self, t: str, start: int) -> list[tuple[str, float, int, int]]:
        """Roads whose name is within one edit of a window of the text (typos)."""
        out = []
        names = list(self.road_names)
        for size, cutoff in ((3, 66), (4, 74), (5, 79), (6, 83)):
            for i in range(start, max(start, len(t) - size) + 1):
                window = t[i:i + size]
                best = process.extractOne(window, names, scorer=fuzz.ratio, score_cutoff=cutoff)
                # one substitution, same road type (the last character: 路 街 巷 大道 …)
                if best and len(best[0]) == size and best[0][-1] == window[-1]:
                    out.append((best[0], best[1] / 100, i, i + size))
        out.sort(key=lambda x: -x[1])
        return out[:3]

    def geocode(self, raw: str, hint_division: str | None = None, limit: int = 5) -> dict[str, Any]:
        t, back = normalize_with_map(raw)
        hits = self._scan(t)
        # a division alias inside a longer road/compound name belongs to that name (刘仁八 in 刘仁八正街)
        named_spans = [(h.start, h.end) for h in hits if h.kind in ("road", "compound")]
        hits = [h for h in hits if h.kind in ("road", "compound") or not any(
            a <= h.start and h.end <= b and b - a > h.end - h.start for a, b in named_spans)]
        div: dict[str, str] = {}
        used: list[tuple[int, int]] = []
        for level in ("province", "city", "county", "township", "village"):
            cands = [h for h in hits if h.kind == level]
            cands = [h for h in cands if self._consistent(h.key, div)
                     and not any(h.start < b and a < h.end for a, b in used)]  # 刘仁八镇 is not 刘仁八(村)
            if level == "village" and "township" in div:
                cands = [h for h in cands if str(h.key).startswith(div["township"])] or cands
            if cands:
                best = max(cands, key=lambda h: (h.end - h.start, -h.start))
                div[level] = best.key
                used.append((best.start, best.end))
        if hint_division:
            d = self.divisions.get(hint_division)
            if d and d[0] == 4:
                div.setdefault("township", hint_division)
        occupied: set[int] = set()
        for a, b in used:
            occupied.update(range(a, b))
        results: list[Candidate] = []
        # roads and compounds not overlapping division names
        named = [h for h in hits if h.kind in ("road", "compound") and not occupied.intersection(range(h.start, h.end))]
        # prefer longest names; drop hits contained in a longer hit
        named.sort(key=lambda h: (-(h.end - h.start), h.start))
        chosen: list[Hit] = []
        for h in named:
            if not any(h.start >= c.start and h.end <= c.end for c in chosen):
                chosen.append(h)
        for h in chosen:
            ids = self.road_names[h.key] if h.kind == "road" else self.compound_names[h.key]
            for nid in self._in_scope(ids, div):
                results.append(self._descend(t, nid, h.end, used + [(h.start, h.end)], div, 1.0))
        if not chosen:
            g = _NUM_GROUP.search(t)
            if g and "village" in div:
                gid = self.groups.get((div["village"], f"{int(g.group(1))}组"))
                if gid is not None:
                    results.append(self._descend(t, gid, g.end(), used + [g.span()], div, 1.0))
        if not results:
            for name, score, a, b in self._fuzzy_roads(t, max((e for _, e in used), default=0)):
                for nid in self._in_scope(self.road_names[name], div):
                    c = self._descend(t, nid, b, used + [(a, b)], div, 0.85 * score)
                    c.notes.append(f"道路名称近似匹配：{t[a:b]} → {name}")
                    results.append(c)
        if not results and div:
            lvl = max(div, key=lambda k: LEVEL_RANK[k])
            results.append(Candidate(None, lvl, 0.5 if lvl in ("township", "village") else 0.3, used, div))
        results.sort(key=lambda c: (-c.confidence, -LEVEL_RANK[c.level]))
        seen: set[str] = set()
        out = []
        for c in results:
            key = c.node.code if c.node else c.level + str(c.division)
            if key in seen:
                continue
            seen.add(key)
            out.append(self._answer(c, t, raw, back))
            if len(out) >= limit:
                break
        return {"input": raw, "normalized": t, "candidates": out}

    def _consistent(self, code: str, div: dict[str, str]) -> bool:
        return all(code.startswith(v) or v.startswith(code) for v in div.values())

    def _in_scope(self, ids: list[int], div: dict[str, str]) -> list[int]:
        t = div.get("township")
        scoped = [i for i in ids if not t or self.nodes[i].township == t]
        return scoped or ids

    def _child(self, nid: int, name: str) -> int | None:
        kids = self.children.get(nid, {}).get(name)
        return kids[0] if kids else None

    def _descend(self, t: str, nid: int, pos: int, used: list[tuple[int, int]], div: dict[str, str],
                 conf: float) -> Candidate:
        """From a road/compound/group at `pos`, follow door → compound → building → unit → floor → room."""
        node = self.nodes[nid]
        cand = Candidate(node, node.level, conf, list(used), dict(div))
        rest = t[pos:]
        if node.level in ("road", "village_group"):
            m = _NUM_DOOR.match(rest) or _NUM_DOOR.search(rest[:4])
            if m:
                base, sub = int(m.group(1)), m.group(2)
                want = f"{base}-{sub}号" if sub else f"{base}号"
                door = self._child(nid, want)
                if door is None and sub:
                    door = self._child(nid, f"{base}号")
                    if door is not None:
                        cand.confidence *= 0.85
                        cand.notes.append(f"门牌 {want} 不存在，匹配到 {base}号")
                if door is None:
                    near = self.door_numbers.get(nid, {})
                    cand.notes.append(f"门牌 {want} 不存在，回退到{LEVEL_ZH[node.level]}")
                    cand.confidence *= 0.7 if near else 0.6
                    return cand
                cand.node, cand.level = self.nodes[door], "door"
                cand.used.append((pos + m.start(), pos + m.end()))
                pos += m.end()
                rest = t[pos:]
                nid = door
                # a compound behind the gate plate
                kids = self.children.get(door, {})
                for cname, cids in kids.items():
                    if self.nodes[cids[0]].level == "compound":
                        k = rest.find(cname)
                        if k >= 0:
                            cand.used.append((pos + k, pos + k + len(cname)))
                            pos += k + len(cname)
                            rest = t[pos:]
                        nid = cids[0]
                        cand.node, cand.level = self.nodes[nid], "compound" if k >= 0 else "door"
                        if k < 0:
                            cand.node = self.nodes[door]
                        break
        if self.nodes[nid].level == "door":
            only = [c for c in self.children.get(nid, {}).values() if self.nodes[c[0]].level == "compound"]
            if only and _NUM_BUILDING.search(rest):
                nid = only[0][0]
        for rx, fmt, lvl in ((_NUM_BUILDING, "{}栋", "building"), (_NUM_UNIT, "{}单元", "unit")):
            m = rx.search(rest)
            if not m:
                continue
            child = self._child(nid, fmt.format(int(m.group(1))))
            if child is None:
                cand.confidence *= 0.8
                cand.notes.append(f"{m.group(0)} 在标准地址库中不存在")
                return cand
            nid = child
            cand.node, cand.level = self.nodes[child], lvl
            cand.used.append((pos + m.start(), pos + m.end()))
        if cand.level == "unit":
            m = _NUM_ROOM.search(rest)
            if m:
                num = int(m.group(1) or m.group(2))
                floor = self._child(nid, f"{num // 100}层")
                room = self._child(floor, f"{num}室") if floor is not None else None
                if room is None:
                    cand.confidence *= 0.85
                    cand.notes.append(f"{m.group(0)} 在标准地址库中不存在")
                else:
                    cand.node, cand.level = self.nodes[room], "room"
                    cand.used.append((pos + m.start(), pos + m.end()))
                    fm = _NUM_FLOOR.search(rest)
                    if fm and fm.start() < m.start():
                        cand.used.append((pos + fm.start(), pos + fm.end()))
        return cand

    def _answer(self, c: Candidate, t: str, raw: str, back: list[int]) -> dict[str, Any]:
        n = c.node
        covered: set[int] = set()
        for a, b in c.used:
            covered.update(range(a, b))
        # ancestors written in the input (a compound's road and gate number) count as used, in order
        pos = 0
        for anc in reversed(list(self._chain(n).values()) if n else []):
            k = t.find(anc.name, pos)
            if k >= 0 and not covered.intersection(range(k, k + len(anc.name))):
                covered.update(range(k, k + len(anc.name)))
                pos = k + len(anc.name)
        unused, cur = [], ""
        for i, ch in enumerate(t):
            if i in covered:
                if cur:
                    unused.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            unused.append(cur)
        unused = [u for u in unused if not _SUFFIX_ONLY.fullmatch(u)]
        chain = self._chain(n) if n else {}
        town = (n.township if n else None) or c.division.get("township")
        village = (n.village if n else None) or c.division.get("village")
        point = None
        if n and n.x is not None and n.y is not None:
            point = {"lon": round(n.x, 7), "lat": round(n.y, 7), "crs": "EPSG:4490",
                     "wgs84": {"lon": round(n.x, 7), "lat": round(n.y, 7)}}
        coverage = len(covered) / max(1, len(t))
        conf = c.confidence * (0.75 + 0.25 * coverage)
        if n is None:
            name = "".join(self.divisions[v][1] for v in sorted(c.division.values(), key=len) if v in self.divisions)
        else:
            name = n.full_name
        return {
            "address": name, "address_code": n.code if n else None, "level": c.level,
            "level_zh": LEVEL_ZH.get(c.level, c.level), "confidence": round(min(1.0, conf), 3), "point": point,
            "codes": {k: v.object_code for k, v in chain.items() if v.object_code}
            | {f"{k}_address": v.code for k, v in chain.items()},
            "township": {"code": town, "name": self.divisions.get(town, (0, None))[1]} if town else None,
            "village": {"code": village, "name": self.divisions.get(village, (0, None))[1]} if village else None,
            "grid": None, "unused": unused, "notes": c.notes,
        }

    def _chain(self, n: NodeRow) -> dict[str, NodeRow]:
        out: dict[str, NodeRow] = {}
        cur: NodeRow | None = n
        while cur is not None:
            out.setdefault(cur.level, cur)
            cur = self.nodes.get(cur.parent) if cur.parent is not None else None
        return out


def geocode_safe(index: AddressIndex, raw: Any, hint: str | None = None, limit: int = 5) -> dict[str, Any]:
    """Like geocode, but bad input becomes a structured error instead of an exception (batch rows)."""
    try:
        return index.geocode(raw, hint, limit)
    except AddressInputError as e:
        return {"input": raw, "error": {"error_code": e.problems[0].error_code, "message_zh": e.problems[0].message_zh,
                                        "message_en": e.problems[0].message_en}, "candidates": []}
