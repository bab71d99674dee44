"""What every stage of the demo shares: the county it fills, how its rows are tagged, its random streams.

Each stage (partition, names, roads, buildings, components, people) draws from its own stream derived from the
seed and the stage's name, so a change to one stage leaves the output of the others identical; the tags let
`load.py` find and remove exactly what an earlier load wrote.
"""

from __future__ import annotations

import zlib

import numpy as np

DEMO_COUNTY = "420281"
DEMO_SOURCE = "demo-420281"  # data_source row of the load
BY = "demo"  # created_by of every demo object
PROVINCE_CITY = "湖北省黄石市大冶市"



def stream(seed: int, name: str) -> np.random.Generator:
    """An independent random stream per stage, so changing one stage leaves the others identical."""
    return np.random.default_rng([seed % (1 << 63), zlib.crc32(name.encode())])


def geom_source(seed: int) -> str:
    """`division.geom_source` of the generated township and village polygons."""
    return f"generated-demo seed={seed}"


def generator_tag(seed: int) -> str:
    """`attrs.generator` of every generated object."""
    return f"citygrid-demo seed={seed}"
