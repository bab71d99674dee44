"""`citygrid sync`, the feed's reference client, against the real app under uvicorn: it writes every entry once,
resumes from its last cursor, survives a crash between writing entries and saving the cursor, and refuses a bad
cursor with the server's coded error."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from citygrid.catalog import get_catalog
from citygrid.cli import app
from citygrid.registry import objects
from citygrid.security.principal import system_as
from citygrid.sharing.sync import state_path, sync

LAMP = next(c for c in get_catalog().classes.values() if c.name == "路灯")


def _lamps(engine: Engine, n: int) -> list[str]:
    with Session(engine) as s:
        codes = [objects.create(s, system_as("sync-test"), objects.NewObject(
            class_code=LAMP.code, geometry={"type": "Point", "coordinates": [114.97, 30.10]},
            attrs={"state": "完好"}, division_code="420281"))["code"] for _ in range(n)]
        s.commit()
    return codes


def _codes(out: Path) -> list[str]:
    return [json.loads(line)["code"] for line in out.read_text().splitlines()]


def test_sync_writes_every_entry_once_and_resumes(live_server: str, engine: Engine, tmp_path: Path) -> None:
    start = httpx.get(f"{live_server}/changes", params={"since": "now"}).json()["cursor"]
    first = _lamps(engine, 3)
    out = tmp_path / "changes.jsonl"
    runner = CliRunner()
    r = runner.invoke(app, ["sync", "--url", live_server, "--out", str(out), "--since", start, "--once",
                            "--class", LAMP.code])
    assert r.exit_code == 0, r.output
    assert _codes(out) == first
    assert state_path(out).read_text().strip() == json.loads(out.read_text().splitlines()[-1])["cursor"]
    # the next run resumes from the saved cursor: only what is new
    second = _lamps(engine, 2)
    r = runner.invoke(app, ["sync", "--url", live_server, "--out", str(out), "--once", "--class", LAMP.code])
    assert r.exit_code == 0, r.output
    assert _codes(out) == first + second
    # a crash after appending but before saving the cursor: the state is behind, the file's last line is not
    state_path(out).write_text(start + "\n")
    res = sync(live_server, out, once=True, filters={"class": LAMP.code})
    assert res.entries == 0 and _codes(out) == first + second
    # a torn last line (a crash mid-write) is ignored and its entry comes again, once
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:10])
    state_path(out).unlink()
    sync(live_server, out, once=True, filters={"class": LAMP.code})
    good = [json.loads(x)["code"] for x in out.read_text().splitlines() if x.startswith("{") and x.endswith("}")]
    assert good == first + second


def test_sync_stops_on_a_bad_cursor(live_server: str, tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["sync", "--url", live_server, "--out", str(tmp_path / "c.jsonl"), "--since", "x-y",
                                 "--once"])
    assert r.exit_code == 2 and "400" in r.output
    with pytest.raises(Exception, match="400"):
        sync(live_server, tmp_path / "d.jsonl", since="bad", once=True)
