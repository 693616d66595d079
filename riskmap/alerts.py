"""Warnings (预警) and their closed loop: 预警 → 叫应 → 转移 → 反馈.

A warning has a level (红/橙/黄/蓝), a type (暴雨, 地灾气象风险, 森林火险…), a validity
period and an area: townships, a GeoJSON/KML polygon file, or a polygon drawn in the app.
Creating it computes who is affected (`affected_features`): every risk point in the area, the
part of every fire-zone polygon inside it (ha, in the metric CRS), the people and households
at risk, and each feature's nearest 避难场所 (`riskmap.resources.nearest_shelter`). That list
is kept in the warning as issued (a snapshot: later layer edits do not rewrite the record of
who was warned), then responses (反馈) are appended per point: 已叫应 (time), 已转移 (people),
无法联系, with who recorded it. Closing a warning freezes it.

Warnings live in the store's records collection ``warnings`` (`riskmap.store.Store`): every
change is one audited, undoable, version-checked write. The township duty contacts (乡镇值班)
are the collection ``duty_contacts``. Apart from the `Store` calls, everything here is pure.

Sources of the rules: the four warning levels and colours follow the 国家突发公共事件总体应急预案
(2006): 红色 (特别严重), 橙色 (严重), 黄色 (较重), 蓝色 (一般). The loop 预警—叫应—转移—反馈 and
the call list (叫应表) follow the county's 2026 work plan (``shared/seed``).

Size (over ~800 lines): one closed loop, in the order of its stages (area → affected →
issue → responses → totals → call list); each stage is a pure function tested alone. The
call-list XLSX writer is the part to move next to `riskmap.exporters` when a second
call-list format appears.
"""

from __future__ import annotations

import datetime as dt
import io as _bytes_io
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

import geopandas as gpd
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from riskmap.catalog import STATUS_CLEARED
from riskmap.errors import RiskmapError, StaleVersionError
from riskmap.resources import nearest_shelter, shelters_from_layers

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from riskmap.layers import LayerData
    from riskmap.project import Project
    from riskmap.store import Store

COLLECTION = "warnings"
"""Records collection holding the warnings."""
DUTY_COLLECTION = "duty_contacts"
"""Records collection holding the township duty contacts (乡镇值班)."""
LEVELS = ("红", "橙", "黄", "蓝")
"""Warning levels, most severe first (国家突发公共事件总体应急预案: 红/橙/黄/蓝色)."""
LEVEL_COLORS = {"红": "#d7191c", "橙": "#fd8d3c", "黄": "#fecc5c", "蓝": "#2b83ba"}
"""Display colour of each level."""
TYPES = (
    "暴雨",
    "地灾气象风险",
    "森林火险",
    "山洪",
    "大风",
    "冰雹",
    "寒潮",
    "高温",
    "道路结冰",
    "其他",
)
"""Warning types the office receives (气象/地灾气象风险/森林火险 warnings)."""
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
"""The county's clock (北京时间): naive times given by users are read in it."""
DEFAULT_HOURS = 24
"""Validity of a warning without ``--to``, hours."""
MAX_AREA_BYTES = 20 * 1024 * 1024
"""Largest polygon file accepted, bytes."""
ID_RE = re.compile(r"^YJ-\d{8}-\d{3}$")
"""Warning ids: ``YJ-<date of issue, 北京时间>-<sequence of the day>``."""


class AlertError(RiskmapError, ValueError):
    """A warning cannot be created, changed or shown as asked (message in Chinese)."""


# --- small helpers ----------------------------------------------------------------------------


def now_local() -> dt.datetime:
    """Return the current time in the county's time zone, to the second."""
    return dt.datetime.now(LOCAL_TZ).replace(microsecond=0)


def parse_time(text: str | dt.datetime, *, label: str = "时间") -> dt.datetime:
    """
    Parse a user's time: ISO 8601 or ``YYYY-MM-DD HH:MM``; naive times are 北京时间.

    Raises
    ------
    AlertError
        When the text is not a time (names `label`).
    """
    if isinstance(text, dt.datetime):
        value = text
    else:
        try:
            value = dt.datetime.fromisoformat(str(text).strip().replace("T", " "))
        except ValueError:
            msg = f"{label}格式不正确: {text!r}（应为 2026-11-30 08:00 或 ISO 8601）"
            raise AlertError(msg) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    return value.astimezone(LOCAL_TZ).replace(microsecond=0)


def _require_editor(user: str | None) -> str:
    """Refuse a change without a signed-in editor (`riskmap.auth`); return the name."""
    name = (user or "").strip()
    if not name:
        msg = "需要编辑权限：请先登录（编辑者）后再发布预警或登记反馈"
        raise AlertError(msg)
    return name


