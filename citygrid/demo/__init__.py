"""The demo county: 大冶市 (420281) with generated township/village polygons and tens of thousands of objects.

Everything here is synthetic and says so (`attrs.generated = true`); only the county outline and the division
names and codes are real. One module per stage, in the order `load.py` runs them: `partition` (township and
village polygons), `names`, `roads`, `buildings` (with door plates, compounds, greens, parcels), `components`,
then `people` (fake 三实 for the address base); `common`, `geometry` and `objects` are what the stages share.
Entry points: `citygrid.demo.load.load_demo`, `unload_demo` and `load_address_base`.
"""
