"""Derived classes and flags declared in the catalog (险情等级, 积水风险等级, 危桥, 面积).

Rules are data (`DerivedSpec`, `FlagSpec` in ``layers/catalog.toml``); this module applies
them. A stated value that disagrees with the derived one is kept or replaced as the rule's
`authority` says, and the disagreement is written to the ``flags`` column (核查提示).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

import geopandas as gpd

from riskmap.cells import STR_DTYPE
from riskmap.join import polygon_area_ha

if TYPE_CHECKING:
    from riskmap.catalog import DerivedSpec, LayerSpec

FLAG_SEP = "；"
"""Separator of messages in the ``flags`` column."""


def add_flag(flags: pd.Series, mask: pd.Series, message: str | pd.Series) -> pd.Series:
    """
    Append `message` to `flags` where `mask` is true.

    Parameters
    ----------
    flags
        Current ``flags`` texts (None/NaN/"" = no flag).
    mask
        Boolean, same index; NA counts as False.
    message
        One message for all rows, or a per-row Series of messages.

    Returns
    -------
    flags
        New Series of texts (None where there is no flag), messages joined by `FLAG_SEP`.
    """
    hits = np.flatnonzero(mask.fillna(value=False).astype(bool).to_numpy())
    out = flags.to_numpy(dtype=object, na_value=None, copy=True)
    if pd.api.types.infer_dtype(out, skipna=True) in {"string", "empty"}:
        is_text = ~pd.isna(out)
    else:
        is_text = np.fromiter((isinstance(v, str) for v in out), dtype=bool, count=len(out))
    out[~is_text | (out == "")] = None  # non-text and "" mean "no flag"
    if hits.size == 0:
        return pd.Series(out, index=flags.index, dtype=object)
    if isinstance(message, pd.Series):
        msgs = message.to_numpy(dtype=object)[hits]
    else:
        msgs = np.full(hits.size, message, dtype=object)
    for pos, msg in zip(hits.tolist(), msgs.tolist(), strict=True):
        old_text = out[pos] or ""
        if msg and msg not in old_text.split(FLAG_SEP):
            out[pos] = f"{old_text}{FLAG_SEP}{msg}" if old_text else str(msg)
    return pd.Series(out, index=flags.index, dtype=object)


def classify(gdf: pd.DataFrame, derived: DerivedSpec) -> pd.Series:
    """
    Derive a class for each row: per criterion, index = number of breaks the value reaches.

    With several criteria the highest index wins (DZ/T 0286: the higher of people and property
    decides). Rows with no value for any criterion get None.

    Parameters
    ----------
    gdf
        Frame holding the criterion fields (numeric or numeric text).
    derived
        The rule.

    Returns
    -------
    classes
        Labels from ``derived.labels`` or None; same index as `gdf`.
    """
    best = np.full(len(gdf), -1, dtype=np.int64)
    for criterion in derived.criteria:
        if criterion.field not in gdf.columns:
            continue
        values = pd.to_numeric(gdf[criterion.field], errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
        idx = np.searchsorted(np.asarray(criterion.breaks), values, side="right")
        idx = np.where(np.isnan(values), -1, idx)
        best = np.maximum(best, idx)
    labels = np.asarray(derived.labels, dtype=object)
    out = np.where(best >= 0, labels[np.clip(best, 0, len(labels) - 1)], None)
    return pd.Series(out, index=gdf.index, dtype=object)


def apply_derived(gdf: gpd.GeoDataFrame, spec: LayerSpec, *, metric_crs: str) -> gpd.GeoDataFrame:
    """
    Compute the layer's derived classes, flag fields and area, and flag disagreements.

    Parameters
    ----------
    gdf
        Features coerced with `riskmap.schema.coerce_layer`; must have a CRS.
    spec
        The layer's declaration.
    metric_crs
        Projected CRS (metres) for areas, e.g. ``"EPSG:4545"``; never computed in degrees.

    Returns
    -------
    gdf_derived
        A new GeoDataFrame (unchanged columns shared with `gdf`), same index and CRS, with
        derived fields filled (text as `riskmap.cells.STR_DTYPE`, Arrow-backed) and ``flags``
        extended (e.g. ``"险情等级填报为中型，按威胁人数/威胁财产应为大型"``).

    Raises
    ------
    CRSError
        When `gdf` has no CRS.
    """
    out = gdf.copy(deep=False)  # columns are replaced, never written in place (copy-on-write)
    if "flags" not in out.columns:
        out["flags"] = pd.Series([None] * len(out), index=out.index, dtype=object)
    for rule in spec.derived:
        derived = classify(out, rule)
        stated = (
            out[rule.field]
            if rule.field in out.columns
            else pd.Series(None, index=out.index, dtype=object)
        )
        stated_text = stated.where(stated.notna() & (stated.astype(str).str.strip() != ""), None)
        disagree = (
            stated_text.notna() & derived.notna() & (stated_text.astype(str) != derived.astype(str))
        )
        basis = "/".join(spec.label(c.field) for c in rule.criteria)
        message = pd.Series("", index=out.index, dtype=object)  # built only where needed
        rows = disagree.fillna(value=False).astype(bool).to_numpy()
        message[rows] = [
            f"{rule.label}填报为{s}，按{basis}应为{d}"
            for s, d in zip(stated_text[rows], derived[rows], strict=True)
        ]
        out["flags"] = add_flag(out["flags"], disagree, message)
        if rule.authority == "derived":
            chosen = derived.where(derived.notna(), stated_text)
        else:
            chosen = stated_text.astype(object).where(stated_text.notna(), derived)
        out[rule.field] = chosen.astype(STR_DTYPE)
    for flag in spec.flags:
        values = out[flag.when_field].astype(object)
        result = values.isin(flag.in_values)
        out[flag.field] = result.where(values.notna(), other=pd.NA).astype("boolean")
    if spec.area_field:
        area_ha = polygon_area_ha(out, metric_crs)
        out[spec.area_field] = area_ha.round(2).where(out.geometry.notna())
    return out
