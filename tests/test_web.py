"""The web map viewer in a real browser: Debian's headless Chromium driven over the DevTools protocol.

The app runs under uvicorn in a thread against the test database; Chromium is started with a private profile and
a remote-debugging port, and the test talks CDP over a websocket (`websocket-client`). Nothing is downloaded.
Requests of the page and of its workers are recorded to check that the page never leaves localhost, and CSP
violations (the DevTools log and `securitypolicyviolation` events) to check that the pages pass their CSP
(api/hardening.py): no inline script or style, nothing from elsewhere.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from shapely.geometry import Point
from sqlalchemy.orm import Session

from citygrid.registry.bulk import BulkItem, bulk_create
from citygrid.security.principal import system_as

# a class whose identifying attribute (kiosk_no) is public (L1): the map is anonymous and shows what the public may see
CLS, CLS_NAME = "010801", "报刊亭"
POINTS = [(114.9743 + i * 0.0021, 30.1037) for i in range(5)]  # ~200 m apart: one object per click
WIDTH, HEIGHT = 1280, 800
CHROMIUM = shutil.which("chromium")
# Collects the page's CSP violations, from the first script on (installed before any page script runs).
CSP_WATCH = ("window.cspViolations = []; document.addEventListener('securitypolicyviolation', "
             "e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));")

# No skips: `make test` installs chromium, maplibre-gl and websocket-client, so their absence is a failure.
import websocket  # noqa: E402,F401  (websocket-client, in the dev extra)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Chromium:
    """Headless Chromium with one page, spoken to over the DevTools protocol (flat sessions for workers)."""

    def __init__(self) -> None:

        self.profile = tempfile.mkdtemp(prefix="citygrid-chromium-")
        port = _free_port()
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
             "--use-angle=swiftshader", "--disable-quic", "--no-first-run", "--no-default-browser-check",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio", f"--window-size={WIDTH},{HEIGHT}",
             f"--user-data-dir={self.profile}", f"--remote-debugging-port={port}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=1) as r:
                    page = next(t for t in json.load(r) if t["type"] == "page")
                break
            except (OSError, StopIteration, ValueError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError("chromium did not open its DevTools port") from None
                time.sleep(0.1)
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _post(self, method: str, session: str | None = None, **params: Any) -> int:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        return self.next_id

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        mid = self._post(method, **params)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == "Target.attachedToTarget":  # a worker (tiles are fetched there): watch it too
                    sid = msg["params"]["sessionId"]
                    self._post("Network.enable", session=sid)
                    self._post("Log.enable", session=sid)
                    self._post("Runtime.runIfWaitingForDebugger", session=sid)

    def js(self, expr: str) -> Any:
        r = self.send("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expr: str, timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expr)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for: {expr}\n{self.problems()}")
            time.sleep(0.1)

    def click(self, x: float, y: float) -> None:
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def problems(self) -> list[str]:
        out = [json.dumps(e["params"]["exceptionDetails"], ensure_ascii=False)[:500]
               for e in self.events if e["method"] == "Runtime.exceptionThrown"]
        out += [" ".join(str(a.get("value", a.get("description", ""))) for a in e["params"]["args"])[:500]
                for e in self.events if e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error"]
        return out

    def open(self, url: str) -> None:
        """Navigate with the network, log and CSP watch on (and workers followed)."""
        for domain in ("Network", "Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Page.addScriptToEvaluateOnNewDocument", source=CSP_WATCH)
        self.send("Target.setAutoAttach", autoAttach=True, waitForDebuggerOnStart=True, flatten=True)
        self.send("Page.navigate", url=url)

    def csp_violations(self) -> list[str]:
        """What the browser refused under the page's CSP: log entries and `securitypolicyviolation` events."""
        logged = [e["params"]["entry"]["text"][:300] for e in self.events if e["method"] == "Log.entryAdded"
                  and "Content Security Policy" in e["params"]["entry"].get("text", "")]
        return logged + (self.js("window.cspViolations || []") or [])

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def devices(engine) -> list[str]:  # noqa: ANN001
    items = [BulkItem(Point(lon, lat), {"state": "完好", "kiosk_no": f"W{i}"})
             for i, (lon, lat) in enumerate(POINTS)]
    with Session(engine) as s, s.begin():
        return bulk_create(s, system_as("test-web"), CLS, "420281", items)


