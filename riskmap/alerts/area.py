"""The area of a warning (预警范围): townships, a polygon file, or a polygon drawn in the app.

Every area is checked to be polygonal, valid and inside the county before a warning is created.
"""

from __future__ import annotations

import io as _bytes_io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from riskmap.alerts.common import MAX_AREA_BYTES, AlertError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from riskmap.project import Project


# --- the area -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Area:
    """
    Where a warning applies.

    Attributes
    ----------
    kind
        ``"townships"``, ``"file"`` or ``"drawn"``.
    geometry
        Polygon or MultiPolygon, EPSG:4326 (lon, lat).
    township_codes
        9-digit codes of the chosen townships (kind ``"townships"``), else empty.
    source
        File name (kind ``"file"``) or ``""``.
    """

    kind: str
    geometry: BaseGeometry
    township_codes: tuple[str, ...] = ()
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form stored in the warning."""
        return {
            "kind": self.kind,
            "townships": list(self.township_codes),
            "source": self.source,
            "geometry": shapely.geometry.mapping(self.geometry),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Area:
        """Rebuild an area from `to_json` output."""
        return cls(
            kind=str(raw["kind"]),
            geometry=shape(raw["geometry"]),
            township_codes=tuple(raw.get("townships", ())),
            source=str(raw.get("source", "")),
        )


def _polygonal(geom: BaseGeometry, where: str) -> BaseGeometry:
    """Return the valid polygonal part of `geom`; raise when there is none."""
    if geom is None or geom.is_empty:
        msg = f"{where}: 没有面要素（预警范围应为多边形）"
        raise AlertError(msg)
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    parts, todo = [], [geom]
    while todo:  # flatten collections of collections down to polygons
        g = todo.pop()
        if g.geom_type == "Polygon":
            if g.area > 0:
                parts.append(g)
        elif g.geom_type in {"MultiPolygon", "GeometryCollection"}:
            todo.extend(shapely.get_parts(g))
    if not parts:
        msg = f"{where}: 没有面要素（预警范围应为多边形，点或线不能作为范围）"
        raise AlertError(msg)
    out = shapely.union_all(parts)
    left, bottom, right, top = out.bounds
    if not (-180 <= left <= right <= 180 and -90 <= bottom <= top <= 90):  # noqa: PLR2004
        msg = (
            f"{where}: 坐标不是经纬度（范围 {left:.0f},{bottom:.0f} – {right:.0f},{top:.0f}）；"
            "请提供 WGS84 经纬度（EPSG:4326）的 GeoJSON/KML"
        )
        raise AlertError(msg)
    return out


def area_from_geojson(obj: Any, *, where: str = "绘制的范围") -> BaseGeometry:  # noqa: ANN401
    """
    Read a polygon from a GeoJSON object (geometry, Feature or FeatureCollection), EPSG:4326.

    Parameters
    ----------
    obj
        Parsed GeoJSON (what Leaflet.draw returns for a drawn polygon, or a file's content).
    where
        Named in error messages.

    Returns
    -------
    geometry
        Valid Polygon/MultiPolygon (the union of every polygon given), lon/lat.

    Raises
    ------
    AlertError
        When there is no polygon, the GeoJSON is malformed, or coordinates are not lon/lat.
    """
    try:
        if isinstance(obj, dict) and obj.get("type") == "FeatureCollection":
            geoms = [shape(f["geometry"]) for f in obj.get("features", []) if f.get("geometry")]
        elif isinstance(obj, dict) and obj.get("type") == "Feature":
            geoms = [shape(obj["geometry"])] if obj.get("geometry") else []
        elif isinstance(obj, dict):
            geoms = [shape(obj)]
        else:
            geoms = []
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
        msg = f"{where}: 不是有效的 GeoJSON 几何（{exc}）"
        raise AlertError(msg) from None
    if not geoms:
        msg = f"{where}: 没有面要素（预警范围应为多边形）"
        raise AlertError(msg)
    return _polygonal(shapely.union_all(geoms), where)


def area_from_file(data: bytes, filename: str) -> BaseGeometry:
    """
    Read a warning polygon from a GeoJSON or KML file's bytes.

    GeoJSON is read as RFC 7946 (WGS84 lon/lat). KML is WGS84 by definition (OGC KML 2.2) and
    is read with GDAL's KML driver through pyogrio.

    Parameters
    ----------
    data
        File content.
    filename
        Its name: the suffix picks the format (``.geojson``/``.json``, ``.kml``); named in
        messages.

    Returns
    -------
    geometry
        Valid Polygon/MultiPolygon in EPSG:4326.

    Raises
    ------
    AlertError
        Unknown suffix, a file too large, unreadable content, or no polygon (names the file).
    """
    suffix = filename.lower().rsplit(".", 1)[-1] if "." in filename else ""
    if len(data) > MAX_AREA_BYTES:
        msg = f"{filename}: 文件过大（{len(data) / 1e6:.1f} MB），预警范围文件应小于 20 MB"
        raise AlertError(msg)
    if suffix in {"geojson", "json"}:
        try:
            obj = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            msg = f"{filename}: 不是有效的 GeoJSON 文件（{exc}）"
            raise AlertError(msg) from None
        return area_from_geojson(obj, where=filename)
    if suffix == "kml":
        import pyogrio  # noqa: PLC0415 - only for KML
        from pyogrio.errors import DataSourceError  # noqa: PLC0415

        try:
            gdf = pyogrio.read_dataframe(_bytes_io.BytesIO(data))
        except (DataSourceError, ValueError, RuntimeError):
            msg = f"{filename}: 不是有效的 KML 文件（无法解析，请检查文件内容）"
            raise AlertError(msg) from None
        if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
            gdf = gdf.to_crs("EPSG:4326")
        geoms = [g for g in gdf.geometry if g is not None]
        if not geoms:
            msg = f"{filename}: 没有面要素（预警范围应为多边形）"
            raise AlertError(msg)
        return _polygonal(shapely.force_2d(shapely.union_all(geoms)), filename)
    msg = f"{filename}: 不支持的文件类型（预警范围请用 .geojson 或 .kml）"
    raise AlertError(msg)


def area_from_townships(project: Project, names: Iterable[str]) -> Area:
    """
    Build the area of a warning given as townships (names, short names or codes).

    A township without a polygon of its own (复兴街道 in the approximate partition) is covered
    by the polygon whose ``also_covers`` names it.

    Raises
    ------
    AlertError
        When no township is given.
    TownshipNotFoundError
        When a name matches no township (the message lists them).
    """
    codes: list[str] = []
    for name in names:
        if not str(name).strip():
            continue
        code, _ = project.township(str(name))
        if code not in codes:
            codes.append(code)
    if not codes:
        msg = "预警范围为空：请至少选择一个乡镇，或给出范围文件/绘制范围"
        raise AlertError(msg)
    gdf_t = project.gdf_townships
    covers = gdf_t["also_covers"].fillna("").astype(str) if "also_covers" in gdf_t else None
    parts = []
    for code in codes:
        own = gdf_t[gdf_t["adcode"] == code]
        if own.empty and covers is not None:
            own = gdf_t[covers.str.contains(code, regex=False)]
        parts.extend(own.geometry)
    return Area("townships", shapely.union_all(parts), tuple(codes))


def check_area_in_county(geometry: BaseGeometry, gdf_county: gpd.GeoDataFrame, county: str) -> None:
    """
    Refuse an area that does not overlap the county.

    Raises
    ------
    AlertError
        ``预警范围不在<county>境内`` when the polygon does not intersect the county outline.
    """
    outline = shapely.union_all(gdf_county.to_crs("EPSG:4326").geometry.to_numpy())
    if not geometry.intersects(outline) or geometry.intersection(outline).area == 0:
        left, bottom, right, top = geometry.bounds
        msg = (
            f"预警范围不在{county}境内（范围 {left:.3f},{bottom:.3f} – {right:.3f},{top:.3f}），"
            "未创建预警；请检查文件或重新绘制"
        )
        raise AlertError(msg)
