"""Ready-to-use layers: coerced, derived, joined to townships, flagged. Pure functions.

`prepare_layer` is the one pipeline every entry point (CLI, app, import, benchmark) runs on a
layer read from disk: declared types (`schema.coerce_layer`) → derived classes
(`derive.apply_derived`) → township join (`join`) → check flags. It returns a `LayerData`:
the features plus their township membership in long form (`shares`), so points and
polygons are listed and counted the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

import geopandas as gpd

from riskmap.catalog import STATUS_CLEARED, STATUS_DEFAULT, UNCLASSED
from riskmap.cells import STR_DTYPE
from riskmap.derive import add_flag, apply_derived
from riskmap.join import join_points_township, join_polygons_township, township_mismatch
from riskmap.schema import coerce_layer, require_crs
from riskmap.settings import COUNTY_NAME, STORAGE_CRS

if TYPE_CHECKING:
    from collections.abc import Iterable

    from riskmap.catalog import LayerSpec

SHARE_COLUMNS = ["key", "township_code", "township", "area_ha", "share"]


@dataclass(frozen=True)
class LayerData:
    """
    One prepared layer.

    Attributes
    ----------
    spec
        The layer's declaration.
    gdf
        Features, EPSG:4326, declared columns typed, derived fields filled, ``township`` /
        ``township_code`` set by the spatial join (for polygons: the township holding the
        largest share, and ``townships`` listing every share), ``flags`` extended.
    shares
        Township membership, one row per (feature, township): ``key`` (the feature's key),
        ``township_code`` (9-digit text), ``township``, ``area_ha`` (polygons; NaN for
        points), ``share`` (0–1; 1.0 for points). Features outside every township have no row.
    """

    spec: LayerSpec
    gdf: gpd.GeoDataFrame
    shares: pd.DataFrame

    def subset(self, gdf: gpd.GeoDataFrame) -> LayerData:
        """Return this layer restricted to `gdf` (a selection of ``self.gdf``), with its shares."""
        shares = self.shares[isin(self.shares["key"], gdf[self.spec.key])].reset_index(drop=True)
        return LayerData(spec=self.spec, gdf=gdf, shares=shares)

    def in_township(self, township_code: str) -> gpd.GeoDataFrame:
        """Features with any share in the township `township_code` (9-digit), layer order."""
        return filter_features(self, township_codes=[township_code])


def isin(values: pd.Series, wanted: pd.Series | Iterable[str]) -> np.ndarray:
    """
    Return ``values.isin(wanted)`` as a boolean array, computed in Arrow for Arrow text.

    pandas' ``ArrowStringArray.isin`` boxes every wanted value as a pyarrow scalar in Python
    (1 s for 100,000 keys); `pyarrow.compute.is_in` does the same test in C. A missing value
    is never in `wanted` (a missing wanted value is ignored).

    Parameters
    ----------
    values
        Text column, shape (n,): Arrow-backed (``string[pyarrow]``) or any other dtype
        (then pandas' own ``isin``).
    wanted
        The values to look for (a Series, a list or a set of text).

    Returns
    -------
    mask
        ``bool`` array, shape (n,).
    """
    dtype = values.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        chosen = wanted.dropna() if isinstance(wanted, pd.Series) else [
            w for w in wanted if not pd.isna(w)
        ]  # fmt: skip
        return values.isin(chosen).to_numpy(dtype=bool)
    import pyarrow as pa  # noqa: PLC0415 - pandas' Arrow text already loaded it
    import pyarrow.compute as pc  # noqa: PLC0415

    data = pa.chunked_array(pa.array(values.array))
    if isinstance(wanted, pd.Series) and wanted.dtype == dtype:
        chosen = pa.chunked_array(pa.array(wanted.array)).combine_chunks()
    else:
        chosen = pa.array([w for w in wanted if isinstance(w, str)], type=pa.string())
    chosen = pc.drop_null(chosen).cast(data.type)
    if not len(chosen):
        return np.zeros(len(values), dtype=bool)
    return pc.is_in(data, value_set=chosen).to_numpy(zero_copy_only=False).astype(bool)


def _point_shares(gdf: gpd.GeoDataFrame, key: str) -> pd.DataFrame:
    # Column-wise: only the three columns needed are filtered (no copy of the whole frame),
    # and Arrow text stays Arrow (no Python object per row).
    codes = gdf["township_code"]
    if isinstance(codes.dtype, pd.StringDtype):
        present = codes.notna() & codes.str.strip().ne("")
    else:
        text = codes.astype(object).where(codes.notna(), "").astype(str).str.strip()
        present = codes.notna() & text.ne("")
    # to_numpy(bool): on an empty layer the mask could be an object Series, which `[]`
    # would read as a list of column labels instead of a row mask.
    mask = present.to_numpy(dtype=bool)
    return pd.DataFrame(
        {
            "key": gdf[key][mask].reset_index(drop=True),
            "township_code": gdf["township_code"][mask].reset_index(drop=True),
            "township": gdf["township"][mask].reset_index(drop=True),
            "area_ha": np.nan,
            "share": 1.0,
        },
        columns=SHARE_COLUMNS,
    )


def _flag_join(out: gpd.GeoDataFrame, gdf_townships: gpd.GeoDataFrame, county: str) -> pd.Series:
    flags = out["flags"]
    flag = out["join_flag"].fillna("")
    border = flag == "border"
    border_msg = pd.Series("", index=out.index, dtype=object)  # built only where needed
    border_msg[border] = [
        f"位于乡镇界线上，按代码较小者归入{t}" for t in out["township"][border].fillna("")
    ]
    flags = add_flag(flags, border, border_msg)
    flags = add_flag(flags, flag == "outside", f"位于{county}界外，未落入任何乡镇")
    flags = add_flag(flags, flag == "no_geometry", "无坐标，未落图")
    if "township_declared" in out.columns:
        # Only for located points: outside / no coordinates already carry their own flag.
        located = out["township_code"].notna().to_numpy()
        mismatch = township_mismatch(out, gdf_townships) & located
        msg = pd.Series("", index=out.index, dtype=object)
        msg[mismatch] = [
            f"填报乡镇({d})与落图乡镇({t})不符"
            for d, t in zip(
                out["township_declared"][mismatch], out["township"][mismatch], strict=True
            )
        ]
        flags = add_flag(flags, mismatch, msg)
    return flags


def prepare_layer(
    gdf_raw: gpd.GeoDataFrame,
    spec: LayerSpec,
    gdf_townships: gpd.GeoDataFrame,
    *,
    metric_crs: str,
    county_name: str = COUNTY_NAME,
) -> LayerData:
    """
    Coerce, derive, join and flag one layer.

    Parameters
    ----------
    gdf_raw
        Features as read from the layer file or an import, any CRS (reprojected to
        EPSG:4326). File values of ``township``/``township_code`` are replaced by the join.
    spec
        The layer's declaration.
    gdf_townships
        Township polygons (the contract of `riskmap.io.read_townships`), EPSG:4326.
    metric_crs
        Projected CRS in metres for areas (``settings.metric_crs``).
    county_name
        Used in flag messages.

    Returns
    -------
    layer
        `LayerData`; rows in == rows out, same order.

    Raises
    ------
    CRSError
        When `gdf_raw` has no CRS.
    """
    require_crs(gdf_raw, "gdf_raw")
    gdf = gdf_raw if gdf_raw.crs.equals(STORAGE_CRS) else gdf_raw.to_crs(STORAGE_CRS)
    out = apply_derived(coerce_layer(gdf, spec), spec, metric_crs=metric_crs)
    if spec.geometry == "Point":
        joined = join_points_township(out, gdf_townships)
        out = out.assign(  # Arrow-backed text columns, as the join built them
            township=joined["township"],
            township_code=joined["township_code"],
            join_flag=joined["join_flag"],
        )
        del joined
        out["flags"] = _flag_join(out, gdf_townships, county_name)
        shares = _point_shares(out, spec.key)
    else:
        long = join_polygons_township(out, gdf_townships, key=spec.key, metric_crs=metric_crs)
        shares = long.rename(columns={spec.key: "key"})[SHARE_COLUMNS]
        shares = shares.sort_values(["key", "share"], ascending=[True, False], kind="stable")
        top = shares.drop_duplicates("key").set_index("key")
        keys = out[spec.key]
        out = out.assign(
            township=keys.map(top["township"]).astype(STR_DTYPE),
            township_code=keys.map(top["township_code"]).astype(STR_DTYPE),
            townships=keys.map(_share_text(shares)).astype(STR_DTYPE),
            join_flag=pd.Series(
                np.where(keys.isin(top.index), "", "outside"), index=out.index, dtype=STR_DTYPE
            ),
        )
        out["flags"] = add_flag(
            out["flags"], out["join_flag"] == "outside", f"位于{county_name}界外"
        )
        shares = shares.reset_index(drop=True)
    return LayerData(spec=spec, gdf=gpd.GeoDataFrame(out, crs=STORAGE_CRS), shares=shares)


def _share_text(shares: pd.DataFrame) -> pd.Series:
    """``"葛城街道 62%、复兴街道 38%"`` per key, largest share first."""
    return shares.groupby("key", sort=False).apply(
        lambda g: "、".join(
            f"{t} {s:.0%}" if s >= 0.005 else f"{t} <1%"  # noqa: PLR2004 - rounding display
            for t, s in zip(g["township"], g["share"], strict=True)
        ),
        include_groups=False,
    )


def active(gdf: gpd.GeoDataFrame, *, include_cleared: bool = False) -> gpd.GeoDataFrame:
    """Features not yet cleared (状态 ≠ 已销号), or all when `include_cleared`."""
    if include_cleared or "status" not in gdf.columns:
        return gdf
    return gdf[gdf["status"].ne(STATUS_CLEARED) | gdf["status"].isna()]


def filter_features(
    layer: LayerData,
    *,
    township_codes: Iterable[str] | None = None,
    classes: Iterable[str] | None = None,
    statuses: Iterable[str] | None = None,
    text: str = "",
) -> gpd.GeoDataFrame:
    """
    Select a prepared layer's features by township, class, status and a search text.

    Parameters
    ----------
    layer
        A prepared layer.
    township_codes
        9-digit codes; None = all. A polygon is selected when it has any share in one of
        them (a fire zone across two townships appears in both).
    classes
        Values of ``spec.class_field``; None = all. Features with no class are kept only
        when `riskmap.catalog.UNCLASSED` (未分级) is listed.
    statuses
        Status values; None = all. A feature with no status counts as
        `riskmap.catalog.STATUS_DEFAULT` (在册: a fresh survey import not yet reviewed).
    text
        Case-insensitive substring of the name or the key; "" = all.

    Returns
    -------
    gdf_selected
        Subset of ``layer.gdf``, same order and index.
    """
    gdf, spec = layer.gdf, layer.spec
    mask = pd.Series(data=True, index=gdf.index)
    if township_codes is not None:
        codes = list(township_codes)
        keys = layer.shares.loc[isin(layer.shares["township_code"], codes), "key"]
        mask &= isin(gdf[spec.key], keys)
    if classes is not None:
        wanted = set(classes)
        cls = gdf[spec.class_field]
        mask &= cls.isin(wanted) | (cls.isna() & (UNCLASSED in wanted))
    if statuses is not None:
        wanted = set(statuses)
        status = gdf["status"]
        mask &= status.isin(wanted) | (status.isna() & (STATUS_DEFAULT in wanted))
    if text.strip():
        needle = text.strip().lower()
        name = gdf["name"].fillna("").astype(str).str.lower()
        key = gdf[spec.key].fillna("").astype(str).str.lower()
        mask &= name.str.contains(needle, regex=False) | key.str.contains(needle, regex=False)
    return gdf[mask]
