"""Resolve free-text addresses against the standard address base (geocoding), in memory.

The base of a county (a few hundred thousand nodes) fits in memory, so matching is dictionary scans and
dict lookups, not SQL: every known name (divisions, roads and their aliases, compounds, villages) is
indexed by its first two characters, and one left-to-right pass over the normalized text finds all
occurrences. A door number (号) or group (组) is read after the road or village it qualifies; a door number that
does not exist falls back to the closest existing plate of the same base number (88-1号 → 88号) or to the road
itself — never to an invented point. The answer says which parts of the input were not used.

How people write the rest (counted in CCKS2021 and NCAP span shapes, see bench/geocode_eval.py): after a compound
or gate plate, `_parse_tail` reads building / unit / floor / room in any of the everyday notations — words
栋 幢 号楼 座 (the normalizer folds them to 栋), 单元 单 门, 层 楼 F, 室 房 户 号; compact numbers 3-2-501, 3栋2-501,
3-501; any order (2单元3栋501室); Chinese numerals for every part (三号楼二单元五零一, 十二层). A phone number
(电联138…) is blanked before normalizing so its digits never join a room number.

Notations read as the labelled corpora read them (bench/notation_corpus.py counts them in CCKS2021 + NCAP): a building
named by a letter — A座 (388 houseno spans), A栋 A幢 A楼, A9栋 (B6栋), 9A幢 (8D幢), bare before a dash or a number
(B6-37号, E15号) — is that building, never the digits in it (A3栋 is not 3栋); `5楼2` is floor 5 and the room on it
(NCAP: floorno + roomno 194 times, building + unit never), read as 502室 where the base numbers rooms by floor; a
lane `路88弄5号` (NCAP roadno 9弄 + houseno 9号 85 times, CCKS2021 road + roadno 142) is the gate plate of the same
number with building 5 behind it, and a lane the base has as a road (宛平南路500弄) is that road. A lane with no gate
plate of its number is the road, never another door plate; several compounds behind the gate are decided by the
building written when only one of them has it.

Honest levels: a room is answered only when building, unit and room all exist and agree (a floor written beside
the room must match it). A room written without its unit in a building of several units, a room or unit that does
not exist, a floor that contradicts the room, several compounds behind one gate with none named: the answer is
the building, unit or door, with a lower confidence and a note — never a guessed room.

Names with one wrong character: every name of 3+ characters is also keyed by its toneless pinyin (homophones,
score 0.9) and by itself with one character masked (shape-alike typos, 0.8; the last, type character stays).
A near match several names share is kept only when the written township, the door number written after it, or
the shape of the wrong character (four-corner codes, `_by_shape`: 治 is 冶, not 黄, in 治金路) leaves one name. A township that
contradicts the village written is dropped (the village is the finer word); a road of another township than the
written one is still the road, with a note and 0.9 of the confidence.

Each lever, measured by bench/geocode_eval.py --levers on its tuning set (200 door plates + 200 rooms of the demo
county x 33 noise kinds, 8,654 variants), switched on one after another ("none" is the resolver before issue 12's
tail reading; the township-in-village rule and the honest-level rules are always on):

| levers on | door plate | room | weakest kind (door) | weakest kind (room) | wrong rooms | wrong doors |
|---|---|---|---|---|---|---|
| none | 95.62% | 65.73% | room_lane 1.0% | room_dash3 0.0% | 28 | 59 |
| + tail notations | 95.62% | 86.38% | room_lane 1.0% | room_bare_phone 0.0% | 64 | 59 |
| + phone masking | 95.62% | 89.75% | room_lane 1.0% | room_letter_building 0.0% | 64 | 59 |
| + near names | 96.16% | 89.89% | room_lane 1.0% | room_letter_building 0.0% | 64 | 13 |
| + wrong township | 97.46% | 89.89% | room_lane 1.0% | room_letter_building 0.0% | 64 | 13 |
| + letters, 5楼2 | 97.46% | 96.63% | room_lane 1.0% | room_lane 0.0% | 0 | 13 |
| + lanes | 99.75% | 99.97% | typo_shape_3char 70.8% | room_lane 99.0% | 0 | 0 |
| + shape of a typo | 99.92% | 99.97% | typo_shape_3char 91.7% | room_lane 99.0% | 0 | 0 |

The notation kinds on a held-out sample of their own (seed 20261203, run once): door plate 100.00%, room 99.33%
(room_lane 98.0%: the building written exists behind both compounds of a gate, answered at the door), wrong rooms 0.
On the frozen set (bench/geocode_frozen.json.gz, 7,771 variants of another sample, written once and never tuned
on; it predates the notation kinds): door plate 99.86% (weakest missing_township 98.4%), room 100.00%, wrong rooms 0,
wrong door plates 0. Rooms written without their unit in buildings of several units (200): the building 200 times,
a room 0 times. Speed: counted in Python opcodes per address (sys.settrace, independent of the machine's load), the
notations add 1.8 % on clean full names and 1.5 % on the older noise kinds (8,331 against 8,182; 7,704 against
7,592); wall-clock batch runs of the two resolvers, alternated on a machine at load 4.5-8 on 2 CPUs, overlap
(20,000 clean rows: 1,600-6,400 rows/s before, 2,100-3,600 after; the paired ratio's median 1.04).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cn2an
from pypinyin import lazy_pinyin
from rapidfuzz import fuzz, process
from sqlalchemy import text
from sqlalchemy.engine import Connection

from citygrid.address.normalize import AddressInputError, normalize_with_map

LEVERS = frozenset({"tail", "phone", "near", "township", "notation", "lane", "shape"})
LEVEL_RANK = {"province": 1, "city": 2, "county": 3, "township": 4, "village": 5, "village_group": 6, "road": 7,
              "compound": 8, "door": 8, "building": 9, "unit": 10, "floor": 11, "room": 12}
LEVEL_ZH = {"province": "省", "city": "市", "county": "县区", "township": "乡镇街道", "village": "村社区",
            "village_group": "组", "road": "街路巷", "compound": "小区院落", "door": "门牌", "building": "楼栋",
            "unit": "单元", "floor": "楼层", "room": "户室"}
_NUM_DOOR = re.compile(r"(\d+)(?:(?:-|之|附)(\d+))?号(?!楼)")
_NUM_GROUP = re.compile(r"(\d+)组")
# a lane (弄) off a road, as 上海 and 浙江 write it: 路100弄5号 is lane 100, building 5 in it (NCAP labels 100弄 roadno
# and 5号 houseno 85 times, CCKS2021 100弄 road and 5号 roadno 142 times; bench/notation_corpus.py)
_LANE = re.compile(r"(\d+)()弄")
# Building / unit / floor / room after a compound or door plate, in any of the notations people write (3栋2单元501室,
# 3-2-501, 3幢2-501, 3栋2单501, 3栋2门501, 2单元3栋501, 5楼501, 501房): numbers with an optional word each.
_TAIL_TOKEN = re.compile(r"(\d+)(单元|栋|单|门|层|楼|F|f|室|房|户|号)?-?")
# A building designator with a letter (A座 → A栋 by the normalizer, B6栋, 8D幢, A楼; bare before a dash or digits:
# B6-37号, E15号): the letter names the building, so 楼 after it is the building too, never a floor.
_TAIL_LETTER = re.compile(r"(?:([A-Za-z]\d*|\d+[A-Za-z])(栋|楼)|([A-Za-z]\d*|\d+[A-EG-Za-eg-z])(?=-)"
                          r"|([A-Za-z]|\d+[A-EG-Za-eg-z])(?=\d))-?")
_TAIL_WORD = {"栋": "building", "单元": "unit", "单": "unit", "门": "unit", "层": "floor", "楼": "floor", "F": "floor",
              "f": "floor", "室": "room", "房": "room", "户": "room"}
# Chinese numerals the normalizer keeps (it converts only before the words it knows): 二单 五零一 三-二
_TAIL_CN = re.compile("[零〇一二两三四五六七八九十百]+(?=单元|单|门|栋|层|楼|室|房|户|号|-|$)")
_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
# a phone number after (or before) an address: masked before normalizing, so its digits never join a room number
_MOBILE = re.compile(r"1[3-9]\d{9}")
_PHONE = re.compile(r"(?:电联|电话|手机|联系电话|联系方式|tel|TEL|Tel)?[:：]?\s*(?<!\d)1[3-9]\d{9}(?!\d)")
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
    score: float = 1.0  # 1 for an exact name, lower for a homophone (0.9) or one-character (0.8) near match
    ambiguous: bool = False  # a near match shared by several names: kept only if the written township decides


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
        # near-match keys of every name of 3+ characters (roads, compounds, villages, townships): the toneless
        # pinyin of each character (homophone typos), and the name with one character masked (shape-alike typos)
        self.by_pinyin: dict[str, list[tuple[str, str, Any]]] = defaultdict(list)
        self.by_masked: dict[str, list[tuple[str, str, Any]]] = defaultdict(list)
        self.fuzzy_lengths: set[int] = set()
        # the levers of this resolver, all on; bench/geocode_eval.py turns them off one by one to measure each
        self.levers: frozenset[str] = LEVERS

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
            for nm in sorted({name, short, *(aliases or [])} - {None}):  # sorted: no per-process hash order
                if len(nm) >= 2:
                    self._index_name(nm, kinds[level], code)

    def _index_name(self, name: str, kind: str, key: Any) -> None:
        self.by_prefix[name[:2]].append((name, kind, key))
        if len(name) >= 3 and not any(ch.isdigit() for ch in name):
            self.fuzzy_lengths.add(len(name))
            self.by_pinyin[_pinyin_key(name)].append((name, kind, key))
            for k in range(len(name) - 1):  # the last character is the type word (路 村 园): it stays
                self.by_masked[name[:k] + "?" + name[k + 1:]].append((name, kind, key))

    def _add(self, n: NodeRow, aliases: list[str]) -> None:
        self.nodes[n.id] = n
        self.by_code[n.code] = n.id
        if n.parent is not None:
            self.children[n.parent][n.name].append(n.id)
            if n.level == "door" and n.number is not None:
                self.door_numbers[n.parent][n.number].append(n.id)
        if n.level == "road":
            for nm in sorted({n.name, *aliases}):
                if nm not in self.road_names:
                    self._index_name(nm, "road", nm)
                self.road_names[nm].append(n.id)
        elif n.level == "compound":
            for nm in sorted({n.name, *aliases}):
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

    def _scan_near(self, t: str, exact: list[Hit]) -> list[Hit]:
        """Names written with one wrong character: same pinyin (score 0.9), or one character off (0.8, only when
        that masked key names a single place). Windows overlapping an exact road/compound name are skipped."""
        blocked: set[int] = set()
        for h in exact:
            if h.kind in ("road", "compound"):
                blocked.update(range(h.start, h.end))
        # a near name starts where the text or a known name ends, not inside unknown words (某大道 in 新某大道)
        starts = {0} | {h.end for h in exact} | {i for i in range(1, len(t)) if not "\u4e00" <= t[i - 1] <= "\u9fff"}
        py = [_pinyin(ch) for ch in t]
        out: list[Hit] = []
        for size in sorted(self.fuzzy_lengths):
            for i in range(len(t) - size + 1):
                if i not in starts or blocked.intersection(range(i, i + size)):
                    continue
                w = t[i:i + size]
                if any(ch.isdigit() for ch in w):
                    continue
                found = [e for e in self.by_pinyin.get("'".join(py[i:i + size]), ()) if e[0] != w]
                if found:
                    amb = len({e[0] for e in found}) > 1
                    out += [Hit(kind, key, i, i + size, name, 0.9, amb) for name, kind, key in found]
                    continue
                es = [e for k in range(size - 1) for e in self.by_masked.get(w[:k] + "?" + w[k + 1:], ()) if e[0] != w]
                amb = len({e[0] for e in es}) > 1
                out += [Hit(kind, key, i, i + size, name, 0.8, amb) for name, kind, key in es]
        return out

    def _decide_near(self, t: str, hits: list[Hit], div: dict[str, str]) -> list[Hit]:
        """Ambiguous near matches of one span are kept only when the written township, or the door number written
        after them, leaves one name; a near match inside a longer near match's span is part of it (某大道 in 新某大道)."""
        near = [h for h in hits if h.score < 1]
        hits = [h for h in hits if h.score == 1 or not any(
            g.start <= h.start and h.end <= g.end and g.end - g.start > h.end - h.start for g in near)]
        town = div.get("township")
        out = [h for h in hits if not h.ambiguous]
        spans: dict[tuple[int, int], list[Hit]] = defaultdict(list)
        for h in hits:
            if h.ambiguous:
                spans[(h.start, h.end)].append(h)
        for (_, end), group in spans.items():
            def ids(h: Hit) -> list[int]:
                return self.road_names[h.key] if h.kind == "road" else self.compound_names[h.key]
            keep = group
            if town:
                keep = [h for h in keep if any(self.nodes[i].township == town for i in ids(h))]
            m = _NUM_DOOR.match(t, end)
            if len({h.name for h in keep}) > 1 and m:
                keep = [h for h in keep if any(self._child(i, f"{int(m.group(1))}号") is not None for i in ids(h))]
            if len({h.name for h in keep}) > 1 and "shape" in self.levers:
                keep = _by_shape(t, keep)
            if len({h.name for h in keep}) == 1:
                out += keep
        return out

    def geocode(self, raw: str, hint_division: str | None = None, limit: int = 5) -> dict[str, Any]:
        # a phone number never joins the digits of a room (501 13812345678): blanked, same length, before normalizing
        clean = raw
        if isinstance(raw, str) and "phone" in self.levers and _MOBILE.search(raw):
            clean = _PHONE.sub(lambda m: " " * len(m.group(0)), raw)
        t, back = normalize_with_map(clean)
        hits = self._scan(t)
        exact_place = any(h.kind in ("road", "compound") for h in hits) or (
            any(h.kind == "village" for h in hits) and _NUM_GROUP.search(t) is not None)  # 小箕铺村3组12号
        if "near" in self.levers and not exact_place:
            exact_levels = {h.kind for h in hits}
            hits += [h for h in self._scan_near(t, hits) if h.kind not in exact_levels]
        # a division alias inside a longer road/compound name belongs to that name (刘仁八 in 刘仁八正街)
        named_spans = [(h.start, h.end) for h in hits if h.kind in ("road", "compound")]
        hits = [h for h in hits if h.kind in ("road", "compound") or not any(
            a <= h.start and h.end <= b and b - a > h.end - h.start for a, b in named_spans)]
        # a division name inside a longer name of one of its own villages belongs to the village (刘仁八 in 刘仁八村)
        divs = [h for h in hits if h.kind == "village" and not h.ambiguous]
        if divs or any(h.ambiguous for h in hits):
            hits = [h for h in hits if not (h.kind in ("township", "village") and h.ambiguous) and not (
                h.kind == "township" and any(g.start <= h.start and h.end <= g.end
                                             and g.end - g.start > h.end - h.start and str(g.key).startswith(h.key)
                                             for g in divs))]
        div: dict[str, str] = {}
        used: list[tuple[int, int]] = []
        near = 1.0  # the product of the scores of near-matched names
        notes: list[str] = []
        for level in ("province", "city", "county", "township", "village"):
            free = [h for h in hits if h.kind == level
                    and not any(h.start < b and a < h.end for a, b in used)]  # 刘仁八镇 is not 刘仁八(村)
            cands = [h for h in free if self._consistent(h.key, div)]
            if level == "village" and "township" in div:
                cands = [h for h in cands if str(h.key).startswith(div["township"])] or cands
                if not cands and free and "township" in self.levers:  # a village of another township: the village is the finer word, trust it
                    cands = [h for h in free if all(str(h.key).startswith(v) for k, v in div.items() if k != "township")]
                    if cands:
                        notes.append(f"乡镇 {self.divisions.get(div['township'], (0, ''))[1]} 与村不符，按村匹配")
                        near *= 0.9
                        del div["township"]
            if cands:
                best = max(cands, key=lambda h: (h.score, h.end - h.start, -h.start))
                div[level] = best.key
                used.append((best.start, best.end))
                if best.score < 1:
                    near *= best.score
                    notes.append(f"名称近似匹配：{t[best.start:best.end]} → {best.name}")
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
        named = self._decide_near(t, named, div)
        # prefer longest names; drop hits contained in a longer hit
        named.sort(key=lambda h: (-(h.end - h.start), h.start))
        chosen: list[Hit] = []
        for h in named:
            if not any(h.start >= c.start and h.end <= c.end for c in chosen):
                chosen.append(h)
        for h in chosen:
            ids = self.road_names[h.key] if h.kind == "road" else self.compound_names[h.key]
            for nid in self._in_scope(ids, div):
                c = self._descend(t, nid, h.end, used + [(h.start, h.end)], div, near * h.score)
                if h.score < 1:
                    c.notes.append(f"名称近似匹配：{t[h.start:h.end]} → {h.name}")
                results.append(c)
        if not chosen:
            g = _NUM_GROUP.search(t)
            if g and "village" in div:
                gid = self.groups.get((div["village"], f"{int(g.group(1))}组"))
                if gid is not None:
                    results.append(self._descend(t, gid, g.end(), used + [g.span()], div, near))
        for c in results:
            c.notes[:0] = notes
            town = div.get("township")
            if c.node is not None and town and c.node.township != town and town not in {
                    n.township for n in self._chain(c.node).values()}:
                c.confidence *= 0.9  # a road of another township than the one written: right road, say so
                c.notes.append(f"乡镇 {self.divisions.get(town, (0, ''))[1]} 与道路所在乡镇不符")
        if not results and "near" not in self.levers:  # the old typo lever: the closest road, even when not unique
            for name, score, a, b in self._fuzzy_roads(t, max((e for _, e in used), default=0)):
                for nid in self._in_scope(self.road_names[name], div):
                    c = self._descend(t, nid, b, used + [(a, b)], div, 0.85 * score)
                    c.notes.append(f"道路名称近似匹配：{t[a:b]} → {name}")
                    results.append(c)
        if not results and div:
            lvl = max(div, key=lambda k: LEVEL_RANK[k])
            results.append(Candidate(None, lvl, near * (0.5 if lvl in ("township", "village") else 0.3), used, div,
                                     notes=notes))
        # Ties broken by how much of the text a candidate used, then by code: never by the order sets and dicts
        # were filled in, which differs between processes (str hashes are salted per process), so the same text
        # gets the same answer on every worker, Spark executor and restart.
        results.sort(key=lambda c: (-c.confidence, -LEVEL_RANK[c.level], -sum(b - a for a, b in c.used),
                                    c.node.code if c.node else ""))
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
            lane = _LANE.match(rest) if node.level == "road" and "lane" in self.levers else None
            if lane is not None:  # 新冶大道88弄5号: the lane is the gate plate of the same number, 5号 a building in it
                gate = self._child(nid, f"{int(lane.group(1))}号")
                if gate is None or not any(self.nodes[c[0]].level == "compound"
                                           for c in self.children.get(gate, {}).values()):
                    cand.confidence *= 0.7
                    cand.notes.append(f"{lane.group(0)} 无同号院落门牌，回退到街路巷")
                    return cand
                cand.confidence *= 0.95
                cand.notes.append(f"{lane.group(0)} 按院落门牌 {int(lane.group(1))}号 匹配")
            m = lane or _NUM_DOOR.match(rest) or _NUM_DOOR.search(rest[:4])
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
                kids = {cname: cids[0] for cname, cids in self.children.get(door, {}).items()
                        if self.nodes[cids[0]].level == "compound"}
                for cname, cid in kids.items():
                    k = rest.find(cname)
                    if k >= 0:
                        cand.used.append((pos + k, pos + k + len(cname)))
                        pos += k + len(cname)
                        rest = t[pos:]
                        nid = cid
                        cand.node, cand.level = self.nodes[nid], "compound"
                        break
                else:
                    near_kid = self._near_child(rest, kids) if "near" in self.levers else None
                    if near_kid is not None:
                        cname, nid, k = near_kid
                        cand.used.append((pos, pos + k))
                        pos += k
                        rest = t[pos:]
                        cand.node, cand.level = self.nodes[nid], "compound"
                        cand.confidence *= 0.85
                        cand.notes.append(f"小区名称近似匹配：{t[pos - k:pos]} → {cname}")
                    elif len(kids) == 1 or (kids and "near" not in self.levers):
                        nid = next(iter(kids.values()))  # the one compound behind this gate (see below)
        parts, spans = _parse_tail(rest, self.levers)
        if self.nodes[nid].level == "door":
            only = [c for c in self.children.get(nid, {}).values() if self.nodes[c[0]].level == "compound"]
            if "building" in parts and (len(only) == 1 or (only and "near" not in self.levers)):
                nid = only[0][0]  # several compounds behind one gate and none written: the door is the answer
            elif "building" in parts and len(only) > 1 and "lane" in self.levers:
                # ... unless the building written exists behind one of them only (88弄5号 names no compound)
                having = [c[0] for c in only if self._child(c[0], f"{parts['building']}栋") is not None]
                if len(having) == 1:
                    nid = having[0]
                    cand.confidence *= 0.9
                    cand.notes.append(f"门牌后有{len(only)}个院落，{parts['building']}栋 只在 {self.nodes[nid].name}")
        if "building" not in parts or self.nodes[nid].level not in ("compound", "door"):
            return cand
        span = {role: (pos + a, pos + b) for role, (a, b) in spans.items()}
        child = self._child(nid, f"{parts['building']}栋")
        if child is None:
            cand.confidence *= 0.8
            if self.nodes[nid].level == "door" and sum(
                    self.nodes[c[0]].level == "compound" for c in self.children.get(nid, {}).values()) > 1:
                cand.notes.append(f"门牌后有多个院落，未写院落名，{parts['building']}栋 无法确定，回答到门牌")
            else:
                cand.notes.append(f"{parts['building']}栋 在标准地址库中不存在")
            return cand
        nid = child
        cand.node, cand.level = self.nodes[child], "building"
        cand.used.append(span["building"])
        if "unit" in parts:
            unit = self._child(nid, f"{parts['unit']}单元")
            if unit is None:
                cand.confidence *= 0.8
                cand.notes.append(f"{parts['unit']}单元 在标准地址库中不存在")
                return cand
            cand.used.append(span["unit"])
        elif "room" in parts or "floor" in parts:
            units = [c[0] for c in self.children.get(nid, {}).values() if self.nodes[c[0]].level == "unit"]
            if len(units) != 1:  # several units and none written: no room can be decided, say the building
                cand.confidence *= 0.7
                cand.notes.append("未写单元，楼栋有多个单元，户室无法确定，回答到楼栋")
                return cand
            unit = units[0]
            cand.notes.append("未写单元，楼栋只有一个单元")
        else:
            return cand
        cand.node, cand.level = self.nodes[unit], "unit"
        if "room" not in parts:
            floor = self._child(unit, f"{parts['floor']}层") if "floor" in parts else None
            if floor is not None:
                cand.node, cand.level = self.nodes[floor], "floor"
                cand.used.append(span["floor"])
            return cand
        num = int(parts["room"])
        if "floor" in parts:
            fl = int(parts["floor"])
            floor = self._child(unit, f"{fl}层")
            room = self._child(floor, f"{num}室") if floor is not None else None  # rooms numbered within the floor
            if room is None and floor is not None and num < 100 and "notation" in self.levers:
                room = self._child(floor, f"{fl * 100 + num}室")  # 5楼2: the floor's second room, 502室
                if room is not None:
                    cand.notes.append(f"{fl}楼{num} 读作 {fl * 100 + num}室")
                    cand.confidence *= 0.95
            if room is None and fl != num // 100:
                cand.confidence *= 0.8
                cand.notes.append(f"{fl}层 与 {num}室 不一致，回答到单元")
                return cand
        else:
            floor = self._child(unit, f"{num // 100}层")
            room = self._child(floor, f"{num}室") if floor is not None else None
        if room is None:
            cand.confidence *= 0.85
            cand.notes.append(f"{num}室 在标准地址库中不存在")
            return cand
        cand.node, cand.level = self.nodes[room], "room"
        cand.used.append(span["room"])
        if "floor" in parts:
            cand.used.append(span["floor"])
        return cand

    def _near_child(self, rest: str, kids: dict[str, int]) -> tuple[str, int, int] | None:
        """The one compound behind a gate plate whose name is written at the start of `rest` with a typo."""
        scored = sorted(((fuzz.ratio(rest[:len(n)], n), n) for n in kids), reverse=True)
        if not scored or scored[0][0] < 60 or (len(scored) > 1 and scored[1][0] >= scored[0][0] - 10):
            return None
        name = scored[0][1]
        return name, kids[name], len(name)

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


