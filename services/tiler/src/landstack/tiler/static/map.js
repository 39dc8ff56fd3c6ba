// The landstack web map: product layers from /map/layers.json drawn with the tiler's
// collection mosaic, one reference year at a time, a legend from classification:classes,
// the value under a click, and the COG of the clicked item from the STAC API.
(function () {
  "use strict";
  // The page lives at <tiler>/map: everything else is relative to the tiler's root.
  // Plain string joins: URL() would percent-encode the {z}/{x}/{y} placeholders of the tile template.
  const root = window.location.origin + window.location.pathname.replace(/map\/?$/, "");
  const url = (path) => root + path;
  const $ = (id) => document.getElementById(id);
  const state = { layers: [], layer: null, year: null, tiles: null, api: null };

  const map = L.map("map", { zoomControl: true, attributionControl: false });
  map.setView([50, 10], 4);

  function yearRange(year) {
    return `${year}-01-01T00:00:00Z/${year}-12-31T23:59:59Z`;
  }

  function tileUrl(layer, year) {
    const q = new URLSearchParams({ assets: "data", datetime: yearRange(year) });
    return url(`collections/${encodeURIComponent(layer.id)}/tiles/WebMercatorQuad/{z}/{x}/{y}.png?`) + q;
  }

  function swatch(color) {
    const s = document.createElement("span");
    s.className = "swatch";
    s.style.background = color;
    return s;
  }

  function drawLegend(layer) {
    const el = $("legend");
    el.replaceChildren();
    const title = document.createElement("strong");
    title.textContent = layer.title + (layer.unit ? ` (${layer.unit})` : "");
    el.appendChild(title);
    if (layer.ramp) {
      const bar = document.createElement("div");
      bar.className = "ramp";
      const [lo, hi] = layer.ramp.range;
      const stops = layer.ramp.stops.map(([v, c]) => `${c} ${(100 * (v - lo)) / (hi - lo || 1)}%`);
      bar.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
      el.appendChild(bar);
      const range = document.createElement("div");
      range.textContent = `${lo} – ${hi}`;
      el.appendChild(range);
    }
    for (const c of layer.classes) {
      if (c.nodata) continue;
      const row = document.createElement("div");
      row.className = "class";
      row.dataset.value = c.value;
      row.appendChild(swatch(c.color));
      row.appendChild(document.createTextNode(`${c.value} ${c.name}`));
      el.appendChild(row);
    }
  }

  function show() {
    const layer = state.layer;
    if (!layer) return;
    if (state.tiles) map.removeLayer(state.tiles);
    state.tiles = L.tileLayer(tileUrl(layer, state.year), { maxZoom: 18, opacity: 1 });
    state.tiles.addTo(map);
    drawLegend(layer);
    $("info").textContent = "Click the map for the class or value of a pixel.";
    $("download").hidden = true;
    const params = new URLSearchParams(window.location.search);
    params.set("collection", layer.id);
    params.set("year", state.year);
    window.history.replaceState(null, "", `?${params}`);
  }

  function selectLayer(id, year) {
    state.layer = state.layers.find((l) => l.id === id) || state.layers[0];
    const sel = $("year");
    sel.replaceChildren(...state.layer.years.map((y) => new Option(String(y), String(y))));
    const wanted = Number(year);
    state.year = state.layer.years.includes(wanted) ? wanted : state.layer.years[state.layer.years.length - 1];
    sel.value = String(state.year);
    $("layer").value = state.layer.id;
    const [w, s, e, n] = state.layer.bbox;
    map.fitBounds([[s, w], [n, e]]);
    show();
  }

  async function onClick(ev) {
    const layer = state.layer;
    const q = new URLSearchParams({ collection: layer.id, lon: ev.latlng.lng, lat: ev.latlng.lat, year: state.year });
    const res = await fetch(url(`map/pixel?${q}`));
    const body = await res.json();
    const info = $("info");
    if (body.value === null || body.value === undefined) {
      info.textContent = "No data here.";
      $("download").hidden = true;
      return;
    }
    info.textContent = body.name ? `${body.value} — ${body.name}` : `${body.value}${body.unit ? " " + body.unit : ""}`;
    info.dataset.value = body.value;
    const link = $("download");
    link.href = body.item_url;
    link.textContent = `Item ${body.item}`;
    link.hidden = false;
    try {
      const item = await (await fetch(body.item_url)).json();
      const asset = Object.values(item.assets || {}).find((a) => (a.roles || []).includes("data"));
      if (asset) {
        link.href = asset.href;
        link.textContent = `Download the COG (${body.item})`;
        link.setAttribute("download", "");
      }
    } catch (err) {
      $("status").textContent = `STAC API not reachable: ${err}`;
    }
  }

  async function start() {
    const res = await fetch(url("map/layers.json"));
    const cfg = await res.json();
    state.layers = cfg.layers;
    state.api = cfg.api_url;
    if (!state.layers.length) {
      $("status").textContent = "No product has been published yet.";
      return;
    }
    $("layer").replaceChildren(...state.layers.map((l) => new Option(l.title, l.id)));
    $("layer").addEventListener("change", (e) => selectLayer(e.target.value, state.year));
    $("year").addEventListener("change", (e) => {
      state.year = Number(e.target.value);
      show();
    });
    map.on("click", (ev) => onClick(ev).catch((err) => ($("status").textContent = String(err))));
    const params = new URLSearchParams(window.location.search);
    selectLayer(params.get("collection"), params.get("year"));
    document.body.dataset.ready = "1";
  }

  start().catch((err) => ($("status").textContent = `Cannot load the layers: ${err}`));
})();
