"""Survey intake beyond the template: GIS files (GeoJSON, GeoPackage, zipped Shapefile), Gauss-Krüger X/Y, GCJ-02
declared as WGS84, what people really type (merged header cells, Excel serial dates, ×), duplicates against other
open submissions, processing as a job with progress, and a real server killed (-9) mid-file."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from openpyxl import Workbook
from pyproj import Transformer
from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid import crs as gcj

CLS = "010101"  # 上水井盖: a point class, 状态 required (enum)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def who(login_as: Any, places: dict) -> dict[str, dict[str, str]]:
    a = places["a"]
    return {"cadre": login_as("sin-cadre-a", f"cadre@{a['village']}"),
            "cadre2": login_as("sin-cadre-a2", f"cadre@{a['village']}"),
            "rev": login_as("sin-rev-a", f"reviewer@{a['township']}")}


def _upload(client: TestClient, headers: dict[str, str], data: bytes, name: str, **form: str) -> Any:
    return client.post("/submissions", files={"file": (name, data)}, data={"class_code": CLS, **form},
                       headers=headers)


def _items(client: TestClient, headers: dict[str, str], sid: str) -> dict[int, dict[str, Any]]:
    return {i["row"]: i for i in client.get(f"/submissions/{sid}", headers=headers).json()["items"]}


def _xlsx(rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "数据"
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _gis(driver: str, suffix: str, geoms: list[Any], fields: dict[str, list[Any]], crs: str,
         encoding: str | None = None, drop: tuple[str, ...] = ()) -> bytes:
    """A GIS file written by GDAL (pyogrio) as a GIS user's software would; a Shapefile zipped, `drop`ped parts
    left out (a .cpg nobody wrote)."""
    from pyogrio.raw import write

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"survey{suffix}")
        kinds = {type(g).__name__ for g in geoms}
        write(path, np.array(shapely.to_wkb(geoms), dtype=object),
              [np.array(v, dtype=object if isinstance(v[0], str) else None) for v in fields.values()],
              list(fields), driver=driver, geometry_type=kinds.pop(), crs=crs, encoding=encoding)
        if driver != "ESRI Shapefile":
            return Path(path).read_bytes()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(os.listdir(d)):
                if not f.endswith(drop):
                    z.write(os.path.join(d, f), f"survey/{f}")
        return buf.getvalue()


def _near(x: float, y: float, lon: float, lat: float) -> bool:
    return abs(x - lon) < 1e-6 and abs(y - lat) < 1e-6


def test_geojson_with_chinese_labels_and_a_declared_crs(client: TestClient, who: dict, places: dict) -> None:
    x, y = places["a"]["pt"]
    gx, gy = (float(v) for v in gcj.to_gcj02(x, y))
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"名称": "井甲", "状态": "完好", "井盖尺寸": 700, "备注外的列": 1},
         "geometry": {"type": "Point", "coordinates": [gx, gy]}},
        {"type": "Feature", "properties": {"名称": "井乙", "state": "坏了"},
         "geometry": {"type": "Point", "coordinates": [gx + 1e-5, gy]}}]}
    r = _upload(client, who["cadre"], json.dumps(fc, ensure_ascii=False).encode(), "s.geojson", crs="GCJ-02")
    assert r.status_code == 201, r.text
    items = _items(client, who["cadre"], r.json()["id"])
    assert items[1]["status"] == "valid", items[1]["errors"]
    assert items[1]["attrs"] == {"state": "完好", "cover_size": 700}
    lon, lat = items[1]["geometry"]["coordinates"]
    assert abs(lon - x) < 1e-6 and abs(lat - y) < 1e-6  # GCJ-02 as declared, back to CGCS2000
    assert [e["error_code"] for e in items[2]["errors"]] == ["cell_enum"]


def test_zipped_shapefile_in_gauss_kruger_with_gbk_names_and_no_cpg(client: TestClient, who: dict,
                                                                   places: dict) -> None:
    x, y = places["a"]["pt"]
    e, n = Transformer.from_crs(4490, 4547, always_xy=True).transform(x, y)  # CGCS2000 3° zone, CM 114°E
    data = _gis("ESRI Shapefile", ".shp", [shapely.Point(e, n), shapely.Point(e + 3, n)],
                {"名称": ["井丙", "井丁"], "状态": ["破损", "完好"], "防坠落装置": ["是", "否"]}, "EPSG:4547",
                encoding="GBK", drop=(".cpg",))
    r = _upload(client, who["cadre"], data, "s.zip")
    assert r.status_code == 201 and r.json()["status"] == "validated", r.text
    items = _items(client, who["cadre"], r.json()["id"])
    assert items[1]["name"] == "井丙" and items[1]["attrs"] == {"state": "破损", "anti_fall": True}
    lon, lat = items[1]["geometry"]["coordinates"]
    assert abs(lon - x) < 1e-7 and abs(lat - y) < 1e-7


def test_geopackage_by_field_names(client: TestClient, who: dict, places: dict) -> None:
    x, y = places["a"]["pt"]
    data = _gis("GPKG", ".gpkg", [shapely.Point(x, y)], {"name": ["井戊"], "state": ["占用"], "cover_size": [650]},
                "EPSG:4490")
    r = _upload(client, who["cadre"], data, "s.gpkg")
    assert r.status_code == 201 and r.json()["status"] == "validated", r.text
    item = _items(client, who["cadre"], r.json()["id"])[1]
    assert item["attrs"] == {"state": "占用", "cover_size": 650}
    assert _near(*item["geometry"]["coordinates"], x, y)
    assert client.post(f"/submissions/{r.json()['id']}/submit", headers=who["cadre"]).status_code == 200
    code = client.post(f"/submissions/{r.json()['id']}/review", json={"decisions": [{"row": 1, "decision": "approve"}]},
                       headers=who["rev"]).json()["results"][0]["object_code"]
    back = client.get(f"/submissions/{r.json()['id']}/file", headers=who["cadre"])  # the codes, by feature
    assert back.status_code == 200 and back.headers["content-type"].startswith("text/csv")
    assert back.content.decode("utf-8-sig").splitlines() == ["要素,名称,统一识别代码,审核结果", f"1,井戊,{code},通过"]


def _shp_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.shp", b"\0" * (300 * 1024 * 1024))
    return buf.getvalue()


@pytest.mark.parametrize("name,data", [
    ("bomb.zip", None),
    ("broken.gpkg", b"SQLite format 3\x00" + b"\x01" * 4000),
    ("other.zip", "zip"),
    ("broken.shp.zip", "shp"),
    ("broken.geojson", b'{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": '),
])
def test_bad_gis_files_get_a_clear_4xx_and_leave_no_rows(client: TestClient, who: dict, engine: Engine, name: str,
                                                         data: bytes | str | None) -> None:
    if data is None:
        body = _shp_bomb()
    elif data in ("zip", "shp"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("readme.txt" if data == "zip" else "a.shp", "这不是 Shapefile")
        body = buf.getvalue()
    else:
        assert isinstance(data, bytes)
        body = data
    r = _upload(client, who["cadre"], body, name)
    assert r.status_code == 400 and r.json()["error_code"] in ("survey_file_bad", "survey_header"), r.text
    assert r.json()["message_zh"] and r.json()["message_en"]
    with engine.connect() as c:
        row = c.execute(text("SELECT s.status, (SELECT count(*) FROM submission_row t WHERE t.submission_id = s.id) n "
                             "FROM submission s WHERE s.submitter = 'sin-cadre-a' ORDER BY s.created_at DESC "
                             "LIMIT 1")).one()
    assert (row.status, row.n) == ("invalid", 0)


def test_gauss_kruger_xy_with_the_zone_prefix_a_declaration_or_the_villages_zone(
        client: TestClient, who: dict, places: dict) -> None:
    x, y = places["a"]["pt"]
    e, n = Transformer.from_crs(4490, 4547, always_xy=True).transform(x, y)
    rows = [["名称", "X坐标", "Y坐标", "坐标系", "状态"],
            ["带带号", round(n, 3), round(38_000_000 + e, 3), None, "完好"],                 # 2: 8-digit easting
            ["声明EPSG", round(n, 3), round(e, 3), "EPSG:4547", "完好"],                    # 3: declared
            ["声明带号", f"{n:.3f}", f"{e:.3f}", "38带", "完好"],                            # 4: zone named
            ["本村的带", round(n, 3), round(e, 3), None, "完好"],                             # 5: the village's zone
            ["XY反了", round(e, 3), round(n, 3), None, "完好"],                               # 6: order by size
            ["不是坐标", 12345, 678, None, "完好"]]                                           # 7: no GK pair
    r = _upload(client, who["cadre"], _xlsx(rows), "gk.xlsx")
    assert r.status_code == 201, r.text
    items = _items(client, who["cadre"], r.json()["id"])
    for n_ in (2, 3, 4, 5, 6):
        assert items[n_]["status"] == "valid", (n_, items[n_]["errors"])
        lon, lat = items[n_]["geometry"]["coordinates"]
        assert abs(lon - x) < 1e-7 and abs(lat - y) < 1e-7, n_
    assert [(e["error_code"], e["field"]) for e in items[7]["errors"]] == [("location_gk", "loc_x")]
    assert "EPSG:4547" in items[7]["errors"][0]["message_zh"]


def _doors(engine: Engine, n: int) -> tuple[str, list[tuple[float, float]]]:
    """The demo village with the most door plates, and `n` of them."""
    with engine.connect() as c:
        v = c.execute(text("SELECT village_code FROM addr_node WHERE level = 'door' AND village_code IS NOT NULL "
                           "GROUP BY village_code ORDER BY count(*) DESC, village_code LIMIT 1")).scalar_one()
        return v, [(r.x, r.y) for r in c.execute(text(
            "SELECT ST_X(point) x, ST_Y(point) y FROM addr_node WHERE level = 'door' AND village_code = :v "
            "AND point IS NOT NULL ORDER BY code LIMIT :n"), {"v": v, "n": n})]


def test_gcj02_declared_as_wgs84_is_detected_per_file_and_per_row(client: TestClient, login_as: Any, places: dict,
                                                                   engine: Engine) -> None:
    village, doors = _doors(engine, 12)
    assert len(doors) >= 6
    cadre = login_as("sin-cadre-doors", f"cadre@{village}")
    head = ["名称", "经度", "纬度", "坐标系", "状态"]
    shifted = [[f"门口井{i}", *(float(v) for v in gcj.to_gcj02(x, y)), "WGS84", "完好"] for i, (x, y) in enumerate(doors)]
    r = _upload(client, cadre, _xlsx([head, *shifted]), "phone.xlsx")
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["status"] == "invalid"
    note = next(e for e in sub["errors"] if e["error_code"] == "survey_gcj02")
    assert "GCJ-02" in note["message_zh"] and note["row"] is None
    items = _items(client, cadre, sub["id"])
    flagged = [i for i in items.values() if any(e["error_code"] == "location_gcj02" for e in i["errors"])]
    assert len(flagged) >= len(doors) * 0.8
    err = next(e for e in flagged[0]["errors"] if e["error_code"] == "location_gcj02")
    assert err["field"] == "loc_crs" and "GCJ-02" in err["message_zh"] and "GCJ-02" in err["message_en"]
    # the fix offered: the same file declared GCJ-02 is valid, on the door plates
    r = _upload(client, cadre, _xlsx([head, *[[*row[:3], "GCJ-02", row[4]] for row in shifted]]), "fixed.xlsx")
    assert r.json()["status"] == "validated" and r.json()["errors"] == [], r.text
    # and the true points declared WGS84 raise no alarm
    honest = [[f"井{i}", x, y, "WGS84", "完好"] for i, (x, y) in enumerate(doors)]
    r = _upload(client, cadre, _xlsx([head, *honest]), "gps.xlsx")
    assert r.json()["status"] == "validated" and r.json()["errors"] == [], r.text


def test_merged_two_row_header_serial_dates_crosses_and_full_width(client: TestClient, who: dict,
                                                                   places: dict) -> None:
    """A header as people draw it: a title merged over the table, 名称 and 状态 merged over two rows, 位置 merged
    over 经度 | 纬度 below it; an Excel serial date, ×, full-width digits, a trailing space."""
    x, y = places["a"]["pt"]
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "数据"
    ws.append(["某村上水井盖普查表"])
    ws.merge_cells("A1:F1")
    ws.append(["名称", "位置", None, "状态", "防坠落装置", "启用日期"])
    ws.append([None, "经度", "纬度", None, None, None])
    for col in "ADEF":
        ws.merge_cells(f"{col}2:{col}3")
    ws.merge_cells("B2:C2")
    ws.append(["井一", x, y, "完好 ", "×", 45356])                                             # row 4
    fw = f"{y:.6f}".translate(str.maketrans("0123456789.", "０１２３４５６７８９．"))
    ws.append(["井二", x + 1e-5, fw, "破损", "√", "2024年3月5日"])                          # row 5
    buf = io.BytesIO()
    wb.save(buf)
    r = _upload(client, who["cadre"], buf.getvalue(), "merged.xlsx")
    assert r.status_code == 201 and r.json()["status"] == "validated", r.text
    items = _items(client, who["cadre"], r.json()["id"])
    assert items[4]["attrs"] == {"state": "完好", "anti_fall": False, "start_date": "2024-03-05"}  # 45356 = 2024-03-05
    assert items[5]["attrs"] == {"state": "破损", "anti_fall": True, "start_date": "2024-03-05"}


def test_dates_written_with_dots_and_a_utf8_csv_without_bom(client: TestClient, who: dict, places: dict) -> None:
    x, y = places["a"]["pt"]
    body = f"名称,经度,纬度,状态,启用日期\n井,{x},{y},完好,2024.3.5\n井2,{x + 1e-5},{y},完好,45356\n".encode()
    r = _upload(client, who["cadre"], body, "d.csv")
    assert r.status_code == 201 and r.json()["status"] == "validated", r.text
    items = _items(client, who["cadre"], r.json()["id"])
    assert items[2]["attrs"]["start_date"] == items[3]["attrs"]["start_date"] == "2024-03-05"


def test_an_unknown_declared_crs_is_refused_before_anything_is_stored(client: TestClient, who: dict,
                                                                      places: dict) -> None:
    x, y = places["a"]["pt"]
    r = _upload(client, who["cadre"], f"名称,经度,纬度,状态\n井,{x},{y},完好\n".encode(), "c.csv", crs="北京54")
    assert r.status_code == 400 and r.json()["error_code"] == "location_crs" and r.json()["field"] == "crs"


def test_rows_of_another_open_submission_nearby_are_flagged(client: TestClient, who: dict, places: dict) -> None:
    x, y = places["a"]["pt"]
    x += 0.0007  # a spot of its own in the village
    body = f"名称,经度,纬度,状态\n东头井,{x},{y},完好\n".encode()
    first = _upload(client, who["cadre"], body, "a.csv").json()["id"]
    again = f"名称,经度,纬度,状态\n东头井盖,{x + 2e-5},{y},完好\n".encode()  # ~2 m away, by another cadre
    r = _upload(client, who["cadre2"], again, "b.csv")
    item = _items(client, who["cadre2"], r.json()["id"])[2]
    assert item["status"] == "valid"
    dup = next(d for d in item["duplicates"] if d.get("submission") == first)
    assert dup["row"] == 2 and 1 < dup["distance_m"] < 3 and dup["name_similarity"] > 0.8
    # once the first is reviewed it is no longer open: a third upload is compared with its object instead
    assert client.post(f"/submissions/{first}/submit", headers=who["cadre"]).status_code == 200
    code = client.post(f"/submissions/{first}/review", json={"decisions": [{"row": 2, "decision": "approve"}]},
                       headers=who["rev"]).json()["results"][0]["object_code"]
    r = _upload(client, who["cadre2"], again, "c.csv")
    dups = _items(client, who["cadre2"], r.json()["id"])[2]["duplicates"]
    assert [d.get("code") for d in dups if "code" in d] == [code]
    assert all(d.get("submission") != first for d in dups)


def test_processing_is_a_job_whose_progress_the_submission_shows(client: TestClient, who: dict,
                                                                 places: dict) -> None:
    x, y = places["a"]["pt"]
    r = _upload(client, who["cadre"], f"名称,经度,纬度,状态\n井,{x},{y},完好\n".encode(), "j.csv")
    assert r.status_code == 201
    job = r.json()["job"]
    assert job["state"] == "done" and job["stage"] == "done" and job["done"] == job["total"] == 1
    got = client.get(f"/jobs/{job['id']}", headers=who["cadre"])
    assert got.status_code == 200 and got.json()["detail"]["result"]["status"] == "validated"


def test_cli_submit_with_a_progress_bar_and_review(tmp_path: Path, database_url: str, places: dict,
                                                   engine: Engine) -> None:
    x, y = places["a"]["pt"]
    f = tmp_path / "cli.csv"
    f.write_text(f"名称,经度,纬度,状态\n井一,{x},{y},完好\n井二,{x + 1e-5},{y},坏了\n", encoding="gbk")
    env = os.environ | {"DATABASE_URL": database_url.replace("+psycopg", "")}
    cmd = [str(ROOT / ".venv" / "bin" / "citygrid")]
    p = subprocess.run([*cmd, "submit", str(f), "--class", CLS, "--village", places["a"]["village"], "--as", "t",
                        "--hand-in"], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert p.returncode == 1, p.stdout + p.stderr  # one row has a problem: not handed in
    assert "validate" in p.stdout and "cell_enum" not in p.stdout and "不在允许值中" in p.stdout
    assert "handed in" not in p.stdout
    with engine.connect() as c:
        sid = c.execute(text("SELECT id FROM submission WHERE submitter = 'cli:t' ORDER BY created_at DESC "
                             "LIMIT 1")).scalar_one()
    p = subprocess.run([*cmd, "review", "--as", "r"], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert p.returncode == 0 and str(sid) not in p.stdout, p.stdout + p.stderr  # not pending: not handed in
    p = subprocess.run([*cmd, "submit", str(f), "--class", CLS, "--village", places["a"]["village"], "--as", "t",
                        "--hand-in", "--partial"], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert p.returncode == 0 and "handed in for review: submitted" in p.stdout, p.stdout + p.stderr
    with engine.connect() as c:
        sid = c.execute(text("SELECT id FROM submission WHERE submitter = 'cli:t' ORDER BY created_at DESC "
                             "LIMIT 1")).scalar_one()
    p = subprocess.run([*cmd, "review", "--as", "r"], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert p.returncode == 0 and str(sid) in p.stdout and "pending review" in p.stdout, p.stdout + p.stderr
    p = subprocess.run([*cmd, "review", str(sid), "--approve", "3", "--as", "r"], capture_output=True, text=True,
                       env=env, timeout=300, cwd=ROOT)
    assert p.returncode == 1 and "review_not_valid" in p.stdout  # row 3 has a problem: it cannot be approved
    p = subprocess.run([*cmd, "review", str(sid), "--approve-all", "--reject", "3", "--reason", "状态填错", "--as", "r"],
                       capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert p.returncode == 0 and "1 approved with codes, 1 rejected" in p.stdout, p.stdout + p.stderr
    assert "420281" + CLS in p.stdout


SERVER = """
import sys
import uvicorn
from api.main import create_app
uvicorn.run(create_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""
N = 40_000


def _serve(database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", SERVER, database_url, str(port)], cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


def test_a_server_killed_mid_file_resumes_it_at_restart_no_row_twice_nothing_lost(
        who: dict, places: dict, engine: Engine, database_url: str) -> None:
    """A real server process gets a 40,000-row file; it is killed (SIGKILL) while the job validates it, after the
    file was stored; the restarted server takes the interrupted job up again and the submission ends with every
    row once."""
    with engine.connect() as c:
        pts = c.execute(text("SELECT ST_X(g) x, ST_Y(g) y FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, :n, 11))).geom g "
                             "FROM division WHERE code = :v) s"), {"n": N, "v": places["a"]["village"]}).all()
    body = "名称,经度,纬度,状态\n" + "".join(f"井{i},{p.x:.8f},{p.y:.8f},完好\n" for i, p in enumerate(pts))
    proc, base = _serve(database_url)
    try:
        def post() -> None:
            try:
                httpx.post(base + "/submissions", files={"file": ("big.csv", body.encode())},
                           data={"class_code": CLS}, headers=who["cadre"], timeout=120)
            except httpx.HTTPError:
                pass  # the server dies under it

        threading.Thread(target=post, daemon=True).start()
        deadline = time.monotonic() + 120
        while True:
            with engine.connect() as c:
                got = c.execute(text(
                    "SELECT s.id, s.status, j.id AS job, j.state, j.done FROM submission s JOIN job j "
                    "ON j.detail->>'submission' = s.id::text WHERE s.filename = 'big.csv' AND s.submitter = "
                    "'sin-cadre-a' ORDER BY s.created_at DESC LIMIT 1")).first()
            if got is not None and got.state == "running" and got.done and got.done > 0:
                break
            assert time.monotonic() < deadline and (got is None or got.status == "received"), got
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    sid, job = str(got.id), str(got.job)
    with engine.connect() as c:  # nothing half-written: stored, unprocessed, no row
        assert c.execute(text("SELECT status FROM submission WHERE id = :i"), {"i": sid}).scalar_one() == "received"
        assert c.execute(text("SELECT count(*) FROM submission_row WHERE submission_id = :i"), {"i": sid}).scalar() == 0
    proc, base = _serve(database_url)
    try:
        deadline = time.monotonic() + 300
        while True:
            sub = httpx.get(f"{base}/submissions/{sid}", headers=who["cadre"], timeout=30).json()
            if sub["status"] != "received":
                break
            assert time.monotonic() < deadline, sub
            time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(30)
    assert (sub["status"], sub["rows"], sub["invalid"]) == ("validated", N, 0), sub
    assert sub["job"]["id"] == job and sub["job"]["state"] == "done"  # the same job, taken up again
    with engine.connect() as c:
        n, distinct, lo, hi = c.execute(text("SELECT count(*), count(DISTINCT row), min(row), max(row) FROM "
                                             "submission_row WHERE submission_id = :i"), {"i": sid}).one()
    assert (n, distinct, lo, hi) == (N, N, 2, N + 1)


def test_corrected_rows_resubmitted_into_the_same_submission_keep_its_history(
        client: TestClient, who: dict, places: dict) -> None:
    x, y = places["a"]["pt"]
    x -= 0.0006
    head = ["名称", "经度", "纬度", "状态"]
    rows = [head, ["改一", x, y, "完好"], ["改二", x + 3e-5, y, "坏了"], ["改三", x + 6e-5, y, "破损"]]
    sid = _upload(client, who["cadre"], _xlsx(rows), "v1.xlsx").json()["id"]
    url = f"/submissions/{sid}/review"
    assert client.post(f"/submissions/{sid}/submit", json={"partial": True}, headers=who["cadre"]).status_code == 200
    # under review the cadre cannot send anything into it
    r = client.post(f"/submissions/{sid}/resubmit", files={"file": ("v.xlsx", _xlsx(rows))}, headers=who["cadre"])
    assert r.status_code == 409 and r.json()["error_code"] == "submission_state", r.text
    out = client.post(url, json={"decisions": [{"row": 2, "decision": "approve"},
                                               {"row": 4, "decision": "reject", "reason": "名称不对"}]},
                      headers=who["rev"]).json()
    code = out["results"][0]["object_code"]
    assert out["submission"]["status"] == "coded"  # every handed-in row decided; row 3 is still the cadre's
    # the cadre takes the file back, corrects row 3 and the rejected row 4 (and, by mistake, edits the approved
    # row 2) and sends it again: back through validation
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(client.get(f"/submissions/{sid}/file", headers=who["cadre"]).content))
    ws = wb["数据"]
    assert [c.value for c in ws[1]][-3:] == ["行标识", "统一识别代码", "审核结果"]
    ws.cell(3, 4, "破损")
    ws.cell(4, 1, "改三（改名）")
    ws.cell(2, 1, "改一（改名）")
    buf = io.BytesIO()
    wb.save(buf)
    assert client.post(f"/submissions/{sid}/resubmit", files={"file": ("v2.xlsx", buf.getvalue())},
                       headers=who["rev"]).status_code in (403, 404)  # the township reads it; only its cadre sends
    r = client.post(f"/submissions/{sid}/resubmit", files={"file": ("v2.xlsx", buf.getvalue())},
                    headers=who["cadre"])
    assert r.status_code == 200, r.text
    sub = r.json()
    assert (sub["status"], sub["revision"], sub["rows"], sub["invalid"]) == ("validated", 2, 3, 0)
    d = client.get(f"/submissions/{sid}", headers=who["cadre"]).json()
    items = {i["row"]: i for i in d["items"]}
    assert items[2]["status"] == "approved" and items[2]["object_code"] == code and items[2]["name"] == "改一"
    assert items[3]["status"] == "valid" and items[3]["attrs"] == {"state": "破损"} and items[3]["revision"] == 2
    assert items[4]["status"] == "valid" and items[4]["name"] == "改三(改名)" and items[4]["reason"] is None
    assert [(v["revision"], v["filename"], v["status"], v["invalid"]) for v in d["revisions"]] == [
        (1, "v1.xlsx", "coded", 1)]
    old = client.get(f"/submissions/{sid}/revisions", headers=who["rev"]).json()["items"][0]["items"]
    assert {r_["row"]: r_["status"] for r_ in old} == {2: "approved", 3: "invalid", 4: "rejected"}
    assert old[1]["errors"][0]["error_code"] == "cell_enum"
    # handed in again, every row decided: nothing is left to correct
    assert client.post(f"/submissions/{sid}/submit", headers=who["cadre"]).json()["status"] == "submitted"
    client.post(url, json={"decisions": [{"row": 3, "decision": "approve"}, {"row": 4, "decision": "approve"}]},
                headers=who["rev"])
    r = client.post(f"/submissions/{sid}/resubmit", files={"file": ("v3.xlsx", buf.getvalue())}, headers=who["cadre"])
    assert r.status_code == 409 and r.json()["error_code"] == "resubmit_closed"


def test_whole_numbers_geometry_types_and_the_row_limit(client: TestClient, who: dict, places: dict) -> None:
    """箅子数量 must be a whole number; a point class given a line is told the type it needs; a file over the row
    limit is refused whole."""
    x, y = places["a"]["pt"]
    body = (f"名称,经度,纬度,几何,状态,箅子数量\n箅一,{x},{y},,完好,2.5\n"
            f"箅二,,,\"LINESTRING({x} {y}, {x + 1e-4} {y})\",完好,2\n").encode()
    r = client.post("/submissions", files={"file": ("g.csv", body)}, data={"class_code": "010203"},
                    headers=who["cadre"])
    assert r.status_code == 201, r.text
    items = _items(client, who["cadre"], r.json()["id"])
    assert ("cell_integer", "grate_count") in {(e["error_code"], e["field"]) for e in items[2]["errors"]}
    assert [(e["error_code"], e["field"]) for e in items[3]["errors"]] == [("geom_type", "loc_geometry")]
    from citygrid.survey.read import MAX_ROWS

    many = "名称,经度,纬度,状态\n" + f"井,{x},{y},完好\n" * (MAX_ROWS + 1)
    r = _upload(client, who["cadre"], many.encode(), "many.csv")
    assert r.status_code == 400 and r.json()["error_code"] == "file_too_large", r.text