@lru_cache(maxsize=1)
def _four_corner() -> dict[str, str]:
    from four_corner_method import FourCornerMethod

    data: dict[str, str] = FourCornerMethod().data
    return data


def shape_similarity(a: str, b: str) -> float:
    """How alike two characters look, from their four-corner codes (四角号码, five digits for the strokes at the
    corners): each digit that agrees in place counts 1, a 0 that agrees (no stroke left at that corner) 0.5. Shape-alike
    characters share most (冶 治 both 33160: 4.0); the bench's shape-alike pairs outscore a random character in
    91 % of draws, tie in 6 %."""
    fc = _four_corner()
    x, y = fc.get(a), fc.get(b)
    if not x or not y:
        return 0.0
    return sum(1.0 if p != "0" else 0.5 for p, q in zip(x, y, strict=False) if p == q)


def _by_shape(t: str, hits: list[Hit]) -> list[Hit]:
    """Among one-character-off names of one span (灵车路: 灵东路? 灵一路?), the one whose differing character looks
    most like the written one, when it clearly does (1.5+, and 1.5 more than any other); otherwise all of them, which
    leaves the span undecided. On every masked name the demo county's names share, written with the bench's
    shape-alike typos (702 cases): 423 decided right, 278 undecided, 1 wrong; a margin of 1 instead decides 512 right
    but 11 wrong, and a wrong door plate is worse than the township."""
    score: dict[str, float] = {}
    for h in hits:
        w = t[h.start:h.end]
        if h.score >= 0.9 or len(w) != len(h.name):  # homophones are not decided by shape
            return hits
        score[h.name] = sum(shape_similarity(a, b) for a, b in zip(w, h.name, strict=True) if a != b)
    ranked = sorted(score.values(), reverse=True)
    if ranked[0] < 1.5 or (len(ranked) > 1 and ranked[1] > ranked[0] - 1.5):
        return hits
    best = max(score, key=lambda n: score[n])
    return [h for h in hits if h.name == best]


