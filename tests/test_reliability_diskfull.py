"""Full disks, for real: small tmpfs file systems, filled to the last byte.

The database: a throwaway cluster (not the suite's) whose database lives in a tablespace on a 160 MB tmpfs (the
write-ahead log stays on the cluster's own disk, as on a server whose data volume fills up). With that volume
full, a write is a 503 `database_unavailable` naming the full disk, with Retry-After; reads keep answering;
nothing of the failed write is visible (no object, no history, no code counter moved), and a survey upload (stored
in the database) is refused the same way with no submission row; once space returns the same writes succeed and
the object takes the first serial (no gap).

The uploads directory: the data directory on a 2 MB tmpfs. An upload that does not fit is a 507 `storage_full`
with Retry-After, and leaves no file, no folder and no job behind; with space back it is stored, and its job,
whose result then does not fit, fails saying `storage_full` (no server path); with more space, the job run again
finishes with every row.

Mounting needs CAP_SYS_ADMIN (root here has it); a process without it skips these tests, saying so, and with it a
failed mount fails them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid.db.bootstrap import prepare
from citygrid.db.cluster import Cluster
from citygrid.db.engine import app_database_url, app_engine_for, engine_for
from citygrid.security import credentials
from citygrid.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
SHAPE = {"error_code", "message_zh", "message_en", "field", "row", "errors"}
LAMP = "010402"  # 路灯, a public component class
SURVEY = "名称,经度,纬度,状态\n灯,114.95,30.1,完好\n".encode()


CAP_SYS_ADMIN = 21  # the capability bit mount(2) needs (linux/capability.h)


def _may_mount() -> bool:
    """Whether this process holds CAP_SYS_ADMIN (root in this container does; an unprivileged one does not)."""
    status = Path("/proc/self/status").read_text()
    eff = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("CapEff:"))
    return bool(eff >> CAP_SYS_ADMIN & 1)


def _mount(where: Path, size: str) -> None:
    """A tmpfs of `size` at `where`. Skipped, saying why, only where the process may not mount at all; with the
    capability, a mount that fails is a failure of the test, not a skip."""
    if not _may_mount():
        pytest.skip("mounting a small tmpfs needs CAP_SYS_ADMIN (root in a privileged container); this process "
                    "lacks it")
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                       text=True)
    assert r.returncode == 0, f"mount of a {size} tmpfs at {where} failed: {r.stderr.strip()}"


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(mount: Path, leave: int = 0) -> Path:
    """Write a file of zeros until the file system has `leave` bytes or fewer free (0: until it refuses)."""
    filler = mount / "filler"
    chunk = b"\0" * (64 << 10)
    with open(filler, "wb", buffering=0) as f:  # unbuffered: nothing left to flush at close on a full disk
        try:
            while shutil.disk_usage(mount).free > leave + len(chunk):
                f.write(chunk)
            if leave == 0:
                while True:
                    f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC: full
    assert shutil.disk_usage(mount).free <= leave + len(chunk)
    return filler


@pytest.fixture(scope="module")
def small_db(database_url: str) -> Iterator[tuple[Path, str, Engine]]:
    """A throwaway cluster whose database is on a 160 MB tmpfs, migrated, with 大冶市 and its ancestors copied from
    the suite's database (all of China would not fit)."""
    root = ROOT / f".citygrid-diskfull-{os.getpid()}"
    cluster = Cluster(root)
    url = cluster.start()
    space = root / "space"
    _mount(space, "160m")
    try:
        shutil.chown(space, "postgres", "postgres")
        admin = f"host=127.0.0.1 port={cluster.port} user=citygrid dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"CREATE TABLESPACE small LOCATION '{space}'")
            c.execute("ALTER DATABASE citygrid SET TABLESPACE small")
        owner = prepare(url)
        cols = "code, level, name, short_name, kind, parent_code, stat_code, mca_code, sources, geom_source"
        with engine_for(database_url).connect() as src:
            village = src.execute(text("SELECT code FROM division WHERE level = 5 AND code LIKE '420281%' "
                                       "ORDER BY code LIMIT 1")).scalar_one()
            rows = src.execute(text(f"SELECT {cols}, ST_AsEWKB(geom) AS g FROM division WHERE code IN "
                                    "('42', '4202', '420281', '420000', '420200', :t, :v) ORDER BY level"),
                               {"t": village[:9], "v": village}).mappings().all()
        assert [r["code"] for r in rows][-3:] == ["420281", village[:9], village], rows
        with owner.begin() as c:
            for r in rows:
                c.execute(text(f"INSERT INTO division ({cols}, geom) VALUES (:code, :level, :name, :short_name, :kind, "
                               ":parent_code, :stat_code, :mca_code, :sources, :geom_source, ST_GeomFromEWKB(:g))"),
                          dict(r))
        yield space, url, owner
    finally:
        for e in (engine_for(url), app_engine_for(app_database_url(url))):
            e.dispose()
        cluster.stop()
        _umount(space)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def small_app(small_db: tuple[Path, str, Engine]) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    """The app on the small database, the headers of an admin and of a cadre of its one village."""
    from api.main import create_app

    _, url, owner = small_db
    keys = []
    with owner.begin() as c:
        village = c.execute(text("SELECT code FROM division WHERE level = 5")).scalar_one()
        for name, grant, level in (("diskfull-admin", "admin", "L4"), ("diskfull-cadre", f"cadre@{village}", "L2")):
            credentials.add_principal(c, name, kind="service", clearance=level, personal=level == "L4",
                                      grants=[credentials.parse_grant(grant)])
            keys.append({"X-API-Key": credentials.create_api_key(c, name, "test")["key"]})
    with TestClient(create_app(url)) as client:
        yield client, keys[0], keys[1]


