"""Spatial joins between risk features and townships (pure: no file I/O).

Points get the township that strictly contains them. A point on a border shared by several
townships (or on the county edge) goes to the township with the lowest ``adcode``
(``join_flag="border"``), which makes the join deterministic; points in no township get
``join_flag="outside"`` and no township. Rows are never dropped.

``also_covers``: in the approximate partition the 葛城街道 cell stands for 复兴街道 as well
(复兴街道 has no seat point, so it has no cell). A point in such a cell whose
``township_declared`` names a township listed in ``also_covers`` keeps that township.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import shapely
from pyproj import CRS

from riskmap.errors import CRSError, SchemaError
from riskmap.townships import name_key, normalize_code

if TYPE_CHECKING:
    from collections.abc import Mapping

    import geopandas as gpd

#: Flag codes returned by `township_index_xy`, and the ``join_flag`` text of each.
FLAG_INSIDE, FLAG_BORDER, FLAG_OUTSIDE, FLAG_NO_GEOMETRY = 0, 1, 2, 3
FLAG_TEXT = {
    FLAG_INSIDE: "",
    FLAG_BORDER: "border",
    FLAG_OUTSIDE: "outside",
    FLAG_NO_GEOMETRY: "no_geometry",
}
HA_PER_M2 = 1e-4


def _require_townships(gdf_townships: gpd.GeoDataFrame) -> None:
    if gdf_townships.crs is None:
        msg = "`gdf_townships` has no CRS; read it with riskmap.io.read_townships."
        raise CRSError(msg)
    if missing := {"adcode", "name"} - set(gdf_townships.columns):
        msg = f"`gdf_townships` lacks columns {sorted(missing)}; see riskmap.townships."
        raise SchemaError(msg)


def _to_townships_crs(
    gdf: gpd.GeoDataFrame, gdf_townships: gpd.GeoDataFrame, arg: str
) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        msg = f"`{arg}` has no CRS; declare it in the importer (set_crs with the source's CRS)."
        raise CRSError(msg)
    if gdf.crs == gdf_townships.crs:
        return gdf
    return gdf.to_crs(gdf_townships.crs)


GRID_CELLS = 256  # grid cells along the longer side of the townships' extent
_STATE_TEST, _STATE_OUT = -1, -2


@dataclass(frozen=True)
class _TownshipGrid:
    """Prepared township polygons and a regular grid that settles most points without tests.

    ``state[c]`` is the township whose interior holds all of grid cell ``c``, or
    `_STATE_TEST` (the cell touches some township boundary: exact tests needed) or
    `_STATE_OUT` (the cell touches no township: its points are outside). ``cand[c, i]`` is True
    when cell ``c`` touches township ``i`` (closed sets): the only townships to test.
    """

    geoms: np.ndarray  # (k,) prepared polygons; None where missing/empty
    bounds: np.ndarray  # (k, 4) float, (left, bottom, right, top)
    origin: tuple[float, float]
    size: tuple[float, float]  # cell width, height in CRS units
    shape: tuple[int, int]  # (n_cols, n_rows)
    state: np.ndarray  # (n_cols * n_rows,) int64
    cand: np.ndarray  # (n_cols * n_rows, k) bool


@lru_cache(maxsize=8)
def _grid_from_wkb(wkbs: tuple[bytes | None, ...]) -> _TownshipGrid:
    """Build (once per distinct set of polygons) the grid index of `township_index_xy`."""
    geoms = np.array([None if w is None else shapely.from_wkb(w) for w in wkbs], dtype=object)
    valid = ~shapely.is_missing(geoms)
    shapely.prepare(geoms[valid])
    bounds = shapely.bounds(geoms)
    k = len(geoms)
    if not valid.any():
        empty = np.zeros((1, k), dtype=bool)
        return _TownshipGrid(
            geoms,
            bounds,
            (0.0, 0.0),
            (1.0, 1.0),
            (1, 1),
            np.full(1, _STATE_OUT, dtype="int64"),
            empty,
        )
    left, bottom = np.nanmin(bounds[:, 0]), np.nanmin(bounds[:, 1])
    right, top = np.nanmax(bounds[:, 2]), np.nanmax(bounds[:, 3])
    span = max(right - left, top - bottom) or 1.0
    step = span / GRID_CELLS
    n_cols = int(np.ceil((right - left) / step)) + 1
    n_rows = int(np.ceil((top - bottom) / step)) + 1
    col, row = np.meshgrid(np.arange(n_cols), np.arange(n_rows), indexing="xy")
    col, row = col.ravel(), row.ravel()
    cell_id = row * n_cols + col
    # Boxes grown by a hair so rounding in the cell arithmetic can never leave a point
    # outside the box it is assigned to.
    pad = step * 1e-6
    boxes = shapely.box(
        left + col * step - pad,
        bottom + row * step - pad,
        left + (col + 1) * step + pad,
        bottom + (row + 1) * step + pad,
    )
    owner = np.full(n_cols * n_rows, -1, dtype="int64")
    cand = np.zeros((n_cols * n_rows, k), dtype=bool)
    box_bounds = shapely.bounds(boxes)
    for i in np.flatnonzero(valid):
        g_left, g_bottom, g_right, g_top = bounds[i]
        near = np.flatnonzero(
            (box_bounds[:, 2] >= g_left)
            & (box_bounds[:, 0] <= g_right)
            & (box_bounds[:, 3] >= g_bottom)
            & (box_bounds[:, 1] <= g_top)
        )
        touch = near[shapely.intersects(geoms[i], boxes[near])]
        cand[cell_id[touch], i] = True
        inner = touch[shapely.contains_properly(geoms[i], boxes[touch])]
        owner[cell_id[inner]] = i
    # Warm the lazily built GEOS point locators now, inside the cached build, so threads that
    # share this cached grid (Streamlit sessions) never race to build them.
    for i in np.flatnonzero(valid):
        shapely.contains_xy(geoms[i], bounds[i, 0], bounds[i, 1])
        shapely.intersects_xy(geoms[i], bounds[i, 0], bounds[i, 1])
    state = np.where(owner >= 0, owner, np.where(cand.any(axis=1), _STATE_TEST, _STATE_OUT))
    for arr in (state, cand):
        arr.flags.writeable = False
    return _TownshipGrid(geoms, bounds, (left, bottom), (step, step), (n_cols, n_rows), state, cand)


def _township_grid(gdf_townships: gpd.GeoDataFrame) -> _TownshipGrid:
    geoms = gdf_townships.geometry.to_numpy()
    wkbs = tuple(None if g is None or g.is_empty else shapely.to_wkb(g) for g in geoms)
    return _grid_from_wkb(wkbs)


def township_index_xy(
    lon: np.ndarray, lat: np.ndarray, gdf_townships: gpd.GeoDataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """
    Locate coordinate arrays in townships, vectorised (no Python loop over points).

    A regular grid (about `GRID_CELLS` cells across, built once per set of polygons and
    cached) settles every point whose cell lies inside one township or touches none. The
    rest are tested, per township (a loop over ~25 polygons), with `shapely.contains_xy`
    against the prepared polygon, only where the point's cell touches that township (a
    bounding-box prefilter at cell resolution). Points still unassigned are tested with
    `shapely.intersects_xy` (boundary included) in ascending ``adcode`` order; the first hit
    (lowest code) wins and is flagged `FLAG_BORDER`.

    Parameters
    ----------
    lon, lat
        Coordinate arrays of shape ``(n,)`` in the CRS of `gdf_townships` (degrees for
        EPSG:4326). NaN marks a missing point.
    gdf_townships
        Township polygons (see `riskmap.townships`) with an ``adcode`` column; must not
        overlap (the township contract is a partition).

    Returns
    -------
    index
        ``int64`` array ``(n,)``: positional row of `gdf_townships`, or -1 for none.
    flag
        ``int8`` array ``(n,)``: `FLAG_INSIDE`, `FLAG_BORDER`, `FLAG_OUTSIDE`, or
        `FLAG_NO_GEOMETRY` for a NaN coordinate.
    """
    lon = np.asarray(lon, dtype="float64")
    lat = np.asarray(lat, dtype="float64")
    n = lon.shape[0]
    index = np.full(n, -1, dtype="int64")
    flag = np.full(n, FLAG_OUTSIDE, dtype="int8")
    grid = _township_grid(gdf_townships)
    n_cols, n_rows = grid.shape
    with np.errstate(invalid="ignore"):
        col = np.floor((lon - grid.origin[0]) / grid.size[0])
        row = np.floor((lat - grid.origin[1]) / grid.size[1])
    missing = np.isnan(col) | np.isnan(row)
    flag[missing] = FLAG_NO_GEOMETRY
    on_grid = ~missing & (col >= 0) & (col < n_cols) & (row >= 0) & (row < n_rows)
    pts = np.flatnonzero(on_grid)
    cell = row[pts].astype("int64") * n_cols + col[pts].astype("int64")

    state = grid.state[cell]
    settled = state >= 0
    index[pts[settled]] = state[settled]
    flag[pts[settled]] = FLAG_INSIDE
    open_ = state == _STATE_TEST
    todo, todo_cell = pts[open_], cell[open_]

    def settle(order: np.ndarray, predicate: Any, flag_value: int) -> None:  # noqa: ANN401
        """Test the open points against townships in `order`; the first hit wins."""
        nonlocal todo, todo_cell
        for i in order:
            if todo.size == 0:
                return
            sel = grid.cand[todo_cell, i]
            if not sel.any():
                continue
            cand = todo[sel]
            hit = predicate(grid.geoms[i], lon[cand], lat[cand])
            if hit.any():
                index[cand[hit]] = i
                flag[cand[hit]] = flag_value
                keep = index[todo] < 0
                todo, todo_cell = todo[keep], todo_cell[keep]

    # Exact tests in the cells along borders; largest townships first.
    box_area = (grid.bounds[:, 2] - grid.bounds[:, 0]) * (grid.bounds[:, 3] - grid.bounds[:, 1])
    settle(
        np.argsort(-np.nan_to_num(box_area, nan=-1.0), kind="stable"),
        shapely.contains_xy,
        FLAG_INSIDE,
    )
    # Border rule: boundary included, lowest adcode first.
    codes = gdf_townships["adcode"].astype(str).to_numpy()
    settle(np.argsort(codes, kind="stable"), shapely.intersects_xy, FLAG_BORDER)
    return index, flag


def _xy(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return lon, lat arrays of point geometries; NaN for None and for POINT EMPTY."""
    try:
        return shapely.get_x(geoms), shapely.get_y(geoms)  # fast path: no empty points
    except shapely.errors.GEOSException:
        lon = np.full(len(geoms), np.nan)
        lat = np.full(len(geoms), np.nan)
        ok = ~shapely.is_empty(geoms) & ~shapely.is_missing(geoms)
        lon[ok] = shapely.get_x(geoms[ok])
        lat[ok] = shapely.get_y(geoms[ok])
        return lon, lat


