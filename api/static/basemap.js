/* citygrid's offline base map, shared by the map viewer (/map) and the survey page (/survey): one style, one
 * place. County, township and village outlines and names from citygrid's own divisions tiles (no outside tile
 * server), and roads and buildings from citygrid's own layers (their styles from /styles/{layer}.json, as every
 * layer's). Chinese names are drawn by the browser's CJK font (localIdeographFontFamily); digits and Latin come
 * from /glyphs, made on the server from the same font. Vanilla ES2020, no build step.
 *
 * window.citygridBase = { COUNTY, FALLBACK_BOUNDS, FONT, LOCAL_CJK, DEFAULT_LAYERS, FIRST_OBJECT_BELOW, style(boundary),
 *   layerStyle(id), addLayer(map, id, below) }
 */
'use strict';

(() => {
  const FONT = ['citygrid Sans'];
  const LOCAL_CJK = "'WenQuanYi Micro Hei', 'Noto Sans CJK SC', 'Source Han Sans SC', 'PingFang SC', 'Microsoft YaHei', sans-serif";
  const FIRST_OBJECT_BELOW = 'village-line';  // object layers go under the outlines and names
  const DEFAULT_LAYERS = ['class-050101', 'class-020101'];  // buildings under roads: where am I
  const TOWNSHIP = ['==', ['get', 'level'], 4];
  const VILLAGE = ['==', ['get', 'level'], 5];

  /** The base style: divisions (outlines, names), the county boundary (GeoJSON) and an empty `selected` source. */
  function style(boundary) {
    const tiles = [`${location.origin}/tiles/divisions/{z}/{x}/{y}.mvt`];
    const empty = { type: 'FeatureCollection', features: [] };
    const sel = { type: 'geojson', data: empty };
    const label = (id, filter, size, color, minzoom) => ({
      id, type: 'symbol', source: 'div-local', 'source-layer': 'divisions', filter, minzoom,
      layout: { 'text-field': ['coalesce', ['get', 'short_name'], ['get', 'name']], 'text-font': FONT, 'text-size': size, 'text-padding': 4,
        'text-max-width': 8 },
      paint: { 'text-color': color, 'text-halo-color': '#ffffff', 'text-halo-width': 1.5 },
    });
    return {
      version: 8,
      glyphs: `${location.origin}/glyphs/{fontstack}/{range}.pbf`,
      sources: {
        // counties from the z≤8 tiles, overzoomed below; from z9 the tiles hold townships and villages
        'div-county': { type: 'vector', tiles, minzoom: 0, maxzoom: 8 },
        'div-local': { type: 'vector', tiles, minzoom: 9, maxzoom: 14 },
        boundary: { type: 'geojson', data: boundary || empty },
        selected: sel,
      },
      layers: [
        { id: 'background', type: 'background', paint: { 'background-color': '#f4f1ea' } },
        { id: 'divisions-fill', type: 'fill', source: 'div-county', 'source-layer': 'divisions',
          paint: { 'fill-color': '#e9e5dc', 'fill-opacity': 0.8 } },
        { id: 'divisions-line', type: 'line', source: 'div-county', 'source-layer': 'divisions',
          paint: { 'line-color': '#a39d92', 'line-width': 0.8 } },
        { id: 'boundary-fill', type: 'fill', source: 'boundary', paint: { 'fill-color': '#ffffff', 'fill-opacity': 0.75 } },
        { id: 'divisions-local-fill', type: 'fill', source: 'div-local', 'source-layer': 'divisions',
          paint: { 'fill-color': '#000000', 'fill-opacity': 0 } },
        { id: 'village-line', type: 'line', source: 'div-local', 'source-layer': 'divisions', filter: VILLAGE,
          paint: { 'line-color': '#9c9488', 'line-width': ['interpolate', ['linear'], ['zoom'], 9, 0.4, 14, 1.2],
            'line-dasharray': [3, 2] } },
        { id: 'township-line', type: 'line', source: 'div-local', 'source-layer': 'divisions', filter: TOWNSHIP,
          paint: { 'line-color': '#6d6457', 'line-width': ['interpolate', ['linear'], ['zoom'], 9, 1.2, 14, 2.5] } },
        { id: 'boundary-line', type: 'line', source: 'boundary', paint: { 'line-color': '#c0392b', 'line-width': 2 } },
        label('village-label', VILLAGE, ['interpolate', ['linear'], ['zoom'], 9, 10, 14, 13], '#5b5347', 9),
        label('township-label', TOWNSHIP, ['interpolate', ['linear'], ['zoom'], 9, 14, 14, 18], '#2f2a23', 9),
        { id: 'selected-line', type: 'line', source: 'selected', filter: ['!=', ['geometry-type'], 'Point'],
          paint: { 'line-color': '#00e5ff', 'line-width': 3 } },
        { id: 'selected-point', type: 'circle', source: 'selected', filter: ['==', ['geometry-type'], 'Point'],
          paint: { 'circle-radius': 9, 'circle-color': 'rgba(0,0,0,0)', 'circle-stroke-color': '#00b8d4',
            'circle-stroke-width': 3 } },
      ],
    };
  }

  /** A layer's MapLibre style as the server makes it (GET /styles/{id}.json); rejects with the server's message. */
  async function layerStyle(id) {
    const r = await fetch(`/styles/${encodeURIComponent(id)}.json`, { headers: { Accept: 'application/json' } });
    const body = await r.json().catch(() => null);
    if (!r.ok) throw Object.assign(new Error((body && body.message_zh) || `HTTP ${r.status}`), { status: r.status, body });
    return body;
  }

  /** Add a layer's sources and style layers to `map` below `below` (default: under the outlines); its layer ids. */
  async function addLayer(map, id, below = FIRST_OBJECT_BELOW) {
    const st = await layerStyle(id);
    for (const [sid, src] of Object.entries(st.sources)) if (!map.getSource(sid)) map.addSource(sid, src);
    for (const ly of st.layers) map.addLayer(ly, map.getLayer(below) ? below : undefined);
    return st.layers.map((ly) => ly.id);
  }

  window.citygridBase = {
    COUNTY: '420281', FALLBACK_BOUNDS: [[114.52, 29.85], [115.18, 30.33]], FONT, LOCAL_CJK, DEFAULT_LAYERS,
    FIRST_OBJECT_BELOW, style, layerStyle, addLayer,
  };
})();
