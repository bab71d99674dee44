"""The objects the demo has generated so far, per catalog class, and the attribute helpers every stage uses.

Roads, buildings and components each add their objects to one `Generated`, which `load.py` then places and
inserts class by class. Attribute values that every stage draws (weighted picks, dates, the GB/T 30428.2
common component attributes) come from its one random stream, in the order the stages run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from shapely.geometry.base import BaseGeometry

from citygrid.catalog import ObjectClass, get_catalog


@dataclass
class _ClassOut:
    """The objects of one class: geometries (local plane), attributes and names, in step."""

    geoms: list[BaseGeometry] = field(default_factory=list)
    attrs: list[dict[str, Any]] = field(default_factory=list)
    names: list[str | None] = field(default_factory=list)


class Generated:
    """Objects generated so far, per class name (in the local plane), with attributes and names."""

    def __init__(self, rng: np.random.Generator, county_name: str = "大冶市") -> None:
        self.by: dict[str, _ClassOut] = {}
        self.rng = rng
        self.county_name = county_name
        cat = get_catalog()
        self.classes = {c.name: c for c in cat.classes.values()}

    def cls(self, name: str) -> ObjectClass | None:
        return self.classes.get(name)

    def add(self, name: str, geoms: Sequence[BaseGeometry], attrs: Sequence[dict[str, Any]],
            names: Sequence[str | None] | None = None) -> None:
        if self.cls(name) is None or len(geoms) == 0:
            return
        co = self.by.setdefault(name, _ClassOut())
        co.geoms.extend(geoms)
        co.attrs.extend(attrs)
        co.names.extend(names if names is not None else [None] * len(geoms))


def pick(rng: np.random.Generator, values: Sequence[Any], n: int, p: Sequence[float] | None = None) -> list[Any]:
    """n values drawn with weights `p` (normalised), or uniformly."""
    if n == 0:
        return []
    if p is not None:
        pa = np.asarray(p, float)
        pa = pa / pa.sum()
        return [values[i] for i in rng.choice(len(values), size=n, p=pa)]
    return [values[i] for i in rng.integers(0, len(values), n)]


def dates(rng: np.random.Generator, n: int, y0: int = 2008, y1: int = 2025) -> list[str]:
    """n ISO dates between 1 January of y0 and 30 June of y1."""
    start = dt.date(y0, 1, 1).toordinal()
    end = dt.date(y1, 6, 30).toordinal()
    return [dt.date.fromordinal(int(x)).isoformat() for x in rng.integers(start, end, n)]


_STATE_P = {"完好": 0.93, "破损": 0.05, "丢失": 0.005, "占用": 0.015}
_GOV_SUFFIX = ("局", "办公室", "大队")


def component_attrs(out: Generated, name: str, n: int, extra: dict[str, Sequence[Any]] | None = None
                    ) -> list[dict[str, Any]]:
    """The GB/T 30428.2 common attributes, plus per-item values in `extra` (field -> list of n values)."""
    cls = out.cls(name)
    if cls is None or n == 0:
        return []
    rng = out.rng
    cols: dict[str, list[Any]] = {}
    st = cls.attribute("state")
    if st is not None and st.enum:
        cols["state"] = pick(rng, st.enum, n, [_STATE_P.get(v, 0.01) for v in st.enum])
    if cls.attribute("data_source") is not None:
        cols["data_source"] = pick(rng, ["实测", "调绘", "地形图"], n, [0.75, 0.2, 0.05])
    if cls.attribute("start_date") is not None:
        cols["start_date"] = dates(rng, n)
    dept = cls.department.name
    if cls.attribute("dept_supervisor") is not None and dept.endswith(_GOV_SUFFIX):
        cols["dept_supervisor"] = [out.county_name + dept] * n
    for k, vals in (extra or {}).items():
        if cls.attribute(k) is not None:
            cols[k] = list(vals)
    return [{k: v[i] for k, v in cols.items() if v[i] is not None} for i in range(n)]


def rounded(x: float, nd: int = 1) -> float:
    """A plain float rounded to `nd` decimals, for attributes (areas, lengths, sizes)."""
    return round(float(x), nd)

