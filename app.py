"""城口县安全风险“一张图” — Streamlit page. UI only: widgets → riskmap calls → render.

Run with ``riskmap serve`` (or ``streamlit run app.py``). Works with no internet: the map's
Leaflet files are served from ``static/vendor`` (copied from the installed XStatic packages).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st
from riskmap.assets import install_static_assets
from riskmap.mapview import build_map
from streamlit_folium import st_folium

from riskmap import aggregate, exporters
from riskmap.catalog import STATUS_ORDER
from riskmap.errors import RiskmapError
from riskmap.layers import LayerData, filter_features
from riskmap.project import Project, load_project
from riskmap.settings import Settings

APP_DIR = Path(__file__).resolve().parent
ALL = "全县"
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
    df = aggregate.summarize_townships(layers, project.gdf_townships, project.township_codes)
    if township != ALL:
        df = df[df["name"] == township]
    cols = st.columns(len(layers) + 1)
    for col, (lid, layer) in zip(cols, layers.items(), strict=False):
        col.metric(layer.spec.name, int(df[lid].sum()))
    gh = "geohazard"
    if gh in layers:
        cols[-1].metric("地灾威胁人数", f"{int(df[f'{gh}|threat_people'].sum())} 人")


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
        returned_objects=["last_object_clicked"],
        key="map",
    )
    tab_stats, tab_list, tab_dl, tab_help = st.tabs(["统计", "清单", "下载清单", "使用说明"])
    with tab_stats:
        _dashboard(project, layers, f["township"])
    with tab_list:
        _lists({lid: layers[lid] for lid in f["visible"]})
    with tab_dl:
        _downloads(project, f["township"], "已销号" in f["statuses"])
    with tab_help:
        st.markdown(HELP)


main()
