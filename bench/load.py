"""Load: a bounded asyncio client (aiohttp) against the API as `make run` serves it, loopback only (issue 13).

A mix of geocoding (35 %), OGC items (20 %), vector tiles (20 %), aggregates (10 %) and authenticated object
writes (15 %, `POST /objects` with an API key) from N concurrent clients for a fixed time, against
`citygrid serve --workers W` with one worker and with several (what `make run` runs: uvicorn for one worker,
gunicorn's pre-fork master with uvicorn workers for several). Printed per configuration and kind: requests,
throughput, p50/p95/p99, error rate (any answer that is not 2xx, or no answer); database connections of the API's
database before, at most during, and after (the pool is sized in citygrid/db/engine.py: 10 + 20 overflow per
engine and process); the server's RSS and PSS (master and workers) at the start and the end (the soak's
question: is memory flat).

Rate limits are off in the server under test (CITYGRID_RATE_LIMITS=0): a load test from one address would
otherwise measure the limiter. Inputs are sampled from the database: door and room addresses for geocoding,
collections and layers with data, tiles over the county at z14.

    .venv/bin/python bench/load.py [--clients 32 128] [--workers 1 3] [--duration 20]
        [--database-url URL]      default: the one `make run` uses (the private cluster in .citygrid)
        [--prepare-demo 0.05]     load the demo county at this scale first if the database has none
    make soak                     one worker, 32 clients, 30 minutes, memory sampled through the run

The client runs on the same machine and takes CPU from the server: figures are a floor, and say so with the
load average printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psycopg
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIX = {"geocode": 35, "ogc_items": 20, "tiles": 20, "aggregate": 10, "write": 15}
WRITE_CLASS = "010101"  # 上水井盖: a point class (state is required)


def _conninfo(url: str) -> str:
    from sqlalchemy import make_url

    u = make_url(url)
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in (
        ("host", u.host), ("port", u.port), ("user", u.username), ("password", u.password),
        ("dbname", u.database)) if v is not None})


def _connections(url: str) -> dict[str, int]:
    with psycopg.connect(_conninfo(url), autocommit=True) as c:
        rows = c.execute("SELECT usename, count(*) FROM pg_stat_activity WHERE datname = current_database() "
                         "AND pid <> pg_backend_pid() GROUP BY 1").fetchall()
    return {str(u): int(n) for u, n in rows}


def _postmaster(url: str) -> int | None:
    """The PostgreSQL server's process when it runs on this machine (its backends are its children)."""
    try:
        with psycopg.connect(_conninfo(url), autocommit=True) as c:
            row = c.execute("SHOW data_directory").fetchone()
        return int((Path(row[0]) / "postmaster.pid").read_text().split()[0]) if row else None
    except (OSError, ValueError, psycopg.Error):
        return None


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a server and its child processes so far (the API's workers; PostgreSQL's backends,
    with those already ended): divided by the requests of a run, what one request costs, to set against the CPUs
    there are (and the client's own cost, `os.times`)."""
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    ticks = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
        if p == pid:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: children that ended
    return ticks / os.sysconf("SC_CLK_TCK")


def _memory_mb(pid: int) -> tuple[float, float, list[float]]:
    """RSS and PSS of a server and its worker processes, in MB, and each process's PSS. RSS counts a page shared
    by several workers once per worker; PSS divides it among them, so it is what the processes really cost
    together (the workers of `citygrid serve --workers N` share the address index the master loaded)."""
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    rss = pss = 0
    each: list[float] = []
    for p in pids:
        try:
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()[1:])
        except OSError:
            continue
        rss += int(fields["Rss"].split()[0])
        pss += int(fields["Pss"].split()[0])
        each.append(int(fields["Pss"].split()[0]) / 1024)
    return rss / 1024, pss / 1024, each


