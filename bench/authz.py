"""What security costs per request: authentication + authorization + masking on an OGC items page, a vector
tile and a geocode, as a ratio to the same request with security off, in the same run.

Both variants go through the whole app in process (FastAPI's TestClient over ASGI, no network), against the
demo county with its grids and address base (the database of bench/geocode_eval.py, built on first use):

- **off**: `current_principal` is overridden by an async function returning `SYSTEM` without reading any
  header (async, so it costs no thread-pool trip: close to the app before it had principals). No token is
  verified, no principal is loaded, every rule short-circuits for the process itself, and nothing is
  withheld, so the attributes are served as stored (`o.attrs`, no redaction SQL). This is what the request
  cost before principals existed.
- **on**: a department's user with a bearer token (JWT verified, the principal and its grants loaded from the
  database on every request, as the app does), scoped to the county at clearance L2: rules are evaluated and
  attributes are cut by its clearance in SQL, inside its scope and outside it (the CASE in
  `classification.attrs_sql`).
- **public** (for reference): anonymous, no credentials to check, the public's redaction.

Requests of the variants are interleaved (off, on, public, off, …) so drift in the machine hits all alike.
Pages and tiles are measured twice: built every time (the in-process caches off) and served from the cache
(the common case for map clients; the cache key includes the caller's view). Figures are printed, not asserted.

    .venv/bin/python bench/authz.py [--n 200] [--scale 0.2]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastapi.testclient import TestClient  # noqa: E402
from geocode_eval import url_for  # noqa: E402

from api.deps import current_principal  # noqa: E402
from api.main import create_app  # noqa: E402
from citygrid.layers import features, tiles  # noqa: E402
from citygrid.security import credentials  # noqa: E402
from citygrid.security.principal import SYSTEM, Grant, Principal  # noqa: E402

USER, PASSWORD = "bench-authz", "bench authz password"
TARGET = 0.05


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def _user(engine: Any) -> None:
    with engine.begin() as c:
        if not c.execute(text("SELECT 1 FROM principal WHERE username = :u"), {"u": USER}).first():
            credentials.add_principal(c, USER, password=PASSWORD, clearance="L2",
                                      grants=[Grant("department", "420281", "housing")])


def _requests(engine: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    with engine.connect() as c:
        cls, lon, lat = c.execute(text(
            "SELECT class_code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM city_object "
            "WHERE class_code = (SELECT class_code FROM city_object GROUP BY 1 ORDER BY count(*) DESC LIMIT 1) "
            "ORDER BY code LIMIT 1")).one()
        q = c.execute(text("SELECT full_name FROM addr_node WHERE level = 'door' ORDER BY code LIMIT 1")).scalar_one()
    x, y = _tile_of(lon, lat, 15)
    return {"OGC items page (100)": (f"/ogc/collections/class-{cls}/items", {"limit": 100}),
            "vector tile z15": (f"/tiles/class-{cls}/15/{x}/{y}.mvt", {}),
            "geocode": ("/address/geocode", {"q": q})}


async def _system() -> Principal:
    """Security off: no header read, no thread-pool trip, the process itself (nothing withheld)."""
    return SYSTEM


def _time(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="requests per variant and case (default 200)")
    ap.add_argument("--scale", type=float, default=0.2, help="demo county scale if the database is built")
    args = ap.parse_args()
    url, engine = url_for(False, args.scale)
    _user(engine)
    app = create_app(url, prepare=False)
    with TestClient(app) as client:
        token = client.post("/auth/token", data={"username": USER, "password": PASSWORD}).json()["access_token"]
        on = {"Authorization": f"Bearer {token}"}
        cases = _requests(engine)

        def call(path: str, params: dict[str, Any], variant: str) -> None:
            if variant == "off":
                app.dependency_overrides[current_principal] = _system
            else:
                app.dependency_overrides.pop(current_principal, None)
            r = client.get(path, params=params, headers=on if variant == "on" else {})
            assert r.status_code == 200, (path, variant, r.text[:300])

        rows = []
        for cached in (False, True):
            features.PAGES.max_items = 5_000 if cached else 0
            tiles.CACHE.max_items = 20_000 if cached else 0
            for name, (path, params) in cases.items():
                if cached and name == "geocode":
                    continue  # geocodes are never cached
                for v in ("off", "on", "public"):  # warm up: index, prepared statements, caches
                    for _ in range(5):
                        call(path, params, v)
                times: dict[str, list[float]] = {"off": [], "on": [], "public": []}
                for _ in range(args.n):
                    for v in times:
                        times[v].append(_time(lambda v=v, path=path, params=params: call(path, params, v)))
                med = {v: statistics.median(t) for v, t in times.items()}
                rows.append((f"{name}{' (cached)' if cached and name != 'geocode' else ''}", med["off"], med["on"],
                             med["public"], med["on"] / med["off"] - 1, med["public"] / med["off"] - 1))
        app.dependency_overrides.clear()

    print(f"\nmedian ms of {args.n} requests per variant, interleaved; added = on / off - 1 (target < {TARGET:.0%})\n")
    print("| request | off ms | on ms | public ms | added (on) | added (public) |")
    print("|---|---|---|---|---|---|")
    for name, off, on_, pub, add_on, add_pub in rows:
        print(f"| {name} | {off:.2f} | {on_:.2f} | {pub:.2f} | {add_on:+.1%} | {add_pub:+.1%} |")


if __name__ == "__main__":
    main()