def _num(value: Any) -> float | None:  # noqa: ANN401 - any cell value
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) or math.isinf(out) else out


def _text(value: Any) -> str | None:  # noqa: ANN401 - any cell value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    text = str(value).strip()
    return text or None


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


# --- who is affected ----------------------------------------------------------------------------


def _largest_township(
    piece_m: BaseGeometry, gdf_t_m: gpd.GeoDataFrame
) -> tuple[str | None, str | None]:
    """Return (code, name) of the township holding the largest part of a metric polygon."""
    areas = gdf_t_m.geometry.intersection(piece_m).area
    if areas.empty or areas.max() <= 0:
        return None, None
    row = gdf_t_m.loc[areas.idxmax()]
    return str(row["adcode"]), str(row["name"])


AFFECTED_COLUMNS = [
    "uid",
    "layer",
    "layer_name",
    "name",
    "township_code",
    "township",
    "village",
    "people",
    "households",
    "intersect_ha",
    "resp_unit",
    "resp_name",
    "resp_phone",
]


def affected_features(
    layers: Mapping[str, LayerData],
    area: Area,
    gdf_townships: gpd.GeoDataFrame,
    *,
    metric_crs: str,
) -> gpd.GeoDataFrame:
    """
    List the risk features a warning area reaches, with the people at risk and nearest shelter.

    Rules: only layers with ``role = "risk"``; cleared features (已销号) are left out.
    Points: for an area given as townships, the points the township join put in those
    townships (so a point of 复兴街道, which shares its approximate polygon with 葛城街道, is in
    a 复兴街道 warning and not in a 葛城街道 one); otherwise the points the polygon covers
    (boundary included). Polygons (fire zones): those whose intersection with the area has a
    positive area; ``intersect_ha`` is that area in hectares, computed in `metric_crs`, and
    the township is the one holding the largest part of it. People and households come from
    the fields the catalog names (``people``/``households``; 0 when a layer records none).

    Parameters
    ----------
    layers
        Prepared layers (`riskmap.project.Project.layers`), EPSG:4326.
    area
        The warning area.
    gdf_townships
        Township polygons, EPSG:4326 (``adcode``, ``name``).
    metric_crs
        Projected CRS in metres (`Settings.metric_crs`).

    Returns
    -------
    gdf_affected
        One row per feature, columns `AFFECTED_COLUMNS` + `riskmap.resources.SHELTER_COLUMNS`,
        geometry = the point, or the part of the polygon inside the area; EPSG:4326. Ordered
        by township code, layer (catalog order), people (most first), uid.
    """
    rows: list[dict[str, Any]] = []
    geoms: list[BaseGeometry] = []
    area_geom = area.geometry
    prepared = shapely.prepared.prep(area_geom)
    gdf_t_m = gdf_townships.to_crs(metric_crs)
    codes = set(area.township_codes)
    for order, layer in enumerate(layers.values()):
        spec = layer.spec
        if spec.role != "risk":
            continue
        gdf = layer.gdf
        if "status" in gdf.columns:
            gdf = gdf[gdf["status"].ne(STATUS_CLEARED).fillna(value=True).to_numpy(dtype=bool)]
        gdf = gdf[gdf.geometry.notna().to_numpy() & ~gdf.geometry.is_empty.to_numpy()]
        if gdf.empty:
            continue
        if spec.geometry == "Point":
            if area.kind == "townships":
                mask = gdf["township_code"].astype(object).isin(codes).to_numpy(dtype=bool)
            else:
                mask = [prepared.covers(g) for g in gdf.geometry]
            hits = gdf[mask]
            pieces = list(hits.geometry)
            ha: list[float | None] = [None] * len(hits)
            towns = [
                (_text(c), _text(t))
                for c, t in zip(hits["township_code"], hits["township"], strict=True)
            ]
        else:
            inter = gdf.geometry.intersection(area_geom)
            inter_m = gpd.GeoSeries(inter, crs=gdf.crs).to_crs(metric_crs)
            keep = (inter_m.area > 0).to_numpy()
            hits = gdf[keep]
            pieces = list(inter[keep])
            ha = [float(a) / 1e4 for a in inter_m[keep].area]
            towns = [_largest_township(p, gdf_t_m) for p in inter_m[keep]]
        for (_, feat), piece, hectares, (tcode, tname) in zip(
            hits.iterrows(), pieces, ha, towns, strict=True
        ):
            people = _num(feat.get(spec.people_field)) if spec.people_field else None
            households = _num(feat.get(spec.households_field)) if spec.households_field else None
            rows.append(
                {
                    "uid": str(feat[spec.key]),
                    "layer": spec.id,
                    "layer_name": spec.name,
                    "name": _text(feat.get("name")),
                    "township_code": tcode,
                    "township": tname,
                    "village": _text(feat.get("village")),
                    "people": int(people or 0),
                    "households": int(households or 0),
                    "intersect_ha": None if hectares is None else round(hectares, 2),
                    "resp_unit": _text(feat.get("resp_unit")),
                    "resp_name": _text(feat.get("resp_name")),
                    "resp_phone": _text(feat.get("resp_phone")),
                    "_order": order,
                }
            )
            geoms.append(piece)
    gdf_out = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=[*AFFECTED_COLUMNS, "_order"]), geometry=geoms, crs="EPSG:4326"
    )
    gdf_out = gdf_out.sort_values(
        ["township_code", "_order", "people", "uid"],
        ascending=[True, True, False, True],
        na_position="last",
    ).reset_index(drop=True)
    shelters = nearest_shelter(
        gdf_out, shelters_from_layers(layers), metric_crs=metric_crs, people="people"
    )
    return gpd.GeoDataFrame(
        pd.concat([gdf_out.drop(columns=["_order"]), shelters], axis=1), crs="EPSG:4326"
    )


