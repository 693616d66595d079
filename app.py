"""城口县安全风险“一张图” — Streamlit page. UI only: widgets → riskmap calls → render.

Run with ``riskmap serve`` (or ``streamlit run app.py``). Works with no internet: the map's
Leaflet files are served from ``static/vendor`` (copied from the installed XStatic packages).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from riskmap import aggregate, exporters, io
from riskmap.assets import install_static_assets
from riskmap.catalog import STATUS_ORDER, LayerSpec
from riskmap.errors import RiskmapError
from riskmap.importers import (
    ImportPlan,
    commit_import,
    guess_mapping,
    plan_import,
    report_frame,
    report_xlsx,
)
from riskmap.layers import SHARE_COLUMNS, LayerData, filter_features
from riskmap.mapview import build_map
from riskmap.project import Project, load_project
from riskmap.readers import read_table
from riskmap.settings import Settings

APP_DIR = Path(__file__).resolve().parent
ALL = "全县"
SHARES_EMPTY = pd.DataFrame(columns=SHARE_COLUMNS)
DEFAULT_STATUSES = [s for s in STATUS_ORDER if s != "已销号"]

st.set_page_config(page_title="城口县安全风险一张图", page_icon="🗺️", layout="wide")


@st.cache_resource
def _static_assets() -> bool:
    """Copy Leaflet files into ./static/vendor once per server (not data)."""
    install_static_assets(APP_DIR / "static")
    return True


def _data_version(settings: Settings) -> tuple:
    """File stamps that invalidate the cache when a layer or boundary file changes."""
    paths = [settings.catalog_path, settings.township_polygons_path, settings.county_path]
    paths += sorted(settings.layers_dir.glob("*.geojson"))
    return tuple((str(p), p.stat().st_mtime_ns) for p in paths if p.exists())


@st.cache_data(show_spinner="正在加载图层与乡镇界线…")
def _load(_settings: Settings, version: tuple) -> Project:
    """Load and join every layer; cached per data version."""
    del version
    return load_project(_settings)


def _sidebar(project: Project) -> dict:
    """Read the filters; defaults come from the URL query string (shareable views)."""
    qp = st.query_params
    sb = st.sidebar
    sb.header("筛选")
    names = [ALL, *project.township_codes["name"]]
    default_t = qp.get("township", ALL)
    township = sb.selectbox(
        "乡镇/街道", names, index=names.index(default_t) if default_t in names else 0
    )
    layer_ids = list(project.layers)
    q_layers = [x for x in qp.get("layers", ",".join(layer_ids)).split(",") if x in layer_ids]
    visible = [
        lid for lid in layer_ids
        if sb.checkbox(project.layers[lid].spec.name, value=lid in q_layers, key=f"show_{lid}")
    ]  # fmt: skip
    statuses = sb.multiselect("状态", list(STATUS_ORDER), default=DEFAULT_STATUSES)
    classes: dict[str, list[str]] = {}
    with sb.expander("等级筛选"):
        for lid in visible:
            spec = project.layers[lid].spec
            classes[lid] = st.multiselect(
                f"{spec.name} · {spec.label(spec.class_field)}",
                [*spec.classes, aggregate.UNCLASSED],
                default=[*spec.classes, aggregate.UNCLASSED],
                key=f"cls_{lid}",
            )
    text = sb.text_input("搜索名称或编号", value=qp.get("q", ""))
    choropleth = sb.toggle("按乡镇风险点数量着色", value=False)
    st.query_params.update({"township": township, "layers": ",".join(visible), "q": text})
    return {
        "township": township,
        "visible": visible,
        "statuses": statuses,
        "classes": classes,
        "text": text,
        "choropleth": choropleth,
    }


def _filtered(project: Project, f: dict) -> dict[str, LayerData]:
    code = None if f["township"] == ALL else project.township(f["township"])[0]
    out = {}
    for lid, layer in project.layers.items():
        gdf = filter_features(
            layer,
            township_codes=None if code is None else [code],
            classes=f["classes"].get(lid),
            statuses=f["statuses"],
            text=f["text"],
        )
        shares = layer.shares[layer.shares["key"].isin(gdf[layer.spec.key])]
        out[lid] = LayerData(spec=layer.spec, gdf=gdf, shares=shares)
    return out


def _figures(project: Project, layers: dict[str, LayerData], township: str) -> None:
    """Headline figures: the selected township's, or the county's (each feature once)."""
    if township == ALL:
        totals = aggregate.county_totals(layers)
        counts = {lid: t["count"] for lid, t in totals.items()}
        people = totals.get("geohazard", {}).get("sums", {}).get("threat_people", 0)
    else:
        df = aggregate.summarize_townships(layers, project.gdf_townships, project.township_codes)
        row = df[df["name"] == township].iloc[0]
        counts = {lid: int(row[lid]) for lid in layers}
        people = row.get("geohazard|threat_people", 0)
    cols = st.columns(len(layers) + 1)
    for col, (lid, layer) in zip(cols, layers.items(), strict=False):
        col.metric(layer.spec.name, counts[lid])
    if "geohazard" in layers:
        cols[-1].metric("地灾威胁人数", f"{int(people)} 人")


def _dashboard(project: Project, layers: dict[str, LayerData], township: str) -> None:
    df = aggregate.summarize_townships(layers, project.gdf_townships, project.township_codes)
    if township != ALL:
        df = df[df["name"] == township]
    rows = [
        {"图层": layer.spec.name, "状态": status, "数量": int(df[f"{lid}|status|{status}"].sum())}
        for lid, layer in layers.items()
        for status in STATUS_ORDER
    ]
    st.subheader("整治进度（在册 / 监测中 / 治理中 / 已销号）")
    st.bar_chart(pd.DataFrame(rows), x="图层", y="数量", color="状态", horizontal=True)
    st.subheader("各乡镇风险点统计")
    show = df[["adcode", "name", *layers]].rename(
        columns={"adcode": "代码", "name": "乡镇", **{k: v.spec.name for k, v in layers.items()}}
    )
    st.dataframe(show, hide_index=True, use_container_width=True)


def _lists(layers: dict[str, LayerData]) -> None:
    for layer in layers.values():
        spec = layer.spec
        cols = [c for c in spec.list_fields if c in layer.gdf.columns]
        table = pd.DataFrame(layer.gdf[cols]).rename(columns={c: spec.header(c) for c in cols})
        st.markdown(f"**{spec.name}**（{len(table)}）")
        st.dataframe(table, hide_index=True, use_container_width=True)


def _downloads(project: Project, township: str, include_cleared: bool) -> None:
    rich = {"approximate": project.approximate, "county_name": project.settings.county_name}
    if township == ALL:
        st.info("请选择一个乡镇/街道后下载其风险点位清单；或下载全县各乡镇清单压缩包。")
        if st.button("生成全县各乡镇清单（ZIP）"):
            with st.spinner("正在生成 25 个乡镇的清单…"):
                data = exporters.all_townships_zip(
                    project.layers, project.township_codes, fmt="xlsx",
                    include_cleared=include_cleared, **rich,
                )  # fmt: skip
            st.download_button(
                "下载全县各乡镇清单（ZIP）", data, "城口县_风险点位清单.zip", "application/zip"
            )
        return
    code, name = project.township(township)
    layers = project.layers
    c1, c2, c3 = st.columns(3)
    c1.download_button(
        "下载 Excel 清单",
        exporters.xlsx_township(layers, code, name, include_cleared=include_cleared, **rich),
        exporters.township_file_name(code, name, "xlsx"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    c2.download_button(
        "下载 CSV",
        exporters.csv_township(layers, code, name, include_cleared=include_cleared),
        exporters.township_file_name(code, name, "csv"),
        "text/csv",
    )
    c3.download_button(
        "下载 GeoJSON",
        exporters.geojson_township(layers, code, name, include_cleared=include_cleared, **rich),
        exporters.township_file_name(code, name, "geojson"),
        "application/geo+json",
    )


CRS_LABELS = {
    "wgs84": "WGS84 经纬度（GPS、天地图）",
    "cgcs2000": "CGCS2000 经纬度",
    "gk": "CGCS2000 高斯-克吕格投影（米）",
    "gcj02": "GCJ-02（高德、腾讯地图拾取）",
    "bd09": "BD-09（百度地图拾取）",
}
KEEP = "（保留为附加属性）"


def _mapping_editor(columns: list[str], spec: LayerSpec, guessed: dict[str, str]) -> dict:
    """Let the user see and correct the column mapping; returns {source column: target}."""
    targets = [KEEP, "lon", "lat", "x", "y", *spec.fields]
    labels = {KEEP: KEEP, "lon": "经度 lon", "lat": "纬度 lat", "x": "X 坐标", "y": "Y 坐标"}
    labels |= {k: f"{spec.header(k)} ({k})" for k in spec.fields}
    chosen = {}
    cols = st.columns(3)
    for i, col in enumerate(columns):
        default = guessed.get(col, KEEP)
        chosen[col] = cols[i % 3].selectbox(
            f"「{col}」→",
            targets,
            index=targets.index(default) if default in targets else 0,
            format_func=labels.get,
            key=f"map_{col}",
        )
    return {c: ("" if t == KEEP else t) for c, t in chosen.items()}


def _import_tab(project: Project, settings: Settings, editor: str) -> None:
    st.markdown(
        "上传外业调查表（CSV / Excel），核对列对应与坐标系，预览无误后导入；可撤销最近一次导入。"
    )
    point_layers = [lid for lid, layer in project.layers.items() if layer.spec.geometry == "Point"]
    c1, c2, c3 = st.columns(3)
    layer_id = c1.selectbox(
        "导入到图层", point_layers, format_func=lambda lid: project.layers[lid].spec.name
    )
    crs = c2.selectbox("坐标系", list(CRS_LABELS), format_func=CRS_LABELS.get)
    sheet = c3.text_input("Excel 工作表（留空 = 第一个）") or None
    spec = project.catalog.get(layer_id)
    if flash := st.session_state.pop("import_flash", None):
        st.success(flash)
    round_ = st.session_state.get("upload_round", 0)
    upload = st.file_uploader(
        "调查表文件", type=["csv", "txt", "xlsx", "xls"], key=f"upload_{round_}"
    )
    if upload is not None:
        data = upload.getvalue()
        if len(data) > settings.upload_max_mb * 2**20:
            st.error(f"文件 {len(data) / 2**20:.1f} MB，超过上限 {settings.upload_max_mb:g} MB。")
            return
        try:
            raw = read_table(data, upload.name, sheet=sheet)
        except RiskmapError as exc:
            st.error(f"无法读取文件：{exc}")
            return
        st.caption(
            f"编码: {raw.encoding or '-'}　分隔符: {raw.delimiter or '-'}　"
            f"表头行: 第 {raw.header_row} 行　数据行: {len(raw.frame)}"
        )
        columns = [str(c) for c in raw.frame.columns]
        with st.expander("列对应（自动识别，可修改）", expanded=True):
            mapping = _mapping_editor(columns, spec, guess_mapping(columns, spec))
        missing = [k for k in spec.required if k != spec.key and k not in mapping.values()]
        defaults = {}
        if missing:
            st.warning(
                "文件缺少必填字段："
                + "、".join(spec.label(k) for k in missing)
                + "。可填写默认值（每行会标注警告）。"
            )
            for k in missing:
                if value := st.text_input(f"{spec.header(k)} 默认值", key=f"default_{k}"):
                    defaults[k] = value
        with st.spinner("正在检查…"):
            plan = plan_import(
                data, upload.name, spec,
                existing=io.read_layer(spec, settings),
                gdf_townships=project.gdf_townships, gdf_county=project.gdf_county,
                crs=crs, sheet=sheet, mapping=mapping, defaults=defaults or None,
                metric_crs=settings.metric_crs, county_name=settings.county_name,
            )  # fmt: skip
        _show_plan(plan, project, settings, editor)
    _history(spec, settings, editor)


def _show_plan(plan: ImportPlan, project: Project, settings: Settings, editor: str) -> None:
    """Preview of a planned import: counts, row report, updates, map; commit button."""
    spec = project.catalog.get(plan.layer_id)
    report = plan.report
    for note in report.notes:
        st.caption(f"· {note}")
    if report.file_error:
        st.error(f"整份文件未导入：{report.file_error}")
        return
    c = report.counts
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("新增", c["added"])
    m2.metric("更新", c["updated"])
    m3.metric("未导入", c["rejected"])
    m4.metric("警告", c["warnings"])
    st.dataframe(report_frame(report), hide_index=True, use_container_width=True)
    if plan.changes:
        st.markdown("**将更新的点位**")
        st.dataframe(plan.gdf_updated[[spec.key, "name", "changes"]], hide_index=True)
    st.download_button(
        "下载导入报告（Excel）", report_xlsx(report), f"导入报告_{plan.filename}.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )  # fmt: skip
    if len(plan.gdf_new):
        preview = LayerData(spec=spec, gdf=plan.gdf_new, shares=SHARES_EMPTY)
        st_folium(
            build_map({spec.id: preview}, project.gdf_townships, project.gdf_county,
                      settings=settings, demo=False),
            height=360, use_container_width=True, returned_objects=[], key="preview_map",
        )  # fmt: skip
    if st.button("确认导入", type="primary", disabled=not plan.can_commit):
        try:
            commit_import(plan, spec, settings, user=editor)
        except RiskmapError as exc:
            st.error(f"导入失败：{exc}")
        else:
            st.success(f"已导入 {spec.name}：新增 {c['added']}，更新 {c['updated']}。")


def _done(message: str) -> None:
    """After a write: show `message` on the next run, clear the uploader, reload the data."""
    st.session_state["import_flash"] = message
    st.session_state["upload_round"] = st.session_state.get("upload_round", 0) + 1
    st.rerun()


def _history(spec: LayerSpec, settings: Settings, editor: str) -> None:
    history = io.read_history(spec, settings)
    st.markdown(f"**{spec.name} 修改记录**")
    if not history:
        st.caption("暂无导入记录。")
        return
    st.dataframe(pd.DataFrame(history[::-1]), hide_index=True, use_container_width=True)
    if st.button("撤销最近一次导入", key=f"undo_{spec.id}"):
        try:
            io.undo_last_write(spec, settings, user=editor)
        except RiskmapError as exc:
            st.error(f"撤销失败：{exc}")
        else:
            _done(f"已撤销：{spec.name} 已恢复到上一版本。")


HELP = """
**使用说明**
1. 左侧选择乡镇/街道、图层、状态和等级；地图与统计随之更新，网址可直接分享当前视图。
2. 点击地图上的点位查看详情（责任人、联系电话、等级）。
3. 在“下载清单”中导出本乡镇风险点位清单（Excel / CSV / GeoJSON）。
4. 乡镇界线为示意边界（非官方），仅供参考；数据为演示数据时页面会标明。
"""


def main() -> None:
    """Render the page."""
    st.title("城口县安全风险“一张图”")
    try:
        _static_assets()
        settings = Settings.from_env()
        project = _load(settings, _data_version(settings))
    except RiskmapError as exc:
        st.error(f"数据加载失败：{exc}")
        st.stop()
    notes = []
    if project.approximate:
        notes.append("乡镇界线为**示意边界**（按乡镇驻地划分，非官方界线）")
    if project.demo:
        notes.append("当前图层为**演示数据**（非真实点位）")
    if notes:
        st.caption("；".join(notes))
    f = _sidebar(project)
    layers = _filtered(project, f)
    _figures(project, layers, f["township"])
    code = None if f["township"] == ALL else project.township(f["township"])[0]
    fmap = build_map(
        {lid: layers[lid] for lid in f["visible"]},
        project.gdf_townships,
        project.gdf_county,
        settings=project.settings,
        choropleth="all" if f["choropleth"] else None,
        selected_township=code,
        demo=project.demo,
    )
    st_folium(
        fmap,
        height=620,
        use_container_width=True,
        returned_objects=["last_active_drawing"],
        key="map",
    )
    tab_stats, tab_list, tab_dl, tab_import, tab_help = st.tabs(
        ["统计", "清单", "下载清单", "导入调查表", "使用说明"]
    )
    with tab_stats:
        _dashboard(project, layers, f["township"])
    with tab_list:
        _lists({lid: layers[lid] for lid in f["visible"]})
    with tab_dl:
        _downloads(project, f["township"], "已销号" in f["statuses"])
    with tab_import:
        _import_tab(project, settings, editor="")
    with tab_help:
        st.markdown(HELP)


main()