def _declared_factorized(
    declared: pd.Series, names: Mapping[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """
    Resolve `declared` township spellings once per distinct value.

    Returns
    -------
    codes, resolved
        ``codes`` (n,) int64 positions into ``resolved``; ``resolved`` (m + 1,) object array
        of 9-digit codes (None where a spelling names no single township); its last slot is
        None, for missing cells. ``resolved[codes]`` is the code of each row.
    """
    by_key: dict[str, list[str]] = {}
    for code, name in names.items():
        by_key.setdefault(name_key(name), []).append(code)

    def one(value: object) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return None
        code = normalize_code(value)
        if code is not None:
            return code
        hits = by_key.get(name_key(value), [])
        return hits[0] if len(hits) == 1 else None

    if isinstance(declared.dtype, pd.StringDtype):
        values: pd.Series | np.ndarray = declared  # Arrow text: no Python object per row
    else:
        values = declared.to_numpy(dtype=object)
        if pd.api.types.infer_dtype(values, skipna=True) not in {"string", "empty"}:
            # mixed cells: factorizing would merge 1 and True; resolve each cell
            resolved = np.array([*[one(v) for v in values], None], dtype=object)
            return np.arange(len(values), dtype=np.int64), resolved
    # Text (the usual case): a few dozen distinct spellings, each resolved once.
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    resolved = np.empty(len(uniques) + 1, dtype=object)
    resolved[:-1] = [one(v) for v in uniques]
    resolved[-1] = None  # missing cell
    codes = codes.astype(np.int64, copy=False)
    codes[codes < 0] = len(uniques)
    return codes, resolved


def _declared_codes(declared: pd.Series, names: Mapping[str, str]) -> np.ndarray:
    """Return the 9-digit code each `declared` value names (object array, None if none)."""
    codes, resolved = _declared_factorized(declared, names)
    return resolved[codes]


def _township_names(
    gdf_townships: gpd.GeoDataFrame, township_names: Mapping[str, str] | None
) -> dict[str, str]:
    names = dict(gdf_townships.attrs.get("township_names", {}))
    names.update(township_names or {})
    names.update(
        zip(gdf_townships["adcode"].astype(str), gdf_townships["name"].astype(str), strict=True)
    )
    return names


def join_points_township(
    gdf_points: gpd.GeoDataFrame,
    gdf_townships: gpd.GeoDataFrame,
    *,
    township_names: Mapping[str, str] | None = None,
) -> gpd.GeoDataFrame:
    """
    Attach the township of every point.

    Parameters
    ----------
    gdf_points
        Point features, any CRS (reprojected to the townships' CRS for the test). An optional
        ``township_declared`` column (name, or 9-/12-digit code, as filled in by the field
        staff) is used only for ``also_covers`` (see module docstring).
    gdf_townships
        Township contract (`riskmap.io.read_townships`).
    township_names
        9-digit code -> name of townships without polygons (named in ``also_covers``). Default:
        ``gdf_townships.attrs["township_names"]`` set by `riskmap.io.read_townships`; a code
        with no known name gets the code itself as its name.

    Returns
    -------
    gdf_joined
        A copy of `gdf_points` (same index, order, CRS and rows) plus ``township`` (name or
        None), ``township_code`` (9-digit str or None) and ``join_flag`` (``""`` inside,
        ``"border"``, ``"outside"``, ``"no_geometry"`` for null/empty geometry).

    Raises
    ------
    CRSError
        `gdf_points` or `gdf_townships` has no CRS.
    SchemaError
        `gdf_townships` lacks ``adcode``/``name``, or `gdf_points` holds non-point geometry.
    """
    _require_townships(gdf_townships)
    gdf_test = _to_townships_crs(gdf_points, gdf_townships, "gdf_points")
    geoms = gdf_test.geometry.to_numpy()
    types = shapely.get_type_id(geoms)  # -1 for None
    if (types > shapely.GeometryType.POINT).any():
        msg = "`gdf_points` holds non-Point geometries; use join_polygons_township for areas."
        raise SchemaError(msg)
    lon, lat = _xy(geoms)
    index, flag = township_index_xy(lon, lat, gdf_townships)

    codes = gdf_townships["adcode"].astype(str).to_numpy(dtype=object)
    names = gdf_townships["name"].astype(str).to_numpy(dtype=object)
    found = index >= 0
    overrides: dict[int, tuple[str, str]] = {}

    if "also_covers" in gdf_townships.columns and "township_declared" in gdf_points.columns:
        covers = gdf_townships["also_covers"].fillna("").astype(str).to_numpy()
        rows_with = np.flatnonzero(covers != "")
        if rows_with.size:
            all_names = _township_names(gdf_townships, township_names)
            in_cover = found & np.isin(index, rows_with)
            declared = _declared_codes(gdf_points["township_declared"][in_cover], all_names)
            for pos, decl in zip(np.flatnonzero(in_cover), declared, strict=True):
                listed = {normalize_code(c) for c in covers[index[pos]].split(",")}
                if decl is not None and decl in listed:
                    overrides[int(pos)] = (decl, all_names.get(decl, decl))

    out = gdf_points.copy(deep=False)  # new columns only; copy-on-write protects the input
    out["township"] = _take_str(names, index, overrides, 1, out.index)
    out["township_code"] = _take_str(codes, index, overrides, 0, out.index)
    flag_text = np.array([FLAG_TEXT[f] for f in sorted(FLAG_TEXT)], dtype=object)
    out["join_flag"] = _take_str(flag_text, flag.astype("int64"), {}, 0, out.index)
    return out


def _take_str(
    values: np.ndarray,
    index: np.ndarray,
    overrides: Mapping[int, tuple[str, str]],
    part: int,
    pd_index: pd.Index,
) -> pd.Series:
    """Return ``values[index]`` as a pandas string Series (missing where index < 0), fast.

    With pyarrow (pandas' default string storage) this is an Arrow ``take``; building the
    column from a million Python strings would cost more than the whole spatial join.
    """
    try:
        import pyarrow as pa  # noqa: PLC0415 - optional: pandas falls back without it
    except ImportError:  # pragma: no cover - pandas without pyarrow
        taken = np.where(index >= 0, values[np.maximum(index, 0)] if len(values) else None, None)
        for pos, pair in overrides.items():
            taken[pos] = pair[part]
        return pd.Series(taken, index=pd_index, dtype="str")
    if overrides:
        extra = [pair[part] for pair in overrides.values()]
        index = index.copy()
        index[list(overrides)] = np.arange(len(values), len(values) + len(extra))
        values = np.concatenate([values, np.array(extra, dtype=object)])
    arrow = pa.array(values, type=pa.string()).take(pa.array(index, mask=index < 0))
    dtype = pd.StringDtype("pyarrow", na_value=np.nan)
    return pd.Series(pd.array(arrow, dtype=dtype), index=pd_index)


def township_mismatch(
    gdf_joined: gpd.GeoDataFrame,
    gdf_townships: gpd.GeoDataFrame,
    *,
    township_names: Mapping[str, str] | None = None,
) -> pd.Series:
    """
    Flag points whose declared township disagrees with the joined one.

    Parameters
    ----------
    gdf_joined
        Output of `join_points_township`; uses ``township_declared`` and ``township_code``.
    gdf_townships
        Township contract, for names and codes.
    township_names
        Extra code -> name entries, as in `join_points_township`.

    Returns
    -------
    mismatch
        Boolean Series on `gdf_joined`'s index: True where ``township_declared`` is non-empty
        (name with or without suffix, 9- or 12-digit code; whitespace ignored) and names a
        different township than ``township_code``, or names no known township at all.
    """
    if "township_declared" not in gdf_joined.columns:
        return pd.Series(data=False, index=gdf_joined.index, dtype=bool)
    declared = gdf_joined["township_declared"]
    if isinstance(declared.dtype, pd.StringDtype):  # Arrow text: strip in place of objects
        non_empty = (declared.notna() & declared.str.strip().ne("")).to_numpy(dtype=bool)
    else:
        cells = declared.to_numpy(dtype=object)
        is_text = np.fromiter((isinstance(v, str) for v in cells), dtype=bool, count=len(cells))
        non_empty = is_text.copy()
        non_empty[is_text] = pd.Series(cells[is_text], dtype=object).str.strip().to_numpy() != ""
    names = _township_names(gdf_townships, township_names)
    dcodes, resolved = _declared_factorized(declared, names)
    # Compare in code space: joined codes factorized, declared codes looked up among them.
    jcodes, juniques = pd.factorize(gdf_joined["township_code"], use_na_sentinel=True)
    positions = pd.Index(juniques, dtype=object).get_indexer(resolved)  # -1: not joined
    decl_pos = positions[dcodes]
    differs = (decl_pos < 0) | (decl_pos != jcodes)  # no code, or another township's
    return pd.Series(non_empty & differs, index=gdf_joined.index, dtype=bool)


def polygon_area_ha(gdf: gpd.GeoDataFrame, metric_crs: str) -> pd.Series:
    """
    Area of each polygon in hectares, computed in a metric CRS (never in degrees).

    Parameters
    ----------
    gdf
        Polygons in any declared CRS.
    metric_crs
        Projected CRS in metres, e.g. ``settings.metric_crs`` (``"EPSG:4545"``).

    Returns
    -------
    area_ha
        Float Series on `gdf`'s index; 0 for null/empty geometries.

    Raises
    ------
    CRSError
        `gdf` has no CRS, or `metric_crs` is not projected.
    """
    if gdf.crs is None:
        msg = "`gdf` has no CRS; declare it in the importer."
        raise CRSError(msg)
    _require_projected(metric_crs)
    area = gdf.geometry.to_crs(metric_crs).area * HA_PER_M2
    return area.fillna(0.0).rename("area_ha")


def _require_projected(metric_crs: str) -> None:
    if not CRS.from_user_input(metric_crs).is_projected:
        msg = f"`metric_crs`={metric_crs!r} is not a projected CRS in metres (e.g. 'EPSG:4545')."
        raise CRSError(msg)


def join_polygons_township(
    gdf_polys: gpd.GeoDataFrame,
    gdf_townships: gpd.GeoDataFrame,
    *,
    key: str,
    metric_crs: str,
) -> pd.DataFrame:
    """
    Split polygons (e.g. fire zones) by township, long form.

    Parameters
    ----------
    gdf_polys
        Polygons in any declared CRS with a unique id column `key`.
    gdf_townships
        Township contract.
    key
        Name of the id column of `gdf_polys`.
    metric_crs
        Projected CRS in metres in which areas are computed (``settings.metric_crs``).

    Returns
    -------
    pieces
        One row per (polygon, intersecting township), ordered by polygon then ``adcode``:
        `key`, ``township``, ``township_code`` (9-digit str), ``area_ha`` (intersection area,
        ha) and ``share`` (area_ha / polygon area, 0-1). Polygons touching no township
        (or only along a line) have no rows.

    Raises
    ------
    CRSError
        Either input has no CRS, or `metric_crs` is not projected.
    SchemaError
        `key` is not a column of `gdf_polys`.
    """
    _require_townships(gdf_townships)
    if key not in gdf_polys.columns:
        msg = f"`key`={key!r} is not a column of `gdf_polys`; columns: {list(gdf_polys.columns)}"
        raise SchemaError(msg)
    if gdf_polys.crs is None:
        msg = "`gdf_polys` has no CRS; declare it in the importer."
        raise CRSError(msg)
    _require_projected(metric_crs)
    polys_m = gdf_polys.geometry.to_crs(metric_crs).to_numpy()
    towns_m = gdf_townships.geometry.to_crs(metric_crs).to_numpy()
    tree = shapely.STRtree(towns_m)
    poly_pos, town_pos = tree.query(polys_m, predicate="intersects")
    inter = shapely.intersection(polys_m[poly_pos], towns_m[town_pos])
    area_m2 = shapely.area(inter)
    whole_m2 = shapely.area(polys_m[poly_pos])
    keep = area_m2 > 0
    codes = gdf_townships["adcode"].astype(str).to_numpy()
    pieces = pd.DataFrame(
        {
            key: gdf_polys[key].to_numpy()[poly_pos[keep]],
            "township": gdf_townships["name"].astype(str).to_numpy()[town_pos[keep]],
            "township_code": codes[town_pos[keep]],
            "area_ha": area_m2[keep] * HA_PER_M2,
            "share": area_m2[keep] / whole_m2[keep],
            "_order": poly_pos[keep],
        }
    )
    pieces = pieces.sort_values(["_order", "township_code"], kind="stable")
    return pieces.drop(columns="_order").reset_index(drop=True)