def _point_records(gdf_affected: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """
    JSON-safe point dicts (no NaN) of `affected_features` output.

    ``geometry`` is the GeoJSON of the point or of the part of a polygon inside the area,
    coordinates rounded to 1e-6° (≈ 0.1 m), so the app can ring what was warned.
    """
    out = []
    geoms = shapely.set_precision(gdf_affected.geometry.to_numpy(), 1e-6)
    rows = gdf_affected.drop(columns="geometry").to_dict(orient="records")
    for row, geom in zip(rows, geoms, strict=True):
        rec: dict[str, Any] = {}
        for key, value in row.items():
            if key in {"shelter_distance_m", "shelter_capacity", "shelter_remaining"}:
                num = _num(value)
                rec[key] = (
                    None
                    if num is None
                    else (round(num, 1) if key == "shelter_distance_m" else int(num))
                )
            elif key in {"people", "households"}:
                rec[key] = int(value)
            elif key == "intersect_ha":
                rec[key] = _num(value)
            else:
                rec[key] = _text(value)
        rec["geometry"] = shapely.geometry.mapping(geom) if geom is not None else None
        out.append(rec)
    return out


def points_frame(record: Mapping[str, Any]) -> gpd.GeoDataFrame:
    """
    Return a stored warning's points as a GeoDataFrame (EPSG:4326), with their responses.

    Columns: the point fields of the record (``uid``, ``layer``, ``layer_name``, ``name``,
    ``township``, ``people``…), plus ``called``, ``moved``, ``unreachable`` from
    `response_states`; geometry from the stored GeoJSON (None when absent).
    """
    states = response_states(record)
    rows, geoms = [], []
    for p in record.get("points", []):
        s = states.get(p["uid"]) or {}
        rows.append(
            {
                **{k: v for k, v in p.items() if k != "geometry"},
                "called": bool(s.get("called")),
                "moved": int(s.get("moved") or 0),
                "unreachable": bool(s.get("unreachable")),
            }
        )
        geoms.append(shape(p["geometry"]) if p.get("geometry") else None)
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs="EPSG:4326")


# --- creating, recording, closing (through the store) ------------------------------------------


def _next_id(records: Sequence[Mapping[str, Any]], when: dt.datetime) -> str:
    day = when.strftime("%Y%m%d")
    used = [str(r.get("id", "")) for r in records if str(r.get("id", "")).startswith(f"YJ-{day}-")]
    n = max((int(u.rsplit("-", 1)[-1]) for u in used if ID_RE.match(u)), default=0) + 1
    return f"YJ-{day}-{n:03d}"


def _write_with_retry(store: Store, change: Any, *, user: str, action: str, source: str) -> Any:  # noqa: ANN401
    """
    Apply ``change(records) -> (records, result, counts)`` to the collection and write it.

    Retried twice when another writer got in between (the store's version check).
    """
    for attempt in range(3):
        version = store.records_version(COLLECTION)
        records = store.read_records(COLLECTION)
        new_records, result, counts = change(records)
        try:
            store.write_records(
                COLLECTION,
                new_records,
                user=user,
                action=action,
                source=source,
                counts=counts,
                expected_version=version,
            )
        except StaleVersionError:
            if attempt == 2:  # noqa: PLR2004
                raise
            continue
        return result
    return None  # pragma: no cover - the loop returns or raises


