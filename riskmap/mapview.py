r"""The one map (一张图): prepared layers → a `folium.Map`. Never imports streamlit; never renders.

Performance design. A layer's features are NOT turned into one folium object each (that is
~50× slower to build and bloats the page). Each layer becomes ONE `_RiskLayer` element holding
its data once, column-wise (point coordinates as base64 Int32 fixed-point 1e-6 degrees; each
property as one array, columns with few distinct values dictionary-encoded with base64 codes).
A point layer is ONE `riskmap.Points` (an `L.Path` on the shared canvas renderer): typed
arrays, a grid index built once, only the points in view drawn (each class symbol pre-drawn
once and blitted), hit-testing through the index; with more than `cluster_threshold` points
in view below zoom `AGGREGATE_MAX_ZOOM` it draws count bubbles per 64 px screen cell instead
(colour of the most severe class inside; a click zooms in). Polygons are one canvas path
each. Popups are built at click time from the columns, and
every string goes through the JS `riskmap.esc` (``& < > " ' ` ``) first. Everything rendered
server-side (labels, legend, layer names) is escaped with `html.escape`. Embedded JSON has
``< > & ' _ ( )`` and U+2028/2029 escaped as ``\\uXXXX`` so no data can close the script, be
mistaken for a folium variable by streamlit-folium, or break the JS.

Offline. `folium.Map` lists CDN jQuery, Bootstrap, awesome-markers, Font Awesome…; the map
only needs Leaflet. With ``inline_assets=True`` they are put
inline in the page; otherwise their ``default_js``/``default_css`` point at
``/app/static/vendor/...`` (see `riskmap.assets.install_static_assets`), which is also what
`streamlit_folium.st_folium` loads in its iframe.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import pandas as pd
from branca.element import Element, MacroElement
from jinja2 import Template

import folium
import geopandas as gpd
import shapely

from riskmap import assets
from riskmap.catalog import STATUS_CLEARED
from riskmap.errors import LayerNotFoundError, TownshipNotFoundError

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from riskmap.catalog import LayerSpec
    from riskmap.layers import LayerData
    from riskmap.settings import Settings

CLUSTER_THRESHOLD = 20_000
"""Above this many points in view (below `AGGREGATE_MAX_ZOOM`) a layer is drawn as count bubbles."""
AGGREGATE_MAX_ZOOM = 15
"""From this zoom level on, points are always drawn one by one."""
UNCLASSIFIED = "未分级"
UNCLASSIFIED_COLOR = "#969696"
CHOROPLETH_ALL = "all"
# ColorBrewer "Purples" (sequential; unused by any layer palette, so points stay readable).
PURPLES = {
    3: ("#efedf5", "#bcbddc", "#756bb1"),
    4: ("#f2f0f7", "#cbc9e2", "#9e9ac8", "#6a51a3"),
    5: ("#f2f0f7", "#cbc9e2", "#9e9ac8", "#756bb1", "#54278f"),
}
NOTE_APPROXIMATE = "乡镇界线为示意边界（非官方）"
NOTE_DEMO = "演示数据"
TIANDITU_URL = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)
BASEMAPS = frozenset({"auto", "none", "tile", "tianditu"})
_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_COORD_DECIMALS = 6  # ~0.1 m; enough for risk points, keeps the page small
_BOUNDARY_SIMPLIFY_DEG = 1e-4  # ~10 m: township lines are drawn, not measured, here
_JS_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "'": "\\u0027",
    "_": "\\u005f",
    "(": "\\u0028",
    ")": "\\u0029",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
    "{": "\\u007b",
}
_JS_ESCAPE_RE = re.compile("[<>&'_()\u2028\u2029]|\\{(?=[{%#])")
# `{` before `{`, `%` or `#` can only be string content in compact JSON (a structural `{` is
# followed by `"` or `}`): escaping it stops branca, which re-parses every rendered script as
# a Jinja template, from evaluating `{{ ... }}` / `{% ... %}` found in user data.


def js_json(obj: object) -> str:
    r"""
    Encode `obj` as a JS/JSON literal that is safe inside ``<script>`` and streamlit-folium.

    ``< > &`` cannot close the script or open a comment; ``'`` cannot form a Jinja
    ``{{'name'}}`` reference that streamlit-folium rewrites; ``_`` cannot form a folium
    variable suffix it renames; ``( )`` cannot form the ``alert(coords);`` it strips. These
    characters only occur inside JSON strings, so escaping them as ``\\uXXXX`` never changes
    the value. NaN is not allowed (pass None).
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _JS_ESCAPE_RE.sub(lambda m: _JS_ESCAPES[m.group(0)], text)


def escape_html(value: object) -> str:
    """
    HTML-escape ``str(value)`` for server-side rendered text.

    Quotes are escaped too, and ``{`` becomes ``&#123;`` so the text can never form a Jinja
    tag when branca re-parses rendered scripts.
    """
    text = html.escape("" if value is None else str(value), quote=True)
    return text.replace("{", "&#123;")


# ----------------------------------------------------------------------------- JS runtime