@lru_cache(maxsize=65536)
def _pinyin(ch: str) -> str:
    """The toneless pinyin of one character (its commonest reading), the character itself when it has none."""
    return str(lazy_pinyin(ch)[0])


def _pinyin_key(name: str) -> str:
    return "'".join(_pinyin(ch) for ch in name)


def _tail_digits(rest: str) -> tuple[str, list[int]]:
    """Chinese numerals the normalizer left in a building/unit/room tail → digits, with each output character's
    index in `rest` (五零一 → 501 digit by digit; 十二 → 12 and 二十三 → 23 with 十)."""
    if not any(ch in _CN_DIGIT or ch in "十百" for ch in rest):
        return rest, list(range(len(rest)))
    out: list[str] = []
    where: list[int] = []
    last = 0
    for m in _TAIL_CN.finditer(rest):
        for i in range(last, m.start()):
            out.append(rest[i])
            where.append(i)
        run = m.group(0)
        if any(ch in "十百" for ch in run):
            try:
                digits = str(int(cn2an.cn2an(run.replace("两", "二"), "smart")))
            except ValueError:
                digits = run
        else:
            digits = "".join(str(_CN_DIGIT[ch]) for ch in run)
        out += list(digits)
        where += [m.start() + min(k, len(run) - 1) for k in range(len(digits))]
        last = m.end()
    for i in range(last, len(rest)):
        out.append(rest[i])
        where.append(i)
    return "".join(out), where


