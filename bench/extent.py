"""What collection extents and the tile feature cap cost (prints figures; no speed asserts).

On the demo county at scale 1.0 (bench/layers.py's database `citygrid_bench_layers`, built when missing):

1. Each collection's extent computed cold (`citygrid.layers.extent.of`, the cache emptied first: what the first
   listing after a write to that layer pays) and warm (cached under the layer version), as the admin sees it.
2. `features.collections` for the admin and for the public, cold (every extent computed) and warm (median of runs).
3. Tiles of the largest class in the urban area: the render as it was (no count), as it is with the default cap
   (one more row and a count), and with the cap lowered to a quarter of its features (rendered again as an even
   sample, sub-tiles counted).

    .venv/bin/python bench/extent.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from layers import URBAN, Report, load, log, setup_database  # noqa: E402


def _ms(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median milliseconds over `runs` calls, and the last result."""
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    from sqlalchemy import text

    from citygrid.db.engine import engine_for
    from citygrid.layers import extent, features, sources, tiles
    from citygrid.security.principal import ANONYMOUS, SYSTEM

    rep = Report()
    url = setup_database(False, rep)
    engine = engine_for(url)
    rep.h(f"Extents (load average {load()})")
    rows = []
    with engine.connect() as c:
        listed = sources.listing(c, SYSTEM)
        total_cold = 0.0
        for layer, n in listed:
            view = layer.view(SYSTEM)
            assert view is not None

            def cold(layer: sources.Layer = layer, view: sources.View = view) -> extent.Extent:
                extent.CACHE.clear()
                return extent.of(c, layer, view)

            t_cold, e = _ms(cold, args.runs)
            t_warm, _ = _ms(lambda layer=layer, view=view: extent.of(c, layer, view), args.runs)
            total_cold += t_cold
            rows.append([layer.id, n, t_cold, t_warm, ", ".join(f"{v:.4f}" for v in e.bbox)])
        rows.sort(key=lambda r: -r[2])
        rep.table(["layer", "features", "cold ms", "warm ms", "bbox"], rows[:12])
        rep.p(f"\n{len(rows)} layers; cold extents sum to {total_cold:,.1f} ms (the whole list after a restart).\n")
        for who, p in (("admin", SYSTEM), ("public", ANONYMOUS)):
            def cold_list(p: Any = p) -> list[features.Collection]:
                extent.CACHE.clear()
                return features.collections(c, p)

            t_cold, cols = _ms(cold_list, args.runs)
            t_warm, _ = _ms(lambda p=p: features.collections(c, p), args.runs)
            t_none, _ = _ms(lambda p=p: [features._describe(c, layer, n) for layer, n in sources.listing(c, p)],
                            args.runs)
            rep.p(f"- collections for {who}: {len(cols)} collections, cold {t_cold:,.1f} ms, warm {t_warm:,.1f} ms; "
                  f"the same list without extents {t_none:,.1f} ms (load {load()})")

        rep.h(f"Tile feature cap (load average {load()})")
        big = max((x for x in listed if x[0].kind == "class"), key=lambda x: x[1])[0]
        view = big.view(SYSTEM)
        assert view is not None
        for z in (12, 14, 16):
            x, y = _tile(*URBAN, z)
            sql, extra = big.tile_sql(z, view)
            params = {"z": z, "x": x, "y": y, "ext": sources.TILE_EXTENT, "buf": sources.TILE_BUFFER,
                      "layer": big.id, "cap": 20_000} | extra
            before = sql.replace(", count(*) FROM f", " FROM f")  # the render as it was: no count, LIMIT cap
            assert before != sql
            t_before, _ = _ms(lambda before=before, params=params: c.execute(text(before), params).scalar(), args.runs)
            t_full, full = _ms(lambda z=z, x=x, y=y: tiles.tile(c, SYSTEM, big.id, z, x, y, cache=None), args.runs)
            cap = max(1, full.total // 4)
            t_cap, capped = _ms(lambda z=z, x=x, y=y, cap=cap: tiles.tile(c, SYSTEM, big.id, z, x, y, cap=cap,
                                                                        cache=None), args.runs)
            rep.p(f"- {big.id} z{z}/{x}/{y}: {full.total:,} features; render without the count {t_before:,.1f} ms, "
                  f"with it (default cap) {t_full:,.1f} ms ({len(full.data):,} B); cap {cap:,}: "
                  f"{t_capped_str(t_cap, capped)} (load {load()})")
    print(rep.text())
    log("done")


def t_capped_str(ms: float, t: Any) -> str:
    return f"{ms:,.1f} ms, kept {t.kept:,}/{t.total:,}, complete from z{t.complete_zoom} ({len(t.data):,} B)"


def _tile(x0: float, y0: float, x1: float, y1: float, z: int) -> tuple[int, int]:
    """The tile at zoom z holding the middle of the box."""
    import math

    lon, lat = (x0 + x1) / 2, (y0 + y1) / 2
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


if __name__ == "__main__":
    main()
