"""Memory of several workers (issue 14): `citygrid serve --workers N` (gunicorn's master loads the address index,
then forks) against uvicorn's own `--workers N` (each worker spawned, building its own index), on the same
database. Each server is asked for readiness and a geocode on every worker first, so every worker has its index;
then RSS and PSS of master and workers are read from /proc (PSS divides shared pages among the processes that
share them: the figure that adds up).

    .venv/bin/python bench/workers_memory.py [--workers 2] [--database-url URL] [--prepare-demo SCALE]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import ROOT, _memory_mb, _prepare  # noqa: E402  (bench/ is not a package)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(cmd: list[str], url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    proc = subprocess.Popen([*cmd, "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                            env={**os.environ, "DATABASE_URL": url, "CITYGRID_RATE_LIMITS": "0"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def _ready_everywhere(base: str, workers: int, q: str) -> float:
    """Seconds until `workers` distinct processes have answered readiness 200 and a geocode."""
    t0 = time.monotonic()
    ready: set[int] = set()
    while len(ready) < workers:
        if time.monotonic() - t0 > 600:
            sys.exit("workers never became ready")
        try:
            with httpx.Client(base_url=base, timeout=60) as c:
                r = c.get("/readyz")
                if r.status_code == 200:
                    c.get("/address/geocode", params={"q": q}).raise_for_status()
                    ready.add(int(r.json().get("pid") or c.get("/healthz").json()["pid"]))
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--database-url")
    ap.add_argument("--prepare-demo", type=float, default=None, metavar="SCALE")
    args = ap.parse_args()
    from sqlalchemy import create_engine, text

    from citygrid.db.engine import database_url

    url = args.database_url or database_url()
    url = "postgresql+psycopg://" + url.removeprefix("postgresql://") if url.startswith("postgresql://") else url
    _prepare(url, args.prepare_demo)
    with create_engine(url).connect() as c:
        doors = c.execute(text("SELECT count(*) FROM addr_node")).scalar_one()
        q = c.execute(text("SELECT full_name FROM addr_node WHERE level = 'door' ORDER BY code LIMIT 1")).scalar_one()
    bin_ = ROOT / ".venv" / "bin"
    n = args.workers
    runs = {
        f"citygrid serve --workers {n} (pre-fork, index loaded once)":
            [str(bin_ / "citygrid"), "serve", "--no-demo", "--workers", str(n)],
        f"uvicorn --workers {n} (spawned, an index per worker)":
            [str(bin_ / "uvicorn"), "api.main:worker_app", "--factory", "--workers", str(n), "--log-level", "error"],
    }
    load = os.getloadavg()
    print(f"address nodes in the index: {doors}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"({os.cpu_count()} CPUs)")
    print(f"{'server':<58} {'ready s':>8} {'RSS MB':>8} {'PSS MB':>8}  PSS per process MB")
    for name, cmd in runs.items():
        proc, base = _serve(cmd, url)
        try:
            seconds = _ready_everywhere(base, n, q)
            time.sleep(1)
            rss, pss, each = _memory_mb(proc.pid)
            print(f"{name:<58} {seconds:>8.1f} {rss:>8.0f} {pss:>8.0f}  " + ", ".join(f"{m:.0f}" for m in each))
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


if __name__ == "__main__":
    main()
