"""The layout's rules, checked on the import graph so they cannot erode quietly.

- The domain core (`citygrid/`) never imports the web layer (`api/`, FastAPI, Starlette); only the CLI, the
  composition root that serves the app, may import `api.main`.
- Packages of the core depend on each other without cycles (`grid` and `layers` used to import each other).
- Nothing in the core but the CLI imports the demo: real deployments never need it.
- Only `citygrid/settings.py` reads the environment.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "citygrid"
WEB = ("api", "fastapi", "starlette")


def _modules() -> list[tuple[Path, str, list[str]]]:
    out = []
    for p in sorted(CORE.rglob("*.py")):
        rel = p.relative_to(CORE)
        if rel.parts[0] == "db" and "migrations" in rel.parts:
            continue
        package = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        imported: list[str] = []
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.append(node.module)
            elif isinstance(node, ast.Import):
                imported += [a.name for a in node.names]
        out.append((rel, package, imported))
    return out


def test_core_never_imports_the_web_layer() -> None:
    bad = [(str(rel), m) for rel, _, mods in _modules() for m in mods
           if m.split(".")[0] in WEB and str(rel) != "cli.py"]
    assert bad == []


def test_core_packages_have_no_import_cycles() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for _, package, mods in _modules():
        for m in mods:
            parts = m.split(".")
            if parts[0] == "citygrid" and len(parts) > 1 and parts[1] != package:
                graph[package].add(parts[1])
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*path, node, nxt])
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [])
    assert "layers" not in graph["grid"] and "grid" in graph["layers"]


def test_only_the_cli_imports_the_demo() -> None:
    users = {str(rel) for rel, package, mods in _modules() for m in mods
             if m.startswith("citygrid.demo") and package != "demo"}
    assert users <= {"cli.py"}


def test_only_settings_reads_the_environment() -> None:
    readers = []
    for p in CORE.rglob("*.py"):
        if "migrations" in p.parts or p.name == "settings.py":
            continue
        src = p.read_text(encoding="utf-8")
        if "os.environ" in src or "getenv(" in src:
            readers.append(str(p.relative_to(ROOT)))
    assert readers == []