@pytest.fixture(scope="module")
def server(live_server: str, devices: list[str]) -> str:
    from api import web

    assert CHROMIUM is not None, "chromium is not installed (scripts/setup.sh installs it)"
    assert web.maplibre_dir() is not None, "maplibre-gl is not installed: run npm ci in data/vendor (setup does)"
    return live_server


@pytest.fixture()
def browser() -> Iterator[Chromium]:
    b = Chromium()
    try:
        yield b
    finally:
        b.close()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_map_page_layers_click_aggregate_and_stays_local(server: str, devices: list[str], browser: Chromium,
                                                          tmp_path: Path, demo_county: dict) -> None:
    b = browser
    b.send("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)
    b.open(f"{server}/map")
    b.wait_for("document.body && document.body.dataset.ready === '1'", timeout=30)

    # the base map: the county boundary drawn, the start view fitted to it
    assert b.js("citygridMap.getSource('boundary').serialize().data.properties.code") == "420281"
    center = b.js("citygridMap.getCenter().toArray()")
    assert 114.5 < center[0] < 115.2 and 29.85 < center[1] < 30.33
    # the layer list is grouped by 大类 and offers the class that has objects
    layers = b.js("document.getElementById('layers').innerText")
    major = httpx.get(f"{server}/classes").json()["majors"][CLS[:2]]
    assert CLS_NAME in layers and major in layers
    # grid systems and door plates are layers too; the unit grid draws from its tiles
    assert "网格与门牌" in layers
    b.js("document.querySelector('input[data-layer=\"grids-unit\"]').click()")
    b.wait_for("!!citygridMap.getLayer('grids-unit-fill') && !!citygridMap.getLayer('grids-unit-line')")
    b.js("document.querySelector('input[data-layer=\"grids-unit\"]').click()")
    b.wait_for("!citygridMap.getLayer('grids-unit-fill')")

    # switch the layer on, centre on one object, click it where it is drawn
    b.js(f"document.querySelector('input[data-layer=\"class-{CLS}\"]').click()")
    b.wait_for(f"!!citygridMap.getLayer('class-{CLS}')")
    lon, lat = POINTS[2]
    b.js("new Promise(r => { citygridMap.once('idle', () => r(true)); "
         f"citygridMap.jumpTo({{center: [{lon}, {lat}], zoom: 17}}); }})")
    x, y = b.js(f"(() => {{ const p = citygridMap.project([{lon}, {lat}]); "
                "const r = citygridMap.getContainer().getBoundingClientRect(); return [p.x + r.left, p.y + r.top]; })()")
    b.click(x, y)
    assert b.wait_for("document.getElementById('object-code').textContent") == devices[2]
    assert len(devices[2]) == 21
    b.wait_for("document.getElementById('object-status').textContent.includes('active')")
    assert "W2" in b.js("document.getElementById('object-attrs').innerText")
    assert b.wait_for("document.querySelectorAll('#object-history li').length") == 1

    # the H3 overlay for the class, with a legend
    b.js(f"document.getElementById('agg-class').value = '{CLS}'; document.getElementById('agg-on').click()")
    b.wait_for("!!citygridMap.getLayer('agg-fill') && document.querySelectorAll('#legend .item').length > 0")
    # grouped by county instead: one polygon with every device of the class in it
    b.js("{ const s = document.getElementById('agg-res'); s.value = 'county'; s.dispatchEvent(new Event('change')); }")
    assert "1 个网格" in b.wait_for("(() => { const t = document.getElementById('agg-msg').textContent; "
                                    "return t.includes('加载中') ? '' : t; })()")
    assert b.js("citygridMap.getSource('agg').serialize().data.features[0].properties.key") == "420281"
    b.js("{ const s = document.getElementById('agg-res'); s.value = 'h3:8'; s.dispatchEvent(new Event('change')); }")
    b.wait_for("!!citygridMap.getLayer('agg-fill') && document.querySelectorAll('#legend .item').length > 0")
    b.js("new Promise(r => { citygridMap.once('idle', () => r(true)); citygridMap.zoomTo(13, {duration: 0}); })")

    # the search box: politely unavailable while the geocoder is missing, candidates once it exists
    geocoder = httpx.get(f"{server}/address/geocode", params={"q": "大冶市"})
    b.js("document.getElementById('search-q').value = '大冶市'; document.getElementById('search-form').requestSubmit()")
    msg = b.wait_for("(() => { const t = document.getElementById('search-msg').textContent; "
                     "return t.includes('搜索中') ? '' : t || ('results:' + "
                     "document.querySelectorAll('#search-results li').length); })()")
    if geocoder.status_code == 404 and geocoder.json().get("error_code") == "http_404":
        assert "地址搜索暂不可用" in msg

    shot = base64.b64decode(b.send("Page.captureScreenshot", format="png")["data"])
    out = tmp_path / "map.png"
    out.write_bytes(shot)
    assert _png_size(out.read_bytes()) == (WIDTH, HEIGHT) and len(shot) > 20_000

    urls = b.urls()
    assert any("/tiles/class-" in u for u in urls), "tile requests of the worker were not seen"
    foreign = [u for u in urls if urlsplit(u).scheme not in ("data", "blob")
               and urlsplit(u).hostname not in ("127.0.0.1", "localhost")]
    assert not foreign, f"the page left localhost: {foreign}"
    assert not b.problems(), b.problems()
    # all of it under the CSP (no inline script or style, blob: workers only), with nothing refused
    assert "script-src 'self'" in httpx.get(f"{server}/map").headers["content-security-policy"]
    assert not b.csp_violations(), b.csp_violations()


def test_docs_and_door_plate_pages_work_under_their_csp(server: str, browser: Chromium, engine,  # noqa: ANN001
                                                        demo_county: dict) -> None:
    """/docs is Swagger UI served from data/vendor and started from a static file; /a/{code} keeps its style in
    /static. Both render with the CSP on, refuse nothing and stay on localhost."""
    from sqlalchemy import text

    b = browser
    b.open(f"{server}/docs")
    assert b.wait_for("document.querySelectorAll('.opblock').length", timeout=30) > 20
    assert b.wait_for("!!document.querySelector('.btn.authorize')")  # the OAuth2 password flow's Authorize button
    assert not b.csp_violations(), b.csp_violations()
    with engine.connect() as c:
        code = c.execute(text("SELECT code FROM addr_node WHERE level = 'door' ORDER BY id LIMIT 1")).scalar_one()
    b.send("Page.navigate", url=f"{server}/a/{code}")
    b.wait_for("document.querySelector('body.plain h1') !== null && document.readyState === 'complete'")
    assert b.js("getComputedStyle(document.body).maxWidth") != "none"  # /static/page.css applied
    assert b.js("document.querySelector('img').naturalWidth") > 0  # the QR code
    assert not b.csp_violations(), b.csp_violations()
    assert httpx.get(f"{server}/redoc", follow_redirects=False).headers["location"] == "/docs"
    foreign = [u for u in b.urls() if urlsplit(u).scheme not in ("data", "blob")
               and urlsplit(u).hostname not in ("127.0.0.1", "localhost")]
    assert not foreign, f"the page left localhost: {foreign}"
    assert not b.problems(), b.problems()


def test_map_opens_on_the_county_with_outlines_names_roads_and_buildings(server: str, browser: Chromium,  # noqa: ANN001
                                                                         engine, demo_county: dict, tmp_path: Path
                                                                         ) -> None:
    """The first impression: no layer to switch on before a cadre sees where they are. The map opens fitted to
    the county, with township and village outlines and names drawn from citygrid's own division tiles, and roads
    and buildings on; labels use glyphs served by citygrid (nothing from elsewhere)."""
    from sqlalchemy import text

    b = browser
    b.send("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)
    b.open(f"{server}/map")
    b.wait_for("document.body && document.body.dataset.ready === '1'", timeout=60)
    lon, lat = b.js("citygridMap.getCenter().toArray()")
    assert 114.5 < lon < 115.2 and 29.85 < lat < 30.33
    assert 8.5 <= b.js("citygridMap.getZoom()") <= 11  # the whole county, not the world and not one street
    # roads and buildings are on without asking, ticked in the layer list
    for layer in ("class-020101", "class-050101"):
        assert b.js(f"document.querySelector('input[data-layer=\"{layer}\"]').checked"), layer
    rendered = ("(ids) => ids.map(id => citygridMap.queryRenderedFeatures({layers: [id]}).length)")
    object_layers = b.js("citygridMap.getStyle().layers.filter(l => l.source === 'class-020101' || "
                         "l.source === 'class-050101').map(l => l.id)")
    assert len(object_layers) >= 2
    b.wait_for(f"({rendered})({json.dumps(object_layers)}).every(n => n > 0)", timeout=60)
    base = ["township-line", "village-line", "township-label", "village-label"]
    b.wait_for(f"({rendered})({json.dumps(base)}).every(n => n > 0)", timeout=60)
    with engine.connect() as c:
        names = {r.level: set(r.names) for r in c.execute(text(
            "SELECT level, array_agg(coalesce(short_name, name)) AS names FROM division WHERE code LIKE '420281%' AND level IN (4, 5) "
            "GROUP BY level"))}
    shown = {lvl: set(b.js(f"citygridMap.queryRenderedFeatures({{layers: ['{lvl}-label']}})"
                           ".map(f => f.properties.short_name || f.properties.name)")) for lvl in ("township", "village")}
    assert shown["township"] and shown["township"] <= names[4]
    assert shown["village"] and shown["village"] <= names[5]
    assert len(shown["township"]) >= len(names[4]) // 2  # most townships are named at once
    shot = base64.b64decode(b.send("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "first-impression.png").write_bytes(shot)
    assert _png_size(shot) == (WIDTH, HEIGHT)
    # digits and Latin letters in a label: glyphs come from /glyphs on this server and the label is placed
    b.js("citygridMap.addSource('probe', {type: 'geojson', data: {type: 'Feature', properties: {},"
         f"geometry: {{type: 'Point', coordinates: [{lon}, {lat}]}}}}}});"
         "citygridMap.addLayer({id: 'probe', type: 'symbol', source: 'probe', layout: {'text-field': 'G106 大冶 12号',"
         "'text-font': ['citygrid Sans'], 'text-allow-overlap': true, 'text-ignore-placement': true}}); true")
    b.wait_for("citygridMap.queryRenderedFeatures({layers: ['probe']}).length > 0", timeout=30)
    assert any("/glyphs/citygrid%20Sans/0-255.pbf" in u or "/glyphs/citygrid Sans/0-255.pbf" in u for u in b.urls())
    assert httpx.get(f"{server}/glyphs/x/1-5.pbf").json()["error_code"] == "glyph_range"
    foreign = [u for u in b.urls() if urlsplit(u).scheme not in ("data", "blob")
               and urlsplit(u).hostname not in ("127.0.0.1", "localhost")]
    assert not foreign, f"the page left localhost: {foreign}"
    assert not b.problems(), b.problems()
    assert not b.csp_violations(), b.csp_violations()


INJECT = '<img src=x onerror="window.pwned=1">井盖乙</td><script>window.pwned=2</script>'


def test_cadre_fixes_and_resubmits_then_a_reviewer_approves_in_the_browser(  # noqa: ANN001
        server: str, browser: Chromium, login_as, places: dict, tmp_path: Path) -> None:
    """Issue 11's browser path on /survey: a cadre uploads a filled template with a mistake, sees the error in the
    table next to the map (drawn on /map's base: roads and buildings from citygrid's layers), clicks it (the map
    shows the row), fixes the cell in place and resubmits the corrected row into the same submission, hands it
    in; a reviewer approves the whole submission and sees the code. Names are shown as text (an injection string stays text),
    and the page fits a phone's width."""
    import io

    from openpyxl import load_workbook

    a = places["a"]
    x, y = a["quiet"]  # a spot of its own: other modules register many objects at a["pt"]
    login_as("web-cadre", f"cadre@{a['village']}")
    login_as("web-reviewer", f"reviewer@{a['township']}")
    wb = load_workbook(io.BytesIO(httpx.get(f"{server}/templates/010101.xlsx").content))
    ws = wb["数据"]
    col = {str(c.value).lstrip("*").split("（")[0]: c.column for c in ws[1]}
    for r, values in ((2, {"名称": "井盖甲", "经度": x, "纬度": y, "状态": "完好"}),
                      (3, {"名称": INJECT, "经度": x, "纬度": y, "状态": "破顺"})):  # row 3: not an allowed state
        for label, value in values.items():
            ws.cell(r, col[label], value)
    upload = tmp_path / "survey.xlsx"
    wb.save(upload)

    b = browser
    b.send("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)
    b.open(f"{server}/survey")
    b.wait_for("document.body && document.body.dataset.mapReady === '1'", timeout=60)
    # the base of /map: outlines and names, and the roads and buildings layers with their server-made styles
    assert b.js("['village-line', 'township-label', 'class-050101-fill', 'class-020101']"
                ".every((id) => !!surveyMap.getLayer(id))")

    def log_in(user: str) -> None:
        b.js(f"document.getElementById('login-user').value = '{user}';"
             f"document.getElementById('login-pass').value = 'test-password-{user}';"
             "document.getElementById('login-form').requestSubmit()")
        b.wait_for(f"document.getElementById('login-msg').textContent.includes('{user}')", timeout=20)

    # the cadre: choose the class, upload the file
    log_in("web-cadre")
    b.js("{ const s = document.getElementById('upload-class'); s.value = '010101'; s.dispatchEvent(new Event('change')); }")
    assert b.js("document.getElementById('template-link').getAttribute('href')") == "/templates/010101.xlsx"
    def add_one(name: str) -> None:
        """One object by clicking on the map, with the form made from the class's attribute table."""
        b.wait_for("getComputedStyle(document.getElementById('add-form')).display === 'none'", timeout=20)
        b.js("document.getElementById('add-start').click()")
        b.wait_for("getComputedStyle(document.getElementById('add-form')).display !== 'none' && "
                   "!!document.querySelector('#add-fields select[data-key=\"state\"]')")
        assert "状态 *" in b.js("document.getElementById('add-fields').innerText")  # required, from the catalog
        b.js(f"new Promise(r => {{ surveyMap.once('idle', () => r(true)); "
             f"surveyMap.jumpTo({{center: [{x}, {y}], zoom: 16}}); }})")
        px, py = b.js(f"(() => {{ const p = surveyMap.project([{x}, {y}]); "
                      "const r = surveyMap.getContainer().getBoundingClientRect(); return [p.x + r.left, p.y + r.top]; })()")
        b.click(px, py)
        b.wait_for("document.getElementById('add-where').textContent.includes(',')")
        b.js(f"document.querySelector('#add-fields [data-key=\"name\"]').value = '{name}';"
             "document.querySelector('#add-fields [data-key=\"state\"]').value = '完好';"
             "document.getElementById('add-form').requestSubmit()")
        b.wait_for("document.querySelectorAll('#rows tr[data-row]').length === 1 && "
                   f"document.querySelector('#rows tr[data-row=\"2\"] td:nth-child(2)').textContent === '{name}'",
                   timeout=30)
        assert b.js("document.querySelectorAll('#rows tr.invalid').length") == 0
        b.wait_for("getComputedStyle(document.getElementById('add-form')).display === 'none'", timeout=20)  # closed once sent
        added = b.js("surveyMap.getSource('rows').serialize().data.features[0].geometry.coordinates")
        assert abs(added[0] - x) < 2e-5 and abs(added[1] - y) < 2e-5  # where the click was

    add_one("井盖丙")

    doc = b.send("DOM.getDocument")["root"]["nodeId"]
    node = b.send("DOM.querySelector", nodeId=doc, selector="#upload-file")["nodeId"]
    b.send("DOM.setFileInputFiles", files=[str(upload)], nodeId=node)
    b.js("document.getElementById('upload-form').requestSubmit()")
    b.wait_for("!!document.querySelector('#rows tr[data-row=\"3\"] li.error')", timeout=30)
    assert "invalid" in b.js("document.querySelector('#rows tr[data-row=\"3\"]').className")
    error = b.js("document.querySelector('#rows tr[data-row=\"3\"] li.error').textContent")
    assert "破损" in error  # what is wrong and the nearest allowed value
    # the name is text: no element, no script ran
    assert b.js("document.querySelector('#rows tr[data-row=\"3\"] td:nth-child(2)').textContent") == INJECT
    assert b.js("document.querySelectorAll('#rows img, #rows script').length") == 0
    assert b.js("typeof window.pwned") == "undefined"
    # the rows are on the map, coloured by state; clicking the error shows that row there
    b.wait_for("surveyMap.getSource('rows').serialize().data.features.length === 2")
    b.js("document.querySelector('#rows tr[data-row=\"3\"] li.error').click()")
    assert b.wait_for("window.surveyFocus") == 3
    lon, lat = b.js("surveyMap.getCenter().toArray()")
    assert abs(lon - x) < 1e-4 and abs(lat - y) < 1e-4 and b.js("surveyMap.getZoom()") >= 16
    assert "第 3 行" in b.js("document.getElementById('map-msg').textContent")
    assert b.js("surveyMap.getSource('focus').serialize().data.properties.row") == 3

    # fix the cell in place and resubmit the corrected row (with its row key) into the same submission
    assert b.js("document.getElementById('hand-in').hidden === false")  # partly: the valid row only
    b.js("document.querySelector('#rows tr[data-row=\"3\"] button[data-act=\"fix\"]').click()")
    b.js("{ const s = document.querySelector('[data-fix-row=\"3\"] [data-key=\"state\"]'); s.value = '完好';"
         "s.dispatchEvent(new Event('input')); }")
    assert b.js("document.querySelector('[data-fix-row=\"3\"] [data-key=\"name\"]').value") == INJECT
    b.js("document.getElementById('resubmit').click()")
    b.wait_for("document.getElementById('detail-id').textContent.includes('已通过校验') && "
               "document.querySelectorAll('#rows tr[data-row]').length === 2", timeout=30)
    assert b.js("document.querySelectorAll('#rows tr.invalid').length") == 0
    assert b.js("document.querySelector('#rows tr[data-row=\"3\"] td:nth-child(2)').textContent") == INJECT
    assert b.js("document.querySelectorAll('#submissions tbody tr').length") == 2
    # handed in: now the reviewers' to decide
    b.js("document.getElementById('hand-in').click()")
    b.wait_for("document.getElementById('detail-id').textContent.includes('待审核')", timeout=30)

    # the reviewer: pending submissions, open the corrected one, approve it whole, see the code
    b.js("document.getElementById('logout').click()")
    assert b.js("document.getElementById('detail').hidden && !document.querySelector('#rows tbody tr') && "
                "!document.getElementById('map-msg').textContent")  # nothing of the cadre's session is left
    log_in("web-reviewer")
    b.js("{ const c = document.getElementById('pending-only'); c.checked = true; c.dispatchEvent(new Event('change')); }")
    # at least the cadre's handed-in one (other tests may have left handed-in files in the same township)
    b.wait_for("document.querySelectorAll('#submissions tbody tr').length >= 1", timeout=20)
    b.js("document.querySelector('#submissions tbody tr').click()")  # newest first: the corrected file
    b.wait_for("!document.getElementById('approve-all').hidden && "
               "document.querySelectorAll('#rows tr[data-row]').length === 2", timeout=20)
    b.js("document.getElementById('approve-all').click()")
    code = b.wait_for("(document.querySelector('#rows tr[data-row=\"3\"] .object-code') || {}).textContent",
                      timeout=30)
    assert len(code) == 21 and code.startswith("420281010101")
    obj = httpx.get(f"{server}/objects/{code}").json()
    assert obj["name"] == INJECT and obj["village_code"] == a["village"]
    assert "已赋码 2 个" in b.wait_for("document.getElementById('review-msg').textContent")

    # the same spot again: flagged as a likely duplicate, drawn beside the object now registered there
    b.js("document.getElementById('logout').click()")
    log_in("web-cadre")
    add_one("井盖丁")
    assert "duplicate" in b.js("document.querySelector('#rows tr[data-row=\"2\"]').className")
    # the registered object by its code (the cadre's earlier open files at the spot are listed too, by row)
    assert code in b.js("[...document.querySelectorAll('#rows tr[data-row=\"2\"] li.dup')].map((e) => e.textContent)"
                        ".join(' ')")
    # drawn beside it (other modules of the suite may have registered more objects at the spot: at least ours)
    b.wait_for(f"surveyMap.getSource('existing').serialize().data.features.some(f => f.properties.code === '{code}')")
    n_existing = b.js("surveyMap.getSource('existing').serialize().data.features.length")
    assert b.js("surveyMap.getSource('links').serialize().data.features.length") == n_existing >= 1
    (tmp_path / "survey-desk.png").write_bytes(base64.b64decode(b.send("Page.captureScreenshot", format="png")["data"]))
    # a phone-sized screen: nothing wider than the screen, the map and the table stacked
    b.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True)
    b.wait_for("document.documentElement.clientWidth === 390")
    (tmp_path / "survey-phone.png").write_bytes(base64.b64decode(b.send("Page.captureScreenshot", format="png")["data"]))
    assert b.js("document.documentElement.scrollWidth") <= 390
    map_w, map_top, table_top = b.js("(() => { const m = document.getElementById('survey-map').getBoundingClientRect();"
                                     " const t = document.getElementById('rows').getBoundingClientRect();"
                                     " return [m.width, m.top, t.top]; })()")
    assert 300 < map_w <= 390 and map_top < table_top  # the map first, the rows under it

    assert b.js("typeof window.pwned") == "undefined"  # no injected script ran at any point
    foreign = [u for u in b.urls() if urlsplit(u).scheme not in ("data", "blob")
               and urlsplit(u).hostname not in ("127.0.0.1", "localhost")]
    assert not foreign, f"the page left localhost: {foreign}"
    assert not b.problems(), b.problems()
    assert not b.csp_violations(), b.csp_violations()