def new_warning(
    project: Project,
    store: Store,
    *,
    level: str,
    kind: str,
    area: Area,
    user: str,
    valid_from: str | dt.datetime | None = None,
    valid_to: str | dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """
    Create a warning: check it, compute who is affected, store it (audited); return it.

    Parameters
    ----------
    project
        The loaded installation (layers, townships, county outline, settings).
    store
        Where the ``warnings`` collection lives.
    level
        One of `LEVELS` (``"红"``; ``"红色"`` is accepted).
    kind
        One of `TYPES` (the warning's type: 暴雨, 地灾气象风险…).
    area
        Where it applies (`area_from_townships`, `area_from_file`, `area_from_geojson`).
    user
        The editor issuing it (required: `riskmap.auth` decides who is an editor).
    valid_from, valid_to
        Validity; naive times are 北京时间. Default: now, and `DEFAULT_HOURS` later.
    now
        Creation time (tests); default the current time.

    Returns
    -------
    warning
        The stored record: ``id`` (``YJ-YYYYMMDD-NNN``), ``level``, ``type``,
        ``valid_from``, ``valid_to``, ``area``, ``status`` (``"open"``), ``created_at``,
        ``created_by``, ``points`` (see `affected_features`), ``responses`` (``[]``),
        ``demo``.

    Raises
    ------
    AlertError
        No editor, unknown level/type, to ≤ from, an area outside the county, or an area
        with no risk feature. Nothing is written.
    """
    who = _require_editor(user)
    lvl = level.strip().removesuffix("色")
    if lvl not in LEVELS:
        msg = f"预警级别 {level!r} 无效，应为 {'/'.join(LEVELS)}"
        raise AlertError(msg)
    wtype = kind.strip()
    if wtype not in TYPES:
        msg = f"预警类型 {kind!r} 无效，应为 {'/'.join(TYPES)}"
        raise AlertError(msg)
    created = parse_time(now) if now is not None else now_local()
    start = parse_time(valid_from, label="开始时间") if valid_from else created
    end = (
        parse_time(valid_to, label="结束时间")
        if valid_to
        else start + dt.timedelta(hours=DEFAULT_HOURS)
    )
    if end <= start:
        msg = f"结束时间 {end.isoformat()} 应晚于开始时间 {start.isoformat()}"
        raise AlertError(msg)
    settings = project.settings
    check_area_in_county(area.geometry, project.gdf_county, settings.county_name)
    gdf = affected_features(
        project.layers, area, project.gdf_townships, metric_crs=settings.metric_crs
    )
    if gdf.empty:
        msg = "预警范围内没有风险点位（已销号的除外），未创建预警；请检查所选乡镇或范围"
        raise AlertError(msg)
    points = _point_records(gdf)

    def change(
        records: list[dict[str, Any]],
    ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
        record = {
            "id": _next_id(records, created),
            "level": lvl,
            "type": wtype,
            "valid_from": start.isoformat(),
            "valid_to": end.isoformat(),
            "area": area.to_json(),
            "status": "open",
            "created_at": created.isoformat(),
            "created_by": who,
            "closed_at": None,
            "closed_by": None,
            "points": points,
            "responses": [],
            "demo": bool(project.demo),
        }
        counts = {"warning": record["id"], "points": len(points)}
        return [*records, record], record, counts

    source = area.source or area.kind
    return _write_with_retry(store, change, user=who, action="create", source=source)


def list_warnings(store: Store) -> list[dict[str, Any]]:
    """Return every warning, newest first."""
    return sorted(
        store.read_records(COLLECTION), key=lambda r: str(r.get("created_at")), reverse=True
    )


def get_warning(store: Store, warning_id: str) -> dict[str, Any]:
    """
    Return one warning.

    Raises
    ------
    AlertError
        When no warning has that id (lists the known ids).
    """
    records = store.read_records(COLLECTION)
    for record in records:
        if record.get("id") == warning_id:
            return record
    known = "、".join(str(r.get("id")) for r in records[-10:]) or "（尚无预警）"
    msg = f"找不到预警 {warning_id!r}；已有: {known}"
    raise AlertError(msg)


def _frozen_message(record: Mapping[str, Any]) -> str:
    return (
        f"预警 {record['id']} 已于 {record.get('closed_at') or '-'} 由 "
        f"{record.get('closed_by') or '-'} 关闭，记录已冻结，不能再登记或修改"
    )


def record_response(
    store: Store,
    warning_id: str,
    uid: str,
    *,
    user: str,
    called: bool = False,
    moved: int | None = None,
    unreachable: bool = False,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """
    Append a response (反馈) for one point of a warning; return the point's new state.

    Parameters
    ----------
    store
        Where the warnings live.
    warning_id
        The warning.
    uid
        A point of the warning (``points[].uid``).
    user
        The editor recording it (required).
    called
        已叫应: the point's contact answered (time = `now`).
    moved
        已转移: people moved out (≥ 0); implies 已叫应.
    unreachable
        无法联系: nobody answered.
    now
        Time of the response (tests); default the current time.

    Returns
    -------
    state
        `point_state` of the point after this response.

    Raises
    ------
    AlertError
        No editor; a closed warning (frozen); an unknown uid; nothing to record; called and
        unreachable together; negative people. Nothing is written.
    """
    who = _require_editor(user)
    if moved is not None and (int(moved) != moved or moved < 0):
        msg = f"转移人数应为非负整数: {moved}"
        raise AlertError(msg)
    if not (called or unreachable or moved is not None):
        msg = "请至少登记一项：已叫应、已转移人数或无法联系"
        raise AlertError(msg)
    if unreachable and (called or moved):
        msg = "“无法联系”不能与“已叫应/已转移”同时登记"
        raise AlertError(msg)
    when = parse_time(now) if now is not None else now_local()
    entry = {
        "uid": str(uid),
        "time": when.isoformat(),
        "called": bool(called or (moved is not None and moved > 0)),
        "moved": None if moved is None else int(moved),
        "unreachable": bool(unreachable),
        "by": who,
    }

    def change(
        records: list[dict[str, Any]],
    ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
        for i, record in enumerate(records):
            if record.get("id") != warning_id:
                continue
            if record.get("status") == "closed":
                raise AlertError(_frozen_message(record))
            uids = [p["uid"] for p in record.get("points", [])]
            if entry["uid"] not in uids:
                msg = (
                    f"统一编号 {entry['uid']!r} 不在预警 {warning_id} 的名单中"
                    f"（共 {len(uids)} 个点位）"
                )
                raise AlertError(msg)
            updated = {**record, "responses": [*record.get("responses", []), entry]}
            new = [*records[:i], updated, *records[i + 1 :]]
            state = response_states(updated)[entry["uid"]]
            return new, state, {"warning": warning_id, "uid": entry["uid"]}
        msg = f"找不到预警 {warning_id!r}"
        raise AlertError(msg)

    return _write_with_retry(store, change, user=who, action="response", source=warning_id)


def close_warning(
    store: Store, warning_id: str, *, user: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """
    Close a warning: its record is frozen (no further responses); return it.

    Raises
    ------
    AlertError
        No editor, unknown id, or already closed.
    """
    who = _require_editor(user)
    when = parse_time(now) if now is not None else now_local()

    def change(
        records: list[dict[str, Any]],
    ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
        for i, record in enumerate(records):
            if record.get("id") != warning_id:
                continue
            if record.get("status") == "closed":
                raise AlertError(_frozen_message(record))
            closed = {**record, "status": "closed", "closed_at": when.isoformat(), "closed_by": who}
            return [*records[:i], closed, *records[i + 1 :]], closed, {"warning": warning_id}
        msg = f"找不到预警 {warning_id!r}"
        raise AlertError(msg)

    return _write_with_retry(store, change, user=who, action="close", source=warning_id)


# --- progress ---------------------------------------------------------------------------------


def response_states(record: Mapping[str, Any]) -> dict[str, dict[str, Any] | None]:
    """
    Fold a warning's responses into each point's current state.

    Returns
    -------
    states
        ``{uid: None}`` for a point without response, else ``{"called": bool, "called_at":
        first 已叫应 time or None, "moved": people (latest figure, 0 if never given),
        "unreachable": bool (latest contact attempt failed and nobody answered since),
        "time": latest response time, "by": who recorded it}``.
    """
    states: dict[str, dict[str, Any] | None] = {p["uid"]: None for p in record.get("points", [])}
    for entry in record.get("responses", []):
        uid = entry.get("uid")
        if uid not in states:
            continue
        state = states[uid] or {
            "called": False,
            "called_at": None,
            "moved": 0,
            "unreachable": False,
            "time": None,
            "by": None,
        }
        state = dict(state)
        if entry.get("called"):
            state["called"] = True
            state["called_at"] = state["called_at"] or entry.get("time")
            state["unreachable"] = False
        if entry.get("unreachable"):
            state["unreachable"] = not state["called"]
        if entry.get("moved") is not None:
            state["moved"] = int(entry["moved"])
        state["time"] = entry.get("time")
        state["by"] = entry.get("by")
        states[uid] = state
    return states


def warning_totals(record: Mapping[str, Any]) -> dict[str, Any]:
    """
    Return the progress of a warning.

    Returns
    -------
    totals
        ``points`` (features warned), ``people`` / ``households`` (at risk), ``called``
        (points 已叫应), ``moved`` (people 已转移), ``unreachable`` (points 无法联系 now),
        ``call_rate`` (叫应率 = called / points, 0–1), ``moved_share`` (moved / people, or
        None when no people are recorded).
    """
    points = record.get("points", [])
    states = response_states(record)
    people = sum(int(p.get("people") or 0) for p in points)
    called = sum(1 for s in states.values() if s and s["called"])
    moved = sum(int(s["moved"]) for s in states.values() if s)
    return {
        "points": len(points),
        "people": people,
        "households": sum(int(p.get("households") or 0) for p in points),
        "called": called,
        "moved": moved,
        "unreachable": sum(1 for s in states.values() if s and s["unreachable"]),
        "call_rate": called / len(points) if points else 0.0,
        "moved_share": moved / people if people else None,
    }


def per_township(record: Mapping[str, Any]) -> pd.DataFrame:
    """
    Points, people, households, called, moved, unreachable per township of a warning.

    Returns
    -------
    df
        Columns ``township_code``, ``township``, ``points``, ``people``, ``households``,
        ``called``, ``moved``, ``unreachable``; one row per township, code order.
    """
    states = response_states(record)
    rows = []
    for p in record.get("points", []):
        s = states.get(p["uid"])
        rows.append(
            {
                "township_code": p.get("township_code") or "",
                "township": p.get("township") or "（未落入乡镇）",
                "points": 1,
                "people": int(p.get("people") or 0),
                "households": int(p.get("households") or 0),
                "called": int(bool(s and s["called"])),
                "moved": int(s["moved"]) if s else 0,
                "unreachable": int(bool(s and s["unreachable"])),
            }
        )
    cols = [
        "township_code",
        "township",
        "points",
        "people",
        "households",
        "called",
        "moved",
        "unreachable",
    ]
    df = pd.DataFrame(rows, columns=cols)
    return df.groupby(["township_code", "township"], as_index=False, sort=True).sum()


def show_json(record: Mapping[str, Any]) -> dict[str, Any]:
    """
    Return the JSON of ``riskmap warning show --format json``.

    Returns
    -------
    doc
        ``{"id", "level", "type", "status", "valid_from", "valid_to", "points": [{"uid",
        "layer", "township_code", "people", "shelter_uid", "shelter_distance_m",
        "response"}], "totals": {"points", "people", "called", "moved", "unreachable"}}``;
        ``response`` is None or the point's state (`response_states`).
    """
    states = response_states(record)
    totals = warning_totals(record)
    return {
        "id": record["id"],
        "level": record["level"],
        "type": record["type"],
        "status": record.get("status"),
        "valid_from": record.get("valid_from"),
        "valid_to": record.get("valid_to"),
        "points": [
            {
                "uid": p["uid"],
                "layer": p["layer"],
                "township_code": p.get("township_code"),
                "people": int(p.get("people") or 0),
                "shelter_uid": p.get("shelter_uid"),
                "shelter_distance_m": p.get("shelter_distance_m"),
                "response": states.get(p["uid"]),
            }
            for p in record.get("points", [])
        ],
        "totals": {k: totals[k] for k in ("points", "people", "called", "moved", "unreachable")},
    }


# --- the call list (叫应表) -------------------------------------------------------------------

CALL_HEADERS = [
    ("seq", "序号"),
    ("layer_name", "图层"),
    ("uid", "统一编号"),
    ("name", "名称"),
    ("village", "村/社区"),
    ("resp_name", "责任人"),
    ("resp_phone", "联系电话"),
    ("people", "威胁人数(人)"),
    ("households", "威胁户数(户)"),
    ("intersect_ha", "范围内面积(ha)"),
    ("shelter_name", "最近避难场所"),
    ("shelter_distance_m", "直线距离(m)"),
    ("shelter_remaining", "场所剩余容量(人)"),
    ("called_at", "叫应时间"),
    ("moved", "已转移(人)"),
    ("unreachable", "无法联系"),
    ("by", "登记人"),
]
"""Columns of a call-list row: key in `call_list` rows, header in the XLSX."""
MOBILE_RE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
"""A mainland mobile number (11 digits, 13x–19x), masked in public versions."""


def mask_phone(text: str | None) -> str | None:
    """
    Mask a phone number for a public version: ``13900001234`` → ``139****1234``.

    Any other digit run of 7+ (a landline) keeps only its last 4 digits. None stays None.
    """
    if text is None:
        return None
    out = MOBILE_RE.sub(r"\1****\2", text)
    return re.sub(
        r"(?<![\d*])\d{3,}(\d{4})(?!\d)", lambda m: "*" * (len(m.group(0)) - 4) + m.group(1), out
    )


def mask_name(text: str | None) -> str | None:
    """Mask a person's name for a public version: keep the surname, ``王某某`` → ``王**``."""
    if not text:
        return text
    return text[0] + "*" * max(len(text) - 1, 1)


def duty_contacts(store: Store) -> dict[str, dict[str, Any]]:
    """
    Return the township duty contacts (乡镇值班) by 9-digit township code.

    Read from the records collection ``duty_contacts``: objects with ``township_code``,
    ``township``, ``duty_name``, ``duty_phone``, ``duty_office`` (and ``demo``).
    """
    return {
        str(r.get("township_code")): dict(r)
        for r in store.read_records(DUTY_COLLECTION)
        if r.get("township_code")
    }


def call_list(
    record: Mapping[str, Any],
    duties: Mapping[str, Mapping[str, Any]],
    *,
    public: bool = False,
) -> dict[str, Any]:
    """
    Build the call list (叫应表) of a warning: grouped by township, duty contact first.

    Parameters
    ----------
    record
        The warning (`get_warning`).
    duties
        Duty contacts by township code (`duty_contacts`).
    public
        Public version: every phone masked (`mask_phone`) and names reduced to the surname
        (`mask_name`).

    Returns
    -------
    doc
        ``{"id", "level", "type", "valid_from", "valid_to", "status", "public", "demo",
        "totals" (`warning_totals`), "townships": [{"township_code", "township", "duty":
        {"duty_name", "duty_phone", "duty_office"} | None, "totals": {points, people,
        called, moved, unreachable}, "rows": [{key of `CALL_HEADERS`: value}]}]}``; rows
        keep the warning's order (layer, most people first).
    """
    states = response_states(record)
    by_town: dict[str, list[Mapping[str, Any]]] = {}
    names: dict[str, str] = {}
    for p in record.get("points", []):
        code = p.get("township_code") or ""
        by_town.setdefault(code, []).append(p)
        names[code] = p.get("township") or "（未落入乡镇）"
    towns = []
    for code in sorted(by_town):
        rows = []
        for seq, p in enumerate(by_town[code], start=1):
            s = states.get(p["uid"]) or {}
            rows.append(
                {
                    "seq": seq,
                    "layer_name": p.get("layer_name"),
                    "uid": p["uid"],
                    "name": p.get("name"),
                    "village": p.get("village"),
                    "resp_name": mask_name(p.get("resp_name")) if public else p.get("resp_name"),
                    "resp_phone": mask_phone(p.get("resp_phone"))
                    if public
                    else p.get("resp_phone"),
                    "people": int(p.get("people") or 0),
                    "households": int(p.get("households") or 0),
                    "intersect_ha": p.get("intersect_ha"),
                    "shelter_name": p.get("shelter_name"),
                    "shelter_distance_m": p.get("shelter_distance_m"),
                    "shelter_remaining": p.get("shelter_remaining"),
                    "called_at": s.get("called_at"),
                    "moved": s.get("moved"),
                    "unreachable": "是" if s.get("unreachable") else None,
                    "by": (mask_name(s.get("by")) if public else s.get("by")) if s else None,
                }
            )
        duty_raw = duties.get(code)
        duty = None
        if duty_raw:
            duty = {
                "duty_name": mask_name(duty_raw.get("duty_name"))
                if public
                else duty_raw.get("duty_name"),
                "duty_phone": mask_phone(duty_raw.get("duty_phone"))
                if public
                else duty_raw.get("duty_phone"),
                "duty_office": duty_raw.get("duty_office"),
            }
        part = warning_totals({"points": by_town[code], "responses": record.get("responses", [])})
        towns.append(
            {
                "township_code": code or None,
                "township": names[code],
                "duty": duty,
                "totals": {
                    k: part[k] for k in ("points", "people", "called", "moved", "unreachable")
                },
                "rows": rows,
            }
        )
    return {
        "id": record["id"],
        "level": record["level"],
        "type": record["type"],
        "valid_from": record.get("valid_from"),
        "valid_to": record.get("valid_to"),
        "status": record.get("status"),
        "public": public,
        "demo": bool(record.get("demo")),
        "totals": warning_totals(record),
        "townships": towns,
    }


def call_list_json(doc: Mapping[str, Any]) -> bytes:
    """Return the call list as UTF-8 JSON bytes (indented, Chinese kept)."""
    return (json.dumps(doc, ensure_ascii=False, allow_nan=False, indent=1) + "\n").encode()


def call_list_xlsx(doc: Mapping[str, Any], *, county_name: str = "城口县") -> bytes:  # noqa: PLR0915 - one sheet, laid out top to bottom
    """
    Write the call list as a print-ready XLSX workbook (one sheet, A4 landscape).

    Layout: title (级别、类型、编号), a note line (validity, totals, 演示数据/公开版), then per
    township a bold band with the township and its duty contact (值班), the header row and
    the points. Header rows repeat on every printed page; columns fit one page wide; every
    text is written as a text cell (never a formula: OWASP CSV-injection guidance, as the
    township lists do).

    Returns
    -------
    data
        The ``.xlsx`` bytes.
    """
    from openpyxl import Workbook  # noqa: PLC0415 - heavy import kept local
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # noqa: PLC0415
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side  # noqa: PLC0415
    from openpyxl.utils import get_column_letter  # noqa: PLC0415

    from riskmap.exporters import neutralise_cell  # noqa: PLC0415

    wb = Workbook()
    ws = wb.active
    ws.title = "叫应表"
    ncols = len(CALL_HEADERS)
    thin = Side(style="thin", color="999999")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    band_fill = PatternFill("solid", fgColor="FCE4D6")
    head_fill = PatternFill("solid", fgColor="DDEBF7")

    def put(row: int, col: int, value: Any) -> Any:  # noqa: ANN401
        cell = ws.cell(row=row, column=col)
        if value is None:
            return cell
        if isinstance(value, bool):
            value = "是" if value else "否"
        if isinstance(value, (int, float)):
            cell.value = value
            return cell
        cell.value = ILLEGAL_CHARACTERS_RE.sub("", neutralise_cell(str(value)))
        cell.data_type = "s"
        cell.number_format = "@"
        return cell

    totals = doc["totals"]
    flags = []
    if doc.get("public"):
        flags.append("公开版：电话、姓名已隐去")
    if doc.get("demo"):
        flags.append("演示数据")
    title = f"{county_name}{doc['level']}色{doc['type']}预警 叫应表（{doc['id']}）"
    put(1, 1, title).font = Font(bold=True, size=14)
    ws.cell(row=1, column=1).alignment = Alignment(horizontal="center")
    rate = f"{totals['call_rate'] * 100:.0f}%"
    note = (
        f"有效期 {str(doc.get('valid_from'))[:16]} 至 {str(doc.get('valid_to'))[:16]}；"
        f"点位 {totals['points']} 个，威胁 {totals['people']} 人 {totals['households']} 户；"
        f"已叫应 {totals['called']}（叫应率 {rate}），已转移 {totals['moved']} 人，"
        f"无法联系 {totals['unreachable']}"
    )
    put(2, 1, "；".join([note, *flags])).alignment = Alignment(wrap_text=True, vertical="top")
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=ncols)
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=ncols)
    ws.row_dimensions[2].height = 30
    widths = [len(h) * 2 for _, h in CALL_HEADERS]
    row = 4
    first_header = row + 1
    for town in doc["townships"]:
        duty = town.get("duty") or {}
        t = town["totals"]
        band = (
            f"{town['township']}（{town.get('township_code') or '-'}）  值班："
            f"{duty.get('duty_office') or '-'} {duty.get('duty_name') or '-'} "
            f"{duty.get('duty_phone') or '-'}  |  点位 {t['points']} 个，威胁 {t['people']} 人，"
            f"已叫应 {t['called']}，已转移 {t['moved']} 人，无法联系 {t['unreachable']}"
        )
        cell = put(row, 1, band)
        cell.font = Font(bold=True)
        cell.fill = band_fill
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=ncols)
        row += 1
        for col, (_, header) in enumerate(CALL_HEADERS, start=1):
            cell = put(row, col, header)
            cell.font = Font(bold=True)
            cell.fill = head_fill
            cell.border = border
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        row += 1
        for item in town["rows"]:
            for col, (key, _) in enumerate(CALL_HEADERS, start=1):
                value = item.get(key)
                cell = put(row, col, value)
                cell.border = border
                if key == "shelter_distance_m" and value is not None:
                    cell.number_format = "0"
                width = sum(
                    2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(value or "")
                )
                widths[col - 1] = max(widths[col - 1], width)
            row += 1
        row += 1
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = min(max(width + 2, 6), 40)
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.print_title_rows = f"{first_header}:{first_header}"
    ws.freeze_panes = "A4"
    buf = _bytes_io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
