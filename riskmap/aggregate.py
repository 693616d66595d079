"""Per-township figures (乡镇风险统计): counts by layer, class and status; threatened totals.

Pure functions over prepared layers (`riskmap.layers.LayerData`). A polygon feature counts
once in every township it intersects (its area share is in ``LayerData.shares``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from riskmap.catalog import STATUS_CLEARED, STATUS_ORDER, UNCLASSED

if TYPE_CHECKING:
    from collections.abc import Mapping

    import geopandas as gpd

    from riskmap.layers import LayerData

UNKNOWN_STATUS = "未填"
"""Label of features whose status is empty."""

# --- the one definition of every headline figure (issue 11) ------------------------------
ACTIVE_LABEL = "在册隐患"
"""Features not cleared: status ≠ 已销号 (在册, 监测中, 治理中 or blank — a fresh import)."""
CLEARED_LABEL = "已销号"
"""Features whose status is 已销号 (kept in the data as history, hidden by default)."""
TOTAL_LABEL = "合计"
"""Every feature, whatever its status (在册隐患 + 已销号)."""
FIGURE_LABELS = (
    ("active", ACTIVE_LABEL, "未销号的点位（在册、监测中、治理中）"),
    ("cleared", CLEARED_LABEL, "整治完成、已销号的点位"),
    ("total", TOTAL_LABEL, "在册隐患 + 已销号"),
)
"""``(key of `status_figures`, label, help text)`` of the three headline counts, in order."""
THREAT_FIELDS = ("threat_households", "threat_people", "threat_property_wan")
"""Threat figures (威胁户数/人数/财产), summed over 在册隐患 only (a cleared hazard threatens
no one)."""


def is_cleared(gdf: pd.DataFrame) -> pd.Series:
    """
    Boolean mask of cleared features (状态 = 已销号); all False when there is no status column.

    Source: DOMAIN.md "Lifecycle" (隐患动态清零: 在册/监测中 → 治理中 → 已销号).
    """
    if "status" not in gdf.columns:
        return pd.Series(data=False, index=gdf.index)
    return gdf["status"].eq(STATUS_CLEARED).fillna(value=False).astype(bool)


def status_figures(gdf: pd.DataFrame) -> dict[str, int]:
    """
    Count the three headline figures of a set of features.

    Returns
    -------
    figures
        ``{"total": 合计, "active": 在册隐患 (not 已销号, blank included), "cleared": 已销号}``;
        ``active + cleared == total``.
    """
    cleared = int(is_cleared(gdf).sum())
    return {"total": len(gdf), "active": len(gdf) - cleared, "cleared": cleared}


def threat_sums(gdf: pd.DataFrame) -> dict[str, float]:
    """
    威胁户数 / 威胁人数 / 威胁财产(万元) over the 在册隐患 of `gdf` (each feature once).

    Returns
    -------
    sums
        ``{field: sum}`` for `THREAT_FIELDS`; 0.0 for a field the frame lacks. Blank or
        non-numeric values count as 0.
    """
    live = gdf[~is_cleared(gdf)]
    return {
        f: float(np.nansum(pd.to_numeric(live[f], errors="coerce"))) if f in live.columns else 0.0
        for f in THREAT_FIELDS
    }


def risk_layers(layers: Mapping[str, LayerData]) -> dict[str, LayerData]:
    """Return the risk layers (``role = "risk"``): the hazards followed, not resources."""
    return {lid: layer for lid, layer in layers.items()
            if getattr(layer.spec, "role", "risk") == "risk"}  # fmt: skip


def layer_figures(layers: Mapping[str, LayerData]) -> dict[str, dict[str, int]]:
    """
    `status_figures` per risk layer plus ``"all"`` (added up), each feature once.

    This is what `riskmap summary`, the app's headline metrics and the township lists show.
    Emergency-resource layers (shelters, teams, depots) are not hazards: left out.
    """
    out = {lid: status_figures(layer.gdf) for lid, layer in risk_layers(layers).items()}
    out["all"] = {k: sum(v[k] for v in out.values()) for k in ("total", "active", "cleared")}
    return out


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
        (count per lifecycle status), ``<id>|active`` (在册隐患) and ``<id>|cleared`` (已销号)
        as defined by `status_figures`, ``<id>|<sum field>`` (sums over every status; for
        polygons' area field the intersecting area in ha) and ``<id>|active|<field>`` (the
        same sums over 在册隐患, as the headline figures). Counts are int, sums float.
    """
    del gdf_townships  # membership comes from the layers' shares
    out = township_codes[["adcode", "name", "level"]].copy().reset_index(drop=True)
    for layer_id, layer in layers.items():
        spec = layer.spec
        member = _membership(layer)
        by = member.groupby("township_code")
        out[layer_id] = out["adcode"].map(by["key"].nunique()).fillna(0).astype(int)
        live = member[member["status"] != STATUS_CLEARED].groupby("township_code")["key"]
        out[f"{layer_id}|active"] = out["adcode"].map(live.nunique()).fillna(0).astype(int)
        out[f"{layer_id}|cleared"] = out[layer_id] - out[f"{layer_id}|active"]
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
            alive = member[member["status"] != STATUS_CLEARED]
            if field == spec.area_field:
                live_sums = alive.groupby("township_code")["area_ha"].sum()
            else:
                live_sums = (
                    alive.assign(v=pd.to_numeric(alive[field], errors="coerce"))
                    .groupby("township_code")["v"]
                    .sum()
                )
            out[f"{layer_id}|active|{field}"] = (
                out["adcode"].map(live_sums).fillna(0.0).astype(float).round(2)
            )
        out = out.copy()  # one block per layer: many layers' columns stay one frame, fast
    return out