RUNTIME_JS = r"""
(function () {
  if (window.riskmap) { return; }
  var R = window.riskmap = {maps: []};
  // Below this map width the legend starts folded to its title (the data notes stay shown).
  var LEGEND_FOLD_BELOW_PX = 1200;
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
      for (k = 0; k < nr; k++) {
        var sp = this._sprite(k), c = sp.c;
        for (j = counts[k]; j < counts[k + 1]; j++) {
          i = ord[j];
          R.blit(ctx, sp, Math.round(mx[i] * s) - o.x - c, Math.round(my[i] * s) - o.y - c);
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
      ctx.fillStyle = this._fills[k]; ctx.strokeStyle = "#ffffff"; ctx.lineWidth = 1;
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
        ctx.fillStyle = fill; ctx.strokeStyle = "#ffffff"; ctx.lineWidth = 1;
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
    var z = {riskChoro: 380, riskBounds: 390, riskFeatures: 420,
             riskHighlight: 630, riskLabels: 640};
    for (var name in z) {
      var pane = map.createPane(name);
      pane.style.zIndex = z[name];
      if (name === "riskLabels" || name === "riskHighlight" || name === "riskBounds") {
        pane.style.pointerEvents = "none";
      }
    }
    R.maps.push(map);
    // Plain "Leaflet" credit: no flag icon, no outbound link.
    if (map.attributionControl) { map.attributionControl.setPrefix("Leaflet"); }
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
  R.openPopup = function (map, d, i, at) {
    L.popup({minWidth: 220, maxWidth: 380, maxHeight: 320})
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
        g.setStyle({color: R.color(d, j), weight: 1.5, opacity: 0.9, fillColor: R.color(d, j),
                    fillOpacity: 0.35});
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
  R.mark = function (map, found) {
    var entry = found.entry, d = entry.data, at = entry.latlng(found.i);
    if (!map.hasLayer(entry.group)) { map.addLayer(entry.group); }
    if (entry.points) {
      L.circleMarker(at, {pane: "riskHighlight", radius: 15, color: "#00b7ff",
        weight: 4, fill: false, interactive: false}).addTo(map);
    } else {
      L.geoJSON(d.g[found.i], {pane: "riskHighlight", interactive: false,
        style: {color: "#00b7ff", weight: 4, fill: false}}).addTo(map);
    }
    R.openPopup(map, d, found.i, at);
  };
  // Initial view: the township/county bounds, or the highlighted feature. Re-applied when the
  // container is resized before the user touches the map (st_folium sizes its iframe late).
  // With a view key, the last view shown under the same key (and highlight) is restored from
  // sessionStorage instead: a page that rebuilds the map (new filters) keeps the user's view.
  R.initView = function (map, bounds, hl, missing, viewKey) {
    var found = hl ? R.find(map, hl[0], hl[1]) : null;
    if (hl && !found && missing) { R.box(map, missing[0], missing[1], missing[2]); }
    var saved = null, skey = viewKey ? JSON.stringify([viewKey, hl]) : null;
    if (skey) {
      try { saved = JSON.parse(window.sessionStorage.getItem("riskmap.view") || "null"); }
      catch (e) { saved = null; }
      if (!saved || saved.key !== skey) { saved = null; }
      map.on("moveend", function () {
        var c = map.getCenter();
        try { window.sessionStorage.setItem("riskmap.view", JSON.stringify(
          {key: skey, center: [c.lat, c.lng], zoom: map.getZoom()})); } catch (e) { /* off */ }
      });
    }
    map.riskmap.restored = saved !== null;
    var apply = function () {
      if (saved) { map.setView(saved.center, saved.zoom, {animate: false}); }
      else if (found) { R.focus(map, found); } else {
        // Keep the bounds clear of the legend (bottom right) when the map is wide enough;
        // on a narrower map (a laptop beside the sidebar) fold the legend to its title first.
        var lg = map.getContainer().querySelector(".riskmap-legend");
        var det = lg ? lg.querySelector("details") : null;
        if (det && !touched && map.getSize().x < LEGEND_FOLD_BELOW_PX) { det.open = false; }
        var w = lg ? lg.offsetWidth : 0, pad = map.getSize().x > 3 * w ? w + 8 : 0;
        map.fitBounds(bounds, {animate: false, paddingTopLeft: [8, 8],
                               paddingBottomRight: [pad, 8]});
      }
    };
    var touched = false;
    apply();
    if (found) { R.mark(map, found); }
    L.DomEvent.on(map.getContainer(), "mousedown touchstart wheel keydown",
                  function () { touched = true; });
    map.on("resize", function () { if (!touched) { apply(); } });
    return found !== null;
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
"""