def _sample_memory(pid: int, every: float) -> tuple[list[tuple[float, float, float]], threading.Event]:
    """(seconds, RSS, PSS) of the server every `every` seconds until the event is set: a soak's question is whether
    memory levels off, which a start and an end cannot tell."""
    samples: list[tuple[float, float, float]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sample() -> None:
        while not stop.wait(every):
            rss, pss, _ = _memory_mb(pid)
            samples.append((time.monotonic() - t0, rss, pss))

    threading.Thread(target=sample, daemon=True).start()
    return samples, stop


def _prepare(url: str, scale: float | None) -> None:
    from sqlalchemy import text

    from citygrid.db.bootstrap import prepare

    engine = prepare(url)
    with engine.connect() as c:
        has_demo = c.execute(text("SELECT count(*) FROM data_source WHERE name LIKE 'demo-%'")).scalar_one()
        has_address = c.execute(text("SELECT count(*) FROM addr_node")).scalar_one()
    if has_demo and has_address:
        return
    if scale is None:
        sys.exit("the database has no demo county: run `make run` once, or pass --prepare-demo 0.05")
    from citygrid.demo.load import load_address_base, load_demo
    from citygrid.grid.generate import generate
    from citygrid.regions.load import load_divisions

    load_divisions(engine)
    load_demo(engine, seed=42, scale=scale)
    generate(engine, "420281", seed=42)
    load_address_base(engine, "420281", seed=42)


def _principal(url: str) -> str:
    from citygrid.db.engine import engine_for
    from citygrid.security import credentials

    name = f"load-{os.getpid()}"
    with engine_for(url).begin() as c:
        credentials.add_principal(c, name, kind="service", clearance="L2",
                                  grants=[credentials.parse_grant("admin")])
        return str(credentials.create_api_key(c, name, "bench/load.py")["key"])


def _inputs(url: str) -> dict[str, Any]:
    with psycopg.connect(_conninfo(url)) as c:
        addresses = [r[0] for r in c.execute(
            "SELECT full_name FROM addr_node WHERE level IN ('door', 'room') AND full_name IS NOT NULL "
            "ORDER BY md5(code) LIMIT 2000").fetchall()]
        points = c.execute("SELECT ST_X(geom), ST_Y(geom) FROM city_object WHERE geom IS NOT NULL AND "
                           "GeometryType(geom) = 'POINT' ORDER BY md5(code) LIMIT 2000").fetchall()
        box = c.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e "
                        "FROM division WHERE code = '420281') t").fetchone()
    tiles = sorted({_tile(x, y, 14) for x, y in points})
    return {"addresses": addresses, "points": points, "box": box, "tiles": tiles}


