"""The error catalogue: well-formed entries, each one raised somewhere, listed at /errors, and no error texts
written outside it."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from string import Formatter

import pytest
from fastapi.testclient import TestClient

from api import errors as api_errors
from api.main import create_app
from citygrid.errors import E, ErrorEntry, catalogue

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*(ROOT / "citygrid").rglob("*.py"), *(ROOT / "api").rglob("*.py")])


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _names(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name}


@pytest.fixture(scope="module")
def client() -> TestClient:
    """The app without its lifespan: nothing here needs the database."""
    return TestClient(create_app("postgresql://unused/none", prepare=False))


@pytest.mark.parametrize("entry", list(catalogue().values()), ids=lambda e: e.code)
def test_entry_is_well_formed(entry: ErrorEntry) -> None:
    zh, en = _names(entry.zh), _names(entry.en)
    # Values (codes, numbers, names) appear in both languages; `_zh`/`_en` parameters are words of one language.
    assert {n for n in zh if not n.endswith("_zh")} == {n for n in en if not n.endswith("_en")}
    assert not any(n.endswith("_en") for n in zh) and not any(n.endswith("_zh") for n in en)
    assert entry.zh.strip() and entry.en.strip()
    # client errors are 4xx; the few `internal` entries (a generic 500 with a reference, lost keys) are 500, and an
    # unreachable database is 503 (`unavailable`: the caller should retry), a full disk of uploads 507
    assert 400 <= api_errors.status_of(entry) < 500 or (entry.kind == "internal" and api_errors.status_of(entry) == 500) \
        or (entry.kind == "unavailable" and api_errors.status_of(entry) == 503) \
        or (entry.kind == "insufficient_storage" and api_errors.status_of(entry) == 507)


def test_codes_are_unique_and_are_the_attribute_names() -> None:
    entries = {name: v for name, v in vars(E).items() if isinstance(v, ErrorEntry)}
    assert all(name == e.code for name, e in entries.items())
    assert len({e.code for e in entries.values()}) == len(entries) == len(catalogue())
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", code) for code in entries)


def _referenced() -> set[str]:
    """Codes named as `E.<code>` in the code of citygrid/ and api/ (docstrings do not count)."""
    used: set[str] = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "E":
                used.add(node.attr)
    return used


def test_every_entry_is_used() -> None:
    unused = set(catalogue()) - _referenced()
    assert not unused, f"catalogue entries no code raises: {sorted(unused)}"


def test_every_reference_is_an_entry() -> None:
    assert _referenced() <= set(catalogue())


# What a raise site must not write any more: an error's code and texts inline.
_INLINE = re.compile(r"CitygridError\.one\(|\b(?:Problem|FieldProblem|CodeProblem|AddressInputError|AllocationError)"
                     r"\(\s*[\"']")


def test_no_inline_error_texts_outside_the_catalogue() -> None:
    offenders = [f"{_rel(p)}:{i}" for p in SOURCES if _rel(p) != "citygrid/errors.py"
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if _INLINE.search(line)]
    assert not offenders


def test_errors_endpoint_lists_exactly_the_catalogue(client: TestClient) -> None:
    r = client.get("/errors")
    assert r.status_code == 200
    listed = {e["error_code"]: e for e in r.json()["errors"]}
    assert listed.keys() == catalogue().keys()
    for code, entry in catalogue().items():
        row = listed[code]
        assert (row["message_zh"], row["message_en"], row["params"]) == (entry.zh, entry.en, entry.params)
        assert row["http_status"] == api_errors.STATUS[entry.kind]


def test_docs_show_every_code(client: TestClient) -> None:
    description = client.get("/openapi.json").json()["info"]["description"]
    assert all(f"| `{code}` |" in description for code in catalogue())


def test_framework_errors_keep_their_codes_and_texts(client: TestClient) -> None:
    r = client.get("/no/such/path")
    assert r.status_code == 404
    body = r.json()
    assert (body["error_code"], body["message_zh"], body["message_en"]) == ("http_404", "资源不存在", "Not Found")
    assert body["errors"] == [{k: body[k] for k in ("error_code", "message_zh", "message_en", "field", "row")}]
    r = client.delete("/errors")
    assert r.status_code == 405 and r.json()["error_code"] == "http_405" and r.json()["message_zh"] == "不支持该请求方法"


def test_a_raised_entry_fills_its_templates() -> None:
    e = E.tile_out_of_range("z", z=3, x=9, y=1)
    assert (e.kind, e.error_code, e.message_zh, e.message_en, e.problems[0].field) == (
        "invalid", "tile_out_of_range", "瓦片坐标超出范围：3/9/1", "tile 3/9/1 is outside the tile matrix", "z")
