"""预警 tab: issue a warning, see who is affected, the call list (叫应表), record responses.

Viewing needs no sign-in (phones and names are then masked, as in the public call list).
Issuing, recording responses and closing need an editor (`riskmap.auth`); the library checks
it again (`riskmap.alerts` refuses a change without a user). The area is chosen by
townships, drawn on the map (Leaflet.draw, vendored: works offline) or uploaded as a
GeoJSON/KML file.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from riskmap import alerts
from riskmap.auth import EditorSession, guarded_store
from riskmap.errors import RiskmapError
from riskmap.mapview import build_map
from riskmap.mapview.warning import add_draw_tool, add_warning_overlay
from riskmap.store import open_store
from riskmap.ui.text import fmt, md

if TYPE_CHECKING:
    import geopandas as gpd
    from shapely.geometry.base import BaseGeometry

    from riskmap.project import Project
    from riskmap.settings import Settings
    from riskmap.store import Store

SESSION_DRAWN = "riskmap_warning_drawn"
"""Session key of the polygons drawn for a new warning (GeoJSON features)."""
SESSION_SELECTED = "riskmap_warning_selected"
"""Session key (widget) of the warning shown."""
SESSION_NOTICE = "riskmap_warning_notice"
"""Session key of a success message to show after a rerun."""
MODE_TOWNSHIPS, MODE_DRAW, MODE_FILE = "按乡镇", "在地图上绘制", "上传范围文件"
STATUS_TEXT = {"open": "进行中", "closed": "已关闭"}
POINT_HEADERS = {
    "layer_name": "图层",
    "uid": "统一编号",
    "name": "名称",
    "township": "乡镇",
    "people": "威胁人数",
    "households": "威胁户数",
    "intersect_ha": "范围内面积(ha)",
    "shelter_name": "最近避难场所",
    "shelter_distance_m": "直线距离(m)",
    "shelter_remaining": "场所剩余容量",
}


def _risk_layers(project: Project) -> dict[str, Any]:
    return {lid: layer for lid, layer in project.layers.items() if layer.spec.role == "risk"}


def _map(project: Project, *, key: str, draw: bool, area: BaseGeometry | None,
         gdf_affected: gpd.GeoDataFrame | None, color: str) -> dict | None:  # fmt: skip
    """Build the warning map (risk layers + overlay [+ drawing tool]) and show it."""
    fmap = build_map(
        _risk_layers(project),
        project.gdf_townships,
        project.gdf_county,
        settings=project.settings,
        demo=project.demo,
    )
    add_warning_overlay(fmap, area, gdf_affected, color=color)
    if draw:
        add_draw_tool(fmap)
    return st_folium(
        fmap,
        height=500,
        use_container_width=True,
        returned_objects=["all_drawings"] if draw else [],
        key=key,
    )


def _metrics(totals: dict[str, Any]) -> None:
    cols = st.columns(5)
    cols[0].metric("预警点位", f"{totals['points']}")
    cols[1].metric("威胁人数", f"{totals['people']}")
    cols[2].metric("叫应率", f"{totals['call_rate'] * 100:.0f}%")
    cols[3].metric("已转移(人)", f"{totals['moved']} / {totals['people']}")
    cols[4].metric("无法联系", f"{totals['unreachable']}")


# ----------------------------------------------------------------------------- new warning


def _drawn_area() -> BaseGeometry | None:
    features = st.session_state.get(SESSION_DRAWN) or []
    if not features:
        return None
    return alerts.area_from_geojson({"type": "FeatureCollection", "features": features})


def _area_input(project: Project, mode: str) -> alerts.Area | None:
    """Read the area from the widgets of `mode`; None when not given yet."""
    if mode == MODE_TOWNSHIPS:
        names = st.multiselect(
            "预警乡镇", list(project.township_codes["name"]), key="riskmap_warning_towns"
        )
        return alerts.area_from_townships(project, names) if names else None
    if mode == MODE_FILE:
        upload = st.file_uploader(
            "预警范围文件（GeoJSON / KML，WGS84 经纬度）",
            type=["geojson", "json", "kml"],
            key="riskmap_warning_file",
        )
        if upload is None:
            return None
        geometry = alerts.area_from_file(upload.getvalue(), upload.name)
        return alerts.Area("file", geometry, source=upload.name)
    geometry = _drawn_area()
    return alerts.Area("drawn", geometry) if geometry is not None else None


def _new_warning(project: Project, store: Store, editor: str) -> None:
    c1, c2, c3, c4 = st.columns(4)
    level = c1.selectbox("预警级别", alerts.LEVELS, key="riskmap_warning_level")
    kind = c2.selectbox("预警类型", alerts.TYPES, key="riskmap_warning_type")
    start = c3.text_input(
        "开始时间（北京时间）",
        value=alerts.now_local().strftime("%Y-%m-%d %H:%M"),
        key="riskmap_warning_from",
    )
    hours = c4.number_input(
        "持续时长（小时）", min_value=1, max_value=240, value=alerts.DEFAULT_HOURS, step=1
    )
    mode = st.radio(
        "预警范围", [MODE_TOWNSHIPS, MODE_DRAW, MODE_FILE], horizontal=True,
        key="riskmap_warning_mode",
    )  # fmt: skip
    area = gdf = None
    try:
        area = _area_input(project, mode)
        if area is not None:
            alerts.check_area_in_county(
                area.geometry, project.gdf_county, project.settings.county_name
            )
            gdf = alerts.affected_features(
                project.layers,
                area,
                project.gdf_townships,
                metric_crs=project.settings.metric_crs,
            )
    except RiskmapError as exc:
        st.error(md(exc))
        area = gdf = None
    if mode == MODE_DRAW:
        st.caption("用地图左上角的多边形/矩形工具绘制范围，单击第一个点结束；可画多个范围。")
        result = _map(
            project,
            key="riskmap_warning_draw_map",
            draw=True,
            area=area.geometry if area is not None else None,
            gdf_affected=gdf,
            color=alerts.LEVEL_COLORS[level],
        )
        drawings = (result or {}).get("all_drawings") or []
        polygons = [d for d in drawings if (d.get("geometry") or {}).get("type") == "Polygon"]
        if polygons and polygons != st.session_state.get(SESSION_DRAWN):
            st.session_state[SESSION_DRAWN] = polygons
            st.rerun()
        if st.session_state.get(SESSION_DRAWN) and st.button("清除绘制的范围"):
            st.session_state[SESSION_DRAWN] = []
            st.rerun()
    if area is None or gdf is None:
        st.info("请选择乡镇、绘制范围或上传范围文件。")
        return
    people = int(gdf["people"].sum())
    households = int(gdf["households"].sum())
    st.markdown(f"**范围内点位 {len(gdf):d} 个**，威胁 {people:d} 人 {households:d} 户")
    if len(gdf):
        st.dataframe(
            pd.DataFrame(gdf.drop(columns="geometry"))[list(POINT_HEADERS)].rename(
                columns=POINT_HEADERS
            ),
            hide_index=True,
            use_container_width=True,
        )
    if st.button("发布预警", type="primary", key="riskmap_warning_issue"):
        try:
            end = alerts.parse_time(start, label="开始时间") + dt.timedelta(hours=int(hours))
            record = alerts.new_warning(
                project, store, level=level, kind=kind, area=area, user=editor,
                valid_from=start, valid_to=end,
            )  # fmt: skip
        except RiskmapError as exc:
            st.error(md(exc))
            return
        st.session_state[SESSION_DRAWN] = []
        st.session_state[SESSION_SELECTED] = record["id"]
        st.session_state[SESSION_NOTICE] = (
            f"已发布 {record['id']} {record['level']}色{record['type']}预警："
            f"点位 {len(record['points'])} 个"
        )
        st.rerun()


# ----------------------------------------------------------------------------- one warning


def _label(record: dict[str, Any]) -> str:
    state = STATUS_TEXT.get(str(record.get("status")), "")
    return f"{record['id']} {record['level']}色{record['type']}（{state}）"


def _call_list(doc: dict[str, Any]) -> None:
    headers = dict(alerts.CALL_HEADERS)
    for town in doc["townships"]:
        duty = town.get("duty") or {}
        t = town["totals"]
        st.markdown(
            f"**{md(town['township'])}** 值班：{md(duty.get('duty_office') or '-')} "
            f"{md(duty.get('duty_name') or '-')} {md(duty.get('duty_phone') or '-')}"
            f" · 点位 {md(t['points'])}，威胁 {md(t['people'])} 人，已叫应 {md(t['called'])}，"
            f"已转移 {md(t['moved'])} 人，无法联系 {md(t['unreachable'])}"
        )
        frame = pd.DataFrame(town["rows"], columns=list(headers)).rename(columns=headers)
        blank = frame.astype(object).where(frame.notna(), "")  # empty cells, not "None"
        st.dataframe(blank, hide_index=True, use_container_width=True)


def _record_form(store: Store, record: dict[str, Any], editor: str) -> None:
    points = record["points"]
    labels = {
        p["uid"]: f"{p['uid']} {p.get('name') or ''}（{p.get('township') or '-'}）" for p in points
    }
    with st.form("riskmap_warning_response", clear_on_submit=True):
        st.markdown("**登记反馈**")
        c1, c2, c3 = st.columns([3, 2, 2])
        uid = c1.selectbox("点位", list(labels), format_func=labels.get)
        outcome = c2.radio("结果", ["已叫应", "无法联系"], horizontal=True)
        moved = c3.number_input("已转移人数", min_value=0, value=0, step=1)
        if not st.form_submit_button("登记"):
            return
    try:
        called = outcome == "已叫应"
        alerts.record_response(
            store, record["id"], uid, user=editor, called=called,
            unreachable=not called, moved=int(moved) if called else None,
        )  # fmt: skip
    except RiskmapError as exc:
        st.error(md(exc))
        return
    st.session_state[SESSION_NOTICE] = f"已登记 {uid}：{outcome}"
    st.rerun()


def _warning_panel(project: Project, store: Store, editor: str | None) -> None:
    records = alerts.list_warnings(store)
    if not records:
        st.caption("尚无预警。")
        return
    ids = [r["id"] for r in records]
    if st.session_state.get(SESSION_SELECTED) not in ids:
        st.session_state[SESSION_SELECTED] = ids[0]
    by_id = {r["id"]: r for r in records}
    wid = st.selectbox(
        "查看预警", ids, format_func=lambda i: _label(by_id[i]), key=SESSION_SELECTED
    )
    record = by_id[wid]
    st.caption(
        f"有效期 {md(record['valid_from'][:16])} 至 {md(record['valid_to'][:16])}；"
        f"发布 {md(record.get('created_by') or '-')} {md(record['created_at'][:16])}"
    )
    _metrics(alerts.warning_totals(record))
    area = alerts.Area.from_json(record["area"]).geometry
    _map(
        project,
        key="riskmap_warning_map",
        draw=False,
        area=area,
        gdf_affected=alerts.points_frame(record),
        color=alerts.LEVEL_COLORS.get(record["level"], "#d7191c"),
    )
    public = editor is None
    doc = alerts.call_list(record, alerts.duty_contacts(store), public=public)
    st.markdown("#### 叫应表" + ("（公开版：电话、姓名已隐去）" if public else ""))
    _call_list(doc)
    c1, c2 = st.columns(2)
    suffix = "_公开版" if public else ""
    c1.download_button(
        "下载叫应表（Excel）",
        alerts.call_list_xlsx(doc, county_name=project.settings.county_name),
        file_name=f"{wid}_叫应表{suffix}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    c2.download_button(
        "下载叫应表（JSON）",
        alerts.call_list_json(doc),
        file_name=f"{wid}_叫应表{suffix}.json",
        mime="application/json",
    )
    if record.get("status") == "closed":
        st.info(
            fmt(
                "该预警已于 {} 由 {} 关闭，记录已冻结。",
                record.get("closed_at", "")[:16],
                record.get("closed_by") or "-",
            )
        )
        return
    if editor is None:
        st.info("登记反馈、关闭预警需登录（左侧“编辑权限”）。")
        return
    _record_form(store, record, editor)
    if st.button("关闭预警（冻结记录）", key="riskmap_warning_close"):
        try:
            alerts.close_warning(store, wid, user=editor)
        except RiskmapError as exc:
            st.error(md(exc))
            return
        st.session_state[SESSION_NOTICE] = f"已关闭 {wid}，记录已冻结"
        st.rerun()


def warnings_view(project: Project, settings: Settings, who: EditorSession) -> None:
    """
    Render the 预警 tab.

    Parameters
    ----------
    project
        The loaded installation.
    settings
        Where the store is (`riskmap.store.open_store`).
    who
        The session (`riskmap.auth.sign_in_panel`). A viewer sees a read-only tab with masked
        phones; every write goes through `riskmap.auth.guarded_store`, so the role is checked
        on the server for each issue, response and close, not only by hiding widgets.
    """
    store = guarded_store(open_store(settings), who)
    editor = who.editor if who.can_edit else None
    if notice := st.session_state.pop(SESSION_NOTICE, None):
        st.success(md(notice))
    if editor is not None:
        with st.expander("发布预警", expanded=True):
            _new_warning(project, store, editor)
    else:
        st.info("查看无需登录；发布预警、登记反馈需登录（左侧“编辑权限”）。")
    _warning_panel(project, store, editor)
