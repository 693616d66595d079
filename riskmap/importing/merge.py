"""Stage 5b of an import: overlay updates on the stored points, assemble the new layer. Pure.

Also generates readable uids for new points: ``<prefix>-<township code>-<n>``
(``DZ-500229001-3``: the 3rd generated geohazard point of 葛城街道), `generated_uids`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

import geopandas as gpd

from riskmap.coords import LEVEL_INFO
from riskmap.importing.columns import COMPUTED
from riskmap.importing.report import Message
from riskmap.schema import blank_mask, coerce_layer, is_blank
from riskmap.settings import STORAGE_CRS

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from riskmap.catalog import LayerSpec


@dataclass(frozen=True)
class FieldChange:
    """One field of an existing feature changed by an import."""

    field: str
    label: str
    old: str | None
    new: str | None


def empty_gdf(columns: Iterable[str] = ()) -> gpd.GeoDataFrame:
    """Return an empty EPSG:4326 GeoDataFrame with these (object) columns."""
    return gpd.GeoDataFrame(
        {c: pd.Series(dtype=object) for c in columns}, geometry=[], crs=STORAGE_CRS
    )


def uid_prefix(spec: LayerSpec) -> str:
    """Prefix of generated uids: the catalog's ``uid_prefix``, else the layer id upper-cased."""
    return spec.uid_prefix or spec.id.upper()


def generated_uids(
    township_codes: Sequence[object], existing_uids: Iterable[object], prefix: str
) -> list[str]:
    """
    Readable uids for new points: ``<prefix>-<township code>-<n>``.

    Parameters
    ----------
    township_codes
        Joined 9-digit township code of each new point (blank → ``000000000``).
    existing_uids
        uids already used (the layer's and the file's): numbering continues after the
        highest ``n`` used for that prefix and township, so a uid is never reused.
    prefix
        `uid_prefix` of the layer.

    Returns
    -------
    uids
        One per new point, in order.
    """
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)-(\d+)$", re.IGNORECASE)
    highest: dict[str, int] = {}
    for uid in existing_uids:
        if isinstance(uid, str) and (m := pattern.match(uid.strip())):
            highest[m.group(1)] = max(highest.get(m.group(1), 0), int(m.group(2)))
    out = []
    for code in township_codes:
        town = "000000000" if is_blank(code) else str(code)
        highest[town] = highest.get(town, 0) + 1
        out.append(f"{prefix}-{town}-{highest[town]}")
    return out


