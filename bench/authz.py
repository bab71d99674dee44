"""What security costs per request: authentication + authorization + masking on an OGC items page, a vector
tile and a geocode, as a ratio to the same request with security off, in the same run.

Both variants go through the whole app in process (FastAPI's TestClient over ASGI, no network), against the
demo county with its grids and address base (the database of bench/geocode_eval.py, built on first use):

- **off**: the same request with the same bearer header, but `api.deps._authenticate` (what `conn` calls to
  turn credentials into a principal) replaced by one answering `SYSTEM` at once: no token is verified, no
  principal is loaded, every rule short-circuits for the process itself, and nothing is withheld (attributes as
  stored, `o.attrs`, no redaction SQL). This is what the request cost before principals existed. (FastAPI's
  `dependency_overrides` would do too, but it re-reads the override's signature on every request, which made
  "off" slower than the public's requests and hid half of the cost.)
- **on**: a department's user with a bearer token (JWT verified, the principal and its grants loaded from the
  database on every request, as the app does), scoped to the county at clearance L2: rules are evaluated and
  attributes are cut by its clearance in SQL, inside its scope and outside it (the CASE in
  `classification.attrs_sql`); its transactions take row-level security's area role, whose policy the
  database pays for (bench/dbsec.py measures that part alone).
- **on***: the same user unscoped (a grant without a division): the same checks, but the `*` scope whose
  policy is `true` (free): authentication + authorization + redaction without the area policy.
- **public** (for reference): anonymous, no credentials to check, the public's redaction.

Rate limits are off for the run (a tight loop would be answered 429). Requests of the variants are interleaved
(off, on, public, off, …) so drift in the machine hits all alike. Pages and tiles are measured twice: built every time (the in-process caches off) and served from the cache
(the common case for map clients; the cache key includes the caller's view). Then the parts in process, without
HTTP: authentication, the authorization decision, and a page built with and without redaction. Figures are
printed, not asserted.

    .venv/bin/python bench/authz.py [--n 200] [--scale 0.2]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
# Rate limits (api/hardening.py) would answer a tight loop with 429: they are measured by their own tests.
os.environ.setdefault("CITYGRID_RATE_LIMITS", "0")

from fastapi.testclient import TestClient  # noqa: E402
from geocode_eval import url_for  # noqa: E402

from api import deps  # noqa: E402
from api.main import create_app  # noqa: E402
from citygrid.layers import features, sources, tiles  # noqa: E402
from citygrid.security import credentials, tokens  # noqa: E402
from citygrid.security.principal import SYSTEM, Grant, Principal  # noqa: E402

PASSWORD = "bench authz password"
# The department's user, two ways: scoped to the county (as the demo's are; row-level security's area role, whose
# policy costs the database what citygrid_all's `true` does not, citygrid/db/roles.py) and unscoped.
USERS = {"on": ("bench-authz", Grant("department", "420281", "housing")),
         "on*": ("bench-authz-all", Grant("department", None, "housing"))}
TARGET = 0.05


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def _users(engine: Any) -> None:
    with engine.begin() as c:
        for name, grant in USERS.values():
            if not c.execute(text("SELECT 1 FROM principal WHERE username = :u"), {"u": name}).first():
                credentials.add_principal(c, name, password=PASSWORD, clearance="L2", grants=[grant])


Case = tuple[str, str, dict[str, Any], dict[str, Any] | None]  # method, path, query, JSON body


def _requests(engine: Any) -> dict[str, Case]:
    with engine.connect() as c:
        cls, lon, lat = c.execute(text(
            "SELECT class_code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM city_object "
            "WHERE class_code = (SELECT class_code FROM city_object GROUP BY 1 ORDER BY count(*) DESC LIMIT 1) "
            "ORDER BY code LIMIT 1")).one()
        doors = list(c.execute(text("SELECT full_name FROM addr_node WHERE level = 'door' ORDER BY code LIMIT 10"))
                     .scalars())
    x, y = _tile_of(lon, lat, 15)
    return {"OGC items page (100)": ("GET", f"/ogc/collections/class-{cls}/items", {"limit": 100}, None),
            "vector tile z15": ("GET", f"/tiles/class-{cls}/15/{x}/{y}.mvt", {}, None),
            # a department's geocode: the POST route (one address typed on the map, GET, reads no credentials)
            "geocode (POST, 10 addresses)": ("POST", "/address/geocode", {}, {"addresses": doors})}


def _system(c: Any, token: str | None, api_key: str | None) -> Principal:
    """Security off: whatever the credentials, the process itself (nothing checked, nothing withheld)."""
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
    _users(engine)
    app = create_app(url, prepare=False)
    with TestClient(app) as client:
        tokens_of = {v: client.post("/auth/token", data={"username": name, "password": PASSWORD}).json()["access_token"]
                     for v, (name, _) in USERS.items()}
        headers = {v: {"Authorization": f"Bearer {t}"} for v, t in tokens_of.items()} | {"off": {
            "Authorization": f"Bearer {tokens_of['on']}"}, "public": {}}
        token = tokens_of["on"]
        cases = _requests(engine)
        authenticate = deps._authenticate

        def call(case: Case, variant: str) -> None:
            method, path, params, body = case
            deps._authenticate = _system if variant == "off" else authenticate  # type: ignore[assignment]
            r = client.request(method, path, params=params, json=body, headers=headers[variant])
            assert r.status_code == 200, (path, variant, r.text[:300])

        rows: list[tuple[str, dict[str, float]]] = []
        for cached in (False, True):
            features.PAGES.max_items = 5_000 if cached else 0
            tiles.CACHE.max_items = 20_000 if cached else 0
            for name, case in cases.items():
                if cached and case[0] == "POST":
                    continue  # geocodes are never cached
                variants = ("off", "on*", "on") + (() if case[0] == "POST" else ("public",))  # the public may not POST
                for v in variants:  # warm up: index, prepared statements, caches
                    for _ in range(5):
                        call(case, v)
                times: dict[str, list[float]] = {v: [] for v in variants}
                for _ in range(args.n):
                    for v in variants:
                        times[v].append(_time(lambda v=v, case=case: call(case, v)))
                med = {v: statistics.median(t) for v, t in times.items()}
                rows.append((f"{name}{' (cached)' if cached else ''}", med))
        deps._authenticate = authenticate  # type: ignore[assignment]

    load = os.getloadavg()[0]
    print(f"\nmedian ms of {args.n} requests per variant, interleaved; added = on / off - 1 (target < {TARGET:.0%}); "
          f"load average {load:.1f} on {os.cpu_count()} CPUs\n")
    print("on*: the department's user unscoped; on: scoped to the county (row-level security's area role)\n")
    print("| request | off ms | on* ms | added | on ms | added | public ms | added |")
    print("|---|---|---|---|---|---|---|---|")
    for name, med in rows:
        off = med["off"]
        cells = [f"{med[v]:.2f} | {med[v] / off - 1:+.1%}" if v in med else "- | -" for v in ("on*", "on", "public")]
        print(f"| {name} | {off:.2f} | {' | '.join(cells)} |")
    _parts(engine, token, cases, args.n)


def _parts(engine: Any, token: str, cases: dict[str, Case], n: int) -> None:
    """The same costs taken apart, in this process without HTTP or threads, so the machine's load (other
    processes competing for the CPUs lengthen every trip between threads) counts less."""
    with engine.connect() as c:
        p = credentials.load(c, tokens.subject(token), via="token")
        assert p is not None
        _, path, params, _ = cases["OGC items page (100)"]
        cid = path.split("/")[3]
        layer = sources.find(cid)
        assert layer is not None
        parts = {"authentication: verify the token, load the principal and its grants (one query)":
                 lambda: credentials.load(c, tokens.subject(token), via="token"),
                 "authorization + what to withhold: the layer's view for the caller (no query)": lambda: layer.view(p),
                 "OGC items page built, security off (SYSTEM: attributes as stored)":
                 lambda: features.items(c, SYSTEM, cid, limit=params["limit"], cache=None),
                 "OGC items page built for the department user (attributes cut in SQL)":
                 lambda: features.items(c, p, cid, limit=params["limit"], cache=None)}
        times: dict[str, list[float]] = {name: [] for name in parts}
        for fn in parts.values():
            fn()
        for _ in range(n):  # interleaved, like the requests above
            for name, fn in parts.items():
                times[name].append(_time(fn))
    print("\nin process, no HTTP (median ms of", n, "interleaved runs):\n")
    print("| part | ms |")
    print("|---|---|")
    for name, t in times.items():
        print(f"| {name} | {statistics.median(t):.3f} |")

if __name__ == "__main__":
    main()
