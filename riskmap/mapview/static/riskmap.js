// riskmap's map runtime (window.riskmap): canvas point layers, popups, legend, view.
// Loaded by riskmap.mapview (importlib.resources) and put inline into every map page.
// No Jinja tag openers (two braces, brace-percent, brace-hash) may appear in this file:
// folium renders the page as a template (tests/test_mapview.py checks).
(function () {
  if (window.riskmap) { return; }
  var R = window.riskmap = {maps: []};
  // Below this map width the legend starts folded to its title (the data notes stay shown).
  var LEGEND_FOLD_BELOW_PX = 1200;
  // Outline of point symbols and count bubbles (the legend's SVGs use the same grey).
  var SYMBOL_RIM = "#4d4d4d";
  // URL query parameter holding the map view: "lat,lng,zoom".
  var VIEW_PARAM = "view";
  // `\r` as a character reference survives HTML newline normalisation (CRLF stays CRLF).
  var ESC = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
             "`": "&#96;", "\r": "&#13;"};
  R.esc = function (v) {
    if (v === null || v === undefined) { return ""; }
    return String(v).replace(/[&<>"'`\r]/g, function (c) { return ESC[c]; });
  };
  R.value = function (d, field, i) {
    var col = d.p[field];
    if (col === undefined || col === null) { return null; }
    if (col.k) { var code = R.codes(col)[i] - 1; return code < 0 ? null : col.k[code]; }
    var v = col[i];
    return v === undefined ? null : v;
  };
  R.text = function (v) {
    if (v === true) { return "是"; }
    if (v === false) { return "否"; }
    if (v === null || v === undefined) { return ""; }
    return String(v);
  };
  R.popup = function (d, i) {
    var h = '<div class="riskmap-popup"><div class="riskmap-popup-layer">' + R.esc(d.name) +
      '</div><div class="riskmap-popup-title">' + R.esc(R.text(R.value(d, "name", i))) +
      '</div><table>';
    for (var j = 0; j < d.fields.length; j++) {
      var f = d.fields[j], v = R.text(R.value(d, f[0], i));
      if (v === "") { continue; }
      h += '<tr><th>' + R.esc(f[1]) + '</th><td data-field="' + R.esc(f[0]) + '">' +
        R.esc(v) + '</td></tr>';
    }
    return h + '</table></div>';
  };
  R.color = function (d, i) {
    var cls = R.value(d, d.cls, i);
    var c = cls === null ? undefined : d.colors[cls];
    return c === undefined ? d.other : c;
  };
  // A base64 string of little-endian numbers → typed array (coordinates, dictionary codes).
  R.b64 = function (text, Type) {
    var bin = atob(text), n = bin.length, bytes = new Uint8Array(n);
    for (var i = 0; i < n; i++) { bytes[i] = bin.charCodeAt(i); }
    return new Type(bytes.buffer);
  };
  R.codes = function (col) {
    if (!col.v) {
      col.v = R.b64(col.b, col.w === 1 ? Uint8Array : (col.w === 2 ? Uint16Array : Int32Array));
    }
    return col.v;
  };
  // One symbol as a sub-path (shapes as the legend's SVGs).
  R.shape = function (ctx, s, x, y, r) {
    if (s === "square") {
      ctx.rect(x - 0.85 * r, y - 0.85 * r, 1.7 * r, 1.7 * r);
    } else if (s === "triangle") {
      ctx.moveTo(x, y - 1.2 * r); ctx.lineTo(x + 1.1 * r, y + 0.8 * r);
      ctx.lineTo(x - 1.1 * r, y + 0.8 * r); ctx.closePath();
    } else if (s === "diamond") {
      ctx.moveTo(x, y - 1.25 * r); ctx.lineTo(x + r, y);
      ctx.lineTo(x, y + 1.25 * r); ctx.lineTo(x - r, y); ctx.closePath();
    } else {
      ctx.moveTo(x + r, y); ctx.arc(x, y, r, 0, Math.PI * 2, false);
    }
  };
  R.darkText = function (hex) {
    var v = parseInt(hex.slice(1), 16);
    return 0.299 * (v >> 16) + 0.587 * ((v >> 8) & 255) + 0.114 * (v & 255) > 150;
  };
  var CELL_PX = 64;
  // drawImage without a size is ~1.6x faster; a retina sprite has twice the pixels.
  // The 逾期 (overdue) outline: a red ring around a point (colour-blind safe with the fills).
  R.ring = function (ctx, x, y, r) {
    ctx.save(); ctx.beginPath(); ctx.arc(x, y, r, 0, Math.PI * 2, false);
    ctx.strokeStyle = "#d7191c"; ctx.lineWidth = 2.5; ctx.globalAlpha = 1; ctx.stroke();
    ctx.restore();
  };
  R.blit = function (ctx, sp, x, y) {
    if (sp.dpr === 1) { ctx.drawImage(sp.canvas, x, y); }
    else { ctx.drawImage(sp.canvas, x, y, sp.w, sp.w); }
  };
  // ONE point layer = one pseudo-path on the shared canvas renderer. It keeps the points as
  // typed arrays (Web Mercator in [0, 1]), a grid index built once (cells sorted row-major, so
  // one row of cells is one contiguous run), draws only what is in view, and above `d.agg`
  // points in view (below zoom `d.aggMaxZoom`) draws count bubbles per 64 px screen cell.
  // The renderer's hit-testing calls `_containsPoint`, which picks the point (or bubble).
  R.Points = L.Path.extend({
    options: {interactive: true, stroke: true, weight: 1, bubblingMouseEvents: true},
    initialize: function (d, options) {
      L.setOptions(this, options);
      var n = d.n, ll = R.b64(d.c, Int32Array), i;
      var mx = this._mx = new Float64Array(n), my = this._my = new Float64Array(n);
      var x0 = 1, y0 = 1, x1 = 0, y1 = 0, rad = Math.PI / 180;
      for (i = 0; i < n; i++) {
        var lat = Math.max(Math.min(ll[2 * i] / 1e6, 85.0511287798), -85.0511287798);
        var x = 0.5 + ll[2 * i + 1] / 1e6 / 360;
        var y = 0.5 - Math.log(Math.tan(Math.PI / 4 + lat * rad / 2)) / (2 * Math.PI);
        mx[i] = x; my[i] = y;
        if (x < x0) { x0 = x; } if (x > x1) { x1 = x; }
        if (y < y0) { y0 = y; } if (y > y1) { y1 = y; }
      }
      this.d = d; this._ll = ll;
      // Class rank per point: 0 = unclassified, k = d.classes[k - 1] (catalog order).
      var rank = this._rank = new Uint8Array(n), col = d.p[d.cls], byName = {};
      this._fills = [d.other];
      for (i = 0; i < d.classes.length; i++) {
        byName[d.classes[i][0]] = i + 1; this._fills.push(d.classes[i][1]);
      }
      if (col && col.k) {
        var codes = R.codes(col), map = [0];
        for (i = 0; i < col.k.length; i++) { map.push(byName[String(col.k[i])] || 0); }
        for (i = 0; i < n; i++) { rank[i] = map[codes[i]]; }
      } else if (col) {
        for (i = 0; i < n; i++) {
          var v = col[i]; rank[i] = v === null ? 0 : (byName[String(v)] || 0);
        }
      }
      // Grid index over the data's bounding box.
      var g = this._g = Math.max(1, Math.min(1024, Math.ceil(Math.sqrt(n / 8))));
      this._box = [x0, y0, Math.max(x1 - x0, 1e-12), Math.max(y1 - y0, 1e-12)];
      var cell = new Int32Array(n), start = this._start = new Int32Array(g * g + 1);
      for (i = 0; i < n; i++) { cell[i] = this._cellOf(mx[i], my[i]); start[cell[i] + 1]++; }
      for (i = 0; i < g * g; i++) { start[i + 1] += start[i]; }
      var fill = start.slice(0, g * g), idx = this._idx = new Int32Array(n);
      for (i = 0; i < n; i++) { idx[fill[cell[i]]++] = i; }
      this._mode = null; this._hit = null; this._last = null;
      this.on("click", this._onClick, this);
      this.on("mousemove", this._onMove, this);
    },
    _cellOf: function (x, y) {
      var b = this._box, g = this._g;
      var cx = Math.min(g - 1, Math.max(0, Math.floor((x - b[0]) / b[2] * g)));
      var cy = Math.min(g - 1, Math.max(0, Math.floor((y - b[1]) / b[3] * g)));
      return cy * g + cx;
    },
    latlng: function (i) { return L.latLng(this._ll[2 * i] / 1e6, this._ll[2 * i + 1] / 1e6); },
    _scale: function () { return 256 * Math.pow(2, this._map.getZoom()); },
    // Visit every point index whose grid cell meets the layer-pixel box [ax, ay, bx, by].
    _each: function (ax, ay, bx, by, fn) {
      var s = this._scale(), o = this._map.getPixelOrigin(), b = this._box, g = this._g;
      var c0 = Math.floor(((ax + o.x) / s - b[0]) / b[2] * g);
      var c1 = Math.floor(((bx + o.x) / s - b[0]) / b[2] * g);
      var r0 = Math.floor(((ay + o.y) / s - b[1]) / b[3] * g);
      var r1 = Math.floor(((by + o.y) / s - b[1]) / b[3] * g);
      if (c1 < 0 || r1 < 0 || c0 >= g || r0 >= g) { return 0; }
      c0 = Math.max(c0, 0); r0 = Math.max(r0, 0);
      c1 = Math.min(c1, g - 1); r1 = Math.min(r1, g - 1);
      var count = 0, idx = this._idx, start = this._start;
      for (var r = r0; r <= r1; r++) {
        var lo = start[r * g + c0], hi = start[r * g + c1 + 1];
        count += hi - lo;
        if (fn) { for (var k = lo; k < hi; k++) { fn(idx[k]); } }
      }
      return count;
    },
    _project: function () {
      if (!this._map) { return; }
      var s = this._scale(), o = this._map.getPixelOrigin(), b = this._box, pad = 40;
      this._pxBounds = L.bounds(
        [b[0] * s - o.x - pad, b[1] * s - o.y - pad],
        [(b[0] + b[2]) * s - o.x + pad, (b[1] + b[3]) * s - o.y + pad]);
    },
    _update: function () {},
    _updatePath: function () {
      var rd = this._renderer;
      if (!rd._drawing || !rd._bounds) { return; }
      var d = this.d, vb = rd._bounds, pad = 2 * d.radius + 2;
      var ax = vb.min.x - pad, ay = vb.min.y - pad, bx = vb.max.x + pad, by = vb.max.y + pad;
      var inView = this._each(ax, ay, bx, by, null);
      if (inView > d.agg && this._map.getZoom() < d.aggMaxZoom) {
        this._drawCells(rd._ctx, ax, ay, bx, by);
      } else {
        this._drawPoints(rd._ctx, ax, ay, bx, by, inView);
      }
    },
    _drawPoints: function (ctx, ax, ay, bx, by, inView) {
      var s = this._scale(), o = this._map.getPixelOrigin(), mx = this._mx, my = this._my;
      var rank = this._rank, nr = this._fills.length, counts = new Int32Array(nr + 1);
      var vis = new Int32Array(inView), m = 0;
      this._each(ax, ay, bx, by, function (i) {
        var x = mx[i] * s - o.x, y = my[i] * s - o.y;
        if (x >= ax && x <= bx && y >= ay && y <= by) { vis[m++] = i; counts[rank[i] + 1]++; }
      });
      vis = vis.subarray(0, m);
      vis.sort();
      // Draw by class, least severe first (index order within a class).
      for (var k = 0; k < nr; k++) { counts[k + 1] += counts[k]; }
      var ord = new Int32Array(m), at = counts.slice(0, nr), j, i;
      for (j = 0; j < m; j++) { i = vis[j]; ord[at[rank[i]]++] = i; }
      var d = this.d, r = d.radius;
      ctx.globalAlpha = 1;
      var st = d.st;  // lifecycle marks: 1 = 已销号 (faded), 2 = 逾期 (outlined); absent = none
      for (k = 0; k < nr; k++) {
        var sp = this._sprite(k), c = sp.c;
        for (j = counts[k]; j < counts[k + 1]; j++) {
          i = ord[j];
          var px = Math.round(mx[i] * s) - o.x, py = Math.round(my[i] * s) - o.y;
          if (st && st[i] === 1) { ctx.globalAlpha = 0.3; }
          R.blit(ctx, sp, px - c, py - c);
          ctx.globalAlpha = 1;
          if (st && st[i] === 2) { R.ring(ctx, px, py, r + 4); }
        }
      }
      this._mode = "points"; this._order = ord;
    },
    // Each class's symbol drawn once on a small canvas: blitting it is far cheaper than
    // rasterising one anti-aliased path per point, and gives the same pixels (integer offsets).
    _sprite: function (k) {
      this._sprites = this._sprites || [];
      if (this._sprites[k]) { return this._sprites[k]; }
      var r = this.d.radius, w = 2 * Math.ceil(1.25 * r + 2) + 1, c = (w - 1) / 2;
      var dpr = L.Browser.retina ? 2 : 1, cv = document.createElement("canvas");
      cv.width = cv.height = w * dpr;
      var ctx = cv.getContext("2d");
      ctx.scale(dpr, dpr);
      // A dark rim keeps pale classes (小型, 2类) visible on a white or pale basemap.
      ctx.fillStyle = this._fills[k]; ctx.strokeStyle = SYMBOL_RIM; ctx.lineWidth = 1;
      ctx.lineCap = "round"; ctx.lineJoin = "round";
      ctx.beginPath(); R.shape(ctx, this.d.shape, c, c, r); this._paint(ctx);
      this._sprites[k] = {canvas: cv, c: c, w: w, dpr: dpr};
      return this._sprites[k];
    },
    _paint: function (ctx) {
      ctx.globalAlpha = 0.95; ctx.fill("evenodd");
      ctx.globalAlpha = 0.9; ctx.stroke();
    },
    _drawCells: function (ctx, ax, ay, bx, by) {
      var s = this._scale(), o = this._map.getPixelOrigin(), mx = this._mx, my = this._my;
      var rank = this._rank;
      var cx0 = Math.floor((ax + o.x) / CELL_PX), cy0 = Math.floor((ay + o.y) / CELL_PX);
      var nx = Math.floor((bx + o.x) / CELL_PX) - cx0 + 1;
      var ny = Math.floor((by + o.y) / CELL_PX) - cy0 + 1;
      var nc = nx * ny, cnt = new Int32Array(nc), sx = new Float64Array(nc);
      var sy = new Float64Array(nc), top = new Uint8Array(nc), one = new Int32Array(nc);
      var bb = new Float64Array(4 * nc);
      this._each(ax, ay, bx, by, function (i) {
        var gx = mx[i] * s, gy = my[i] * s;
        var x = gx - o.x, y = gy - o.y;
        if (x < ax || x > bx || y < ay || y > by) { return; }
        var c = (Math.floor(gx / CELL_PX) - cx0) + (Math.floor(gy / CELL_PX) - cy0) * nx;
        var q = 4 * c;
        if (cnt[c] === 0) {
          bb[q] = bb[q + 2] = mx[i]; bb[q + 1] = bb[q + 3] = my[i];
        } else {
          bb[q] = Math.min(bb[q], mx[i]); bb[q + 2] = Math.max(bb[q + 2], mx[i]);
          bb[q + 1] = Math.min(bb[q + 1], my[i]); bb[q + 3] = Math.max(bb[q + 3], my[i]);
        }
        cnt[c]++; sx[c] += x; sy[c] += y; one[c] = i;
        if (rank[i] > top[c]) { top[c] = rank[i]; }
      });
      var cells = [], d = this.d, c;
      for (c = 0; c < nc; c++) {
        if (!cnt[c]) { continue; }
        var n = cnt[c];
        cells.push({n: n, x: sx[c] / n, y: sy[c] / n, k: top[c], i: one[c],
                    r: n === 1 ? d.radius : Math.min(11 + 4 * Math.log(n) / Math.LN10, 24),
                    b: [bb[4 * c], bb[4 * c + 1], bb[4 * c + 2], bb[4 * c + 3]]});
      }
      cells.sort(function (p, q) { return p.k - q.k || p.n - q.n; });
      ctx.lineCap = "round"; ctx.lineJoin = "round";
      if (ctx.setLineDash) { ctx.setLineDash([]); }
      ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.font = "bold 11px sans-serif";
      for (c = 0; c < cells.length; c++) {
        var e = cells[c], fill = this._fills[e.k];
        ctx.fillStyle = fill; ctx.strokeStyle = SYMBOL_RIM; ctx.lineWidth = 1;
        if (e.n === 1) {
          var sp = this._sprite(e.k);
          ctx.globalAlpha = 1;
          R.blit(ctx, sp, Math.round(mx[e.i] * s) - o.x - sp.c,
                 Math.round(my[e.i] * s) - o.y - sp.c);
          continue;
        }
        ctx.beginPath(); ctx.arc(e.x, e.y, e.r + 4, 0, Math.PI * 2, false);
        ctx.globalAlpha = 0.35; ctx.fill();
        ctx.beginPath(); ctx.arc(e.x, e.y, e.r, 0, Math.PI * 2, false);
        ctx.globalAlpha = 0.9; ctx.fill(); ctx.lineWidth = 1.5; ctx.stroke();
        ctx.globalAlpha = 1; ctx.fillStyle = R.darkText(fill) ? "#222222" : "#ffffff";
        ctx.fillText(String(e.n), e.x, e.y);
      }
      this._mode = "cells"; this._cells = cells;
    },
    // Hit-testing by the canvas renderer (clicks and hover): the topmost point or bubble.
    _containsPoint: function (p) {
      this._hit = this._pick(p);
      return this._hit !== null;
    },
    _pick: function (p) {
      var tol = (this._renderer.options.tolerance || 0) + 1, j, best = null;
      var s = this._scale(), o = this._map.getPixelOrigin();
      if (this._mode === "cells") {
        for (j = this._cells.length - 1; j >= 0; j--) {
          var e = this._cells[j];
          var dx = p.x - (e.n === 1 ? Math.round(this._mx[e.i] * s) - o.x : e.x);
          var dy = p.y - (e.n === 1 ? Math.round(this._my[e.i] * s) - o.y : e.y);
          if (dx * dx + dy * dy <= (e.r + tol) * (e.r + tol)) {
            return e.n === 1 ? {i: e.i} : {cell: e};
          }
        }
        return null;
      }
      if (this._mode !== "points") { return null; }
      var r = this.d.radius * 1.25 + tol;
      var mx = this._mx, my = this._my, rank = this._rank, bk = -1;
      this._each(p.x - r, p.y - r, p.x + r, p.y + r, function (i) {
        var dx = Math.round(mx[i] * s) - o.x - p.x, dy = Math.round(my[i] * s) - o.y - p.y;
        if (dx * dx + dy * dy <= r * r) {
          var key = rank[i] * 4294967296 + i;
          if (key > bk) { bk = key; best = i; }
        }
      });
      return best === null ? null : {i: best};
    },
    _onClick: function () {
      var h = this._last = this._hit;
      if (!h) { return; }
      if (h.i !== undefined) { R.openPopup(this._map, this.d, h.i, this.latlng(h.i)); return; }
      var b = h.cell.b, crs = this._map.options.crs;
      var sw = crs.pointToLatLng(L.point(b[0] * 256, b[3] * 256), 0);
      var ne = crs.pointToLatLng(L.point(b[2] * 256, b[1] * 256), 0);
      this._map.fitBounds(L.latLngBounds(sw, ne), {maxZoom: this.d.aggMaxZoom, padding: [40, 40]});
    },
    _onMove: function () {
      var h = this._hit;
      var key = h ? (h.i !== undefined ? h.i : -1 - h.cell.x - h.cell.y * 1e6) : null;
      if (key !== this._tipKey) {
        this._tipKey = key;
        if (this._tooltip && this._tooltip._map) { this._tooltip.update(); }
      }
    },
    tip: function () {
      var h = this._hit;
      if (!h) { return ""; }
      if (h.cell) { return '<span class="riskmap-tip">' + R.esc(h.cell.n + " 个点位") + "</span>"; }
      return R.tipOf(this.d, h.i);
    },
    // streamlit-folium stores `toGeoJSON()` of the clicked layer as `last_active_drawing`.
    toGeoJSON: function () {
      var h = this._last, d = this.d;
      if (!h) { return {type: "Feature", properties: {layer: d.id, key: null}, geometry: null}; }
      if (h.cell) {
        return {type: "Feature", properties: {layer: d.id, key: null, count: h.cell.n},
                geometry: null};
      }
      var ll = this.latlng(h.i);
      return {type: "Feature", properties: {layer: d.id, key: R.value(d, d.key, h.i)},
              geometry: {type: "Point", coordinates: [ll.lng, ll.lat]}};
    }
  });
  R.tipOf = function (d, i) {
    var cls = R.value(d, d.cls, i);
    return '<span class="riskmap-tip">' + R.esc(R.text(R.value(d, "name", i))) +
      (cls === null ? "" : "（" + R.esc(cls) + "）") + "</span>";
  };
  R.tooltip = function (layer) {
    return layer.riskLayer === undefined ? "" : R.tipOf(layer.riskLayer, layer.riskIdx);
  };
  R.panes = function (map) {
    if (map.riskmap) { return map.riskmap; }
    // riskCounty above the features: a fire zone's fill must not hide the county line.
    var z = {riskChoro: 380, riskBounds: 390, riskFeatures: 420, riskCounty: 425,
             riskHighlight: 630, riskLabels: 640};
    for (var name in z) {
      var pane = map.createPane(name);
      pane.style.zIndex = z[name];
      if (name === "riskLabels" || name === "riskHighlight" || name === "riskBounds" ||
          name === "riskCounty") {
        pane.style.pointerEvents = "none";
      }
    }
    R.maps.push(map);
    // Every visible string in Chinese: no "Leaflet" prefix (its BSD licence asks for no
    // on-map credit; a basemap's own credit still shows), zoom buttons titled 放大/缩小.
    if (map.attributionControl) { map.attributionControl.setPrefix(false); }
    if (map.zoomControl) {
      map.removeControl(map.zoomControl);
      map.zoomControl = L.control.zoom({zoomInTitle: "放大", zoomOutTitle: "缩小"}).addTo(map);
    }
    map.on("popupopen", function (e) {
      var b = e.popup.getElement() && e.popup.getElement().querySelector(".leaflet-popup-close-button");
      if (b) { b.setAttribute("aria-label", "关闭"); b.title = "关闭"; }
    });
    R.wheel(map);
    if (map.options.maxZoom === undefined) { map.options.maxZoom = 19; }
    map.riskmap = {layers: {},
      // ONE canvas for points and polygons: a second canvas pane on top would swallow the
      // clicks meant for the one below. Polygons are kept at the back of its draw order.
      renderer: L.canvas({pane: "riskFeatures", padding: 0.3, tolerance: 3})};
    // A full synchronous redraw (after a move or zoom) makes a pending animation-frame redraw
    // redundant: cancel it, or big point layers are drawn twice.
    var rd = map.riskmap.renderer, redraw = rd._redraw;
    rd._redraw = function () {
      if (this._redrawRequest) { L.Util.cancelAnimFrame(this._redrawRequest); }
      redraw.call(this);
    };
    return map.riskmap;
  };
  R.openPopup = function (map, d, i, at, keepView) {
    L.popup({minWidth: 220, maxWidth: 380, maxHeight: 320, autoPan: !keepView})
      .setLatLng(at).setContent(R.popup(d, i)).openOn(map);
  };
  R.addLayer = function (map, group, d) {
    var st = R.panes(map);
    var entry = {data: d, group: group, target: group};
    if (d.c !== undefined) {
      var pts = new R.Points(d, {renderer: st.renderer, pane: "riskFeatures"});
      pts.bindTooltip(function (l) { return l.tip(); },
                      {sticky: true, direction: "top", opacity: 0.95});
      group.addLayer(pts);
      entry.points = pts;
      entry.latlng = function (i) { return pts.latlng(i); };
    } else {
      var items = entry.items = new Array(d.n);
      for (var j = 0; j < d.n; j++) {
        // geometryToLayer gives a Polygon/MultiPolygon path, not a group: Leaflet 1.9.3's
        // tooltip focus listeners call getElement() on every child of the tooltip's group.
        var g = L.GeoJSON.geometryToLayer(
          {type: "Feature", geometry: d.g[j], properties: {layer: d.id, key: R.value(d, d.key, j)}},
          {renderer: st.renderer, pane: "riskFeatures"});
        g.feature = {type: "Feature", properties: {layer: d.id, key: R.value(d, d.key, j)}};
        var mark = d.st ? d.st[j] : 0;
        g.setStyle({color: mark === 2 ? "#d7191c" : R.color(d, j), weight: mark === 2 ? 3 : 1.5,
                    opacity: mark === 1 ? 0.35 : 0.9, fillColor: R.color(d, j),
                    fillOpacity: mark === 1 ? 0.1 : 0.35, dashArray: mark === 1 ? "4 4" : null});
        g.riskLayer = d; g.riskIdx = j;
        items[j] = g; group.addLayer(g);
      }
      var toBack = function () { group.eachLayer(function (l) { l.bringToBack(); }); };
      group.on("add", toBack);
      if (group._map) { toBack(); }
      group.bindTooltip(R.tooltip, {sticky: true, direction: "top", opacity: 0.95});
      group.on("click", function (e) {
        var l = e.layer;
        if (l && l.riskLayer !== undefined) {
          R.openPopup(map, l.riskLayer, l.riskIdx, l.getBounds().getCenter());
        }
      });
      entry.latlng = function (i) { return items[i].getBounds().getCenter(); };
    }
    st.layers[d.id] = entry;
    return group;
  };
  R.addAreas = function (map, group, d) {
    R.panes(map);
    for (var i = 0; i < d.items.length; i++) {
      var a = d.items[i];
      L.geoJSON(a.g, {pane: d.pane, interactive: false, style: a.style}).addTo(group);
      if (a.label) {
        L.marker(a.label, {pane: "riskLabels", interactive: false, keyboard: false,
          icon: L.divIcon({className: "riskmap-label " + (a.labelClass || ""),
                           html: R.esc(a.name), iconSize: null})}).addTo(group);
      }
    }
  };
  R.find = function (map, layerId, key) {
    var entry = R.panes(map).layers[layerId];
    if (!entry) { return null; }
    for (var i = 0; i < entry.data.n; i++) {
      if (String(R.value(entry.data, entry.data.key, i)) === key) {
        return {entry: entry, i: i};
      }
    }
    return null;
  };
  R.focus = function (map, found) {
    if (found.entry.points) {
      map.setView(found.entry.latlng(found.i), Math.max(map.getZoom(), 15), {animate: false});
    } else {
      map.fitBounds(found.entry.items[found.i].getBounds(), {maxZoom: 15, animate: false});
    }
  };
  R.mark = function (map, found, keepView) {
    var entry = found.entry, d = entry.data, at = entry.latlng(found.i);
    if (!map.hasLayer(entry.group)) { map.addLayer(entry.group); }
    if (entry.points) {
      L.circleMarker(at, {pane: "riskHighlight", radius: 15, color: "#00b7ff",
        weight: 4, fill: false, interactive: false}).addTo(map);
    } else {
      L.geoJSON(d.g[found.i], {pane: "riskHighlight", interactive: false,
        style: {color: "#00b7ff", weight: 4, fill: false}}).addTo(map);
    }
    R.openPopup(map, d, found.i, at, keepView);
  };
  // The page that holds the map: Streamlit's page (the map is in a same-origin component
  // iframe) or the standalone HTML file itself.
  R.top = function () {
    try { if (window.parent && window.parent.location.href) { return window.parent; } }
    catch (e) { /* cross-origin parent */ }
    return window;
  };
  // The view lives in the page URL (?view=lat,lng,zoom: share the link, reload, come back),
  // and, for a map rebuilt by the same page (new filters), in the page's memory under the
  // view key (township + highlight), so choosing a township or a point still moves the map.
  R.viewText = function (map) {
    var c = map.getCenter();
    return c.lat.toFixed(5) + "," + c.lng.toFixed(5) + "," + map.getZoom();
  };
  R.parseView = function (text) {
    var p = String(text || "").split(",").map(Number);
    if (p.length !== 3 || p.some(isNaN) || Math.abs(p[0]) > 85 || Math.abs(p[1]) > 180 ||
        p[2] < 0 || p[2] > 22) { return null; }
    return {center: [p[0], p[1]], zoom: Math.round(p[2])};
  };
  R.setUrlView = function (text, key) {
    var w = R.top();
    // Remember first: the page's own URL writer (riskmap.ui.chrome) re-adds this view to
    // the URLs Streamlit writes when it mirrors the filters.
    w.riskmapView = {key: key, text: text || null};
    try {
      var u = new URL(w.location.href);
      if (text) { u.searchParams.set(VIEW_PARAM, text); } else { u.searchParams.delete(VIEW_PARAM); }
      if (u.href !== w.location.href) { w.history.replaceState(w.history.state, "", u.href); }
    } catch (e) { /* file:// in some browsers: the view just is not kept */ }
  };
  // Initial view: remembered view (same key) > the server's `view` (a shared URL) >
  // the highlighted feature > the township/county bounds. Re-applied when the container is
  // resized before the user touches the map (st_folium sizes its iframe late).
  R.initView = function (map, bounds, hl, missing, viewKey, view, home) {
    var found = hl ? R.find(map, hl[0], hl[1]) : null;
    if (hl && !found && missing) { R.box(map, missing[0], missing[1], missing[2]); }
    var w = R.top(), key = JSON.stringify([viewKey, hl]), saved = null;
    var mem = viewKey ? w.riskmapView : null;
    if (mem && mem.key === key) { saved = R.parseView(mem.text); }
    else if (view) { saved = R.parseView(view); }
    // A new key (township, point) with no view of its own drops the old view from the URL.
    R.setUrlView(saved ? (mem && mem.key === key ? mem.text : view) : null, key);
    map.riskmap.restored = saved !== null;
    var touched = false;
    var apply = function () {
      if (saved) { map.setView(saved.center, saved.zoom, {animate: false}); }
      else if (found) { R.focus(map, found); } else {
        // Keep the bounds clear of the legend (top right) when the map is wide enough;
        // on a narrower map (a laptop beside the sidebar) fold the legend to its title first.
        var lg = map.getContainer().querySelector(".riskmap-legend");
        var det = lg ? lg.querySelector("details") : null;
        if (det && !touched && map.getSize().x < LEGEND_FOLD_BELOW_PX) { det.open = false; }
        R.fitLegend(map);  // its final width (one or two columns) before it is measured
        var wd = lg ? lg.offsetWidth : 0, pad = map.getSize().x > 3 * wd ? wd + 8 : 0;
        map.fitBounds(bounds, {animate: false, paddingTopLeft: [8, 8],
                               paddingBottomRight: [pad, 8]});
      }
    };
    apply();
    if (found) { R.mark(map, found, saved !== null); }  // a restored view stays put
    L.DomEvent.on(map.getContainer(), "mousedown touchstart wheel keydown",
                  function () { touched = true; });
    map.on("resize", function () { if (!touched) { apply(); } R.fitLegend(map); });
    map.on("moveend", function () {
      if (touched) { R.setUrlView(R.viewText(map), key); }
    });
    if (home) { R.home(map, home); }
    R.fitLegend(map);
    // st_folium sizes its iframe after the map is built: fit again once it has.
    L.DomEvent.on(window, "resize", function () { R.fitLegend(map); });
    setTimeout(function () { R.fitLegend(map); }, 300);
    return found !== null;
  };
  // 回到全县: fit the county, forget the saved view (URL and memory).
  R.home = function (map, bounds) {
    var c = L.control({position: "topleft"});
    c.onAdd = function () {
      var bar = L.DomUtil.create("div", "leaflet-bar riskmap-home");
      var a = L.DomUtil.create("a", "", bar);
      a.href = "#"; a.setAttribute("role", "button"); a.title = "回到全县";
      a.setAttribute("aria-label", "回到全县"); a.textContent = "全县";
      L.DomEvent.disableClickPropagation(bar);
      L.DomEvent.on(a, "click", function (e) {
        L.DomEvent.preventDefault(e);
        var w = R.top(), key = w.riskmapView ? w.riskmapView.key : null;
        map.fitBounds(bounds, {animate: false, padding: [8, 8]});
        R.setUrlView(null, key);
      });
      return bar;
    };
    c.addTo(map);
    return c;
  };
  // Wheel over the map scrolls the page; it zooms the map only with Ctrl held, or after the
  // map was clicked (until the pointer leaves it). A hint says so when the wheel is refused.
  R.wheel = function (map) {
    map.scrollWheelZoom.disable();
    var box = map.getContainer(), hint = L.DomUtil.create("div", "riskmap-wheel-hint", box);
    hint.textContent = "按住 Ctrl 键滚动滚轮缩放地图（或先点击地图）";
    var timer = null, armed = false;
    var show = function () {
      hint.classList.add("shown");
      clearTimeout(timer);
      timer = setTimeout(function () { hint.classList.remove("shown"); }, 1500);
    };
    L.DomEvent.on(box, "mousedown touchstart", function () {
      armed = true; map.scrollWheelZoom.enable(); hint.classList.remove("shown");
    });
    L.DomEvent.on(box, "mouseleave", function () { armed = false; map.scrollWheelZoom.disable(); });
    box.addEventListener("wheel", function (e) {
      if (armed) { return; }
      if (e.ctrlKey || e.metaKey) {
        e.preventDefault();  // no browser page zoom: zoom the map around the pointer
        var z = map.getZoom() + (e.deltaY < 0 ? 1 : -1);
        map.setZoomAround(map.mouseEventToContainerPoint(e), z);
        return;
      }
      show();  // and let the browser scroll the page
    }, {passive: false});
  };
  // The legend never runs past the bottom of the map: it scrolls inside instead.
  R.fitLegend = function (map) {
    var lg = map.getContainer().querySelector(".riskmap-legend");
    if (!lg) { return; }
    var top = lg.getBoundingClientRect().top - map.getContainer().getBoundingClientRect().top;
    var h = map.getContainer().clientHeight || map.getSize().y;
    lg.style.maxHeight = Math.max(60, h - top - 10) + "px";
    // Wide map, legend taller than the room: two columns rather than scrolling.
    lg.classList.remove("two-col");
    if (map.getSize().x >= LEGEND_FOLD_BELOW_PX && lg.scrollHeight > lg.clientHeight + 1) {
      lg.classList.add("two-col");
    }
  };
  R.box = function (map, htmlText, position, cls) {
    var c = L.control({position: position});
    c.onAdd = function () {
      var div = L.DomUtil.create("div", cls);
      div.innerHTML = htmlText;
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      return div;
    };
    c.addTo(map);
    return c;
  };
})();
