"""PostgreSQL restarted under load: what callers get meanwhile and how soon the server recovers (issue 13).

A throwaway cluster of its own (never the developer's or the tests'), migrated; the API under uvicorn as a
separate process, as `citygrid serve` runs it; 4 clients in a loop on a read that needs the database
(`/divisions?name=`) and on geocoding (whose index is in memory). After a warm-up the cluster is stopped
(`pg_ctl stop -m fast`), left down, started again. Printed per phase and route: answers by status and content
type, whether every 503 had Retry-After, the slowest answer, and how long after the database was back the first
database read succeeded. Figures are printed, not asserted (tests/test_reliability_outage.py asserts).

    .venv/bin/python bench/outage.py [--down 10] [--clients 4]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from citygrid.db.bootstrap import prepare  # noqa: E402
from citygrid.db.cluster import Cluster  # noqa: E402

ROUTES = {"divisions": "/divisions?name=大冶", "geocode": "/address/geocode?q=湖北省大冶市金湖街道"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warm", type=float, default=5)
    ap.add_argument("--down", type=float, default=10)
    ap.add_argument("--after", type=float, default=5)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()

    root = ROOT / f".citygrid-bench-outage-{os.getpid()}"
    cluster = Cluster(root)
    url = cluster.start()
    server: subprocess.Popen[bytes] | None = None
    try:
        prepare(url)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = os.environ | {"DATABASE_URL": url, "CITYGRID_DATA_DIR": str(root), "CITYGRID_RATE_LIMITS": "0"}
        server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "uvicorn"), "api.main:create_app", "--factory",
                                   "--port", str(port), "--log-level", "error"], cwd=ROOT, env=env)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        log: list[tuple[float, str, int, str, bool, float]] = []
        lock = threading.Lock()
        stop = threading.Event()

        def client() -> None:
            with httpx.Client(base_url=base, timeout=30) as c:
                while not stop.is_set():
                    for name, path in ROUTES.items():
                        t = time.monotonic()
                        try:
                            r = c.get(path)
                            row = (t, name, r.status_code, r.headers.get("content-type", "").split(";")[0],
                                   "retry-after" in r.headers, time.monotonic() - t)
                        except httpx.HTTPError as exc:
                            row = (t, name, 0, type(exc).__name__, False, time.monotonic() - t)
                        with lock:
                            log.append(row)

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for th in threads:
            th.start()
        time.sleep(args.warm)
        t_down = time.monotonic()
        cluster.stop()
        time.sleep(args.down)
        cluster.start()
        t_up = time.monotonic()
        time.sleep(args.after)
        stop.set()
        for th in threads:
            th.join()
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)

    def phase(t: float) -> str:
        return "before" if t < t_down else "down" if t < t_up else "after"

    table: dict[tuple[str, str], collections.Counter[str]] = collections.defaultdict(collections.Counter)
    slowest: dict[tuple[str, str], float] = collections.defaultdict(float)
    missing_retry = 0
    for t, name, status, ctype, retry, took in log:
        key = (phase(t), name)
        table[key][f"{status} {ctype}"] += 1
        slowest[key] = max(slowest[key], took)
        missing_retry += status == 503 and not retry
    print(f"{args.clients} clients, database down {args.down:.0f} s (stopped with pg_ctl -m fast, then started)")
    for key in sorted(table, key=lambda k: (["before", "down", "after"].index(k[0]), k[1])):
        answers = ", ".join(f"{n}× {k}" for k, n in table[key].most_common())
        print(f"  {key[0]:<7} {key[1]:<10} {answers}  (slowest {slowest[key] * 1000:.0f} ms)")
    print(f"  503 answers without Retry-After: {missing_retry}")
    back = [t for t, name, status, *_ in log if name == "divisions" and status == 200 and t >= t_up]
    print(f"  first database read answered 200 {(min(back) - t_up) * 1000:.0f} ms after the database was started"
          if back else "  no database read succeeded after the restart")


if __name__ == "__main__":
    main()
