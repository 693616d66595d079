"""清零 progress by township (隐患动态清零): remaining, cleared, overdue, rates.

Pure functions over prepared layers (`riskmap.layers.LayerData`). The figures use the one
definition of `riskmap.aggregate` (在册隐患 = not 已销号) and the lifecycle of the catalog
(`riskmap.lifecycle.LifecycleSpec`: which status closes a point, which one has a deadline).

Per township a feature counts in every township it belongs to (`LayerData.shares`: a fire
zone across two townships is in both); the county counts each feature once, including the
ones outside every township.

Definitions (per layer, per township or county):

- ``total`` 合计: every feature; ``active`` 在册隐患: status ≠ 已销号; ``cleared`` 已销号.
- ``cleared_this_year`` 今年销号: 已销号 with 销号日期 in the year of `as_of`.
- ``in_progress`` 治理中; ``overdue`` 逾期: 治理中 and its deadline (``deadline``, or the
  layer's override, e.g. a bridge's 计划完工日期) is before `as_of`.
- ``rate`` 销号率 = cleared / total (None when total is 0).
- ``rectify_rate`` 整改率 = cleared / (治理中 + 已销号): of the hazards taken into
  rectification, the share closed (None when there are none). The county plan asks for
  整改率 100% (城口县2026年地质灾害防治工作方案).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from riskmap.aggregate import is_cleared, risk_layers

if TYPE_CHECKING:
    from collections.abc import Mapping

    from riskmap.layers import LayerData
    from riskmap.lifecycle import LifecycleSpec

COUNTY = "county"
"""Value of ``code`` in the county rows of `progress_frame`."""

COUNT_COLUMNS = ("total", "active", "cleared", "cleared_this_year", "in_progress", "overdue")
LABELS = {
    "total": "合计",
    "active": "在册隐患",
    "cleared": "已销号",
    "cleared_this_year": "今年销号",
    "in_progress": "治理中",
    "overdue": "逾期",
    "rate": "销号率",
    "rectify_rate": "整改率",
}
"""Chinese headers of the figures."""
JSON_KEYS = ("total", "active", "cleared", "overdue", "rate")
"""Keys of each figure object in `progress_json` (the shape issue 11 fixes)."""


def _dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, errors="coerce", format="ISO8601").dt.date


def feature_states(layer: LayerData, spec: LifecycleSpec, *, as_of: dt.date) -> pd.DataFrame:
    """
    One row per feature: its key and boolean columns of `COUNT_COLUMNS`.

    Parameters
    ----------
    layer
        A prepared layer.
    spec
        The catalog's lifecycle.
    as_of
        The day the figures are for (overdue = deadline before it; this year = its year).

    Returns
    -------
    df
        Columns ``key``, ``total`` (always True), ``active``, ``cleared``,
        ``cleared_this_year``, ``in_progress``, ``overdue``; index of ``layer.gdf``.
    """
    gdf = layer.gdf
    status = gdf["status"] if "status" in gdf.columns else pd.Series(index=gdf.index, dtype=object)
    cleared = is_cleared(gdf)
    cleared_on = _dates(gdf["cleared_date"]) if "cleared_date" in gdf.columns else None
    if cleared_on is not None:
        in_year = cleared_on.map(
            lambda d: d is not None and not pd.isna(d) and d.year == as_of.year
        )
        this_year = cleared & in_year.astype(bool)
    else:
        this_year = pd.Series(data=False, index=gdf.index)
    in_progress = status.eq(spec.in_progress).fillna(value=False).astype(bool)
    field = spec.deadline_of(layer.spec.id)
    if field in gdf.columns:
        deadline = _dates(gdf[field])
        late = deadline.map(lambda d: d is not None and not pd.isna(d) and d < as_of)
        overdue = in_progress & late.astype(bool)
    else:
        overdue = pd.Series(data=False, index=gdf.index)
    return pd.DataFrame(
        {
            "key": gdf[layer.spec.key],
            "total": True,
            "active": ~cleared,
            "cleared": cleared,
            "cleared_this_year": this_year.astype(bool),
            "in_progress": in_progress,
            "overdue": overdue.astype(bool),
        },
        index=gdf.index,
    )


def _ratio(num: pd.Series, den: pd.Series) -> list[float | None]:
    return [round(n / d, 4) if d > 0 else None for n, d in zip(num, den, strict=True)]


def progress_frame(
    layers: Mapping[str, LayerData],
    township_codes: pd.DataFrame,
    spec: LifecycleSpec,
    *,
    as_of: dt.date | None = None,
) -> pd.DataFrame:
    """
    清零 figures per (township, layer), then per (county, layer).

    Parameters
    ----------
    layers
        Prepared layers by id.
    township_codes
        The code table (``adcode``, ``name``): every township gets rows, even with no feature.
    spec
        The catalog's lifecycle.
    as_of
        The day the figures are for; default today.

    Returns
    -------
    df
        Columns ``code`` (9-digit township code, or `COUNTY`), ``name``, ``layer``,
        `COUNT_COLUMNS` (int), ``rate`` and ``rectify_rate`` (float 0–1, or None when
        undefined). Townships in code-table order, then the county; layers in catalog order.
    """
    as_of = as_of or dt.date.today()
    rows = []
    towns = township_codes[["adcode", "name"]].reset_index(drop=True)
    layers = risk_layers(layers)  # the hazards; emergency resources are not cleared
    for lid, layer in layers.items():
        states = feature_states(layer, spec, as_of=as_of)
        member = layer.shares[["key", "township_code"]].drop_duplicates()
        per = member.merge(states, on="key", how="left")
        sums = per.groupby("township_code")[list(COUNT_COLUMNS)].sum()
        town = towns.join(sums, on="adcode").fillna(dict.fromkeys(COUNT_COLUMNS, 0))
        town = town.rename(columns={"adcode": "code"}).assign(layer=lid)
        rows.append(town)
        county = {c: int(states[c].sum()) for c in COUNT_COLUMNS}
        rows.append(pd.DataFrame([{"code": COUNTY, "name": "全县", "layer": lid, **county}]))
    df = pd.concat(rows, ignore_index=True)
    df = df.astype(dict.fromkeys(COUNT_COLUMNS, int))
    df["_county"] = df["code"] == COUNTY
    df["_layer"] = df["layer"].map({lid: i for i, lid in enumerate(layers)})
    df["_town"] = df["code"].map({c: i for i, c in enumerate(towns["adcode"])})
    df = df.sort_values(["_county", "_town", "_layer"], kind="stable")
    df = df.drop(columns=["_county", "_layer", "_town"]).reset_index(drop=True)
    df["rate"] = pd.Series(_ratio(df["cleared"], df["total"]), dtype=object)
    taken = df["in_progress"] + df["cleared"]
    df["rectify_rate"] = pd.Series(_ratio(df["cleared"], taken), dtype=object)
    return df[["code", "name", "layer", *COUNT_COLUMNS, "rate", "rectify_rate"]]


def _figure(row: Mapping[str, Any]) -> dict[str, Any]:
    rate = row["rate"]
    return {
        "total": int(row["total"]),
        "active": int(row["active"]),
        "cleared": int(row["cleared"]),
        "overdue": int(row["overdue"]),
        "rate": None if rate is None else float(rate),
    }


def progress_json(df: pd.DataFrame) -> dict[str, Any]:
    """
    Build the JSON of ``riskmap progress --format json``.

    Returns
    -------
    data
        ``{"county": {layer_id: {"total", "active", "cleared", "overdue", "rate"}},
        "townships": [{"code", "name", "layers": {layer_id: {…same keys…}}}]}``; ``rate`` =
        cleared / total rounded to 4 decimals, null when total is 0.
    """
    county = {r["layer"]: _figure(r) for r in df[df["code"] == COUNTY].to_dict("records")}
    townships: dict[str, dict[str, Any]] = {}
    for r in df[df["code"] != COUNTY].to_dict("records"):
        empty = {"code": r["code"], "name": r["name"], "layers": {}}
        entry = townships.setdefault(r["code"], empty)
        entry["layers"][r["layer"]] = _figure(r)
    return {"county": county, "townships": list(townships.values())}


def progress_table(df: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
    """
    Turn the figures into a Chinese table (CLI, app, XLSX): one row per (township, layer).

    Parameters
    ----------
    df
        From `progress_frame`.
    names
        Layer id → Chinese layer name.

    Returns
    -------
    table
        Columns 乡镇, 图层, 合计, 在册隐患, 已销号, 今年销号, 治理中, 逾期, 销号率, 整改率; rates
        as text percentages (``"66.7%"``, ``"—"`` when undefined).
    """
    out = df.copy()
    for col in ("rate", "rectify_rate"):
        out[col] = out[col].map(lambda v: "—" if v is None else f"{float(v):.1%}")
    out["layer"] = out["layer"].map(names)
    return out.drop(columns=["code"]).rename(columns={"name": "乡镇", "layer": "图层", **LABELS})


def with_overdue(
    layers: Mapping[str, LayerData], spec: LifecycleSpec, *, as_of: dt.date | None = None
) -> dict[str, LayerData]:
    """
    Return the layers with a boolean ``overdue`` column (逾期, as `feature_states`), for the map.

    `riskmap.mapview` outlines features whose ``overdue`` is true and fades 已销号 ones.
    The inputs are not modified.
    """
    as_of = as_of or dt.date.today()
    out = {}
    for lid, layer in layers.items():
        states = feature_states(layer, spec, as_of=as_of)
        out[lid] = replace(layer, gdf=layer.gdf.assign(overdue=states["overdue"].to_numpy()))
    return out
