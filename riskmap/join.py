"""Points/polygons to townships (PLACEHOLDER: simple sjoin version; replaced by the fast join)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import geopandas as gpd


def join_points_township(
    gdf_points: gpd.GeoDataFrame, gdf_townships: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """Placeholder: township/township_code/join_flag by sjoin intersects, lowest code wins."""
    pts = gdf_points.to_crs(gdf_townships.crs)
    pos = pd.DataFrame({"_pos": np.arange(len(pts))})
    g = gpd.GeoDataFrame(pos, geometry=pts.geometry.to_numpy(), crs=pts.crs)
    hit = gpd.sjoin(
        g, gdf_townships[["adcode", "name", "geometry"]], predicate="intersects", how="left"
    )
    hit = hit.sort_values(["_pos", "adcode"]).drop_duplicates("_pos")
    out = gdf_points.copy()
    out["township"] = hit["name"].to_numpy()
    out["township_code"] = hit["adcode"].to_numpy()
    out["join_flag"] = np.where(hit["adcode"].isna().to_numpy(), "outside", "")
    return out


def township_mismatch(gdf_joined: gpd.GeoDataFrame, gdf_townships: gpd.GeoDataFrame) -> pd.Series:
    """Placeholder: declared township differs from joined one."""
    del gdf_townships
    d = gdf_joined["township_declared"].fillna("").astype(str).str.strip()
    return (
        (d != "")
        & (d != gdf_joined["township"].fillna(""))
        & (d.str[:9] != gdf_joined["township_code"].fillna(""))
    )


def join_polygons_township(gdf_polys, gdf_townships, *, key, metric_crs):  # noqa: ANN001, ANN201, D103
    a = gdf_polys[[key, "geometry"]].to_crs(metric_crs)
    b = gdf_townships[["adcode", "name", "geometry"]].to_crs(metric_crs)
    inter = gpd.overlay(a, b, how="intersection", keep_geom_type=True)
    inter["area_ha"] = inter.area / 1e4
    total = a.set_index(key).area / 1e4
    inter["share"] = inter["area_ha"] / inter[key].map(total)
    return pd.DataFrame(
        {
            key: inter[key],
            "township_code": inter["adcode"],
            "township": inter["name"],
            "area_ha": inter["area_ha"],
            "share": inter["share"],
        }
    )
