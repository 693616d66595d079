"""Public-release filter (公开版): personal fields out, phones masked, points coarsened. Pure."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from riskmap.layers import LayerData

if TYPE_CHECKING:
    from collections.abc import Mapping

    import geopandas as gpd

    from riskmap.catalog import LayerSpec

PERSONAL_LABEL_RE = re.compile(r"电话|手机|责任人|联系人|姓名|上报人|填报人|监测员|巡查员|身份证")
"""Field labels that name personal data; such fields are dropped even if not declared."""
PERSONAL_KEY_RE = re.compile(r"phone|mobile|tel(ephone)?$|contact|person|id_?card", re.IGNORECASE)
"""Field keys that name personal data; such fields are dropped even if not declared."""
PHONE_RE = re.compile(
    r"(?<!\d)(?:\+?86[\s-]?)?(?:1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}|0\d{2,3}[\s-]?\d{7,8})(?!\d)"
)
"""Chinese mobile (1xx xxxx xxxx) and landline (0xx(x)-xxxxxxx(x)) numbers inside free text."""
PHONE_MASK = "[电话已隐去]"
"""What a phone number found in free text becomes in a public release."""
METRES_PER_DEGREE_LAT = 110_885.0
"""Length of one degree of latitude at Chengkou (≈ 31.9°N), metres (WGS84 ellipsoid)."""
METRES_PER_DEGREE_LON = 94_596.0
"""Length of one degree of longitude at Chengkou (≈ 31.9°N), metres (WGS84 ellipsoid)."""


PUBLIC_ATTR = "public_precision_deg"
"""``gdf.attrs`` key `public_layers` sets: the grid step in degrees (0 = exact coordinates)."""


def public_note(layers: Mapping[str, LayerData]) -> str | None:
    """
    Return the 公开版 note for layers made by `public_layers`, or None for ordinary layers.

    Returns
    -------
    note
        E.g. ``"公开版：已去除个人姓名和电话号码；点位坐标已粗化至 0.01°
        （约 946×1109 米）"`` (one line).
    """
    steps = [
        layer.gdf.attrs[PUBLIC_ATTR] for layer in layers.values() if PUBLIC_ATTR in layer.gdf.attrs
    ]
    if not steps:
        return None
    note = "公开版：已去除个人姓名和电话号码"
    if step := max(steps):
        ew, ns = grid_metres(step)
        note += f"；点位坐标已粗化至 {step:g}°（约 {ew:.0f}×{ns:.0f} 米）"
    return note


def personal_fields(spec: LayerSpec) -> tuple[str, ...]:
    """
    Keys of the layer's fields that hold personal data.

    A field is personal when the catalog declares it (``personal = true``, e.g. ``resp_name``
    责任人, ``resp_phone`` 联系电话) or, as a safety net for a layer that forgot to, when its
    label matches `PERSONAL_LABEL_RE` or its key matches `PERSONAL_KEY_RE`.
    """
    return tuple(
        k
        for k, f in spec.fields.items()
        if f.personal or PERSONAL_LABEL_RE.search(f.label) or PERSONAL_KEY_RE.search(k)
    )


def grid_metres(precision_deg: float) -> tuple[float, float]:
    """
    Size in metres of a `precision_deg` grid cell at Chengkou: (east-west, north-south).

    0.01° ≈ 946 m × 1109 m; a snapped point moves at most half a cell each way (≈ 730 m).
    """
    return precision_deg * METRES_PER_DEGREE_LON, precision_deg * METRES_PER_DEGREE_LAT


def _scrub_phones(value: Any) -> Any:  # noqa: ANN401 - any cell value
    return PHONE_RE.sub(PHONE_MASK, value) if isinstance(value, str) else value


def _snap_points(gdf: gpd.GeoDataFrame, precision_deg: float) -> gpd.GeoDataFrame:
    import geopandas as gpd  # noqa: PLC0415
    import shapely  # noqa: PLC0415

    geoms = gdf.geometry.to_numpy()
    points = shapely.get_type_id(geoms) == 0  # Point
    if not points.any():
        return gdf
    xy = shapely.get_coordinates(geoms[points])
    snapped = np.round(xy / precision_deg) * precision_deg
    digits = max(0, -math.floor(math.log10(precision_deg)) + 1)
    new = geoms.copy()
    new[points] = shapely.points(np.round(snapped, digits))
    return gdf.set_geometry(gpd.GeoSeries(new, index=gdf.index, crs=gdf.crs))


def public_layers(
    layers: Mapping[str, LayerData],
    *,
    precision_deg: float | None = 0.01,
) -> dict[str, LayerData]:
    """
    Prepare layers for a public release (公开版): no personal data, coarse point locations.

    * Keeps only the layer's declared fields that are not personal (`personal_fields`):
      ``resp_name`` (责任人), ``resp_phone`` (联系电话) and any field declared
      ``personal = true`` are dropped, and so is every undeclared extra property (e.g. a
      ``联系电话(原表)`` column kept from an imported survey table): an allow-list, not a
      block-list.
    * Phone numbers written inside the remaining free text (备注: "联系 13812345678") become
      `PHONE_MASK`.
    * Point coordinates are snapped to a grid of `precision_deg` degrees (see `grid_metres`:
      0.01° ≈ 946 m E-W × 1109 m N-S at Chengkou, a point moves ≤ ≈ 730 m); None keeps them.
      Township membership stays that of the exact location (joined before snapping).
    * Polygons (森林火险区) are left as they are: they are planning zones drawn by the
      forestry office, not anyone's home, and their areas are computed from them.

    Feed the result to any writer (`xlsx_township`, `csv_township`, `geojson_township`,
    `all_townships_zip`): their columns and popups follow the reduced specs.

    Parameters
    ----------
    layers
        Prepared layers by id.
    precision_deg
        Grid step in degrees (> 0), or None for exact coordinates.

    Returns
    -------
    layers
        New `LayerData` per id: spec without the personal fields (also out of ``popup``,
        ``list_fields``), gdf with only the kept columns.

    Raises
    ------
    ValueError
        When `precision_deg` is not a positive finite number.
    """
    if precision_deg is not None and not (
        isinstance(precision_deg, (int, float))
        and math.isfinite(precision_deg)
        and precision_deg > 0
    ):
        msg = f"precision_deg 应为正数（度），如 0.01: {precision_deg!r}"
        raise ValueError(msg)
    out: dict[str, LayerData] = {}
    for lid, layer in layers.items():
        spec = layer.spec
        drop = set(personal_fields(spec))
        fields = {k: f for k, f in spec.fields.items() if k not in drop}
        public_spec = replace(
            spec,
            fields=fields,
            popup=tuple(k for k in spec.popup if k not in drop),
            list_fields=tuple(k for k in spec.list_fields if k not in drop),
        )
        gdf = layer.gdf
        keep = [c for c in gdf.columns if c in fields or c == gdf.geometry.name]
        gdf = gdf[keep].copy()
        for col in gdf.columns:
            text = gdf[col].dtype == object or isinstance(gdf[col].dtype, pd.StringDtype)
            if col != gdf.geometry.name and text:
                gdf[col] = gdf[col].map(_scrub_phones)
        if precision_deg is not None and len(gdf):
            gdf = _snap_points(gdf, float(precision_deg))
        gdf.attrs[PUBLIC_ATTR] = float(precision_deg or 0)
        out[lid] = LayerData(spec=public_spec, gdf=gdf, shares=layer.shares)
    return out
