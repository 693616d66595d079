"""Per-township figures (乡镇风险统计): counts by layer, class and status; threatened totals.

Pure functions over prepared layers (`riskmap.layers.LayerData`). A polygon feature counts
once in every township it intersects (its area share is in ``LayerData.shares``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from riskmap.catalog import STATUS_ORDER, UNCLASSED

if TYPE_CHECKING:
    from collections.abc import Mapping

    import geopandas as gpd

    from riskmap.layers import LayerData

UNKNOWN_STATUS = "未填"
"""Label of features whose status is empty."""


def _membership(layer: LayerData) -> pd.DataFrame:
    """Join each share row to its feature's class, status and summed fields."""
    spec = layer.spec
    cols = [spec.key, spec.class_field, "status", *[s for s in spec.sums if s != spec.area_field]]
    attrs = layer.gdf[list(dict.fromkeys(cols))].rename(columns={spec.key: "key"})
    merged = layer.shares.merge(attrs, on="key", how="left")
    merged[spec.class_field] = merged[spec.class_field].fillna(UNCLASSED)
    merged["status"] = merged["status"].fillna(UNKNOWN_STATUS)
    return merged


def summarize_townships(
    layers: Mapping[str, LayerData],
    gdf_townships: gpd.GeoDataFrame,
    township_codes: pd.DataFrame,
) -> pd.DataFrame:
    """
    One row of figures per township, in code order, plus nothing else (see `county_totals`).

    Parameters
    ----------
    layers
        Prepared layers by id.
    gdf_townships
        Township polygons (only used for the ``approximate`` note).
    township_codes
        The code table (``adcode``, ``name``, ``level``): every township gets a row, even one
        with no polygon of its own (复兴街道 in the approximate partition) or no features.

    Returns
    -------
    df
        Columns ``adcode``, ``name``, ``level``; per layer ``<id>`` (feature count),
        ``<id>|<class>`` (count per class, every declared class), ``<id>|status|<status>``
        (count per lifecycle status), ``<id>|<sum field>`` (sums; for polygons' area field
        the intersecting area in ha). Counts are int, sums float.
    """
    del gdf_townships  # membership comes from the layers' shares
    out = township_codes[["adcode", "name", "level"]].copy().reset_index(drop=True)
    for layer_id, layer in layers.items():
        spec = layer.spec
        member = _membership(layer)
        by = member.groupby("township_code")
        out[layer_id] = out["adcode"].map(by["key"].nunique()).fillna(0).astype(int)
        classes = [*spec.classes, UNCLASSED]
        counts = member.pivot_table(
            index="township_code", columns=spec.class_field, values="key", aggfunc="nunique"
        )
        for cls in classes:
            col = counts[cls] if cls in counts.columns else pd.Series(dtype=float)
            out[f"{layer_id}|{cls}"] = out["adcode"].map(col).fillna(0).astype(int)
        scounts = member.pivot_table(
            index="township_code", columns="status", values="key", aggfunc="nunique"
        )
        for status in [*STATUS_ORDER, UNKNOWN_STATUS]:
            col = scounts[status] if status in scounts.columns else pd.Series(dtype=float)
            out[f"{layer_id}|status|{status}"] = out["adcode"].map(col).fillna(0).astype(int)
        for field in spec.sums:
            if field == spec.area_field:
                sums = by["area_ha"].sum()
            else:
                sums = (
                    member.assign(v=pd.to_numeric(member[field], errors="coerce"))
                    .groupby("township_code")["v"]
                    .sum()
                )
            out[f"{layer_id}|{field}"] = out["adcode"].map(sums).fillna(0.0).astype(float).round(2)
    return out


def county_totals(layers: Mapping[str, LayerData]) -> dict[str, Any]:
    """
    County-wide figures, each feature counted once (a zone across townships counts once).

    Returns
    -------
    totals
        ``{layer_id: {"count": n, "by_class": {...}, "by_status": {...}, "sums": {...},
        "outside": n_outside_county_or_without_coordinates}}``.
    """
    totals: dict[str, Any] = {}
    for layer_id, layer in layers.items():
        spec, gdf = layer.spec, layer.gdf
        cls = gdf[spec.class_field].fillna(UNCLASSED)
        status = gdf["status"].fillna(UNKNOWN_STATUS)
        totals[layer_id] = {
            "name": spec.name,
            "count": len(gdf),
            "by_class": {c: int((cls == c).sum()) for c in [*spec.classes, UNCLASSED]},
            "by_status": {s: int((status == s).sum()) for s in [*STATUS_ORDER, UNKNOWN_STATUS]},
            "sums": {
                f: float(np.nansum(pd.to_numeric(gdf[f], errors="coerce"))) for f in spec.sums
            },
            "outside": int(
                gdf.get("join_flag", pd.Series(dtype=object)).isin(["outside", "no_geometry"]).sum()
            ),
        }
    return totals


