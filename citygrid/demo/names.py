"""Invented names for the demo's roads, compounds, work units and parks, and the place names derived from real ones.

Road and compound names are built from syllable lists; any match with a real street is a coincidence. One
`Names` draws every invented name from one random stream and never repeats a name, so roads, compounds and
parks of the whole county stay distinct; village and town stems come from the real division names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from citygrid.demo.partition import Division

_SYL1 = "东西南北新金铜湛冶岳湖山桂雨青龙凤兴华安康和平泰盛明光翠银月庆福民文武星阳江港柳松梅竹桥园丰乐宁振春秋枫荷"
_SYL2 = "月岳冶湖山园桥港阳华兴安康平明光泉林溪塘峰岭苑堤湾亭洲源泰盛昌隆丰荣"
_TOWN_STREETS = ["大道", "正街", "新街", "中街", "东路", "西路", "南路", "北路", "一路", "二路", "三路", "商贸街",
                 "建设路", "工业路", "文化路", "兴业路", "人民路", "团结路", "幸福路", "振兴路"]
_COMPOUND_SUFFIX = ["小区", "花园", "家园", "苑", "新村", "雅居", "华府", "名都", "佳园", "公馆"]
_CN_NUM = "一二三四五六七八九十"


class Names:
    """Unique invented names, drawn from one random stream."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _stem(self) -> str:
        for _ in range(500):
            a = _SYL1[int(self.rng.integers(len(_SYL1)))]
            b = _SYL2[int(self.rng.integers(len(_SYL2)))]
            if a != b:
                return a + b
        return "新华"

    def unique(self, make: Callable[[], str]) -> str:
        for _ in range(1000):
            n = make()
            if n not in self.used:
                self.used.add(n)
                return n
        n = make() + str(len(self.used))
        self.used.add(n)
        return n

    def street(self, grade: str) -> str:
        if grade == "主干路":
            suffixes, p = ["大道", "路"], [0.45, 0.55]
        elif grade == "次干路":
            suffixes, p = ["路", "大街"], [0.85, 0.15]
        else:
            suffixes, p = ["路", "街", "巷"], [0.5, 0.3, 0.2]
        return self.unique(lambda: self._stem() + suffixes[int(self.rng.choice(len(suffixes), p=p))])

    def compound(self) -> str:
        return self.unique(lambda: self._stem() + _COMPOUND_SUFFIX[int(self.rng.integers(len(_COMPOUND_SUFFIX)))])

    def unit(self, use: str) -> str:
        kinds = {"教育": ["小学", "中学", "职业技术学校"], "医疗卫生": ["医院", "卫生院", "社区卫生服务中心"],
                 "办公": ["办公区", "政务中心"], "文化体育": ["文化中心", "体育馆"], "工业": ["机械厂", "工业园"],
                 "仓储": ["物流园", "仓储中心"]}.get(use, ["大院"])
        return self.unique(lambda: self._stem() + kinds[int(self.rng.integers(len(kinds)))])

    def park(self) -> str:
        return self.unique(lambda: self._stem() + "公园")

    def town_street(self, town: str, rng: np.random.Generator) -> str:
        """A street of a town centre named after the town (保安 -> 保安正街), drawn from the grid's stream."""
        return self.unique(lambda: town + _TOWN_STREETS[int(rng.integers(len(_TOWN_STREETS)))])

    def highway(self, a: str, b: str, rng: np.random.Generator) -> str:
        """A road between two places named after both (大冶, 保安 -> 大保线 or 大冶保安公路)."""
        return self.unique(lambda: f"{a[0]}{b[0]}线" if rng.random() < 0.7 else f"{a}{b}公路")


def village_label(name: str) -> str:
    """The place a village committee serves: 田垅村村民委员会 -> 田垅村, 刘铺村委会 -> 刘铺村, 建设社区居民委员会 -> 建设社区."""
    for suf, add in (("村民委员会", "村"), ("村委会", "村"), ("居民委员会", ""), ("居委会", ""), ("委员会", "")):
        if name.endswith(suf) and len(name) > len(suf):
            stem = name[: -len(suf)]
            return stem if stem.endswith(add) else stem + add
    return name


def village_stem(label: str) -> str:
    """The bare place name: 田垅村 -> 田垅, 建设社区 -> 建设, 四顾山虚拟生活区 -> 四顾山."""
    for suf in ("虚拟生活区", "生活区", "社区", "村"):
        if label.endswith(suf) and len(label) > len(suf):
            return label[: -len(suf)]
    return label


def village_group(label: str, i: int) -> str:
    """The i-th (from 0) group of a village, as its door plates name it: 田垅村, 2 -> 田垅村三组."""
    return f"{label}{_CN_NUM[i]}组"


def town_stem(t: Division) -> str:
    """保安镇 -> 保安, 东风农场管理区 -> 东风农场, 四顾闸管理处 -> 四顾闸."""
    name = t.short or t.name
    for suf in ("管理处", "管理区", "管理", "街道", "镇", "乡"):
        if name.endswith(suf) and len(name) > len(suf):
            return name[: -len(suf)]
    return name

