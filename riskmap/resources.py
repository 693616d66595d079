"""Emergency resources (应急资源): the nearest shelter of each risk point. Pure functions.

Resources are ordinary catalog layers with a ``role`` (`riskmap.catalog.ROLES`): 避难场所
(``shelter``, with an int ``capacity`` in people), 应急队伍 (``team``), 物资储备点 (``depot``).
Warnings (`riskmap.alerts`) and the 一点一案一策 card use `nearest_shelter`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

import geopandas as gpd

from riskmap.catalog import STATUS_CLEARED
from riskmap.errors import CRSError, SchemaError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from riskmap.layers import LayerData

SHELTER_COLUMNS = [
    "shelter_uid",
    "shelter_name",
    "shelter_layer",
    "shelter_distance_m",
    "shelter_capacity",
    "shelter_remaining",
]
"""Columns `nearest_shelter` returns, in order."""


def shelters_from_layers(layers: Mapping[str, LayerData]) -> gpd.GeoDataFrame:
    """
    Gather every usable shelter of the prepared layers declared ``role = "shelter"``.

    Parameters
    ----------
    layers
        Prepared layers by id (`riskmap.project.Project.layers`).

    Returns
    -------
    gdf_shelters
        Columns ``uid``, ``name``, ``layer`` (layer id), ``capacity`` (people, float, NaN when
        not recorded), ``township_code``, ``geometry``; EPSG:4326. Cleared (已销号) shelters
        and shelters without a location are left out. Empty (same columns) when there is none.
    """
    frames = []
    for layer in layers.values():
        spec = layer.spec
        if spec.role != "shelter":
            continue
        gdf = layer.gdf
        keep = gdf.geometry.notna() & ~gdf.geometry.is_empty
        if "status" in gdf.columns:
            keep &= gdf["status"].ne(STATUS_CLEARED).fillna(value=True)
        gdf = gdf[keep.to_numpy(dtype=bool)]
        frames.append(
            gpd.GeoDataFrame(
                {
                    "uid": gdf[spec.key].astype(str).to_numpy(),
                    "name": gdf["name"].astype(object).to_numpy(),
                    "layer": spec.id,
                    "capacity": pd.to_numeric(gdf["capacity"], errors="coerce").to_numpy(float),
                    "township_code": gdf.get("township_code", pd.Series(None, index=gdf.index))
                    .astype(object)
                    .to_numpy(),
                },
                geometry=gdf.geometry.to_numpy(),
                crs=gdf.crs or "EPSG:4326",
            )
        )
    if not frames:
        return gpd.GeoDataFrame(
            {"uid": [], "name": [], "layer": [], "capacity": [], "township_code": []},
            geometry=[],
            crs="EPSG:4326",
        )
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)


def nearest_shelter(
    gdf_points: gpd.GeoDataFrame,
    gdf_shelters: gpd.GeoDataFrame,
    *,
    metric_crs: str,
    people: str | None = None,
) -> pd.DataFrame:
    """
    Find the nearest shelter (避难场所) of each feature, by straight-line distance.

    Parameters
    ----------
    gdf_points
        Risk features (points, or polygons such as the part of a fire zone inside a warning
        area), any CRS; rows without geometry get no shelter.
    gdf_shelters
        Shelters with ``uid``, ``name`` and ``capacity`` (people; NaN = unknown), optional
        ``layer``; any CRS (`shelters_from_layers` builds it from the catalog's shelter layers).
    metric_crs
        Projected CRS in metres in which distances are measured (`Settings.metric_crs`,
        EPSG:4545 CGCS2000 / 3-degree Gauss-Krüger CM 108°E for Chengkou).
    people
        Column of `gdf_points` holding the people at risk of each feature. When given, the
        remaining capacity subtracts from each shelter the people of every feature of
        `gdf_points` sent to it (everyone moves to their nearest shelter); when None the
        remaining capacity is the capacity.

    Returns
    -------
    df
        Indexed like `gdf_points`, columns `SHELTER_COLUMNS`: ``shelter_uid``,
        ``shelter_name``, ``shelter_layer``, ``shelter_distance_m`` (metres, float; 0 for a
        polygon containing the shelter), ``shelter_capacity`` (people), ``shelter_remaining``
        (people, may be negative = 容量不足). All None/NaN when there is no shelter or no
        geometry. Ties go to the shelter listed first.

    Raises
    ------
    CRSError
        When either frame has no CRS.
    SchemaError
        When `gdf_shelters` lacks ``uid``/``name``/``capacity`` or `people` is not a column.
    """
    for label, gdf in (("gdf_points", gdf_points), ("gdf_shelters", gdf_shelters)):
        if gdf.crs is None:
            msg = f"`{label}` has no CRS; declare it where the data is read"
            raise CRSError(msg)
    if missing := {"uid", "name", "capacity"} - set(gdf_shelters.columns):
        msg = f"`gdf_shelters` lacks columns {sorted(missing)} (uid, name, capacity required)"
        raise SchemaError(msg)
    if people is not None and people not in gdf_points.columns:
        msg = f"`people` column {people!r} not in gdf_points"
        raise SchemaError(msg)
    out = pd.DataFrame(index=gdf_points.index, columns=SHELTER_COLUMNS, dtype=object)
    out["shelter_distance_m"] = np.nan
    out["shelter_capacity"] = np.nan
    out["shelter_remaining"] = np.nan
    located = gdf_points.geometry.notna() & ~gdf_points.geometry.is_empty
    shelters = gdf_shelters[gdf_shelters.geometry.notna() & ~gdf_shelters.geometry.is_empty]
    if not located.any() or shelters.empty:
        return out
    left = gpd.GeoDataFrame(
        {"_row": np.arange(len(gdf_points))[located.to_numpy()]},
        geometry=gdf_points.geometry[located].to_crs(metric_crs).to_numpy(),
        crs=metric_crs,
    )
    right = gpd.GeoDataFrame(
        {"_shelter": np.arange(len(shelters))},
        geometry=shelters.geometry.to_crs(metric_crs).to_numpy(),
        crs=metric_crs,
    )
    joined = gpd.sjoin_nearest(left, right, how="left", distance_col="_dist")
    joined = joined.sort_values(["_row", "_shelter"]).drop_duplicates("_row")
    rows = joined["_row"].to_numpy()
    chosen = shelters.iloc[joined["_shelter"].to_numpy()]
    idx = gdf_points.index[rows]
    out.loc[idx, "shelter_uid"] = chosen["uid"].astype(str).to_numpy()
    out.loc[idx, "shelter_name"] = chosen["name"].to_numpy()
    layer = chosen["layer"] if "layer" in chosen.columns else pd.Series(None, index=chosen.index)
    out.loc[idx, "shelter_layer"] = layer.to_numpy()
    out.loc[idx, "shelter_distance_m"] = joined["_dist"].to_numpy(dtype=float)
    capacity = pd.to_numeric(chosen["capacity"], errors="coerce").to_numpy(dtype=float)
    out.loc[idx, "shelter_capacity"] = capacity
    out["shelter_distance_m"] = out["shelter_distance_m"].astype(float)
    out["shelter_capacity"] = out["shelter_capacity"].astype(float)
    if people is None:
        out["shelter_remaining"] = out["shelter_capacity"]
    else:
        heads = pd.to_numeric(gdf_points[people], errors="coerce").fillna(0).astype(float)
        sent = heads.groupby(out["shelter_uid"]).sum()
        out["shelter_remaining"] = out["shelter_capacity"] - out["shelter_uid"].map(sent).astype(
            float
        )
    return out
