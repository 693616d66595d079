"""Per-township figures (乡镇风险统计): counts by layer, class and status; threatened totals.

Pure functions over prepared layers (`riskmap.layers.LayerData`). A polygon feature counts
once in every township it intersects (its area share is in ``LayerData.shares``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from riskmap.catalog import STATUS_CLEARED, STATUS_ORDER

if TYPE_CHECKING:
    from collections.abc import Mapping

    import geopandas as gpd

    from riskmap.layers import LayerData

UNCLASSED = "未分级"
"""Label of features whose class field is empty."""
UNKNOWN_STATUS = "未填"
"""Label of features whose status is empty."""

# --- the one definition of every headline figure (issue 11) ------------------------------
ACTIVE_LABEL = "在册隐患"
"""Features not cleared: status ≠ 已销号 (在册, 监测中, 治理中 or blank — a fresh import)."""
CLEARED_LABEL = "已销号"
"""Features whose status is 已销号 (kept in the data as history, hidden by default)."""
TOTAL_LABEL = "合计"
"""Every feature, whatever its status (在册隐患 + 已销号)."""
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


def layer_figures(layers: Mapping[str, LayerData]) -> dict[str, dict[str, int]]:
    """
    `status_figures` per layer plus ``"all"`` (every layer added up), each feature once.

    This is what `riskmap summary`, the app's headline metrics and the township lists show.
    """
    out = {lid: status_figures(layer.gdf) for lid, layer in layers.items()}
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
        polygons' area field the intersecting area in ha) and, for `THREAT_FIELDS`,
        ``<id>|active|<field>`` (sums over 在册隐患, as `threat_sums`). Counts are int,
        sums float.
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
            if field in THREAT_FIELDS:
                alive = member[member["status"] != STATUS_CLEARED]
                live_sums = (
                    alive.assign(v=pd.to_numeric(alive[field], errors="coerce"))
                    .groupby("township_code")["v"]
                    .sum()
                )
                out[f"{layer_id}|active|{field}"] = (
                    out["adcode"].map(live_sums).fillna(0.0).astype(float).round(2)
                )
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