def summary_records(df_summary: pd.DataFrame, layers: Mapping[str, LayerData]) -> list[dict]:
    """
    Turn the summary into JSON-ready records, one object per township.

    Returns
    -------
    records
        ``[{"code": "500229001", "name": "葛城街道", "level": "街道", "layers": {layer_id:
        {"name": ..., "count": n, "by_class": {...}, "by_status": {...}, "sums": {...}}}}]``.
    """
    records = []
    for row in df_summary.to_dict("records"):
        per_layer = {}
        for layer_id, layer in layers.items():
            spec = layer.spec
            per_layer[layer_id] = {
                "name": spec.name,
                "count": int(row[layer_id]),
                "by_class": {c: int(row[f"{layer_id}|{c}"]) for c in [*spec.classes, UNCLASSED]},
                "by_status": {
                    s: int(row[f"{layer_id}|status|{s}"]) for s in [*STATUS_ORDER, UNKNOWN_STATUS]
                },
                "sums": {f: round(float(row[f"{layer_id}|{f}"]), 2) for f in spec.sums},
            }
        records.append(
            {"code": row["adcode"], "name": row["name"], "level": row["level"], "layers": per_layer}
        )
    return records


# ----------------------------------------------------------------------------- headline figures

COUNT_UNIT = "处"
"""Unit of a feature count (处: sites)."""
WAN = 10_000
"""万: counts and amounts from 10,000 up are shown in 万 (``2.4 万人``)."""
WAN_PER_YI = 10_000
"""万元 per 亿元: amounts in 万元 from 1 亿 up are shown in 亿元."""


TILE_WHOLE_FROM = 100
"""From this magnitude up a tile shows whole units: it gives a size; the lists keep the
declared precision."""


def _tile_decimals(value: float, decimals: int | None) -> int:
    return 0 if decimals is None or abs(value) >= TILE_WHOLE_FROM else decimals


def format_quantity(value: float, unit: str, *, decimals: int | None = None) -> str:
    """
    Format a headline figure short enough for a metric tile, in Chinese.

    Parameters
    ----------
    value
        The figure, in `unit`.
    unit
        The field's declared unit (``"人"``, ``"户"``, ``"万元"``, ``"ha"``…) or `COUNT_UNIT`.
    decimals
        The field's declared ``decimals``, used below `TILE_WHOLE_FROM` (a tile shows the
        size of a figure; the lists keep the full declared precision); default 0.

    Returns
    -------
    text
        ``"2453 人"``; ``"2.5 万人"`` from 10,000 up; amounts in 万元: ``"830 万元"``,
        ``"1.25 亿元"`` from 10,000 万元 (1 亿) up.
    """
    if unit == "万元":
        if abs(value) >= WAN_PER_YI:
            return f"{value / WAN_PER_YI:.2f} 亿元"
        return f"{value:.{_tile_decimals(value, decimals)}f} 万元"
    if abs(value) >= WAN:
        return f"{value / WAN:.1f} 万{unit}"
    return f"{value:.{_tile_decimals(value, decimals)}f} {unit}".rstrip()


@dataclass(frozen=True)
class Figure:
    """
    One headline figure of what a view shows.

    Attributes
    ----------
    layer_id
        The layer it belongs to.
    field
        The summed field (one of the layer's catalog ``sums``), or None for the count.
    label
        Chinese label: the layer's name for a count, the field's label for a sum (prefixed
        with the layer's name when two layers sum fields of the same label).
    value
        The count, or the sum over the features (each counted once) in the field's unit.
    unit
        `COUNT_UNIT` for a count, the field's declared unit for a sum.
    text
        `value` formatted with `format_quantity` (``"12 处"``, ``"2453 人"``).
    """

    layer_id: str
    field: str | None
    label: str
    value: float
    unit: str
    text: str


def _layer_sum(layer: LayerData, field: str) -> float:
    """Sum of `field` over the layer's features; an area field sums the areas in its shares."""
    spec = layer.spec
    if field == spec.area_field:
        keys = set(layer.gdf[spec.key])
        shares = layer.shares[layer.shares["key"].isin(keys)]
        return float(np.nansum(pd.to_numeric(shares["area_ha"], errors="coerce")))
    if field not in layer.gdf.columns:
        return 0.0
    return float(np.nansum(pd.to_numeric(layer.gdf[field], errors="coerce")))


