"""The deployment files agree with the code: docker-compose, README's two commands, CI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_docker_compose_is_valid_and_consistent() -> None:
    res = subprocess.run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True,
                         text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load(res.stdout)
    db, api = cfg["services"]["db"], cfg["services"]["api"]
    assert "postgis" in db["image"]
    url = api["environment"]["DATABASE_URL"]
    env = db["environment"]
    assert url == f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@db:5432/{env['POSTGRES_DB']}"
    assert "citygrid serve" in " ".join(api["command"]) if isinstance(api["command"], list) else api["command"]
    port = api["environment"]["CITYGRID_PORT"]
    assert any(str(p.get("target", p)).endswith(port) if isinstance(p, dict) else p.endswith(port)
               for p in api["ports"])


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert [ln for ln in ci.splitlines() if ln and not ln.startswith("#") and not ln.startswith(("set ", "cd "))] == [
        "make test"]
