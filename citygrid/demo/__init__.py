"""The demo county: 大冶市 (420281) with generated township/village polygons and tens of thousands of objects.

Everything here is synthetic and says so (`attrs.generated = true`); only the county outline and the division
names and codes are real.
"""

from citygrid.demo.generate import DEMO_COUNTY, DEMO_SOURCE, load_demo, unload_demo

__all__ = ["DEMO_COUNTY", "DEMO_SOURCE", "load_demo", "unload_demo"]