RUNTIME_CSS = """
<style>
.riskmap-label { background: none; border: none; color: #333; font-size: 12px; line-height: 1;
  white-space: nowrap; text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff;
  transform: translate(-50%, -50%); pointer-events: none; }
.riskmap-label.selected { color: #000; font-weight: bold; font-size: 12px; }
.riskmap-legend, .riskmap-warning { background: rgba(255,255,255,0.94); padding: 6px 9px;
  border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,0.35); font-size: 12px; line-height: 1.45;
  max-height: 60vh; overflow-y: auto; color: #222;
  font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; }
.riskmap-legend .title { font-weight: bold; margin-bottom: 2px; cursor: pointer; }
.riskmap-legend .layer { font-weight: bold; margin-top: 4px; }
.riskmap-legend .row { white-space: nowrap; }
.riskmap-legend svg { vertical-align: middle; margin-right: 4px; }
.riskmap-legend .note { color: #a33; margin-bottom: 2px; }
.riskmap-warning { background: #fff3cd; border: 1px solid #d9a400; color: #5c4400;
  max-width: 320px; }
.riskmap-popup { font-size: 12px; }
.riskmap-popup-layer { color: #666; }
.riskmap-popup-title { font-weight: bold; font-size: 13px; margin: 2px 0 4px;
  white-space: pre-wrap; }
.riskmap-popup table { border-collapse: collapse; }
.riskmap-popup th { text-align: left; color: #555; font-weight: normal; padding: 1px 8px 1px 0;
  white-space: nowrap; vertical-align: top; }
.riskmap-popup td { padding: 1px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.leaflet-container { background: #f4f3ef; }
</style>
"""


class _RawText(Element):
    """Already-rendered text, emitted verbatim (never compiled as a Jinja template)."""

    _template = Template("{{ this.text }}")

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class _DataElement(MacroElement):
    """
    A script-only element whose rendered script is NOT re-parsed as a Jinja template.

    `branca.element.MacroElement.render` wraps each rendered macro in ``Element(text)``,
    which compiles the text as a template again: slow for megabytes of data, and a way for
    ``{{ ... }}`` in user data to be evaluated. Here the script goes in as `_RawText`.
    (`js_json` escaping keeps the data safe for streamlit-folium's own single render too.)
    """

    def render(self, **kwargs: object) -> None:
        """Add this element's script to the figure verbatim, then render children."""
        figure = self.get_root()
        script = self._template.module.__dict__["script"]
        figure.script.add_child(_RawText(script(self, kwargs)), name=self.get_name())
        for child in self._children.values():
            child.render(**kwargs)


