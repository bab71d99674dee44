"""Text PostgreSQL cannot store (NUL, unpaired surrogates) is a 400 in the error shape wherever it arrives, never a
500: the request-level check names the field (api/hardening.py `TextGuard`), the engine-level check catches what
arrives another way (form fields), COPY writers check and escape (citygrid/db/failures.py)."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from citygrid.address import batch
from citygrid.catalog import get_catalog
from citygrid.errors import CitygridError
from citygrid.settings import get_settings

SHAPE = {"error_code", "message_zh", "message_en", "field", "row", "errors"}
LAMP = next(c.code for c in get_catalog().classes.values() if c.name == "路灯")


def _refused(r: Any, field: str | None) -> dict[str, Any]:
    assert r.status_code == 400, (r.status_code, r.text)
    body = r.json()
    assert set(body) == SHAPE, body
    assert body["error_code"] == "text_unstorable" and body["field"] == field, body
    assert "U+0000" in body["message_en"] or "surrogate" in body["message_en"]
    return dict(body)


@pytest.mark.parametrize(("url", "field"), [
    ("/divisions?name=%E5%A4%A7%00%E5%86%B6", "name"),
    ("/ogc/collections/divisions/items?filter=name%3D%27%00%27", "filter"),
    ("/ogc/collections/divisions/items?filter-lang=cql2-json&filter="
     "%7B%22op%22%3A%22%3D%22%2C%22args%22%3A%5B%7B%22property%22%3A%22name%22%7D%2C%22%00%22%5D%7D", "filter"),
    ("/ogc/collections/divisions/items?cursor=%00", "cursor"),
    ("/grids?system=%00", "system"),
    ("/divisions/42%00", "path"),
    ("/divisions?name=x&na%00me=y", "query"),
])
def test_nul_in_the_url_is_a_400_naming_the_field(client: TestClient, url: str, field: str) -> None:
    _refused(client.get(url), field)


def test_nul_and_lone_surrogates_in_json_bodies(client: TestClient, admin_headers: dict[str, str]) -> None:
    base = {"division_code": "420281", "class_code": LAMP, "count": 3}
    _refused(client.post("/codes/blocks", json=base | {"batch": "a\x00b"}, headers=admin_headers), "batch")
    # a lone surrogate cannot be encoded as UTF-8: sent as the JSON escape, as a client would
    body = json.dumps(base).replace("}", ', "batch": "x\\udc80"}')
    _refused(client.post("/codes/blocks", content=body, headers=admin_headers | {"Content-Type": "application/json"}),
             "batch")
    # nested: the path to the string is the field
    r = client.post("/objects", json={"class_code": LAMP, "attrs": {"note": ["ok", "\x00"]},
                                      "geometry": {"type": "Point", "coordinates": [114.9, 30.1]}}, headers=admin_headers)
    _refused(r, "attrs.note[1]")
    # a paired surrogate is an ordinary character (an emoji): stored as sent
    label = f"灯😀{uuid.uuid4().hex[:6]}"
    r = client.post("/codes/blocks", content=json.dumps(base | {"batch": label}),  # ensure_ascii: \ud83d\ude00
                    headers=admin_headers | {"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert r.json()["batch"] == label


def test_a_literal_backslash_u0000_in_text_is_not_refused(client: TestClient, admin_headers: dict[str, str]) -> None:
    label = "C:\\u0000-" + uuid.uuid4().hex[:6]  # six characters, not a NUL
    r = client.post("/codes/blocks", json={"division_code": "420281", "class_code": LAMP, "count": 1, "batch": label},
                    headers=admin_headers)
    assert r.status_code == 201, r.text
    assert r.json()["batch"] == label


def test_form_fields_are_checked_where_text_enters_sql(client: TestClient) -> None:
    # a login form is not JSON: the request check lets it through, the engine's parameter check refuses it
    r = client.post("/auth/token", data={"username": "ad\x00min", "password": "whatever-it-is"})
    _refused(r, None)


def test_the_engine_refuses_unstorable_parameters(engine: Engine) -> None:
    for bad in ("a\x00b", "\ud800", ["ok", "\x00"]):
        with engine.connect() as c, pytest.raises(CitygridError) as info:
            c.execute(text("SELECT CAST(:v AS text)"), {"v": bad})
        assert info.value.error_code == "text_unstorable"
    with engine.connect() as c:  # the connection is still good, and ordinary text passes
        assert c.execute(text("SELECT CAST(:v AS text)"), {"v": "大冶😀\t"}).scalar_one() == "大冶😀\t"


def test_copy_keeps_tabs_and_newlines_in_a_block_label(client: TestClient, admin_headers: dict[str, str],
                                                       engine: Engine) -> None:
    # more than 50 codes go through COPY, whose text format would read a tab as a column separator
    label = f"a\tb\nc\\N{uuid.uuid4().hex[:6]}"
    r = client.post("/codes/blocks", json={"division_code": "420281", "class_code": LAMP, "count": 60, "batch": label},
                    headers=admin_headers)
    assert r.status_code == 201, r.text
    with engine.connect() as c:
        rows = c.execute(text("SELECT batch, count(*) FROM issued_code WHERE code = ANY(:c) GROUP BY batch"),
                         {"c": r.json()["codes"]}).all()
    assert [(b, n) for b, n in rows] == [(label, 60)]


# --- uploads: streamed to disk within a limit, and a rejected one leaves nothing -----------------------------------


def _batches() -> set[str]:
    d = get_settings().data_dir / "batches"
    return {p.name for p in d.iterdir()} if d.exists() else set()


def test_a_rejected_upload_leaves_nothing_on_disk(client: TestClient, dept_headers: Any) -> None:
    headers = dept_headers("civil_affairs")
    before = _batches()
    for name, data, code in [("x.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "file_type"),
                             ("in.csv", b"a,b\n1,2\n", "column_missing"),
                             ("in.csv", b"", "file_empty"),
                             ("in.csv", "地址\n大冶".encode("utf-16"), "file_type"),
                             ("in.xlsx", b"PK\x03\x04 not really a workbook", "file_type")]:
        r = client.post("/address/batch", files={"file": (name, data)}, headers=headers)
        assert r.status_code == 400 and r.json()["error_code"] == code, (name, r.text)
    assert _batches() == before
    r = client.post("/address/batch", files={"file": ("ok.csv", "地址\n大冶市金湖街道\n".encode())}, headers=headers)
    assert r.status_code == 202, r.text
    assert len(_batches() - before) == 1  # an accepted one is kept (its input and its result)


class _Source(io.BytesIO):
    """A file that remembers the largest read asked of it."""

    largest = 0

    def read(self, n: int | None = -1) -> bytes:
        self.largest = max(self.largest, n if n is not None and n >= 0 else 1 << 62)
        return super().read(n)


def test_uploads_are_copied_in_chunks_and_cut_at_the_limit(tmp_path: Path) -> None:
    src = _Source(b"\xe5\x9c\xb0\xe5\x9d\x80\n" + b"x" * (3 * batch.CHUNK))
    with pytest.raises(CitygridError) as info:
        batch.store_upload(tmp_path, "big.csv", src, limit=2 * batch.CHUNK)
    assert info.value.error_code == "file_too_large"
    assert src.largest == batch.CHUNK  # never the whole file at once
    assert not any((tmp_path / "batches").iterdir())
    path = batch.store_upload(tmp_path, "../../etc/passwd", io.BytesIO(b"addr\n1\n"), limit=batch.CHUNK)
    assert path.parent.parent == tmp_path / "batches" and path.name == "input-passwd"
