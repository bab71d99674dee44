"""Batch jobs whose process is killed (kill -9, for real) are found at the next start-up, marked interrupted with
their result file cut back to what their record says, and can be resumed (API), retried (CLI) or cancelled;
record and file agree at every step, and job details name no server path."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid import jobs
from citygrid.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
N = 6000
# A batch job in a process of its own, geocoding a little slower than usual (1 ms a row) so it can be killed
# mid-way; its job id goes to stdout.
WORKER = """
import sys, time
from citygrid import jobs
from citygrid.address import batch
from citygrid.address.resolve import AddressIndex
from citygrid.db.engine import engine_for
from citygrid.settings import get_settings

url, owner, src = sys.argv[1:4]
engine = engine_for(url)
with engine.connect() as c:
    index = AddressIndex.load(c)
real = batch.geocode_row
def slow(*a, **k):
    time.sleep(0.001)
    return real(*a, **k)
batch.geocode_row = slow
root = get_settings().data_dir
with open(src, "rb") as f:
    path = batch.store_upload(root, "big.csv", f, 1 << 30)
header, _ = batch.iter_rows(path, None)
upload = batch.Upload("big.csv", path, None, header)
rec = jobs.JobRecorder(engine, batch.KIND, detail=upload.detail(root), owner=owner)
print(rec.id, flush=True)
jobs.run_recorded(rec, batch.geocode_job(index, upload))
"""


def _data_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    return rows[1:]


def _job(engine: Engine, job_id: str) -> Any:
    with engine.connect() as c:
        return c.execute(text("SELECT state, done, detail, worker FROM job WHERE id = :i"), {"i": job_id}).one()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    addresses = [f"湖北省大冶市金湖街道测试路{i}号" for i in range(1, N + 1)]
    src = tmp_path_factory.mktemp("batch") / "big.csv"
    with open(src, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["编号", "地址"])
        w.writerows([i, a] for i, a in enumerate(addresses, 1))
    return src, addresses


@pytest.fixture(scope="module")
def killed(database_url: str, engine: Engine, source: tuple[Path, list[str]]) -> Callable[[str], str]:
    """`killed(owner)`: a batch job of `owner`'s whose process was killed (SIGKILL) after its first checkpoints."""
    def make(owner: str) -> str:
        proc = subprocess.Popen([sys.executable, "-c", WORKER, database_url, owner, str(source[0])],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert proc.stdout is not None
        job_id = proc.stdout.readline().strip()
        assert job_id, "the worker did not start"
        deadline = time.monotonic() + 60
        while _job(engine, job_id).done < 2000:
            assert proc.poll() is None and time.monotonic() < deadline, "the worker ended before it was killed"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return job_id

    return make


def _result(engine: Engine, job_id: str) -> Path:
    return get_settings().data_dir / Path(_job(engine, job_id).detail["stored"]).parent / "result.csv"


def _wait(client: TestClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(600):
        j = client.get(f"/address/batch/{job_id}", headers=headers).json()
        if j["state"] not in ("running", "cancelling"):
            return dict(j)
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def _complete(rows: list[list[str]], addresses: list[str]) -> None:
    assert [int(r[0]) for r in rows] == list(range(1, N + 1))  # every input row once, in order, none twice
    assert [r[1] for r in rows] == addresses


def test_a_killed_batch_is_marked_interrupted_and_resumed_from_its_rows(
        client: TestClient, engine: Engine, caller: Callable[..., Any], killed: Callable[[str], str],
        source: tuple[Path, list[str]]) -> None:
    dept = caller("department:public_security@420281")
    job_id = killed(dept.name)
    before = _job(engine, job_id)
    assert before.state == "running"  # nobody could record the kill: it looks running
    result = _result(engine, job_id)
    assert len(_data_rows(result)) >= before.done  # the record never claims more than the file holds

    assert job_id in jobs.mark_interrupted(engine)  # what the API and the CLI do at start-up
    after = _job(engine, job_id)
    assert after.state == "interrupted" and after.done == before.done and after.done % 1000 == 0
    rows = _data_rows(result)
    assert len(rows) == after.done == after.detail["checkpoint"]["rows"]  # file cut back to the record
    assert [int(r[0]) for r in rows] == list(range(1, after.done + 1))
    assert job_id not in jobs.mark_interrupted(engine)  # once

    # what the owner sees: the state, no paths, no worker; the result is not there yet
    r = client.get(f"/address/batch/{job_id}", headers=dept.headers)
    assert r.status_code == 200 and r.json()["state"] == "interrupted"
    assert str(get_settings().data_dir) not in r.text and "stored" not in r.json()["detail"]
    assert "worker" not in r.json() and "/" not in str(r.json()["detail"].get("file"))
    listing = client.get("/jobs", headers=dept.headers)
    assert str(get_settings().data_dir) not in listing.text and "worker" not in listing.text
    r = client.get(f"/address/batch/{job_id}/result", headers=dept.headers)
    assert r.status_code == 409 and r.json()["error_code"] == "job_not_done"

    # someone else cannot resume it; the owner can, once
    other = caller("department:public_security@420281")
    assert client.post(f"/address/batch/{job_id}/resume", headers=other.headers).status_code == 404
    r = client.post(f"/address/batch/{job_id}/resume", headers=dept.headers)
    assert r.status_code == 202, r.text
    done = _wait(client, job_id, dept.headers)
    assert done["state"] == "done" and done["done"] == N and done["detail"]["result"]["rows"] == N
    _complete(_data_rows(result), source[1])
    out = client.get(f"/address/batch/{job_id}/result", headers=dept.headers)
    assert out.status_code == 200 and len(out.content.decode("utf-8-sig").splitlines()) == N + 1
    r = client.post(f"/address/batch/{job_id}/resume", headers=dept.headers)  # a done job is not taken up again
    assert r.status_code == 409 and r.json()["error_code"] == "job_state"
    r = client.post(f"/jobs/{job_id}/cancel", headers=dept.headers)
    assert r.status_code == 409 and r.json()["error_code"] == "job_state"


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DATABASE_URL": database_url.replace("postgresql+psycopg://", "postgresql://")}
    return subprocess.run([str(ROOT / ".venv" / "bin" / "citygrid"), *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_the_cli_finds_a_killed_batch_retries_it_and_cancels(
        database_url: str, engine: Engine, killed: Callable[[str], str], source: tuple[Path, list[str]]) -> None:
    job_id = killed(f"cli-{uuid.uuid4().hex[:6]}")
    listed = _cli(database_url, "jobs", "list", "--limit", "200")
    assert listed.returncode == 0, listed.stderr
    assert f"job {job_id}: its process is gone" in listed.stdout
    assert any(job_id in line and "interrupted" in line for line in listed.stdout.splitlines())
    retried = _cli(database_url, "jobs", "retry", job_id)
    assert retried.returncode == 0, retried.stderr + retried.stdout
    j = _job(engine, job_id)
    assert j.state == "done" and j.done == N
    _complete(_data_rows(_result(engine, job_id)), source[1])
    refused = _cli(database_url, "jobs", "cancel", job_id)
    assert refused.returncode == 2 and "job_state" in refused.stdout


def test_a_running_job_is_cancelled_at_its_next_progress_write(client: TestClient, engine: Engine,
                                                               admin_headers: dict[str, str]) -> None:
    steps: list[int] = []

    def work(progress: jobs.Progress) -> dict[str, Any]:
        for i in range(600):
            time.sleep(0.05)
            steps.append(i)
            progress("step", i, 600)
        return {"finished": True}

    rec = jobs.start(engine, "system", "test-cancel", work)
    time.sleep(0.3)
    r = client.post(f"/jobs/{rec.id}/cancel", headers=admin_headers)
    assert r.status_code == 200 and r.json()["state"] == "cancelling", r.text
    assert jobs.wait(str(rec.id), 10)
    j = client.get(f"/jobs/{rec.id}", headers=admin_headers).json()
    assert j["state"] == "cancelled" and j["finished_at"] and len(steps) < 100
    assert client.post(f"/jobs/{rec.id}/cancel").status_code == 401  # anonymous callers cancel nothing