class _Runtime(MacroElement):
    """The shared JS runtime (``window.riskmap``) and CSS; first child of the map."""

    _template = Template(
        "{% macro header(this, kwargs) %}{{ this.css }}{% endmacro %}"
        "{% macro script(this, kwargs) %}{{ this.js }}\n"
        "riskmap.panes({{ this._parent.get_name() }});{% endmacro %}"
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "RiskmapRuntime"
        self.js = RUNTIME_JS
        self.css = RUNTIME_CSS


class _RiskLayer(_DataElement):
    """One risk layer's data (embedded once) added to its parent `folium.FeatureGroup`."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "riskmap.addLayer({{ this._parent._parent.get_name() }}, {{ this._parent.get_name() }}, "
        "{{ this.data }});{% endmacro %}"
    )

    def __init__(self, data: str) -> None:
        super().__init__()
        self._name = "RiskLayer"
        self.data = data


class _Areas(_DataElement):
    """Non-interactive polygons with optional labels (county, townships, choropleth)."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "riskmap.addAreas({{ this._parent._parent.get_name() }}, {{ this._parent.get_name() }}, "
        "{{ this.data }});{% endmacro %}"
    )

    def __init__(self, data: str) -> None:
        super().__init__()
        self._name = "RiskAreas"
        self.data = data


class _Finish(_DataElement):
    """Legend and warning boxes, scale, initial view and highlight; last child of the map."""

    _template = Template(
        "{% macro script(this, kwargs) %}(function (map) {\n"
        "{% for box in this.boxes %}riskmap.box(map, {{ box }});{% endfor %}"
        "L.control.scale({imperial: false}).addTo(map);"
        "riskmap.initView(map, {{ this.view }});"
        "})({{ this._parent.get_name() }});{% endmacro %}"
    )

    def __init__(self, boxes: list[str], view: str) -> None:
        super().__init__()
        self._name = "RiskFinish"
        self.boxes = boxes
        self.view = view


class _InlineAsset(Element):
    """A vendored JS or CSS file put inline in the page header (standalone HTML)."""

    _template = Template(
        "{% if this.kind == 'js' %}<script>{{ this.text }}</script>"
        "{% else %}<style>{{ this.text }}</style>{% endif %}"
    )

    def __init__(self, asset: assets.Asset) -> None:
        super().__init__()
        self._name = f"inline_{asset.name}"
        self.kind = asset.kind
        self.text = assets.asset_text(asset)


class _AssetLinks(folium.elements.JSCSSMixin, MacroElement):
    """
    Links to vendored assets in served mode.

    ``st_folium`` collects ``default_js``/``default_css`` from every element and loads them
    in its iframe; folium puts them in the page header.
    """

    _template = Template("")

    def __init__(self, wanted: tuple[assets.Asset, ...], url_prefix: str) -> None:
        super().__init__()
        self._name = "RiskAssetLinks"
        self.default_js = [
            (a.name, assets.asset_url(a, url_prefix=url_prefix)) for a in wanted if a.kind == "js"
        ]
        self.default_css = [
            (a.name, assets.asset_url(a, url_prefix=url_prefix)) for a in wanted if a.kind == "css"
        ]


# ----------------------------------------------------------------------------- data encoding


def _b64(values: np.ndarray) -> _RawJSON:
    """Return `values`' little-endian bytes as a base64 JSON string (JS: `riskmap.b64`)."""
    data = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes()
    return _RawJSON('"' + base64.b64encode(data).decode("ascii") + '"')


def _column_values(series: pd.Series) -> list[Any] | dict[str, Any]:
    """
    One property column as a JSON-ready list (None for missing values).

    Columns with few distinct values (at most half the rows) are dictionary-encoded as
    ``{"k": [values], "b": base64 codes, "w": bytes per code}``, code 0 = missing and
    code ``c`` = ``k[c - 1]``, which the JS `riskmap.value` decodes.
    """
    n = len(series)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        series = series.dt.strftime("%Y-%m-%d %H:%M").astype(object)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if len(uniques) * 2 <= n:
        labels = [_cell_text(v) for v in uniques]
        width = 1 if len(uniques) < 2**8 else (2 if len(uniques) < 2**16 else 4)
        dtype = {1: np.uint8, 2: np.uint16, 4: np.int32}[width]
        return {"k": labels, "b": _b64((codes + 1).astype(dtype)), "w": width}
    if pd.api.types.is_bool_dtype(series.dtype):
        return [None if pd.isna(v) else bool(v) for v in series.tolist()]
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.astype("float64").to_numpy()
        finite = np.isfinite(values)
        if pd.api.types.is_integer_dtype(series.dtype):
            out: list[Any] = [int(v) if ok else None for v, ok in zip(values, finite, strict=True)]
            return out
        return [float(v) if ok else None for v, ok in zip(values.tolist(), finite, strict=True)]
    labels = [_cell_text(v) for v in uniques]
    return [None if c < 0 else labels[c] for c in codes.tolist()]


def _cell_text(value: object) -> Any:  # noqa: ANN401 - JSON scalar
    """Return a non-missing cell of an object column as a JSON scalar (bools/numbers kept)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return str(value)


def _embedded_fields(spec: LayerSpec) -> list[str]:
    """Properties the page needs: key, name, class field and popup fields, in that order."""
    return list(dict.fromkeys((spec.key, "name", spec.class_field, *spec.popup)))


def _safe_color(color: str) -> str:
    if not _HEX_COLOR.match(color):
        msg = f"catalog colour {color!r} is not #rrggbb"
        raise ValueError(msg)
    return color


def _layer_payload(layer: LayerData, *, aggregate_above: int) -> tuple[dict[str, Any], int]:
    """Return the JS data of one layer and its feature count (no-geometry rows dropped)."""
    spec = layer.spec
    gdf = layer.gdf
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs("EPSG:4326")
    geoms = gdf.geometry.to_numpy()
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    gdf = gdf[keep]
    geoms = geoms[keep]
    n = len(gdf)
    props = {
        f: _column_values(gdf[f]) if f in gdf.columns else [None] * n
        for f in _embedded_fields(spec)
    }
    data: dict[str, Any] = {
        "id": spec.id,
        "name": spec.name,
        "key": spec.key,
        "cls": spec.class_field,
        "shape": spec.symbol,
        "radius": 7 if spec.symbol == "triangle" else 6,
        "colors": {str(k): _safe_color(v) for k, v in spec.colors.items()},
        "classes": [[str(k), _safe_color(v)] for k, v in spec.colors.items()],
        "other": UNCLASSIFIED_COLOR,
        "fields": [[f, spec.header(f)] for f in spec.popup if f != "name"],
        "n": n,
        "agg": aggregate_above,
        "aggMaxZoom": AGGREGATE_MAX_ZOOM,
        "p": props,
    }
    if spec.geometry == "Point":
        # Fixed-point 1e-6 degrees (~0.1 m), [lat, lon] per point, as base64 Int32.
        lon = shapely.get_x(geoms)
        lat = shapely.get_y(geoms)
        fixed = np.rint(np.column_stack([lat, lon]) * 10**_COORD_DECIMALS).astype(np.int32)
        data["c"] = _b64(fixed.ravel())
    else:
        data["g"] = _geometries_json(geoms)
    return data, n


class _RawJSON:
    """Pre-encoded JSON spliced into `js_json` output (geometries: no re-encoding)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _geometry_texts(geoms: np.ndarray, *, simplify_deg: float = 0.0) -> list[str | None]:
    """GeoJSON text of each geometry (lon/lat, 6 decimals); None for a missing one."""
    if simplify_deg:
        geoms = shapely.simplify(geoms, simplify_deg, preserve_topology=True)
    geoms = shapely.set_precision(geoms, 10.0**-_COORD_DECIMALS)
    return [None if t is None else str(t) for t in shapely.to_geojson(geoms)]


def _geometries_json(geoms: np.ndarray) -> _RawJSON:
    """Return the non-missing geometries of `geoms` as one GeoJSON array text."""
    return _RawJSON("[" + ",".join(t for t in _geometry_texts(geoms) if t is not None) + "]")


def _encode(obj: dict[str, Any]) -> str:
    """`js_json` of `obj` where `_RawJSON` values are spliced in verbatim (they are digits)."""
    raws: dict[str, str] = {}
    nonce = uuid.uuid4().hex

    def default(value: object) -> str:
        if isinstance(value, _RawJSON):
            token = f"@@{nonce}x{len(raws)}@@"
            raws[token] = value.text
            return token
        msg = f"cannot encode {type(value).__name__} for the map"
        raise TypeError(msg)

    text = json.dumps(
        obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=default
    )
    text = _JS_ESCAPE_RE.sub(lambda m: _JS_ESCAPES[m.group(0)], text)
    if not raws:
        return text
    # One pass; `@@` and the hex nonce are left alone by the escaping above.
    return re.sub(f'"@@{nonce}x[0-9]+@@"', lambda m: raws[m.group(0)[1:-1]], text)


# ----------------------------------------------------------------------------- legend


def _symbol_svg(shape: str, color: str) -> str:
    """Return a 14×14 SVG of a layer symbol (matches the canvas shapes drawn in JS)."""
    c = escape_html(color)
    stroke = 'stroke="#666" stroke-width="0.6"'
    if shape == "square":
        body = f'<rect x="2" y="2" width="10" height="10" fill="{c}" {stroke}/>'
    elif shape == "triangle":
        body = f'<polygon points="7,1 13,12 1,12" fill="{c}" stroke="#666" stroke-width="0.6"/>'
    elif shape == "diamond":
        body = (
            f'<polygon points="7,0.5 13,7 7,13.5 1,7" fill="{c}" stroke="#666" stroke-width="0.6"/>'
        )
    elif shape == "solid":
        body = f'<rect x="1" y="2" width="12" height="10" fill="{c}" {stroke}/>'
    elif shape == "fill":
        body = (
            f'<rect x="1" y="2" width="12" height="10" fill="{c}" fill-opacity="0.45" '
            f'stroke="{c}" stroke-width="1.5"/>'
        )
    else:
        body = f'<circle cx="7" cy="7" r="5.5" fill="{c}" stroke="#666" stroke-width="0.6"/>'
    return f'<svg width="14" height="14" viewBox="0 0 14 14" aria-hidden="true">{body}</svg>'


def _legend_html(
    layer_rows: list[tuple[LayerSpec, int, bool, int]],
    choro: tuple[str, list[tuple[str, str]]] | None,
    *,
    approximate: bool,
    demo: bool,
    clustered: bool = False,
) -> str:
    """Server-side escaped legend HTML. Rows: (spec, count, has unclassified, cleared count)."""
    # <details open>: the legend folds to its title (small screens keep the map visible).
    parts = ['<details open><summary class="title">图例</summary>']
    for spec, count, unclassified, cleared in layer_rows:
        parts.append(f'<div class="layer">{escape_html(spec.name)}（{count}）</div>')
        classes = [(str(k), str(v)) for k, v in spec.colors.items()]
        if unclassified:
            classes.append((UNCLASSIFIED, UNCLASSIFIED_COLOR))
        parts.extend(
            f'<div class="row">{_symbol_svg(spec.symbol, color)}'
            f"{escape_html(spec.label(spec.class_field))}：{escape_html(cls)}</div>"
            for cls, color in reversed(classes)
        )
        if cleared:
            parts.append(f'<div class="row">含{STATUS_CLEARED} {cleared} 个</div>')
    if choro is not None:
        title, rows = choro
        parts.append(f'<div class="layer">{escape_html(title)}</div>')
        parts.extend(
            f'<div class="row">{_symbol_svg("solid", color)}{escape_html(label)}</div>'
            for label, color in rows
        )
    parts.append(
        '<div class="row"><svg width="14" height="14" aria-hidden="true"><line x1="0" y1="7" '
        'x2="14" y2="7" stroke="#555" stroke-width="1.5" stroke-dasharray="3,2"/></svg>乡镇界线'
        '</div><div class="row"><svg width="14" height="14" aria-hidden="true"><line x1="0" '
        'y1="7" x2="14" y2="7" stroke="#222" stroke-width="2.5"/></svg>县界</div>'
    )
    if clustered:
        parts.append('<div class="row">带数字的圆圈：点位聚合数（放大后显示单个点位）</div>')
    parts.append("</details>")
    # The data notes come first, so they stay visible when the legend is folded or scrolled.
    notes = [NOTE_APPROXIMATE] if approximate else []
    notes += [NOTE_DEMO] if demo else []
    return "".join(f'<div class="note">{escape_html(n)}</div>' for n in notes) + "".join(parts)


# ----------------------------------------------------------------------------- choropleth


def township_counts(layers: Mapping[str, LayerData], layer_ids: Collection[str]) -> pd.Series:
    """
    Count features per township (9-digit code) over `layer_ids`.

    A polygon touching several townships counts once in each; only features still in
    ``layer.gdf`` count (the caller's filters apply).
    """
    counts: list[pd.Series] = []
    for lid in layer_ids:
        layer = layers[lid]
        keys = set(layer.gdf[layer.spec.key])
        shares = layer.shares[layer.shares["key"].isin(keys)]
        counts.append(shares.groupby("township_code")["key"].nunique())
    if not counts:
        return pd.Series(dtype="int64")
    return pd.concat(counts).groupby(level=0).sum().astype("int64")


def count_classes(max_count: int) -> list[tuple[int, int, str]]:
    """
    Sequential classes ``(low, high, colour)`` (inclusive) covering 1..`max_count`.

    Up to 5 equal-interval classes with integer bounds, ColorBrewer Purples.
    """
    if max_count <= 0:
        return []
    k = min(5, max_count)
    edges = sorted({math.ceil(max_count * j / k) for j in range(k + 1)})
    k = len(edges) - 1
    palette = PURPLES.get(k) or (PURPLES[3][0], PURPLES[3][-1])[-k:]
    return [(edges[j] + 1, edges[j + 1], palette[j]) for j in range(k)]


def _class_label(low: int, high: int) -> str:
    return f"{low}" if low == high else f"{low}–{high}"


# ----------------------------------------------------------------------------- public API


def _check_ids(ids: Collection[str], layers: Mapping[str, LayerData], argument: str) -> None:
    if unknown := [i for i in ids if i not in layers]:
        msg = f"{argument}: 未知图层 {unknown}（unknown layer）；可用图层: {', '.join(layers)}"
        raise LayerNotFoundError(msg)


def _find_township(gdf_townships: gpd.GeoDataFrame, code: str) -> gpd.GeoDataFrame:
    mask = pd.Series(data=False, index=gdf_townships.index)
    for column in ("adcode", "adcode12", "name"):
        if column in gdf_townships.columns:
            mask |= gdf_townships[column].astype(str) == str(code)
    if not mask.any() and "also_covers" in gdf_townships.columns:
        # A township without a polygon of its own (复兴街道 in the approximate partition) is
        # shown through the cell that covers it.
        names = gdf_townships.attrs.get("township_names", {})
        code9 = next((c for c, n in names.items() if n == str(code)), str(code)[:9])
        mask = gdf_townships["also_covers"].fillna("").astype(str).str.contains(code9, regex=False)
    if not mask.any():
        msg = f"selected_township: 未找到乡镇 {code!r}（9 位或 12 位代码，或乡镇名称）"
        raise TownshipNotFoundError(msg)
    return gdf_townships[mask]


def _to_wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        return gdf.to_crs("EPSG:4326")
    return gdf


def _leaflet_bounds(bounds: np.ndarray | tuple[float, ...]) -> list[list[float]]:
    left, bottom, right, top = (float(v) for v in bounds)
    return [[bottom, left], [top, right]]


def _add_basemap(m: folium.Map, settings: Settings, basemap: str) -> str:
    """Add the basemap tiles; return a Chinese warning text when none could be added."""
    if basemap not in BASEMAPS:
        msg = f"basemap must be one of {sorted(BASEMAPS)}, got {basemap!r}"
        raise ValueError(msg)
    if basemap == "auto":
        basemap = "tile" if settings.tile_url else ("tianditu" if settings.tianditu_key else "none")
    if basemap == "tile":
        if not settings.tile_url:
            return "未配置内网底图地址（RISKMAP_TILE_URL），当前无底图。"
        folium.TileLayer(
            tiles=settings.tile_url, attr="内网底图", name="底图", overlay=False, control=False
        ).add_to(m)
    elif basemap == "tianditu":
        if not settings.tianditu_key:
            return "未配置天地图密钥（RISKMAP_TIANDITU_KEY），天地图底图不可用；当前无底图。"
        key = quote(settings.tianditu_key, safe="")
        for layer, name in (("vec", "天地图矢量"), ("cva", "天地图注记")):
            folium.TileLayer(
                tiles=TIANDITU_URL.format(s="{s}", layer=layer, key=key),
                attr="天地图 © 国家地理信息公共服务平台",
                name=name,
                subdomains="01234567",
                max_zoom=18,
                overlay=False,
                control=False,
            ).add_to(m)
    return ""


def build_map(
    layers: Mapping[str, LayerData],
    gdf_townships: gpd.GeoDataFrame,
    gdf_county: gpd.GeoDataFrame,
    *,
    settings: Settings,
    visible: Collection[str] | None = None,
    choropleth: str | None = None,
    selected_township: str | None = None,
    highlight: tuple[str, str] | None = None,
    demo: bool = True,
    view_key: str | None = None,
    inline_assets: bool = False,
    basemap: str = "auto",
    static_url_prefix: str = assets.STATIC_URL_PREFIX,
    cluster_threshold: int = CLUSTER_THRESHOLD,
) -> folium.Map:
    """
    Build the county risk map (一张图).

    Parameters
    ----------
    layers
        Prepared layers by id (`riskmap.layers.prepare_layer`), already filtered by the
        caller (cleared features, townships, classes). EPSG:4326 (reprojected otherwise).
    gdf_townships
        Township polygons: ``adcode`` (9-digit), ``adcode12``, ``name``, ``approximate``
        (bool), geometry; any CRS.
    gdf_county
        County outline, any CRS.
    settings
        Basemap settings: ``tile_url`` (intranet XYZ), ``tianditu_key``.
    visible
        Layer ids shown at start; None = all. The others stay in the layer control.
    choropleth
        A layer id or ``"all"``: add a township choropleth of feature counts (ColorBrewer
        Purples) with its own legend lines; None = none.
    selected_township
        9- or 12-digit township code (or name): fit the map to it and emphasise its outline.
    highlight
        ``(layer_id, key)``: zoom to that feature, ring it and open its popup. A key not in
        the (filtered) layer shows a Chinese notice on the map instead.
    demo
        Add "演示数据" to the legend.
    view_key
        Keep the view across rebuilds: the browser remembers (sessionStorage) the last view
        shown under this key and the same `highlight`, and a map built with the same key
        opens there instead of at the township/county bounds (the app passes the selected
        township, so changing filters keeps the view and choosing a township zooms to it).
        None = always open at the bounds.
    inline_assets
        True: Leaflet JS/CSS inline (standalone HTML file, no external file at all).
        False: loaded from ``static_url_prefix`` (Streamlit static serving; run
        `riskmap.assets.install_static_assets` first).
    basemap
        ``"auto"`` (``tile_url`` if set, else 天地图 if a key is set, else none), ``"none"``,
        ``"tile"`` or ``"tianditu"``. A requested basemap that is not configured shows a
        Chinese warning box. Never AutoNavi (GCJ-02 shifted).
    static_url_prefix
        URL prefix of the vendored assets in served mode.
    cluster_threshold
        A point layer with more points than this in view is drawn as count bubbles per
        64 px screen cell (coloured by the most severe class in the cell; a click zooms in),
        below zoom `AGGREGATE_MAX_ZOOM`.

    Returns
    -------
    m
        The map (not rendered). Render with `save_map` or show with ``st_folium``.

    Raises
    ------
    LayerNotFoundError
        When `visible`, `choropleth` or `highlight` names a layer not in `layers`.
    TownshipNotFoundError
        When `selected_township` matches no township.
    """
    shown = set(layers) if visible is None else set(visible)
    _check_ids(shown, layers, "visible")
    if choropleth is not None and choropleth != CHOROPLETH_ALL:
        _check_ids([choropleth], layers, "choropleth")
    if highlight is not None:
        _check_ids([highlight[0]], layers, "highlight")
    gdf_townships = _to_wgs84(gdf_townships)
    gdf_county = _to_wgs84(gdf_county)
    gdf_selected = (
        _find_township(gdf_townships, selected_township) if selected_township is not None else None
    )

    bounds = gdf_county.total_bounds if len(gdf_county) else gdf_townships.total_bounds
    m = _new_map(bounds, inline_assets=inline_assets, static_url_prefix=static_url_prefix)
    warning = _add_basemap(m, settings, basemap)
    _add_county(m, gdf_county)
    selected_codes = set(gdf_selected["adcode"].astype(str)) if gdf_selected is not None else set()
    town_geoms = _add_townships(m, gdf_townships, selected_codes)
    choro_legend = None
    if choropleth is not None:
        choro_legend = _add_choropleth(m, layers, gdf_townships, town_geoms, choropleth)
    legend_rows, any_cluster = _add_risk_layers(m, layers, shown, cluster_threshold)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)

    approximate = "approximate" in gdf_townships and bool(
        gdf_townships["approximate"].fillna(value=False).astype(bool).any()
    )
    legend = _legend_html(
        legend_rows, choro_legend, approximate=approximate, demo=demo, clustered=any_cluster
    )
    boxes = [f'{js_json(legend)}, "bottomright", "riskmap-legend"']
    if warning:
        boxes.append(f'{js_json(escape_html(warning))}, "topleft", "riskmap-warning"')
    view = gdf_selected.total_bounds if gdf_selected is not None else bounds
    hl = missing = None
    if highlight is not None:
        hl = [highlight[0], str(highlight[1])]
        name = layers[highlight[0]].spec.name
        note = f"未找到要定位的点位：{name} {highlight[1]}（可能已被筛选）"
        missing = [escape_html(note), "topleft", "riskmap-warning"]
    view_args = ", ".join(js_json(v) for v in (_leaflet_bounds(view), hl, missing, view_key))
    m.add_child(_Finish(boxes, view_args), name="riskmap_finish")
    return m