def _show(value: object) -> str | None:
    if is_blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def merge_updates(
    gdf_acc: gpd.GeoDataFrame, acc_update: np.ndarray, base: gpd.GeoDataFrame, spec: LayerSpec
) -> tuple[gpd.GeoDataFrame, dict[str, list[FieldChange]]]:
    """
    Overlay non-blank imported values on the existing features they update.

    Returns the frame and ``{uid: [FieldChange]}``; a feature whose list is empty (the row
    repeats what is stored) is returned exactly as stored, 更新时间 and position included.
    """
    key = spec.key
    old_by_uid = base.assign(_k=base[key].astype(str)).drop_duplicates("_k").set_index("_k")
    upd = gdf_acc[acc_update]
    old = old_by_uid.loc[upd[key].astype(str)]
    merged = gpd.GeoDataFrame(old.drop(columns=[old.geometry.name]).reset_index(drop=True))
    changes: dict[str, list[FieldChange]] = {}
    new_part = upd.reset_index(drop=True)
    for col in new_part.columns:
        if col == new_part.geometry.name:
            continue
        new_vals = new_part[col].astype(object)
        if col in merged.columns:
            merged[col] = new_vals.where(new_vals.notna(), merged[col].astype(object))
        else:
            merged[col] = new_vals
    merged = gpd.GeoDataFrame(merged, geometry=new_part.geometry.to_numpy(), crs=STORAGE_CRS)
    if "flags" in merged.columns:
        merged["flags"] = new_part["flags"].to_numpy()
    if "source" in old.columns and "source" in merged.columns:
        # provenance: an update keeps the original record's 数据来源 (the update's file is
        # in the audit log); only a blank one is filled (docs/import.md)
        old_source = old["source"].astype(object).reset_index(drop=True)
        keep = ~blank_mask(old_source)
        merged["source"] = merged["source"].astype(object).where(~keep, old_source)
    skip = {"flags", "updated_at", "source", *COMPUTED}
    old_geoms = old.geometry.to_numpy()
    for i, uid in enumerate(new_part[key].astype(str)):
        items: list[FieldChange] = []
        for col in new_part.columns:
            if col in skip or col == new_part.geometry.name:
                continue
            new_v = _show(new_part[col].iloc[i])
            old_v = _show(old[col].iloc[i]) if col in old.columns else None
            if new_v is not None and new_v != old_v:
                items.append(FieldChange(col, spec.label(col), old_v, new_v))
        og, ng = old_geoms[i], new_part.geometry.iloc[i]
        if og is None or og.is_empty or og.distance(ng) > 1e-7:  # noqa: PLR2004 - ~1 cm
            old_txt = None if og is None or og.is_empty else f"{og.x:.6f}, {og.y:.6f}"
            items.append(FieldChange("geometry", "位置", old_txt, f"{ng.x:.6f}, {ng.y:.6f}"))
        changes[uid] = items
    same = np.array([not changes[u] for u in new_part[key].astype(str)], dtype=bool)
    if same.any():
        # nothing changes: the stored feature as it is (its 更新时间 and exact position too)
        old_rows = old.reset_index(drop=True)
        for col in merged.columns:
            if col != merged.geometry.name and col in old_rows.columns:
                merged[col] = merged[col].astype(object).where(~same, old_rows[col].astype(object))
        merged = merged.set_geometry(np.where(same, old_geoms, merged.geometry.to_numpy()))
    out = pd.concat([gdf_acc[~acc_update], merged], ignore_index=True)
    order = np.concatenate([np.flatnonzero(~acc_update), np.flatnonzero(acc_update)])
    out.index = order
    return gpd.GeoDataFrame(out.sort_index(), crs=STORAGE_CRS), changes


def assemble(
    base: gpd.GeoDataFrame,
    gdf_updated: gpd.GeoDataFrame,
    gdf_new: gpd.GeoDataFrame,
    spec: LayerSpec,
) -> gpd.GeoDataFrame:
    """Existing features in order (updated ones replaced) + new ones appended."""
    key = spec.key
    if len(base) == 0:
        parts = [gdf_updated, gdf_new]
    else:
        kept = coerce_layer(gpd.GeoDataFrame(base, crs=base.crs or STORAGE_CRS), spec)
        if kept.crs is not None and not kept.crs.equals(STORAGE_CRS):
            kept = kept.to_crs(STORAGE_CRS)
        if len(gdf_updated):
            pos = pd.Series(np.arange(len(kept)), index=kept[key].astype(str))
            pos = pos[~pos.index.duplicated()]
            where = pos.loc[gdf_updated[key].astype(str)].to_numpy()
            upd = gdf_updated.set_axis(where)
            kept = kept.drop(index=kept.index[where])
            kept = pd.concat([kept, upd]).sort_index()
        parts = [kept, gdf_new]
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_gdf(spec.fields) if len(base) == 0 else base
    out = pd.concat(parts, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry=out.geometry.name, crs=STORAGE_CRS)


def name_new_points(
    gdf_prep: gpd.GeoDataFrame,
    acc_idx: np.ndarray,
    missing_uid: np.ndarray,
    uids: np.ndarray,
    spec: LayerSpec,
    base: gpd.GeoDataFrame,
    msgs: list[list[Message]],
    key_col: str,
) -> None:
    """Give new points without uid a readable one (`generated_uids`), after the join."""
    key = spec.key
    new_j = [j for j, pos in enumerate(acc_idx) if missing_uid[pos]]
    if not new_j:
        return
    used = list(base[key].tolist()) if key in base.columns else []
    used += [u for u in uids if isinstance(u, str) and not u.startswith("__new_")]
    codes = gdf_prep["township_code"].to_numpy(dtype=object)[new_j]
    made = generated_uids(codes, used, uid_prefix(spec))
    col = gdf_prep.columns.get_loc(key)
    for j, uid in zip(new_j, made, strict=True):
        gdf_prep.iloc[j, col] = uid
        pos = acc_idx[j]
        uids[pos] = uid
        msgs[pos].append(Message(key_col, "", f"无{spec.label(key)}，已生成 {uid}", LEVEL_INFO))
