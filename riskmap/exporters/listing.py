"""The shared list builder: features a township lists, typed columns, notes, subtotals. Pure."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from riskmap.aggregate import UNCLASSED, UNKNOWN_STATUS
from riskmap.catalog import STATUS_ORDER
from riskmap.errors import TownshipNotFoundError
from riskmap.layers import LayerData, active
from riskmap.schema import is_blank
from riskmap.settings import NOTE_APPROXIMATE, NOTE_DEMO

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import geopandas as gpd

    from riskmap.catalog import FieldSpec, LayerSpec
    from riskmap.filters import FeatureFilter

SEQ_HEADER = "序号"
"""First column of every list: 1..n within the layer."""
LAYER_HEADER = "图层"
"""First column of the CSV list: the layer's Chinese name."""
AREA_HEADER = "本乡镇面积(ha)"
"""Polygon layers: area of the feature inside this township, hectares, 2 decimals."""
SHARE_HEADER = "本乡镇占比(%)"
"""Polygon layers: that area as a percentage of the feature's whole area, 1 decimal."""
LON_HEADER = "经度(CGCS2000)"
"""Point layers: longitude in degrees, 6 decimals (≈ 0.1 m). Stored coordinates are WGS84
(RFC 7946); CGCS2000 agrees with WGS84 to well under a metre, far below 6-decimal rounding
error at list scale, so the list names the national datum staff work in."""
LAT_HEADER = "纬度(CGCS2000)"
"""Point layers: latitude in degrees, 6 decimals."""
COORD_DECIMALS = 6
"""Decimals of `LON_HEADER`/`LAT_HEADER` (1e-6° ≈ 0.1 m at Chengkou)."""
DECIMALS_ATTR = "riskmap_decimals"
"""``df.attrs`` key of a list frame: ``{header: declared decimals}`` of its float columns
(the XLSX writer formats those cells to that many decimals)."""
PLACE_FIELD = "village"
"""Common field 村/社区 every point layer's list carries (after 名称), so a 乡镇 office can
find the site from its list."""


NOTE_NO_CLEARED = "不含已销号点位"
NOTE_ZONES = "跨乡镇的区域列入所涉每个乡镇，本乡镇面积为其落在本乡镇内的部分"


_CODE9 = re.compile(r"^\d{9}$")


def _check_code(township_code: str) -> str:
    code = str(township_code).strip()
    if not _CODE9.match(code):
        msg = f"乡镇代码应为9位数字，如 500229001 (township_code: 9 digits): {township_code!r}"
        raise TownshipNotFoundError(msg)
    return code