def _tile(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


class Server:
    """`citygrid serve --no-demo --workers N` (what `make run` runs) on a free loopback port, as its own process."""

    def __init__(self, url: str, workers: int, env: dict[str, str]) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "citygrid"), "serve", "--no-demo", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(workers)],
            cwd=ROOT, env={**env, "DATABASE_URL": url}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("the server did not start")
            try:
                if httpx.get(self.base + "/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)  # the master, its workers and the webhook process
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


async def _run(base: str, key: str, data: dict[str, Any], clients: int, duration: float, url: str,
               mix: dict[str, int]) -> tuple[dict[str, list[float]], dict[str, int], dict[str, int], int]:
    lat: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    codes: dict[str, int] = defaultdict(int)
    kinds = [k for k, w in mix.items() for _ in range(w)]
    # aiohttp, not httpx: httpx spent 2.6-3.1 ms of the shared CPUs per request, as much as the server's whole
    # geocode, so the client set the ceiling; aiohttp's request costs a fraction of that
    async with aiohttp.ClientSession(base_url=base, timeout=aiohttp.ClientTimeout(total=60),
                                     connector=aiohttp.TCPConnector(limit=clients)) as c:
        async def get_json(path: str) -> Any:
            async with c.get(path) as r:
                return await r.json()

        collections = [x["id"] for x in (await get_json("/ogc/collections"))["collections"]
                       if x.get("numberOfFeatures")]
        all_layers = (await get_json("/layers"))["layers"]
        layers = [x["id"] for x in all_layers if x.get("kind") == "class"] or [x["id"] for x in all_layers]
        classes = sorted({x.removeprefix("class-") for x in layers if x.removeprefix("class-").isdigit()}) or \
            [WRITE_CLASS]
        x0, y0, x1, y1 = data["box"]

        def request(kind: str, rnd: random.Random) -> tuple[str, str, dict[str, Any]]:
            if kind == "geocode":
                return "GET", "/address/geocode", {"params": {"q": rnd.choice(data["addresses"])}}
            if kind == "ogc_items":
                bx, by = rnd.uniform(x0, x1 - 0.02), rnd.uniform(y0, y1 - 0.02)
                return "GET", f"/ogc/collections/{rnd.choice(collections)}/items", {
                    "params": {"bbox": f"{bx},{by},{bx + 0.02},{by + 0.02}", "limit": 50}}
            if kind == "tiles":
                z, tx, ty = rnd.choice(data["tiles"])
                return "GET", f"/tiles/{rnd.choice(layers)}/{z}/{tx}/{ty}.mvt", {}
            if kind == "aggregate":
                return "GET", "/aggregate", {"params": {"by": rnd.choice(["h3:7", "h3:8", "township"]),
                                                       "class": rnd.choice(classes)}}
            px, py = rnd.choice(data["points"])
            return "POST", "/objects", {"headers": {"X-API-Key": key}, "json": {
                "class_code": WRITE_CLASS, "name": "压测井盖", "attrs": {"state": "完好"},
                "geometry": {"type": "Point", "coordinates": [px + rnd.uniform(-1e-4, 1e-4),
                                                              py + rnd.uniform(-1e-4, 1e-4)]}}}

        # warm-up, not counted: the address index loads on the first geocode, caches fill on first use
        warm = random.Random(-1)
        for kind in MIX:
            for _ in range(3):
                method, path, kw = request(kind, warm)
                async with c.request(method, path, **kw) as r:
                    await r.read()
        end = time.monotonic() + duration

        async def one(i: int) -> None:
            rnd = random.Random(i)
            while time.monotonic() < end:
                kind = rnd.choice(kinds)
                method, path, kw = request(kind, rnd)
                t = time.perf_counter()
                try:
                    async with c.request(method, path, **kw) as r:
                        await r.read()
                    ok = 200 <= r.status < 300
                    codes[f"{kind} {r.status}"] += 1
                except (TimeoutError, aiohttp.ClientError) as exc:
                    ok = False
                    codes[f"{kind} {type(exc).__name__}"] += 1
                lat[kind].append(time.perf_counter() - t)
                if not ok:
                    errors[kind] += 1

        peak = 0

        async def watch() -> None:
            nonlocal peak
            while time.monotonic() < end:
                peak = max(peak, sum((await asyncio.to_thread(_connections, url)).values()))
                await asyncio.sleep(0.5)

        await asyncio.gather(watch(), *(one(i) for i in range(clients)))
    return lat, errors, codes, peak


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000 if s else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--database-url")
    ap.add_argument("--prepare-demo", type=float, default=None, metavar="SCALE")
    ap.add_argument("--only", choices=sorted(MIX), help="one kind of request alone (e.g. geocode: how it holds when "
                    "it does not share the CPUs with the rest of the mix)")
    args = ap.parse_args()
    mix = {args.only: 1} if args.only else MIX

    from citygrid.db.engine import database_url
    from citygrid.settings import get_settings

    tmp = Path(tempfile.mkdtemp(prefix="citygrid-load-"))
    keyring = os.environ.get("CITYGRID_KEYRING_FILE") or str(get_settings().data_dir / "keyring.json")
    os.environ["CITYGRID_KEYRING_FILE"] = keyring  # the bench's API key and the server check it with one keyring
    get_settings.cache_clear()
    url = args.database_url or database_url()
    url = "postgresql+psycopg://" + url.removeprefix("postgresql://") if url.startswith("postgresql://") else url
    _prepare(url, args.prepare_demo)
    key = _principal(url)
    data = _inputs(url)
    env = {**os.environ, "CITYGRID_RATE_LIMITS": "0", "CITYGRID_DATA_DIR": str(tmp), "CITYGRID_KEYRING_FILE": keyring}
    report: list[dict[str, Any]] = []
    try:
        for workers in args.workers:
            server = Server(url, workers, env)
            try:
                rss0, pss0, each0 = _memory_mb(server.proc.pid)
                samples, stop_sampling = _sample_memory(server.proc.pid, max(10.0, args.duration / 30))
                for clients in args.clients:
                    before = _connections(url)
                    pg = _postmaster(url)
                    pg0 = _cpu_seconds(pg) if pg else 0.0
                    cpu0, own0 = _cpu_seconds(server.proc.pid), os.times()
                    lat, errors, codes, peak = uvloop.run(_run(server.base, key, data, clients, args.duration, url,
                                                                      mix))
                    cpu1, own1 = _cpu_seconds(server.proc.pid), os.times()
                    pg1 = _cpu_seconds(pg) if pg else 0.0
                    time.sleep(1)
                    after = _connections(url)
                    total = sum(len(v) for v in lat.values())
                    load = os.getloadavg()
                    print(f"\n== {workers} worker(s), {clients} clients, {args.duration:.0f} s; load average "
                          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")
                    print(f"   {'kind':<10} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
                          f"{'errors':>7}")
                    for kind in mix:
                        v = lat.get(kind, [])
                        print(f"   {kind:<10} {len(v):>8} {len(v) / args.duration:>7.1f} {_pct(v, .5):>8.1f} "
                              f"{_pct(v, .95):>8.1f} {_pct(v, .99):>8.1f} "
                              f"{100 * errors.get(kind, 0) / max(1, len(v)):>6.2f}%")
                    all_lat = [x for v in lat.values() for x in v]
                    print(f"   {'all':<10} {total:>8} {total / args.duration:>7.1f} {_pct(all_lat, .5):>8.1f} "
                          f"{_pct(all_lat, .95):>8.1f} {_pct(all_lat, .99):>8.1f} "
                          f"{100 * sum(errors.values()) / max(1, total):>6.2f}%")
                    client_cpu = own1.user + own1.system - own0.user - own0.system
                    print(f"   CPU per request: server {1000 * (cpu1 - cpu0) / max(1, total):.2f} ms, PostgreSQL "
                          + (f"{1000 * (pg1 - pg0) / max(1, total):.2f} ms" if pg else "(not on this machine)")
                          + f", this client {1000 * client_cpu / max(1, total):.2f} ms (server {cpu1 - cpu0:.1f} s, "
                          f"PostgreSQL {pg1 - pg0:.1f} s, client {client_cpu:.1f} s of {os.cpu_count()} CPUs x "
                          f"{args.duration:.0f} s)")
                    bad = {k: n for k, n in codes.items() if not k.split()[1].startswith("2")}
                    if bad:
                        print(f"   not 2xx: {json.dumps(bad, ensure_ascii=False)}")
                    print(f"   database connections: before {sum(before.values())} {before}, at most {peak} during, "
                          f"after {sum(after.values())} {after}")
                    report.append({"workers": workers, "clients": clients, "requests": total,
                                   "errors": sum(errors.values()), "geocode_p99_ms": _pct(lat["geocode"], .99)})
                stop_sampling.set()
                rss1, pss1, each1 = _memory_mb(server.proc.pid)
                print("   memory over the run (seconds: RSS/PSS MB): "
                      + ", ".join(f"{t:.0f}: {r:.0f}/{q:.0f}" for t, r, q in samples))
                print(f"   server memory ({workers} worker(s), master and workers together): RSS start {rss0:.0f} MB, "
                      f"end {rss1:.0f} MB; PSS start {pss0:.0f} MB, end {pss1:.0f} MB; PSS per process at the end "
                      + ", ".join(f"{m:.0f}" for m in each1) + " MB")
            finally:
                server.stop()
        time.sleep(1)
        print(f"\ndatabase connections after every server stopped: {_connections(url)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
