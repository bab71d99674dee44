"""Door plates (智慧门牌): QR codes carry the county's public base URL whatever host served the request, forwarded
headers count only from trusted proxies, and the printable PDF holds every plate of a village with its address
text and a QR code that decodes (pypdf reads the PDF back, zxing-cpp decodes the embedded QR images)."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pypdf
import pytest
import segno
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from citygrid.settings import get_settings

PUBLIC = "https://dz.example.gov.cn/citygrid"


@pytest.fixture()
def setting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """Set a CITYGRID_* variable for this test only (the settings are re-read)."""
    def put(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield put
    monkeypatch.undo()
    get_settings.cache_clear()


def _qr_svg(url: str) -> bytes:
    """The SVG `qr.svg` must answer for a node whose page is `url` (same symbol, same rendering)."""
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="svg", scale=4, border=2)
    return buf.getvalue()


def _from(client: TestClient, peer: str) -> TestClient:
    """The session's app, called from this client address (no second start-up: the state is the app's)."""
    return TestClient(client.app, client=(peer, 40000))


def test_qr_encodes_the_public_base_url_whatever_the_host(client: TestClient, places: dict,
                                                          setting: Callable[[str, str], None]) -> None:
    door = places["door"]
    setting("CITYGRID_PUBLIC_BASE_URL", PUBLIC + "/")
    for headers in ({"Host": "10.0.3.7:8000"}, {"Host": "intranet.local", "X-Forwarded-Host": "evil.example"}):
        r = client.get(f"/addresses/{door}/qr.svg", headers=headers)
        assert r.status_code == 200 and r.content == _qr_svg(f"{PUBLIC}/a/{door}")
    # even from a trusted proxy that names another host: the configured address wins
    r = _from(client, "127.0.0.1").get(f"/addresses/{door}/qr.svg", headers={"X-Forwarded-Host": "other.example"})
    assert r.content == _qr_svg(f"{PUBLIC}/a/{door}")


def test_forwarded_host_counts_only_from_trusted_proxies(client: TestClient, places: dict,
                                                         setting: Callable[[str, str], None]) -> None:
    door = places["door"]
    fwd = {"X-Forwarded-Host": "dz.example.cn", "X-Forwarded-Proto": "https"}
    # unset public URL, default trust (loopback): a local reverse proxy's headers count
    assert _from(client, "127.0.0.1").get(f"/addresses/{door}/qr.svg", headers=fwd).content == \
        _qr_svg(f"https://dz.example.cn/a/{door}")
    rfc = {"Forwarded": 'for=203.0.113.9;proto=https;host="dz2.example.cn"'}
    assert _from(client, "127.0.0.1").get(f"/addresses/{door}/qr.svg", headers=rfc).content == \
        _qr_svg(f"https://dz2.example.cn/a/{door}")
    # a client that is not a trusted proxy: its forwarded headers are ignored, the request's own host is used
    for peer in ("203.0.113.50", "testclient"):
        r = _from(client, peer).get(f"/addresses/{door}/qr.svg", headers=fwd | rfc)
        assert r.content == _qr_svg(f"http://testserver/a/{door}")
    # trust a proxy network instead: now 10.1.2.3 counts and loopback does not
    setting("CITYGRID_FORWARDED_ALLOW_IPS", "10.1.2.0/24")
    assert _from(client, "10.1.2.3").get(f"/addresses/{door}/qr.svg", headers=fwd).content == \
        _qr_svg(f"https://dz.example.cn/a/{door}")
    assert _from(client, "127.0.0.1").get(f"/addresses/{door}/qr.svg", headers=fwd).content == \
        _qr_svg(f"http://testserver/a/{door}")
    # a forged host that is not a host name is never taken
    bad = {"X-Forwarded-Host": "a.example/<script>"}
    assert _from(client, "10.1.2.3").get(f"/addresses/{door}/qr.svg", headers=bad).content == \
        _qr_svg(f"http://testserver/a/{door}")


def _doors(engine: Engine, village: str) -> list[Any]:
    with engine.connect() as c:
        return c.execute(text("SELECT code, name, full_name FROM addr_node WHERE level = 'door' AND status = 'active' "
                              "AND village_code = :v"), {"v": village}).all()


def _read(pdf: bytes) -> tuple[list[str], list[set[str]]]:
    """Each page's text (whitespace removed) and the URLs its QR images decode to."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    texts, urls = [], []
    for page in reader.pages:
        texts.append("".join(page.extract_text().split()))
        found: set[str] = set()
        for img in page.images:
            found |= {r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(img.data)))}
        urls.append(found)
    return texts, urls


def _village_with_doors(engine: Engine, at_least: int) -> str:
    with engine.connect() as c:
        return str(c.execute(text(
            "SELECT village_code FROM addr_node WHERE level = 'door' AND village_code IS NOT NULL GROUP BY 1 "
            "HAVING count(*) >= :n ORDER BY count(*), 1 LIMIT 1"), {"n": at_least}).scalar_one())


