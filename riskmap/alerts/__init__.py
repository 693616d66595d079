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

Modules: `riskmap.alerts.area` (the area), this module (who is affected; issue, respond,
close), `riskmap.alerts.totals` (where a warning stands), `riskmap.alerts.calllist` (叫应表 and
its XLSX/JSON), `riskmap.alerts.common` (constants, `AlertError`, cell/time helpers). Every
public name is importable from `riskmap.alerts`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pandas as pd

import geopandas as gpd
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from riskmap.alerts.area import (
    Area,
    area_from_file,
    area_from_geojson,
    area_from_townships,
    check_area_in_county,
)
from riskmap.alerts.calllist import (
    CALL_HEADERS,
    MOBILE_RE,
    call_list,
    call_list_json,
    call_list_xlsx,
    duty_contacts,
    mask_name,
    mask_phone,
)
from riskmap.alerts.common import (
    COLLECTION,
    DEFAULT_HOURS,
    DUTY_COLLECTION,
    ID_RE,
    LEVEL_COLORS,
    LEVELS,
    LOCAL_TZ,
    MAX_AREA_BYTES,
    TYPES,
    AlertError,
    cell_number,
    cell_text,
    now_local,
    parse_time,
    require_user,
)
from riskmap.alerts.totals import per_township, response_states, show_json, warning_totals
from riskmap.catalog import STATUS_CLEARED
from riskmap.errors import StaleVersionError
from riskmap.resources import nearest_shelter, shelters_from_layers

__all__ = [
    "CALL_HEADERS",
    "COLLECTION",
    "DEFAULT_HOURS",
    "DUTY_COLLECTION",
    "ID_RE",
    "LEVELS",
    "LEVEL_COLORS",
    "LOCAL_TZ",
    "MAX_AREA_BYTES",
    "MOBILE_RE",
    "TYPES",
    "AlertError",
    "Area",
    "affected_features",
    "area_from_file",
    "area_from_geojson",
    "area_from_townships",
    "call_list",
    "call_list_json",
    "call_list_xlsx",
    "check_area_in_county",
    "close_warning",
    "duty_contacts",
    "get_warning",
    "list_warnings",
    "mask_name",
    "mask_phone",
    "new_warning",
    "now_local",
    "parse_time",
    "per_township",
    "points_frame",
    "record_response",
    "response_states",
    "show_json",
    "warning_totals",
]

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from riskmap.layers import LayerData
    from riskmap.project import Project
    from riskmap.store import Store


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
                (cell_text(c), cell_text(t))
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
            people = cell_number(feat.get(spec.people_field)) if spec.people_field else None
            households = (
                cell_number(feat.get(spec.households_field)) if spec.households_field else None
            )
            rows.append(
                {
                    "uid": str(feat[spec.key]),
                    "layer": spec.id,
                    "layer_name": spec.name,
                    "name": cell_text(feat.get("name")),
                    "township_code": tcode,
                    "township": tname,
                    "village": cell_text(feat.get("village")),
                    "people": int(people or 0),
                    "households": int(households or 0),
                    "intersect_ha": None if hectares is None else round(hectares, 2),
                    "resp_unit": cell_text(feat.get("resp_unit")),
                    "resp_name": cell_text(feat.get("resp_name")),
                    "resp_phone": cell_text(feat.get("resp_phone")),
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
                num = cell_number(value)
                rec[key] = (
                    None
                    if num is None
                    else (round(num, 1) if key == "shelter_distance_m" else int(num))
                )
            elif key in {"people", "households"}:
                rec[key] = int(value)
            elif key == "intersect_ha":
                rec[key] = cell_number(value)
            else:
                rec[key] = cell_text(value)
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
    who = require_user(user)
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


def _open_record(records: Sequence[Mapping[str, Any]], warning_id: str) -> tuple[int, Any]:
    """Return ``(index, record)`` of the warning, refusing an unknown or closed one."""
    for i, record in enumerate(records):
        if record.get("id") == warning_id:
            if record.get("status") == "closed":
                raise AlertError(_frozen_message(record))
            return i, record
    msg = f"找不到预警 {warning_id!r}"
    raise AlertError(msg)


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
    who = require_user(user)
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
        i, record = _open_record(records, warning_id)
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
    who = require_user(user)
    when = parse_time(now) if now is not None else now_local()

    def change(
        records: list[dict[str, Any]],
    ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
        i, record = _open_record(records, warning_id)
        closed = {**record, "status": "closed", "closed_at": when.isoformat(), "closed_by": who}
        return [*records[:i], closed, *records[i + 1 :]], closed, {"warning": warning_id}

    return _write_with_retry(store, change, user=who, action="close", source=warning_id)