def _add_assets(
    m: folium.Map, wanted: tuple[assets.Asset, ...], *, inline: bool, url_prefix: str
) -> None:
    """Inline `wanted` in the page header, or add a links-only element (served mode)."""
    if inline:
        header = m.get_root().header
        for asset in wanted:
            header.add_child(_InlineAsset(asset), name=f"inline_{asset.name}")
    else:
        m.add_child(_AssetLinks(wanted, url_prefix), name=f"riskmap_links_{wanted[0].name}")


def _new_map(bounds: np.ndarray, *, inline_assets: bool, static_url_prefix: str) -> folium.Map:
    """Create a tile-less map whose only JS/CSS is Leaflet (inline or served), plus the runtime."""
    center = [(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2]
    m = folium.Map(
        location=center, zoom_start=10, tiles=None, control_scale=False, prefer_canvas=False
    )
    # folium.Map lists CDN jQuery/Bootstrap/awesome-markers/Font Awesome: the map needs none.
    if inline_assets:
        m.default_js, m.default_css = [], []
        _add_assets(m, assets.LEAFLET, inline=True, url_prefix=static_url_prefix)
    else:
        links = _AssetLinks(assets.LEAFLET, static_url_prefix)
        m.default_js, m.default_css = links.default_js, links.default_css
    m.add_child(_Runtime(), name="riskmap_runtime")
    return m


def _add_county(m: folium.Map, gdf_county: gpd.GeoDataFrame) -> None:
    geoms = _geometries_json(gdf_county.geometry.to_numpy()).text
    item = {
        "g": _RawJSON('{"type":"GeometryCollection","geometries":' + geoms + "}"),
        "style": {"color": "#222222", "weight": 2.5, "fill": False},
    }
    group = folium.FeatureGroup(name="县界", control=True)
    group.add_child(_Areas(_encode({"pane": "riskBounds", "items": [item]})))
    group.add_to(m)


def _add_townships(
    m: folium.Map, gdf_townships: gpd.GeoDataFrame, selected_codes: set[str]
) -> list[str | None]:
    """Township outlines and permanent name labels; return the geometries' GeoJSON texts."""
    town_geoms = _geometry_texts(
        gdf_townships.geometry.to_numpy(), simplify_deg=_BOUNDARY_SIMPLIFY_DEG
    )
    label_points = gdf_townships.geometry.representative_point()
    items = []
    for geom_text, code, name, point in zip(
        town_geoms,
        gdf_townships["adcode"].astype(str),
        gdf_townships["name"],
        label_points,
        strict=True,
    ):
        selected = code in selected_codes
        items.append(
            {
                "g": _RawJSON(geom_text or "null"),
                "name": "" if pd.isna(name) else str(name),
                "label": None if point is None else [round(point.y, 6), round(point.x, 6)],
                "labelClass": "selected" if selected else "",
                "style": {
                    "color": "#000000" if selected else "#555555",
                    "weight": 3.5 if selected else 1.2,
                    "dashArray": None if selected else "4 3",
                    "fill": False,
                },
            }
        )
    # Selected township last, so its thick outline is drawn on top of its neighbours'.
    items.sort(key=lambda item: item["labelClass"] == "selected")
    group = folium.FeatureGroup(name="乡镇界线", control=True)
    group.add_child(_Areas(_encode({"pane": "riskBounds", "items": items})))
    group.add_to(m)
    return town_geoms


def _add_choropleth(
    m: folium.Map,
    layers: Mapping[str, LayerData],
    gdf_townships: gpd.GeoDataFrame,
    town_geoms: list[str | None],
    choropleth: str,
) -> tuple[str, list[tuple[str, str]]]:
    """Township fill by feature count; return the legend title and rows."""
    ids = list(layers) if choropleth == CHOROPLETH_ALL else [choropleth]
    counts = township_counts(layers, ids)
    values = gdf_townships["adcode"].astype(str).map(counts).fillna(0).astype("int64")
    classes = count_classes(int(values.max()) if len(values) else 0)
    what = "全部图层" if choropleth == CHOROPLETH_ALL else layers[choropleth].spec.name
    title = f"各乡镇点位数（{what}）"
    items = []
    for geom_text, value in zip(town_geoms, values, strict=True):
        color = next((c for lo, hi, c in classes if lo <= value <= hi), "#ffffff")
        style = {"stroke": False, "fillColor": color, "fillOpacity": 0.75 if value else 0.25}
        items.append({"g": _RawJSON(geom_text or "null"), "style": style})
    group = folium.FeatureGroup(name=escape_html(title), control=True)
    group.add_child(_Areas(_encode({"pane": "riskChoro", "items": items})))
    group.add_to(m)
    rows = [("0", "#ffffff"), *[(_class_label(lo, hi), c) for lo, hi, c in classes]]
    return title, rows


def _add_risk_layers(
    m: folium.Map, layers: Mapping[str, LayerData], shown: set[str], cluster_threshold: int
) -> tuple[list[tuple[LayerSpec, int, bool, int]], bool]:
    """One FeatureGroup + one `_RiskLayer` per layer; return legend rows and "any cluster"."""
    legend_rows = []
    any_cluster = False
    for lid, layer in layers.items():
        spec = layer.spec
        any_cluster |= spec.geometry == "Point" and len(layer.gdf) > cluster_threshold
        data, n = _layer_payload(layer, aggregate_above=cluster_threshold)
        group = folium.FeatureGroup(name=escape_html(spec.name), show=lid in shown)
        group.add_child(_RiskLayer(_encode(data)))
        group.add_to(m)
        cls = layer.gdf.get(spec.class_field)
        unclassified = cls is not None and bool(
            (cls.isna() | ~cls.astype(str).isin(list(spec.colors))).any()
        )
        status = layer.gdf.get("status")
        cleared = 0 if status is None else int((status == STATUS_CLEARED).sum())
        legend_rows.append((spec, n, unclassified, cleared))
    return legend_rows, any_cluster


def save_map(m: folium.Map, *, title: str = "") -> str:
    """Render `m` to a complete HTML page (text) with `title`; `riskmap.io` writes it."""
    root = m.get_root()
    if title:
        root.title = escape_html(title)
    return root.render()