def county_totals(layers: Mapping[str, LayerData]) -> dict[str, Any]:
    """
    County-wide figures, each feature counted once (a zone across townships counts once).

    Returns
    -------
    totals
        ``{layer_id: {"count": n, "total": n, "active": 在册隐患, "cleared": 已销号,
        "threat": {威胁 field: sum over 在册隐患}, "by_class": {...}, "by_status": {...},
        "sums": {...}, "outside": n_outside_county_or_without_coordinates}}``.
    """
    totals: dict[str, Any] = {}
    for layer_id, layer in layers.items():
        spec, gdf = layer.spec, layer.gdf
        cls = gdf[spec.class_field].fillna(UNCLASSED)
        status = gdf["status"].fillna(UNKNOWN_STATUS)
        totals[layer_id] = {
            "name": spec.name,
            "count": len(gdf),
            **status_figures(gdf),
            "threat": {f: v for f, v in threat_sums(gdf).items() if f in gdf.columns},
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
                "total": int(row[layer_id]),
                "active": int(row[f"{layer_id}|active"]),
                "cleared": int(row[f"{layer_id}|cleared"]),
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
    """
    Sum of `field` over the layer's 在册隐患 (not 已销号: a cleared hazard threatens no one).

    An area field sums the areas in its shares.
    """
    spec = layer.spec
    live = layer.gdf[~is_cleared(layer.gdf)]
    if field == spec.area_field:
        keys = set(live[spec.key])
        shares = layer.shares[layer.shares["key"].isin(keys)]
        return float(np.nansum(pd.to_numeric(shares["area_ha"], errors="coerce")))
    if field not in live.columns:
        return 0.0
    return float(np.nansum(pd.to_numeric(live[field], errors="coerce")))


def headline_figures(layers: Mapping[str, LayerData]) -> list[Figure]:
    """
    Compute the headline figures of the given (filtered) layers, as the catalog declares.

    First one count per layer (in layer order), then, per layer, the sum of each of its
    catalog ``sums`` fields (e.g. 威胁户数, 威胁人数, 威胁财产 of the geohazard layer; 面积
    of the fire zones) over its 在册隐患 only (the one definition of issue 11: a cleared
    hazard no longer threatens anyone, so the same 威胁人数 shows whatever the status
    filter). Each feature counts once. A polygon layer's area field sums the
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
        Columns 代码, 乡镇, per layer its 在册隐患 and 已销号 counts (``<name>（在册隐患）``,
        ``<name>（已销号）``), then one column per catalog ``sums`` field over 在册隐患 (its
        header with unit, prefixed by the layer name when two layers share a header); counts
        int, sums float (2 decimals).
    """
    cols = {"adcode": "代码", "name": "乡镇"}
    for lid, layer in layers.items():
        cols[f"{lid}|active"] = f"{layer.spec.name}（{ACTIVE_LABEL}）"
        cols[f"{lid}|cleared"] = f"{layer.spec.name}（{CLEARED_LABEL}）"
    headers = [
        (lid, f, layer.spec.header(f)) for lid, layer in layers.items() for f in layer.spec.sums
    ]
    names = [h for _, _, h in headers]
    for lid, field, header in headers:
        cols[f"{lid}|active|{field}"] = (
            header if names.count(header) == 1 else f"{layers[lid].spec.name}·{header}"
        )
    return df_summary[list(cols)].rename(columns=cols)
