"""What every stage of the demo shares: the county it fills, how its rows are tagged, its random streams.

Each stage (partition, names, roads, buildings, components, people) draws from its own stream derived from the
seed and the stage's name, so a change to one stage leaves the output of the others identical; the tags let
`load.py` find and remove exactly what an earlier load wrote.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

DEMO_COUNTY = "420281"
DEMO_SOURCE = "demo-420281"  # data_source row of the load
BY = "demo"  # created_by of every demo object
PROVINCE_CITY = "湖北省黄石市大冶市"


@dataclass(frozen=True)
class County:
    """The county a demo fills: its code and names (real, from `division`), the seat the streets gather around,
    and the Gauss-Krüger plane the generation works in (`geometry.local_plane`)."""

    code: str
    name: str  # 大冶市
    short: str  # 大冶: road names (大冶城区, 大保线)
    prefix: str  # 湖北省黄石市大冶市: the head of locations and standard addresses
    seat: tuple[float, float]  # longitude, latitude (EPSG:4490)
    local_crs: str

    @property
    def source(self) -> str:
        """`data_source` row of the county's demo load (its grids and address base: `grids-…`, `address-…`)."""
        return f"demo-{self.code}"

    @property
    def lock_key(self) -> int:
        """Advisory lock of the county's demo load: one load per county at a time, counties side by side."""
        return int(self.code) * 10_000 + 42


# 大冶 as it always was (its seat is known; other counties take their outline's point on surface)
DAYE = County(DEMO_COUNTY, "大冶市", "大冶", PROVINCE_CITY, (114.97, 30.10), "EPSG:4547")


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent random stream per stage, so changing one stage leaves the others identical."""
    return np.random.default_rng([seed % (1 << 63), zlib.crc32(name.encode())])


def geom_source(seed: int) -> str:
    """`division.geom_source` of the generated township and village polygons."""
    return f"generated-demo seed={seed}"


def generator_tag(seed: int) -> str:
    """`attrs.generator` of every generated object."""
    return f"citygrid-demo seed={seed}"