def test_village_plates_pdf_has_every_plate_with_address_and_qr(client: TestClient, engine: Engine,
                                                                 caller: Callable[..., Any], demo_county: dict,
                                                                 setting: Callable[[str, str], None]) -> None:
    setting("CITYGRID_PUBLIC_BASE_URL", PUBLIC)
    village = _village_with_doors(engine, 9)  # more than one page
    doors = _doors(engine, village)
    cadre = caller(f"cadre@{village}")
    r = client.get("/doorplates.pdf", params={"village": village}, headers=cadre.headers | {"Host": "10.0.0.9"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf" and village in r.headers["content-disposition"]
    texts, urls = _read(r.content)
    assert len(texts) == math.ceil(len(doors) / 8)
    assert set().union(*urls) == {f"{PUBLIC}/a/{d.code}" for d in doors}  # every plate's QR, at the public URL
    assert all(len(u) == 8 for u in urls[:-1])
    everything = "".join(texts)
    for d in doors:  # the standard address, the number and the code of every plate, in Chinese
        assert "".join(d.full_name.split()) in everything and d.code in everything and d.name in everything
    # the font is embedded (a subset), so the plates print the same anywhere
    reader = pypdf.PdfReader(io.BytesIO(r.content))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    descendant = next(iter(fonts.values())).get_object()["/DescendantFonts"][0].get_object()
    assert "/FontFile2" in descendant["/FontDescriptor"] or "/FontFile3" in descendant["/FontDescriptor"]


def test_compound_plates_are_its_buildings(client: TestClient, engine: Engine, admin_headers: dict,
                                           demo_county: dict, setting: Callable[[str, str], None]) -> None:
    setting("CITYGRID_PUBLIC_BASE_URL", PUBLIC)
    with engine.connect() as c:
        compound = c.execute(text("SELECT p.code FROM addr_node p JOIN addr_node b ON b.parent_id = p.id "
                                  "AND b.level = 'building' WHERE p.level = 'compound' GROUP BY p.code "
                                  "ORDER BY count(*) DESC LIMIT 1")).scalar_one()
        buildings = c.execute(text("SELECT b.code, b.full_name FROM addr_node b JOIN addr_node p ON p.id = b.parent_id "
                                   "WHERE p.code = :c AND b.level = 'building'"), {"c": compound}).all()
    r = client.get("/doorplates.pdf", params={"compound": compound}, headers=admin_headers)
    assert r.status_code == 200, r.text
    texts, urls = _read(r.content)
    assert set().union(*urls) == {f"{PUBLIC}/a/{b.code}" for b in buildings}
    assert all("".join(b.full_name.split()) in "".join(texts) for b in buildings)


def test_printing_plates_needs_a_role_there(client: TestClient, engine: Engine, caller: Callable[..., Any],
                                            places: dict) -> None:
    village, other = places["a"]["village"], places["b"]["village"]
    r = client.get("/doorplates.pdf", params={"village": village})
    assert r.status_code == 401 and r.json()["error_code"] == "unauthenticated"
    r = client.get("/doorplates.pdf", params={"village": village}, headers=caller(f"cadre@{other}").headers)
    assert r.status_code == 403 and r.json()["error_code"] == "forbidden"
    township_reviewer = caller(f"reviewer@{places['a']['township']}").headers
    assert client.get("/doorplates.pdf", params={"village": village}, headers=township_reviewer).status_code == 200


def test_bad_places_are_4xx_in_the_error_shape(client: TestClient, engine: Engine, admin_headers: dict,
                                               places: dict) -> None:
    def err(params: dict[str, str], status: int, code: str, field: str | None) -> None:
        r = client.get("/doorplates.pdf", params=params, headers=admin_headers)
        body = r.json()
        assert r.status_code == status and body["error_code"] == code, r.text
        assert body["message_zh"] and body["message_en"] and body["field"] == field and "row" in body

    err({"village": "420281999999"}, 404, "division_not_found", "village")
    err({"village": "4202"}, 422, "request_string_pattern_mismatch", "village")
    err({}, 400, "plates_target", None)
    err({"village": places["a"]["village"], "compound": places["door"]}, 400, "plates_target", "village")
    err({"compound": places["door"]}, 400, "plates_not_compound", "compound")
    err({"compound": "4202810000000000000"}, 404, "address_not_found", "code")
    with engine.connect() as c:
        empty = c.execute(text("SELECT code FROM division d WHERE level = 5 AND code LIKE '420281%' AND NOT EXISTS "
                               "(SELECT 1 FROM addr_node a WHERE a.village_code = d.code AND a.level = 'door') "
                               "LIMIT 1")).scalar_one()
    err({"village": empty}, 404, "plates_none", "village")


def test_cli_writes_the_same_plates(database_url: str, engine: Engine, demo_county: dict, tmp_path: Path,
                                    setting: Callable[[str, str], None]) -> None:
    from citygrid.cli import app

    village = _village_with_doors(engine, 1)
    setting("DATABASE_URL", database_url.replace("postgresql+psycopg://", "postgresql://"))
    out = tmp_path / "plates.pdf"
    runner = CliRunner()
    r = runner.invoke(app, ["doorplates", "--village", village, "--out", str(out)])
    assert r.exit_code == 2 and "CITYGRID_PUBLIC_BASE_URL" in r.output  # no public address: no plates
    r = runner.invoke(app, ["doorplates", "--village", village, "--out", str(out), "--base-url", PUBLIC])
    assert r.exit_code == 0, r.output
    _, urls = _read(out.read_bytes())
    assert set().union(*urls) == {f"{PUBLIC}/a/{d.code}" for d in _doors(engine, village)}
    r = runner.invoke(app, ["doorplates", "--village", "420281999999", "--out", str(out), "--base-url", PUBLIC])
    assert r.exit_code == 2 and "division_not_found" in r.output
