"""Stage 5a of an import: hold conflicting updates and probable duplicates until confirmed.

The rules and thresholds are `riskmap.importing.identity`'s; this module applies them to the
rows of a plan: a held row's action becomes ``conflict`` or ``duplicate`` (not written) and
it gets a warning saying why and how to confirm it (a tick in the app, ``--accept-conflicts``
/ ``--add-duplicates`` on the command line).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import numpy as np

from riskmap.coords import LEVEL_WARNING
from riskmap.importing import identity
from riskmap.importing.report import Message

if TYPE_CHECKING:
    import geopandas as gpd

    from riskmap.catalog import LayerSpec
    from riskmap.importing.plan import _Rows

Confirm = bool | Collection[int]
"""Confirmation of held rows: True (all), False (none) or the Excel row numbers confirmed."""


def confirmed(confirm: Confirm, row: int) -> bool:
    """Tell whether Excel row `row` is confirmed by `confirm`."""
    return confirm is True or (not isinstance(confirm, bool) and row in confirm)


def hold_conflicts(
    rows: _Rows,
    spec: LayerSpec,
    base: gpd.GeoDataFrame,
    action: np.ndarray,
    old_pos: np.ndarray,
    attr_only: np.ndarray,
    loc: Any,  # noqa: ANN401
    metric_crs: str,
    accept: Confirm,
) -> None:
    """Mark updates that move > 100 m or replace the name as ``conflict`` unless confirmed."""
    upd = np.flatnonzero(action == "update")
    if upd.size == 0:
        return
    old_geom = base.geometry.to_numpy()[old_pos[upd]]
    old_lon = np.array([np.nan if g is None or g.is_empty else g.x for g in old_geom])
    old_lat = np.array([np.nan if g is None or g.is_empty else g.y for g in old_geom])
    moved = identity.move_distances_m(old_lon, old_lat, loc.lon[upd], loc.lat[upd], metric_crs)
    moved[attr_only[upd]] = np.nan
    names = rows.values.get("name")
    old_names = (
        base["name"].to_numpy()[old_pos[upd]] if "name" in base.columns else [None] * len(upd)
    )
    new_names = names[upd] if names is not None else [None] * len(upd)
    reasons = identity.update_conflicts(old_names, new_names, moved)
    for pos, why in zip(upd, reasons, strict=True):
        if not why:
            continue
        row = int(rows.rows[pos])
        text = "；".join(why)
        uid = rows.values[spec.key][pos]
        if confirmed(accept, row):
            reason = f"冲突已确认，按文件更新 {uid}: {text}"
            rows.msgs[pos].append(Message("", uid, reason, LEVEL_WARNING))
        else:
            action[pos] = "conflict"
            reason = (
                f"冲突: 会改变已有点位 {uid} ({text})，可能是另一处地点；未更新。"
                "确认无误请勾选（命令行 --accept-conflicts）"
            )
            rows.msgs[pos].append(Message("", uid, reason, LEVEL_WARNING))


def hold_duplicates(
    rows: _Rows,
    spec: LayerSpec,
    base: gpd.GeoDataFrame,
    action: np.ndarray,
    missing_uid: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    metric_crs: str,
    add: Confirm,
) -> None:
    """Mark new rows without uid that probably repeat a point as ``duplicate`` unless chosen."""
    candidates = (action == "add") & missing_uid
    if not candidates.any():
        return
    x, y = identity.to_metric(lon, lat, metric_crs)
    names = rows.values.get("name", np.full(rows.n, None, dtype=object))
    if len(base):
        geoms = base.geometry.to_numpy()
        ex_lon = np.array([np.nan if g is None or g.is_empty else g.x for g in geoms])
        ex_lat = np.array([np.nan if g is None or g.is_empty else g.y for g in geoms])
        ex_x, ex_y = identity.to_metric(ex_lon, ex_lat, metric_crs)
        ex_names = base["name"].tolist() if "name" in base.columns else [None] * len(base)
    else:
        ex_x = ex_y = np.empty(0)
        ex_names = []
    matches = identity.probable_duplicates(x, y, names, candidates, ex_x, ex_y, ex_names)
    for pos, match in enumerate(matches):
        if match is None:
            continue
        kind, j = match
        if kind == "existing":
            other_uid = base[spec.key].iloc[j] if spec.key in base.columns else ""
            dist = float(np.hypot(x[pos] - ex_x[j], y[pos] - ex_y[j]))
            what = f"图层中的「{ex_names[j]}」({other_uid}，相距 {dist:.0f} 米)"
        else:
            dist = float(np.hypot(x[pos] - x[j], y[pos] - y[j]))
            what = f"本文件第 {int(rows.rows[j])} 行「{names[j]}」(相距 {dist:.0f} 米)"
        row = int(rows.rows[pos])
        if confirmed(add, row):
            reason = f"疑似与{what}重复，已按选择新增"
        else:
            action[pos] = "duplicate"
            reason = (
                f"疑似重复: 与{what}名称相同或相近；未新增。"
                "确属新点请勾选（命令行 --add-duplicates）"
            )
        rows.msgs[pos].append(
            Message(
                rows.source_of.get("name", "名称"), str(names[pos] or ""), reason, LEVEL_WARNING
            )
        )
