"""Long jobs report progress through the API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from citygrid import jobs
from citygrid.jobs import run


def test_job_progress_is_visible_over_the_api(engine, client: TestClient, admin_headers: dict) -> None:  # noqa: ANN001
    seen: list[tuple[str, int, int | None]] = []

    def work(progress) -> dict:  # noqa: ANN001
        for i in range(3):
            progress("step", i + 1, 3)
        return {"ok": 3}

    run(engine, "test-job", work, lambda *a: seen.append(a))
    assert seen == [("step", 1, 3), ("step", 2, 3), ("step", 3, 3)]
    items = client.get("/jobs", headers=admin_headers).json()["items"]  # the process's jobs: admins see them
    job = next(j for j in items if j["kind"] == "test-job")
    one = client.get(f"/jobs/{job['id']}", headers=admin_headers).json()
    assert one["state"] == "done" and one["done"] == 3 and one["total"] == 3
    assert one["detail"]["result"] == {"ok": 3}
    assert client.get("/jobs/not-a-uuid").status_code == 404


def test_failed_job_is_marked_failed(engine, client: TestClient, admin_headers: dict) -> None:  # noqa: ANN001
    def boom(progress) -> dict:  # noqa: ANN001
        raise ValueError("broken input")

    with pytest.raises(ValueError, match="broken input"):
        run(engine, "test-fail", boom)
    job = next(j for j in client.get("/jobs", headers=admin_headers).json()["items"] if j["kind"] == "test-fail")
    assert job["state"] == "failed" and "broken input" in job["detail"]["result"]["error"]


def test_background_job_records_result_or_error(engine, client: TestClient, admin_headers: dict) -> None:  # noqa: ANN001
    def work(progress) -> dict:  # noqa: ANN001
        progress("step", 1, 1)
        return {"ok": 1}

    def boom(progress) -> dict:  # noqa: ANN001
        raise ValueError("broken in the background")

    ok = jobs.start(engine, "system", "test-bg", work, detail={"file": "a.csv"})
    bad = jobs.start(engine, "system", "test-bg-fail", boom)
    assert jobs.wait(str(ok.id), 30) and jobs.wait(str(bad.id), 30)
    assert str(ok.id) not in jobs.running() and str(bad.id) not in jobs.running()
    one = client.get(f"/jobs/{ok.id}", headers=admin_headers).json()
    assert one["state"] == "done" and one["done"] == 1 and one["detail"]["result"] == {"ok": 1}
    assert one["detail"]["file"] == "a.csv"
    failed = client.get(f"/jobs/{bad.id}", headers=admin_headers).json()
    assert failed["state"] == "failed" and "broken in the background" in failed["detail"]["result"]["error"]