def listed_features(
    layers: Mapping[str, LayerData],
    township_code: str,
    *,
    include_cleared: bool = False,
    selection: FeatureFilter | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """
    Select the features a township's list shows, per layer.

    Parameters
    ----------
    layers
        Prepared layers by id (`riskmap.layers.prepare_layer`).
    township_code
        9-digit township code, e.g. ``"500229001"``.
    include_cleared
        Also list cleared (已销号) features.
    selection
        What the screen shows (`riskmap.filters.FeatureFilter`: layers, classes, statuses,
        search text); its township is ignored (the list's township wins). None = all.

    Returns
    -------
    features
        ``{layer_id: gdf}`` for every (selected) layer, possibly empty, layer order; each a
        subset of ``layer.gdf`` (EPSG:4326, same order). A polygon with any share in the
        township is in.

    Raises
    ------
    TownshipNotFoundError
        When `township_code` is not 9 digits.
    """
    code = _check_code(township_code)
    if selection is not None:
        layers = replace(selection, township_code=None).apply(layers)
    return {
        lid: active(layer.in_township(code), include_cleared=include_cleared)
        for lid, layer in layers.items()
    }


NOISE_DECIMALS = 9
"""Decimals a ``float`` field without declared ``decimals`` is rounded to: float64 holds 15-17
significant digits and values here stay below 1e6, so 9 decimals keep every digit a survey
records while dropping binary rounding noise (108.60000000000001 → 108.6)."""


def _typed_column(
    values: pd.Series | None, fspec: FieldSpec | None, n: int, *, blank: str | None = None
) -> pd.Series:
    """One list column: ints ``Int64``, floats float64, bools 是/否, everything else text."""
    raw = values.to_numpy(dtype=object) if values is not None else np.full(n, None, dtype=object)
    ftype = fspec.type if fspec is not None else "str"
    if ftype == "int":
        return pd.Series(pd.to_numeric(pd.Series(raw), errors="coerce"), dtype="Float64").astype(
            "Int64"
        )
    if ftype == "float":
        decimals = fspec.decimals if fspec is not None and fspec.decimals is not None else None
        numbers = pd.to_numeric(pd.Series(raw), errors="coerce").astype("float64")
        return numbers.round(NOISE_DECIMALS if decimals is None else decimals)
    if ftype == "bool":
        return pd.Series(
            [blank if is_blank(v) else ("是" if bool(v) else "否") for v in raw], dtype=object
        )
    return pd.Series([blank if is_blank(v) else str(v) for v in raw], dtype=object)


_OWN_HEADERS = frozenset({SEQ_HEADER, AREA_HEADER, SHARE_HEADER, LON_HEADER, LAT_HEADER})


def list_keys(spec: LayerSpec) -> list[str]:
    """
    Field keys of the layer's list: the catalog's ``list``, plus `PLACE_FIELD` for points.

    A point layer whose ``list`` lacks 村/社区 gets it after 名称 (or first), when the layer
    has the field (it is common to every layer).
    """
    keys = list(spec.list_fields)
    if spec.geometry == "Point" and PLACE_FIELD in spec.fields and PLACE_FIELD not in keys:
        keys.insert(keys.index("name") + 1 if "name" in keys else 0, PLACE_FIELD)
    return keys


def point_coordinates(gdf: gpd.GeoDataFrame) -> tuple[pd.Series, pd.Series]:
    """
    Longitude and latitude of point features, degrees, `COORD_DECIMALS` decimals.

    Parameters
    ----------
    gdf
        Features in EPSG:4326; a missing or empty geometry gives NaN.

    Returns
    -------
    lon, lat
        float64 Series with a RangeIndex (list order).
    """
    import shapely  # noqa: PLC0415 - geometry only needed here

    geoms = gdf.geometry.to_numpy()
    is_point = shapely.get_type_id(geoms) == 0
    lon = np.where(is_point, shapely.get_x(geoms), np.nan)
    lat = np.where(is_point, shapely.get_y(geoms), np.nan)
    return (
        pd.Series(lon, dtype="float64").round(COORD_DECIMALS),
        pd.Series(lat, dtype="float64").round(COORD_DECIMALS),
    )


def _headers(spec: LayerSpec, keys: Sequence[str] | None = None) -> dict[str, str]:
    """``{field key: unique Chinese header}`` for `keys` (default: the layer's list fields)."""
    out: dict[str, str] = {}
    for key in spec.list_fields if keys is None else keys:
        header = spec.header(key)
        if header in out.values() or header in _OWN_HEADERS:
            header = f"{header}[{key}]"
        out[key] = header
    return out


def typed_table(
    gdf: pd.DataFrame, spec: LayerSpec, keys: Sequence[str], *, blank: str | None = None
) -> pd.DataFrame:
    """
    Turn features into a table typed from the catalog, with Chinese headers.

    The one typing rule of every table riskmap shows or writes (app tables, lists).

    Parameters
    ----------
    gdf
        Features (any frame holding the columns; a missing column gives blanks).
    spec
        The layer's declaration: field types, labels, units, ``decimals``.
    keys
        Field keys to show, in order.
    blank
        What a blank text or yes/no cell becomes: None (lists; the writers leave the cell
        empty) or ``""`` (screen tables, so nothing reads "None").

    Returns
    -------
    df
        RangeIndex; one column per key, headed ``spec.header(key)`` (made unique with
        ``[key]``): ``int`` fields ``Int64`` (integers stay integers), ``float`` fields
        float64 rounded to the field's declared ``decimals`` (else `NOISE_DECIMALS`),
        ``bool`` fields 是/否, everything else text; blank numbers are NA.
    """
    n = len(gdf)
    return pd.DataFrame(
        {
            header: _typed_column(
                gdf[key] if key in gdf.columns else None, spec.fields.get(key), n, blank=blank
            )
            for key, header in _headers(spec, keys).items()
        },
        index=pd.RangeIndex(n),
    )


def list_frame(layer: LayerData, gdf: gpd.GeoDataFrame, township_code: str) -> pd.DataFrame:
    """
    Build the list table of one layer from already selected features.

    Parameters
    ----------
    layer
        The prepared layer (its spec and shares).
    gdf
        Rows of ``layer.gdf`` to list, in list order.
    township_code
        9-digit code; used for the polygon area share columns.

    Returns
    -------
    df
        RangeIndex; columns `SEQ_HEADER` (``Int64`` 1..n), then ``spec.header(key)`` for each
        of `list_keys` (``int`` fields ``Int64``, ``float`` fields float64, ``bool``
        fields ``"是"``/``"否"``, others text; blanks None/NA, never ``"nan"``); point
        layers add `LON_HEADER` and `LAT_HEADER` (degrees, 6 decimals; a public release's
        coarsened points give coarsened values) after 村/社区; polygon layers add
        `AREA_HEADER` (ha, 2 decimals) and `SHARE_HEADER` (%, 1 decimal).
    """
    spec = layer.spec
    n = len(gdf)
    data: dict[str, pd.Series] = {SEQ_HEADER: pd.Series(np.arange(1, n + 1), dtype="Int64")}
    keys = list_keys(spec)
    columns = typed_table(gdf, spec, keys).to_dict("series")
    if spec.geometry == "Point":  # coordinates after the place (村/社区), else after 名称
        after = next((k for k in (PLACE_FIELD, "name") if k in keys), None)
        headers = list(columns)
        at = headers.index(_headers(spec, keys)[after]) + 1 if after else len(headers)
        lon, lat = point_coordinates(gdf)
        items = list(columns.items())
        columns = dict([*items[:at], (LON_HEADER, lon), (LAT_HEADER, lat), *items[at:]])
    data.update(columns)
    declared = {
        header: f.decimals
        for key, header in _headers(spec, keys).items()
        if (f := spec.fields.get(key)) is not None and f.type == "float" and f.decimals is not None
    }
    if spec.geometry == "Polygon":
        shares = layer.shares[layer.shares["township_code"] == township_code]
        mine = shares.drop_duplicates("key").set_index("key")
        keys = pd.Series(gdf[spec.key].to_numpy(dtype=object))
        data[AREA_HEADER] = keys.map(mine["area_ha"]).astype("float64").round(2)
        data[SHARE_HEADER] = (keys.map(mine["share"]).astype("float64") * 100).round(1)
    df = pd.DataFrame(data)
    df.attrs[DECIMALS_ATTR] = declared
    return df


def township_list_frames(
    layers: Mapping[str, LayerData],
    township_code: str,
    township_name: str,
    *,
    include_cleared: bool = False,
    selection: FeatureFilter | None = None,
) -> dict[str, pd.DataFrame]:
    """
    Build the township's risk list (风险点位清单) as one table per layer.

    Parameters
    ----------
    layers
        Prepared layers by id.
    township_code
        9-digit code, e.g. ``"500229001"``.
    township_name
        Township name (kept for a uniform signature with the writers; not a column).
    include_cleared
        Also list cleared (已销号) features.
    selection
        What the screen shows, see `listed_features`.

    Returns
    -------
    frames
        ``{layer_id: df}`` for every layer, layer order, see `list_frame` (raw values, not
        neutralised). A fire zone across townships is in each township's frame, with its
        area inside that township.

    Raises
    ------
    TownshipNotFoundError
        When `township_code` is not 9 digits.
    """
    del township_name
    code = _check_code(township_code)
    listed = listed_features(layers, code, include_cleared=include_cleared, selection=selection)
    return {lid: list_frame(layers[lid], gdf, code) for lid, gdf in listed.items()}


def selection_note(layers: Mapping[str, LayerData], selection: FeatureFilter | None) -> str | None:
    """Describe a screen selection for the note row (`FeatureFilter.describe`), or None."""
    if selection is None:
        return None
    return replace(selection, township_code=None).describe(layers)


def data_as_of(layers: Mapping[str, LayerData]) -> dt.date | None:
    """
    Latest ``updated_at`` (更新时间) over all features of all layers: the data's currency.

    Returns
    -------
    date
        The latest valid ISO date, or None when no feature has one.
    """
    latest = pd.NaT
    for layer in layers.values():
        if "updated_at" in layer.gdf.columns and len(layer.gdf):
            days = pd.to_datetime(layer.gdf["updated_at"], errors="coerce", format="ISO8601")
            if days.notna().any() and (pd.isna(latest) or days.max() > latest):
                latest = days.max()
    return None if pd.isna(latest) else latest.date()


def _any_demo(frames: Mapping[str, pd.DataFrame]) -> bool:
    return any(
        "demo" in gdf.columns and bool(gdf["demo"].astype("boolean").fillna(value=False).any())
        for gdf in frames.values()
    )


def _as_of_text(as_of: dt.date | None) -> str:
    if as_of is None:
        return "数据更新时间未填"
    return f"截至 {as_of.isoformat()}（数据更新时间）"


def _notes(
    as_of: dt.date | None,
    *,
    approximate: bool,
    demo: bool,
    include_cleared: bool,
    public: str | None = None,
    selection: str | None = None,
) -> list[str]:
    notes = [_as_of_text(as_of)]
    if selection:
        notes.append(selection)
    if public:
        notes.append(public)
    if approximate:
        notes.append(NOTE_APPROXIMATE)
    if demo:
        notes.append(NOTE_DEMO)
    if not include_cleared:
        notes.append(NOTE_NO_CLEARED)
    return notes


def _subtotal_headers(spec: LayerSpec, df: pd.DataFrame) -> list[str]:
    headers = _headers(spec, list_keys(spec))
    out = [headers[k] for k in spec.sums if k in headers]
    if AREA_HEADER in df.columns:
        out.append(AREA_HEADER)
    return out


def _sum(series: pd.Series) -> int | float:
    total = pd.to_numeric(series, errors="coerce").sum(skipna=True)
    if pd.api.types.is_integer_dtype(series):
        return int(total)
    return round(float(total), 2)


def _township_summary_frame(
    layers: Mapping[str, LayerData], frames: Mapping[str, pd.DataFrame], listed: Mapping[str, Any]
) -> pd.DataFrame:
    """Long table 图层 | 统计项 | 分类 | 数值 for the 汇总 sheet of one township."""
    rows: list[tuple[str, str, str, float]] = []
    for lid, df in frames.items():
        spec = layers[lid].spec
        gdf = listed[lid]
        rows.append((spec.name, "点位数", "合计", len(df)))
        cls = gdf[spec.class_field].fillna(UNCLASSED) if len(gdf) else pd.Series(dtype=object)
        class_label = spec.label(spec.class_field)
        rows.extend((spec.name, class_label, v, int((cls == v).sum())) for v in spec.classes)
        if (n := int((cls == UNCLASSED).sum())) > 0:
            rows.append((spec.name, class_label, UNCLASSED, n))
        status = gdf["status"].fillna(UNKNOWN_STATUS) if len(gdf) else pd.Series(dtype=object)
        rows.extend((spec.name, "状态", v, int((status == v).sum())) for v in STATUS_ORDER)
        if (n := int((status == UNKNOWN_STATUS).sum())) > 0:
            rows.append((spec.name, "状态", UNKNOWN_STATUS, n))
        for header in _subtotal_headers(spec, df):
            if header == spec.header(spec.area_field):
                continue  # whole-zone area; the township's part is AREA_HEADER
            rows.append((spec.name, header, "合计", _sum(df[header])))
    out = pd.DataFrame(rows, columns=[LAYER_HEADER, "统计项", "分类", "数值"])
    out["数值"] = pd.to_numeric(out["数值"])
    return out


def listed_layers(
    layers: Mapping[str, LayerData], *, include_cleared: bool = False
) -> dict[str, LayerData]:
    """
    Restrict layers to what the lists show (cleared features dropped unless asked).

    Returns
    -------
    layers
        New `LayerData` per id: ``gdf`` = `riskmap.layers.active` features, ``shares`` only
        for those features. Feed these to `riskmap.aggregate.summarize_townships` and
        `summary_xlsx` so the overview counts what the township lists list.
    """
    return {
        lid: layer.subset(active(layer.gdf, include_cleared=include_cleared))
        for lid, layer in layers.items()
    }