def headline_figures(layers: Mapping[str, LayerData]) -> list[Figure]:
    """
    Compute the headline figures of the given (filtered) layers, as the catalog declares.

    First one count per layer (in layer order), then, per layer, the sum of each of its
    catalog ``sums`` fields (e.g. 威胁户数, 威胁人数, 威胁财产 of the geohazard layer; 面积
    of the fire zones). Each feature counts once. A polygon layer's area field sums the
    areas in ``layer.shares``: restrict the shares to a township (as
    `riskmap.filters.FeatureFilter` does) and it is the area inside that township.

    Parameters
    ----------
    layers
        Prepared (usually filtered) layers by id.

    Returns
    -------
    figures
        `Figure` per count and per summed field; a new layer declared in the catalog with
        ``sums`` shows up with no code.
    """
    counts = [
        Figure(lid, None, layer.spec.name, float(len(layer.gdf)), COUNT_UNIT,
               format_quantity(len(layer.gdf), COUNT_UNIT))
        for lid, layer in layers.items()
    ]  # fmt: skip
    wanted = [(lid, field) for lid, layer in layers.items() for field in layer.spec.sums]
    labels = [layers[lid].spec.label(field) for lid, field in wanted]
    sums = []
    for (lid, field), label in zip(wanted, labels, strict=True):
        spec = layers[lid].spec
        fspec = spec.fields.get(field)
        unit = fspec.unit if fspec is not None else ""
        decimals = fspec.decimals if fspec is not None else None
        shown = f"{spec.name}·{label}" if labels.count(label) > 1 else label
        value = _layer_sum(layers[lid], field)
        text = format_quantity(value, unit, decimals=decimals)
        sums.append(Figure(lid, field, shown, value, unit, text))
    return counts + sums


def status_counts(layers: Mapping[str, LayerData]) -> pd.DataFrame:
    """
    Features per layer and lifecycle status (整治进度), each feature once.

    Returns
    -------
    df
        Columns 图层 (layer name), 状态, 数量 (int), 序 (position in `STATUS_ORDER`; 未填
        last); one row per layer and status of `STATUS_ORDER`, plus 未填 (`UNKNOWN_STATUS`)
        where a layer has features without a status.
    """
    rows = []
    order = [*STATUS_ORDER, UNKNOWN_STATUS]
    for lid, totals in county_totals(layers).items():
        del lid
        for i, status in enumerate(order):
            n = totals["by_status"][status]
            if status != UNKNOWN_STATUS or n:
                rows.append({"图层": totals["name"], "状态": status, "数量": n, "序": i})
    return pd.DataFrame(rows, columns=["图层", "状态", "数量", "序"])


def class_counts(layers: Mapping[str, LayerData]) -> pd.DataFrame:
    """
    Features per layer and class (等级), each feature once.

    Returns
    -------
    df
        Columns 图层, 分级 (the class field's label), 等级, 数量 (int); every declared class
        in catalog order, then `UNCLASSED` (未分级) where a layer has unclassed features.
    """
    rows = []
    for lid, totals in county_totals(layers).items():
        spec = layers[lid].spec
        for cls, n in totals["by_class"].items():
            if cls != UNCLASSED or n:
                rows.append(
                    {
                        "图层": spec.name,
                        "分级": spec.label(spec.class_field),
                        "等级": cls,
                        "数量": n,
                    }
                )
    return pd.DataFrame(rows, columns=["图层", "分级", "等级", "数量"])


def township_table(df_summary: pd.DataFrame, layers: Mapping[str, LayerData]) -> pd.DataFrame:
    """
    Turn the per-township figures into a display table with Chinese headers.

    Parameters
    ----------
    df_summary
        `summarize_townships` of `layers`.
    layers
        The same layers.

    Returns
    -------
    df
        Columns 代码, 乡镇, one count column per layer (its name), then one column per
        catalog ``sums`` field (its header with unit, prefixed by the layer name when two
        layers share a header); counts int, sums float (2 decimals).
    """
    cols = {"adcode": "代码", "name": "乡镇"}
    cols |= {lid: layer.spec.name for lid, layer in layers.items()}
    headers = [
        (lid, f, layer.spec.header(f)) for lid, layer in layers.items() for f in layer.spec.sums
    ]
    names = [h for _, _, h in headers]
    for lid, field, header in headers:
        cols[f"{lid}|{field}"] = (
            header if names.count(header) == 1 else f"{layers[lid].spec.name}·{header}"
        )
    return df_summary[list(cols)].rename(columns=cols)