def _counts(owner: Engine) -> tuple[int, ...]:
    with owner.connect() as c:
        return tuple(int(c.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
                     for t in ("city_object", "city_object_history", "code_counter", "change_log"))


def _submissions(owner: Engine) -> int:
    with owner.connect() as c:
        return int(c.execute(text("SELECT count(*) FROM submission")).scalar_one())


def _wait(client: TestClient, headers: dict[str, str], job: str) -> dict:
    for _ in range(1200):
        j = client.get(f"/jobs/{job}", headers=headers).json()
        if j["state"] != "running":
            return j
        time.sleep(0.1)
    raise AssertionError(f"job {job} still running")


def _lamp(lon: float) -> dict:
    return {"class_code": LAMP, "division_code": "420281", "attrs": {"state": "完好"},
            "geometry": {"type": "Point", "coordinates": [lon, 30.1]}}


def test_a_full_database_disk_is_a_503_and_writes_resume_when_space_returns(
        small_db: tuple[Path, str, Engine], small_app: tuple[TestClient, dict[str, str], dict[str, str]]) -> None:
    space, _, owner = small_db
    client, admin, cadre = small_app
    assert client.get("/divisions/420281").status_code == 200
    assert _counts(owner) == (0, 0, 0, 0)
    filler = _fill(space)
    try:
        r = client.post("/objects", json=_lamp(114.95), headers=admin)
        assert r.status_code == 503, r.text
        body = r.json()
        assert set(body) == SHAPE and body["error_code"] == "database_unavailable"
        assert "the database disk is full" in body["message_en"] and "数据库磁盘已满" in body["message_zh"]
        assert r.headers["retry-after"] == str(get_settings().db_retry_after) and "INSERT" not in r.text
        # reads answer while the disk is full, and nothing of the refused write is there
        assert client.get("/divisions/420281").json()["name"] == "大冶市"
        assert client.get("/ogc/collections").status_code == 200
        assert client.get("/objects", params={"class_code": LAMP}, headers=admin).status_code == 200
        assert _counts(owner) == (0, 0, 0, 0)
        # a survey upload is stored in the database (raw, before anything reads it): refused the same way, no row
        r = client.post("/submissions", files={"file": ("s.csv", SURVEY)}, data={"class_code": LAMP}, headers=cadre)
        assert r.status_code == 503 and r.json()["error_code"] == "database_unavailable", r.text
        assert _submissions(owner) == 0
    finally:
        filler.unlink()
    r = client.post("/submissions", files={"file": ("s.csv", SURVEY)}, data={"class_code": LAMP}, headers=cadre)
    assert r.status_code in (201, 202), r.text
    assert _submissions(owner) == 1
    r = client.post("/objects", json=_lamp(114.95), headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["code"][12:20] == "00000001"  # the refused write took no serial
    n_obj, n_hist, n_counter, _ = _counts(owner)
    assert (n_obj, n_hist, n_counter) == (1, 1, 2)  # counters: the unified code's and the component code's series


def test_an_upload_to_a_full_disk_is_a_507_and_leaves_nothing(small_db: tuple[Path, str, Engine],
                                                              small_app: tuple[TestClient, dict[str, str],
                                                                               dict[str, str]],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, owner = small_db
    client, admin, _ = small_app
    data = ROOT / f".citygrid-diskfull-{os.getpid()}" / "uploads"
    _mount(data, "2m")
    monkeypatch.setenv("CITYGRID_DATA_DIR", str(data))
    get_settings.cache_clear()
    csv = ("地址\n" + "湖北省黄石市大冶市金湖街道金湖大道1号\n" * 20_000).encode()  # about 1.1 MB
    try:
        filler = _fill(data, leave=256 << 10)
        with owner.connect() as c:
            jobs_before = c.execute(text("SELECT count(*) FROM job")).scalar_one()
        r = client.post("/address/batch", files={"file": ("big.csv", csv)}, headers=admin)
        assert r.status_code == 507, r.text
        body = r.json()
        assert set(body) == SHAPE and body["error_code"] == "storage_full" and body["field"] == "file"
        assert r.headers["retry-after"] == str(get_settings().db_retry_after) and str(data) not in r.text
        left = sorted(p.relative_to(data).as_posix() for p in data.rglob("*"))
        assert left in (["filler"], ["batches", "filler"]), left  # nothing of the upload: no file, no folder
        with owner.connect() as c:
            assert c.execute(text("SELECT count(*) FROM job")).scalar_one() == jobs_before
        filler.unlink()
        # stored now; its result (longer than the input) does not fit in what is left: the job fails saying why
        r = client.post("/address/batch", files={"file": ("big.csv", csv)}, headers=admin)
        assert r.status_code == 202, r.text
        job = r.json()["job"]
        failed = _wait(client, admin, job)
        assert failed["state"] == "failed" and failed["detail"]["result"]["error_code"] == "storage_full", failed
        assert str(data) not in str(failed)
        # more space: the same job, run again, finishes with every row
        subprocess.run(["mount", "-o", "remount,size=16m", str(data)], check=True)
        assert client.post(f"/address/batch/{job}/retry", headers=admin).status_code in (200, 202)
        done = _wait(client, admin, job)
        assert done["state"] == "done" and done["done"] == 20_000, done
    finally:
        get_settings.cache_clear()
        _umount(data)