def _parse_tail(rest: str, levers: frozenset[str] = LEVERS) -> tuple[dict[str, int | str], dict[str, tuple[int, int]]]:
    """Building, unit, floor and room numbers at the start of `rest` (the text after a compound or door plate), and
    their spans in `rest`. Words decide (栋 幢 号楼 座 → 栋 by the normalizer; 单元 单 门; 层 楼 F; 室 房 户; 号 is the
    building until one is known, then the room); bare numbers (3-2-501) fill building, unit, room in that order, and
    a bare number of 3+ digits after the building is the room (3-501, 3栋501). A building named by a letter (A栋,
    B6-, 8D栋, A楼) is a str; a bare number after a floor is the room (5楼2). Without the `tail` lever this is the
    resolver before these notations (only 栋, 单元, 层/楼 and 室 words, a bare room only after 单元), kept to measure
    the lever; without `notation`, the one before letters and 5楼2."""
    if "tail" not in levers:
        return _parse_tail_words(rest)
    conv, where = _tail_digits(rest)
    first = re.search(r"[0-9A-Za-z]" if "notation" in levers else r"\d", conv)
    parts: dict[str, int | str] = {}
    spans: dict[str, tuple[int, int]] = {}
    if first is not None and not conv[first.start()].isdigit() and not _TAIL_LETTER.match(conv, first.start()):
        first = re.search(r"\d", conv)  # a letter that names no building (KTV3栋): start at the number
    if first is None or first.start() > 12:
        return parts, spans
    pos = first.start()
    last = ""
    while pos < len(conv):
        lm = _TAIL_LETTER.match(conv, pos) if "building" not in parts and "notation" in levers else None
        if lm is not None:  # A栋 B6-… E15号: the building named by a letter
            a, b = next(lm.span(g) for g in (1, 3, 4) if lm.group(g))
            parts["building"] = conv[a:b].upper()
            end = lm.end(2) if lm.group(2) else b
            spans["building"] = (where[a], where[end - 1] + 1)
            pos, last = lm.end(), "building"
            continue
        m = _TAIL_TOKEN.match(conv, pos)
        if m is None:
            break
        digits, word = m.group(1), m.group(2)
        role = _TAIL_WORD.get(word) if word else None
        if word == "号":
            role = "room" if "building" in parts else "building"
        elif word == "楼" and "building" not in parts and re.match(r"\d+(单元|单|门)", conv[m.end():]):
            role = "building"  # 3楼2单元: 楼 names the building when a unit follows
        elif role is None and last == "floor" and "room" not in parts and "notation" in levers:
            role = "room"  # 5楼2, 12楼1581: a bare number after the floor is the room (NCAP labels it so 194 times)
        elif role is None:
            free = [r for r in ("building", "unit", "room") if r not in parts]
            if not free:
                break
            role = "room" if len(digits) >= 3 and "building" in parts and "room" in free else free[0]
        if role in parts:
            break
        parts[role] = int(digits)
        end = m.end(2) if word else m.end(1)
        spans[role] = (where[m.start()], where[end - 1] + 1)
        pos, last = m.end(), role
    return parts, spans


def _parse_tail_words(rest: str) -> tuple[dict[str, int | str], dict[str, tuple[int, int]]]:
    parts: dict[str, int | str] = {}
    spans: dict[str, tuple[int, int]] = {}
    for role, rx in (("building", r"(\d+)栋"), ("unit", r"(\d+)单元"), ("floor", r"(\d+)(?:层|楼)(?!\d)"),
                     ("room", r"(\d+)室|(?<=单元)(\d{3,4})(?!\d)")):
        m = re.search(rx, rest)
        if m:
            parts[role] = int(m.group(1) or m.group(2))
            spans[role] = m.span()
    return parts, spans
