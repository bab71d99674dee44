/* The data-freshness page (/freshness): a sortable table (click a column head) and a choropleth of stale % per
 * village from /freshness/villages (same filters), drawn with MapLibre GL served locally from /vendor/maplibre-gl.
 * No inline script or style: the page's CSP forbids both. */
(function () {
  'use strict';

  // ---------------------------------------------------------------- sortable table

  function sortBy(table, th) {
    const col = [...th.parentNode.children].indexOf(th);
    const num = th.dataset.type === 'num';
    const asc = th.getAttribute('aria-sort') !== 'ascending';
    table.querySelectorAll('th').forEach((o) => o.removeAttribute('aria-sort'));
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    const body = table.tBodies[0];
    const key = (tr) => tr.children[col].dataset.sort || '';
    const rows = [...body.rows].sort((a, b) => {
      const x = key(a);
      const y = key(b);
      const d = num ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : x.localeCompare(y, 'zh-CN');
      return asc ? d : -d;
    });
    body.append(...rows);
  }

  function sortable() {
    document.querySelectorAll('table.sortable').forEach((table) => {
      table.querySelectorAll('th').forEach((th) => {
        th.tabIndex = 0;
        th.addEventListener('click', () => sortBy(table, th));
        th.addEventListener('keydown', (e) => { if (e.key === 'Enter') sortBy(table, th); });
      });
    });
  }

  // ---------------------------------------------------------------- choropleth

  const STEPS = [[0, '#1a9850'], [10, '#91cf60'], [25, '#fee08b'], [50, '#fc8d59'], [75, '#d73027']];

  function bounds(fc) {
    let b = [180, 90, -180, -90];
    const walk = (c) => {
      if (typeof c[0] === 'number') {
        b = [Math.min(b[0], c[0]), Math.min(b[1], c[1]), Math.max(b[2], c[0]), Math.max(b[3], c[1])];
      } else c.forEach(walk);
    };
    fc.features.forEach((f) => walk(f.geometry.coordinates));
    return [[b[0], b[1]], [b[2], b[3]]];
  }

  function legend() {
    const el = document.getElementById('fresh-legend');
    STEPS.forEach(([v, c], i) => {
      const item = document.createElement('span');
      const box = document.createElement('span');
      box.className = 'box';
      box.style.background = c;
      const next = STEPS[i + 1];
      item.append(box, next ? `${v}–${next[0]}%` : `≥ ${v}%`);
      el.append(item);
    });
  }

  async function choropleth() {
    const div = document.getElementById('fresh-map');
    const msg = document.getElementById('fresh-msg');
    if (!div) return;
    if (!window.maplibregl) { msg.textContent = '地图库未加载 / MapLibre GL failed to load'; return; }
    const q = new URLSearchParams();
    for (const [k, name] of [['division', 'division'], ['class', 'class'], ['department', 'department']]) {
      if (div.dataset[k]) q.set(name, div.dataset[k]);
    }
    let fc;
    try {
      const r = await fetch(`/freshness/villages?${q}`, { headers: { Accept: 'application/json' } });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      fc = await r.json();
    } catch (e) {
      msg.textContent = `加载失败 / failed: ${e.message}`;
      return;
    }
    if (!fc.features.length) { msg.textContent = '没有村级数据 / no village data'; return; }
    const color = ['step', ['get', 'stale_pct'], STEPS[0][1]];
    STEPS.slice(1).forEach(([v, c]) => color.push(v, c));
    const map = new maplibregl.Map({
      container: div, bounds: bounds(fc), fitBoundsOptions: { padding: 20 }, attributionControl: false,
      style: { version: 8, sources: { v: { type: 'geojson', data: fc } }, layers: [
        { id: 'bg', type: 'background', paint: { 'background-color': '#f8f8f8' } },
        { id: 'v-fill', type: 'fill', source: 'v', paint: { 'fill-color': color, 'fill-opacity': 0.75 } },
        { id: 'v-line', type: 'line', source: 'v', paint: { 'line-color': '#555', 'line-width': 0.5 } },
      ] },
    });
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
    const popup = new maplibregl.Popup({ closeButton: false });
    map.on('mousemove', 'v-fill', (e) => {
      const p = e.features[0].properties;
      const box = document.createElement('div');
      box.textContent = `${p.name} ${p.code}: ${p.stale}/${p.objects} 过期 stale (${p.stale_pct}%)`;
      popup.setLngLat(e.lngLat).setDOMContent(box).addTo(map);
    });
    map.on('mouseleave', 'v-fill', () => popup.remove());
    map.once('idle', () => { document.body.dataset.ready = '1'; });
    legend();
    msg.textContent = `${fc.features.length} 个村/社区 villages`;
  }

  sortable();
  choropleth();
}());
