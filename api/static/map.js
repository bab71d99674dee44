/* citygrid map viewer: vanilla ES2020, no build step, no external requests (MapLibre is served from /vendor).
 *
 * Base: the county boundary (/divisions/420281/boundary) and the divisions vector tiles.
 * Left panel: address search (/address/geocode), the layers with data as /layers lists them (grouped by 大类,
 * grids and door plates; styles from /styles/{layer}.json), aggregation (/aggregate) by H3 cell, grid or division as a choropleth with a legend.
 * Click an object: its record (/objects/{code}) and history (/objects/{code}/history) on the right.
 * For tests: window.citygridMap, body[data-ready="1"] once the base is drawn, #object-code.
 */
'use strict';

(() => {
  const { COUNTY, DEFAULT_LAYERS, FALLBACK_BOUNDS, LOCAL_CJK } = window.citygridBase;
  const AGG_COLORS = ['#ffffb2', '#fecc5c', '#fd8d3c', '#f03b20', '#bd0026'];
  const OPS = { create: '创建', update: '更新', retire: '注销', split: '拆分', merge: '合并' };
  const STATUS = { active: '在用 active', retired: '已注销 retired' };
  const ZOOM_BY_LEVEL = { province: 7, city: 9, county: 10, district: 10, town: 12, township: 12, street: 15,
    village: 14, road: 15, poi: 17, building: 17, house: 18, door: 18, room: 18 };

  const $ = (id) => document.getElementById(id);
  const state = { classes: new Map(), meta: new Map(), layers: new Map(), objSeq: 0, aggSeq: 0, marker: null, popup: null };

  /** createElement with properties and children (text children are always set as text, never as HTML). */
  function h(tag, props = {}, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'class') n.className = v;
      else if (k === 'dataset') Object.assign(n.dataset, v);
      else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
      else n[k] = v;
    }
    for (const c of kids.flat()) if (c != null) n.append(c instanceof Node ? c : String(c));
    return n;
  }

  async function getJSON(url) {
    const r = await fetch(url, { headers: { Accept: 'application/json' } });
    let body = null;
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const e = new Error((body && body.message_zh) || `HTTP ${r.status}`);
      Object.assign(e, { status: r.status, body });
      throw e;
    }
    return body;
  }

  function fatal(text) {
    if (!$('fatal')) document.body.append(h('div', { id: 'fatal' }, text));
  }

  function fmtValue(v) {
    if (v == null || v === '') return '—';
    if (typeof v === 'boolean') return v ? '是 yes' : '否 no';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  function fmtTime(s) {
    if (!s) return '—';
    const d = new Date(s);
    return Number.isNaN(d.getTime()) ? String(s) : d.toLocaleString('zh-CN', { hour12: false });
  }

  function bboxOf(geom) {
    let x0 = Infinity; let y0 = Infinity; let x1 = -Infinity; let y1 = -Infinity;
    const walk = (c) => {
      if (typeof c[0] === 'number') {
        x0 = Math.min(x0, c[0]); y0 = Math.min(y0, c[1]); x1 = Math.max(x1, c[0]); y1 = Math.max(y1, c[1]);
      } else c.forEach(walk);
    };
    walk(geom.coordinates);
    return Number.isFinite(x0) ? [[x0, y0], [x1, y1]] : null;
  }

  // ---------------------------------------------------------------- base map

  // The offline base (outlines, names, roads and buildings) is api/static/basemap.js, shared with /survey.
  const { FIRST_OBJECT_BELOW } = window.citygridBase;

  /** An 8×8 diagonal hatch for suppressed aggregate cells (fill-pattern needs no sprite file). */
  function addHatch(map) {
    const n = 8; const data = new Uint8Array(n * n * 4);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        const on = (x + y) % n < 2; const i = (y * n + x) * 4;
        data.set(on ? [120, 120, 120, 230] : [225, 225, 225, 170], i);
      }
    }
    map.addImage('hatch', { width: n, height: n, data });
  }

  // ---------------------------------------------------------------- layers

  const objectLayerIds = () => [...state.layers.values()].flatMap((l) => l.ids);
  const firstObjectLayer = () => objectLayerIds().find((id) => window.citygridMap.getLayer(id));

  /** One checkbox row of the layer list. */
  function layerRow(l, tip) {
    return h('label', { class: 'layer', title: tip },
      h('input', { type: 'checkbox', dataset: { layer: l.id }, onchange: (ev) => setLayer(l.id, ev.target.checked) }),
      h('span', { class: 'swatch', id: `swatch-${l.id}` }),
      h('span', { class: 'name' }, l.title),
      h('span', { class: 'count' }, l.count.toLocaleString('zh-CN')));
  }

  /** The layer list comes from GET /layers: each layer says its group, title and whether it opens objects. */
  async function buildLayerList() {
    const box = $('layers');
    const [cat, listed] = await Promise.all([getJSON('/classes'), getJSON('/layers')]);
    for (const c of cat.items) state.classes.set(c.code, c);
    const groups = new Map();
    for (const l of listed.layers) {
      state.meta.set(l.id, l);
      if (!l.group || !l.count) continue;  // no group: drawn as the base map (divisions)
      if (!groups.has(l.group.key)) groups.set(l.group.key, { group: l.group, items: [] });
      groups.get(l.group.key).items.push(l);
    }
    box.replaceChildren();
    const base = groups.get('base');
    if (base) {
      box.append(h('div', { class: 'group', dataset: { major: 'base' } },
        h('div', { class: 'group-name' }, `${base.group.name} `, h('small', {}, base.group.name_en)),
        base.items.map((l) => layerRow(l, l.description || l.id))));
      groups.delete('base');
    }
    if (!groups.size) {
      box.append(h('p', { class: 'msg' }, '暂无已登记的对象 / no objects registered yet'));
      return;
    }
    const aggSel = $('agg-class');
    for (const key of [...groups.keys()].sort()) {
      const g = groups.get(key);
      g.items.sort((a, b) => a.class_code.localeCompare(b.class_code));
      box.append(h('div', { class: 'group', dataset: { major: key } },
        h('div', { class: 'group-name' }, `${g.group.name || cat.majors[key] || key} `, h('small', {}, key)),
        g.items.map((l) => {
          const cls = state.classes.get(l.class_code);
          return layerRow(l, `${(cls && cls.name_en) || ''} (${l.class_code})`);
        })));
      g.items.forEach((l) => aggSel.append(h('option', { value: l.class_code }, `${l.title} (${l.class_code})`)));
    }
  }

  async function setLayer(id, on) {
    const map = window.citygridMap;
    if (!on) {
      const cur = state.layers.get(id);
      state.layers.delete(id);
      if (!cur) return;
      cur.ids.forEach((l) => map.getLayer(l) && map.removeLayer(l));
      if (map.getSource(id)) map.removeSource(id);
      return;
    }
    if (state.layers.has(id)) return;
    const entry = { ids: [] };
    state.layers.set(id, entry);
    let style;
    try {
      style = await window.citygridBase.layerStyle(id);
    } catch (e) {
      state.layers.delete(id);
      const cb = document.querySelector(`input[data-layer="${id}"]`);
      if (cb) { cb.checked = false; cb.parentElement.title = `无法加载 / failed: ${e.message}`; }
      return;
    }
    if (state.layers.get(id) !== entry) return; // switched off (or again on) while loading
    for (const [sid, src] of Object.entries(style.sources)) if (!map.getSource(sid)) map.addSource(sid, src);
    for (const ly of style.layers) {
      map.addLayer(ly, FIRST_OBJECT_BELOW);
      entry.ids.push(ly.id);
    }
    const p = style.layers[0].paint || {};
    const sw = $(`swatch-${id}`);
    if (sw) sw.style.background = p['circle-color'] || p['line-color'] || p['fill-color'] || '#999';
  }

  // ---------------------------------------------------------------- object panel

  async function showObject(code) {
    const seq = ++state.objSeq;
    const map = window.citygridMap;
    $('info').hidden = false;
    $('object-code').textContent = code;
    for (const f of ['class', 'name', 'status', 'version', 'updated']) $(`object-${f}`).textContent = '…';
    $('object-attrs').replaceChildren();
    const hist = $('object-history');
    hist.querySelector('summary').replaceChildren('历史版本 ', h('small', {}, 'History'));
    hist.querySelector('ol').replaceChildren();
    let obj;
    try {
      obj = await getJSON(`/objects/${encodeURIComponent(code)}`);
    } catch (e) {
      if (seq === state.objSeq) $('object-class').textContent = `无法加载 / failed: ${e.message}`;
      return;
    }
    if (seq !== state.objSeq) return;
    const cls = state.classes.get(obj.class_code);
    $('object-code').textContent = obj.code;
    $('object-class').textContent = `${obj.class_name || ''} (${obj.class_code})`;
    $('object-name').textContent = fmtValue(obj.name);
    $('object-status').textContent = STATUS[obj.status] || obj.status;
    $('object-status').className = `status-${obj.status}`;
    $('object-version').textContent = fmtValue(obj.version);
    $('object-updated').textContent = `${fmtTime(obj.updated_at || obj.created_at)} ${obj.updated_by || obj.created_by || ''}`;
    const labels = new Map(((cls && cls.attributes) || []).map((a) => [a.field, a]));
    const rows = Object.entries(obj.attrs || {}).map(([k, v]) => {
      const a = labels.get(k);
      const unit = a && a.unit && v != null ? ` ${a.unit}` : '';
      return h('tr', {}, h('th', {}, a ? a.label : k, ' ', h('small', {}, k)), h('td', {}, fmtValue(v) + unit));
    });
    $('object-attrs').replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', {}, '（无属性 / none）'))]));
    if (obj.geometry) map.getSource('selected').setData({ type: 'Feature', geometry: obj.geometry, properties: {} });

    try {
      const hx = await getJSON(`/objects/${encodeURIComponent(obj.code)}/history`);
      if (seq !== state.objSeq) return;
      const vs = (hx.versions || []).slice().reverse();
      hist.querySelector('summary').replaceChildren(`历史版本 (${vs.length}) `, h('small', {}, 'History'));
      hist.querySelector('ol').replaceChildren(...vs.map((v) => h('li', {},
        h('b', {}, `v${v.version} ${OPS[v.op] || v.op || ''}`), ` · ${fmtTime(v.changed_at)} · ${v.changed_by || ''}`,
        v.reason ? h('div', {}, `原因 reason: ${v.reason}`) : null,
        v.status && v.status !== 'active' ? h('div', { class: `status-${v.status}` }, STATUS[v.status] || v.status) : null,
        h('pre', {}, JSON.stringify(v.attrs || {}, null, 1)))));
    } catch (e) {
      if (seq === state.objSeq) hist.querySelector('ol').replaceChildren(h('li', {}, `无法加载 / failed: ${e.message}`));
    }
  }

  function closeObject() {
    state.objSeq++;
    $('info').hidden = true;
    $('object-code').textContent = '';
    window.citygridMap.getSource('selected').setData({ type: 'FeatureCollection', features: [] });
  }

  // ---------------------------------------------------------------- address search

  async function search(ev) {
    ev.preventDefault();
    const q = $('search-q').value.trim();
    const msg = $('search-msg'); const list = $('search-results');
    list.replaceChildren();
    if (!q) return;
    msg.textContent = '搜索中… / searching';
    let r; let body = null;
    try {
      r = await fetch(`/address/geocode?${new URLSearchParams({ q })}`, { headers: { Accept: 'application/json' } });
      try { body = await r.json(); } catch (_) { /* not JSON */ }
    } catch (_) {
      msg.textContent = '地址搜索暂不可用（网络错误） / address search unavailable';
      return;
    }
    if (r.status === 404 && (!body || !body.error_code || body.error_code === 'http_404')) {
      msg.textContent = '地址搜索暂不可用 / address search is not available yet';
      return;
    }
    if (!r.ok) {
      msg.textContent = (body && body.message_zh) || `搜索失败 / search failed (HTTP ${r.status})`;
      return;
    }
    const cands = (body && body.candidates) || [];
    msg.textContent = cands.length ? '' : '未找到匹配的地址 / no match';
    list.append(...cands.map((c) => h('li', { onclick: () => goTo(c), title: '定位 / zoom to' },
      c.address || '(无地址)', ' ',
      h('small', {}, [c.level, c.confidence != null ? `${Math.round(Number(c.confidence) * 100)}%` : null]
        .filter((x) => x != null && x !== '').join(' · ')))));
    if (cands.length) goTo(cands[0]);
  }

  function goTo(c) {
    const p = c && c.point;
    if (!p || !Number.isFinite(Number(p.lon)) || !Number.isFinite(Number(p.lat))) return;
    const map = window.citygridMap;
    const ll = [Number(p.lon), Number(p.lat)];
    if (state.marker) state.marker.remove();
    state.marker = new maplibregl.Marker({ color: '#c0392b' }).setLngLat(ll).addTo(map);
    map.flyTo({ center: ll, zoom: ZOOM_BY_LEVEL[String(c.level).toLowerCase()] || 16 });
  }

  // ---------------------------------------------------------------- H3 aggregation

  /** Up to five classes: each distinct value when there are few, else quantile thresholds. */
  function classify(values) {
    const s = [...values].sort((a, b) => a - b);
    const uniq = [...new Set(s)];
    let th;
    if (uniq.length <= AGG_COLORS.length) th = uniq.slice(1);
    else {
      th = [];
      for (let i = 1; i < AGG_COLORS.length; i++) {
        const t = s[Math.floor((i * s.length) / AGG_COLORS.length)];
        if (t > s[0] && !th.includes(t)) th.push(t);
      }
    }
    const colors = AGG_COLORS.slice(AGG_COLORS.length - th.length - 1);
    return { min: s[0], max: s[s.length - 1], th, colors };
  }

  function removeAgg() {
    const map = window.citygridMap;
    ['agg-fill', 'agg-suppressed', 'agg-line'].forEach((l) => map.getLayer(l) && map.removeLayer(l));
    if (map.getSource('agg')) map.removeSource('agg');
    $('legend').replaceChildren();
  }

  async function refreshAgg() {
    const map = window.citygridMap;
    const seq = ++state.aggSeq;
    const msg = $('agg-msg');
    removeAgg();
    if (!$('agg-on').checked) { msg.textContent = ''; return; }
    const cls = $('agg-class').value; const by = $('agg-res').value;
    const params = new URLSearchParams({ by });
    if (cls) params.set('class', cls);
    msg.textContent = '加载中… / loading';
    let fc;
    try {
      fc = await getJSON(`/aggregate?${params}`);
    } catch (e) {
      if (seq === state.aggSeq) msg.textContent = `无法加载 / failed: ${e.message}`;
      return;
    }
    if (seq !== state.aggSeq) return;
    const feats = (fc.features || []).filter((f) => f.geometry);
    const vals = feats.filter((f) => !f.properties.suppressed && f.properties.value != null)
      .map((f) => Number(f.properties.value));
    const nSup = feats.filter((f) => f.properties.suppressed).length;
    msg.textContent = feats.length ? `${feats.length} 个网格 cells${nSup ? `，${nSup} 个已抑制 suppressed` : ''}`
      : '没有数据 / no data';
    if (!feats.length) return;
    const k = vals.length ? classify(vals) : null;
    const color = !k ? '#cccccc' : k.th.length
      ? ['step', ['to-number', ['get', 'value'], 0], k.colors[0], ...k.th.flatMap((t, i) => [t, k.colors[i + 1]])]
      : k.colors[0];
    const before = firstObjectLayer() || 'selected-line';
    map.addSource('agg', { type: 'geojson', data: { type: 'FeatureCollection', features: feats } });
    map.addLayer({ id: 'agg-fill', type: 'fill', source: 'agg', filter: ['!=', ['get', 'suppressed'], true],
      paint: { 'fill-color': color, 'fill-opacity': 0.7 } }, before);
    map.addLayer({ id: 'agg-suppressed', type: 'fill', source: 'agg', filter: ['==', ['get', 'suppressed'], true],
      paint: { 'fill-pattern': 'hatch' } }, before);
    map.addLayer({ id: 'agg-line', type: 'line', source: 'agg',
      paint: { 'line-color': '#8a8a8a', 'line-width': 0.5, 'line-opacity': 0.6 } }, before);

    const legend = $('legend');
    const ints = vals.every(Number.isInteger);
    const fmt = (v) => (ints ? String(v) : v.toLocaleString('zh-CN', { maximumFractionDigits: 2 }));
    if (k) {
      const lows = [k.min, ...k.th];
      legend.append(...k.colors.map((c, i) => {
        const last = i === k.th.length;
        const hi = last ? k.max : k.th[i] - (ints ? 1 : 0);
        const label = lows[i] === hi ? fmt(hi) : `${fmt(lows[i])} – ${!last && !ints ? '< ' : ''}${fmt(hi)}`;
        return h('div', { class: 'item' }, h('span', { class: 'box', style: `background:${c}` }), label);
      }));
    }
    if (nSup) {
      legend.append(h('div', { class: 'item' }, h('span', { class: 'box suppressed' }),
        `已抑制 suppressed (< ${fc.meta && fc.meta.k ? fc.meta.k : 5})`));
    }
  }

  // ---------------------------------------------------------------- interaction

  function onClick(e) {
    const map = window.citygridMap;
    const p = e.point;
    const box = [[p.x - 5, p.y - 5], [p.x + 5, p.y + 5]];
    const layers = objectLayerIds().filter((l) => map.getLayer(l));
    const hit = layers.length ? map.queryRenderedFeatures(box, { layers }).find((f) => f.properties.code) : null;
    if (state.popup) { state.popup.remove(); state.popup = null; }
    const meta = hit ? state.meta.get(String(hit.source)) : null;
    if (hit && meta && meta.opens_object) { showObject(String(hit.properties.code)); return; }
    if (hit) {  // a grid cell or a door plate: what it is, in a popup
      const q = hit.properties;
      state.popup = new maplibregl.Popup({ closeButton: false }).setLngLat(e.lngLat)
        .setDOMContent(h('div', {}, h('code', {}, String(q.code)), h('br'), q.full_name || q.name || '',
          q.households != null ? h('div', {}, `户数 households: ${q.households}`) : '')).addTo(map);
      return;
    }
    const cell = map.getLayer('agg-fill')
      ? map.queryRenderedFeatures(p, { layers: ['agg-fill', 'agg-suppressed'] })[0] : null;
    if (cell) {
      const c = cell.properties;
      const text = c.suppressed === true || c.suppressed === 'true' ? '已抑制 suppressed'
        : `数量 count: ${c.count}${c.value !== c.count ? ` · 值 value: ${c.value}` : ''}`;
      state.popup = new maplibregl.Popup({ closeButton: false }).setLngLat(e.lngLat)
        .setDOMContent(h('div', {}, h('b', {}, c.h3 ? 'H3 ' : ''), h('code', {}, c.h3 || c.key), h('br'), text)).addTo(map);
    }
  }

  function onMove(e) {
    const map = window.citygridMap;
    const layers = objectLayerIds().filter((l) => map.getLayer(l));
    const p = e.point;
    const over = layers.length && map.queryRenderedFeatures([[p.x - 5, p.y - 5], [p.x + 5, p.y + 5]], { layers }).length;
    map.getCanvas().style.cursor = over ? 'pointer' : '';
    const divs = map.queryRenderedFeatures(p, { layers: ['divisions-fill', 'divisions-local-fill'] });
    const names = [...new Map(divs.map((f) => [f.properties.code, f.properties.name])).values()];
    $('hover').textContent = names.length ? `${names.join(' / ')} · ${e.lngLat.lng.toFixed(5)}, ${e.lngLat.lat.toFixed(5)}` : '';
  }

  // ---------------------------------------------------------------- start

  async function main() {
    if (!window.maplibregl) {
      fatal('地图库未加载：请在 data/vendor 下运行 npm ci (MapLibre GL failed to load)');
      return;
    }
    const listed = buildLayerList().catch((e) => {
      $('layers').replaceChildren(h('p', { class: 'msg' }, `图层列表加载失败 / failed: ${e.message}`));
    });
    let boundary = null;
    try {
      boundary = await getJSON(`/divisions/${COUNTY}/boundary`);
    } catch (e) {
      $('hover').textContent = `没有县界数据 / no county boundary: ${e.message}`;
    }
    const bounds = (boundary && bboxOf(boundary.geometry)) || FALLBACK_BOUNDS;
    const map = new maplibregl.Map({
      container: 'map', style: window.citygridBase.style(boundary), bounds, fitBoundsOptions: { padding: 30 }, maxZoom: 20,
      attributionControl: false, localIdeographFontFamily: LOCAL_CJK,
    });
    window.citygridMap = map;
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
    map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');
    map.addControl(new maplibregl.AttributionControl({ compact: true, customAttribution: 'citygrid' }), 'bottom-right');
    map.on('error', (e) => console.warn('map error', e && e.error ? e.error.message : e));

    map.on('load', async () => {
      addHatch(map);
      map.on('click', onClick);
      map.on('mousemove', onMove);
      $('info-close').addEventListener('click', closeObject);
      $('search-form').addEventListener('submit', search);
      ['agg-on', 'agg-class', 'agg-res'].forEach((id) => $(id).addEventListener('change', refreshAgg));
      await listed;
      // ?layers=class-080102,class-050101 switches layers on at start; without it, roads and buildings (the
      // first impression: where am I), when the caller may see them
      const asked = new URLSearchParams(location.search).get('layers');
      const wanted = (asked == null ? DEFAULT_LAYERS.join(',') : asked).split(',').filter(Boolean);
      for (const id of wanted) {
        const cb = document.querySelector(`input[data-layer="${CSS.escape(id)}"]`);
        if (cb) { cb.checked = true; await setLayer(id, true); }
      }
      map.once('idle', () => { document.body.dataset.ready = '1'; });
      map.triggerRepaint();
    });
  }

  main();
})();
