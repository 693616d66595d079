"""Stage 3 of an import: parse coordinates to WGS84 and check them against the county. Pure.

The conversion itself is `riskmap.coords.to_wgs84` (every coordinate form of
`riskmap.coords.COORDINATE_FORMS`); this stage picks the cells, splits a combined
``经纬度`` column, turns the converter's findings into row messages and rejects points
outside the county.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

import geopandas as gpd
import shapely

from riskmap import cells as tc
from riskmap.coords import LEVEL_ERROR, to_wgs84
from riskmap.importing.columns import split_lonlat
from riskmap.importing.report import Message
from riskmap.settings import STORAGE_CRS

if TYPE_CHECKING:
    from riskmap.importing.columns import ColumnPlan
    from riskmap.readers import RawTable


@dataclass
class Location:
    """
    Where each row lies.

    Attributes
    ----------
    lon, lat
        WGS84 degrees, shape ``(n,)``; NaN where the row is not located.
    located
        Shape ``(n,)``: a point was read (rows outside the county carry an error message).
    blank
        Shape ``(n,)``: both coordinate cells are blank (a candidate attribute-only row).
    messages
        Per row (length n), the coordinate findings (`Message`).
    notes
        File-level notes (conversions, split columns, county check skipped).
    first_cells, second_cells
        The coordinate cells as text (None = blank), for messages.
    """

    lon: np.ndarray
    lat: np.ndarray
    located: np.ndarray
    blank: np.ndarray
    messages: list[list[Message]]
    notes: list[str] = field(default_factory=list)
    first_cells: np.ndarray | None = None
    second_cells: np.ndarray | None = None


def county_geometry(gdf_county: Any) -> Any:  # noqa: ANN401 - GeoDataFrame/GeoSeries/geometry
    """Return the county outline as one shapely geometry in EPSG:4326, or None."""
    if gdf_county is None:
        return None
    if isinstance(gdf_county, (gpd.GeoDataFrame, gpd.GeoSeries)):
        geo = gdf_county.geometry if isinstance(gdf_county, gpd.GeoDataFrame) else gdf_county
        if geo.crs is not None and not geo.crs.equals(STORAGE_CRS):
            geo = geo.to_crs(STORAGE_CRS)
        return geo.union_all()
    return gdf_county


def locate_rows(
    table: RawTable,
    columns: ColumnPlan,
    *,
    crs: str,
    county_geom: Any,  # noqa: ANN401 - shapely geometry or None
    county_name: str,
) -> Location:
    """
    Read each row's coordinates as WGS84 and check them against the county (stage 3).

    Parameters
    ----------
    table
        The table as read.
    columns
        Its column plan; with no coordinate columns every row is blank (not located).
    crs
        Declared coordinate form id (`riskmap.coords.COORDINATE_FORMS`).
    county_geom
        County outline in EPSG:4326, or None (check skipped, noted).
    county_name
        Used in messages ("位于<county_name>外").

    Returns
    -------
    location
        `Location`.
    """
    n = len(table.rows)
    msgs: list[list[Message]] = [[] for _ in range(n)]
    notes: list[str] = []
    nan = np.full(n, np.nan)
    if not columns.has_coordinates:
        empty = np.full(n, None, dtype=object)
        return Location(
            nan, nan.copy(), np.zeros(n, bool), np.ones(n, bool), msgs, notes, empty, empty
        )
    if columns.lonlat is not None:
        whole = tc.to_object(tc.text_cells(table.cells[columns.lonlat]))
        first_cells, second_cells = split_lonlat(whole)
        col_first = col_second = columns.lonlat
        split = int(np.sum([s is not None for s in second_cells]))
        notes.append(f"「{columns.lonlat}」列含经纬度两个值，已拆分为经度、纬度（{split} 行）")
    else:
        assert columns.first is not None  # noqa: S101 - has_coordinates
        assert columns.second is not None  # noqa: S101
        first_cells = tc.to_object(tc.text_cells(table.cells[columns.first]))
        second_cells = tc.to_object(tc.text_cells(table.cells[columns.second]))
        col_first, col_second = columns.first, columns.second
    blank = np.equal(first_cells, None) & np.equal(second_cells, None)
    county_lon = 108.66
    if county_geom is not None and not county_geom.is_empty:
        county_lon = float(county_geom.centroid.x)
    coords = to_wgs84(first_cells, second_cells, crs=crs, county_lon=county_lon)
    notes.extend(coords.notes)
    role_col = {"lon": col_first, "lat": col_second}
    pair_col = col_first if col_first == col_second else f"{col_first}/{col_second}"
    for pos, items in coords.messages.items():
        for level, role, reason in items:
            if role == "lon":
                value = first_cells[pos] or ""
            elif role == "lat":
                value = second_cells[pos] or ""
            else:
                value = f"{first_cells[pos] or ''}, {second_cells[pos] or ''}"
            msgs[pos].append(Message(role_col.get(role, pair_col), value, reason, level))
    lon, lat = coords.lon, coords.lat
    located = np.isfinite(lon) & np.isfinite(lat)
    if county_geom is None:
        notes.append("未提供县界，未检查是否位于县域内")
    else:
        inside = np.zeros(n, dtype=bool)
        inside[located] = shapely.intersects_xy(county_geom, lon[located], lat[located])
        for pos in np.flatnonzero(located & ~inside):
            value = f"{lon[pos]:.6f}, {lat[pos]:.6f}"
            reason = f"位于{county_name}外，未导入"
            msgs[pos].append(Message(pair_col, value, reason, LEVEL_ERROR))
    return Location(lon, lat, located, blank, msgs, notes, first_cells, second_cells)
