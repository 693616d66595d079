"""The county's 安全风险“一张图” — Streamlit page. UI only: widgets → riskmap calls → render.

Run with ``riskmap serve`` (or ``streamlit run app.py``). Works with no internet: the map's
Leaflet files are served from ``static/vendor`` (copied from the installed XStatic packages);
charts are Vega-Lite from Streamlit's own bundle.

Reruns. Data is loaded and joined once per data version (`_load`, cached); panning and zooming
the map send nothing back (``returned_objects`` is only the clicked feature), so they never
rerun the page. Per data version and view, the filtered layers, the figures and the rendered
map are cached (`riskmap.ui.caching`): an unchanged map is neither rebuilt nor resent. Only the
open tab under the map is built (`_tabs`). Every run and every load is logged on the
``riskmap.app`` logger (stderr) with its duration; the browser tests count those lines.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

import folium

from riskmap import aggregate, exporters
from riskmap import project as project_module
from riskmap.assets import install_static_assets
from riskmap.auth import EditorSession, sign_in_panel
from riskmap.basemap import BasemapLayer
from riskmap.catalog import STATUS_CLEARED, STATUS_ORDER, LayerSpec
from riskmap.errors import RiskmapError
from riskmap.filters import FeatureFilter
from riskmap.layers import SHARE_COLUMNS, LayerData
from riskmap.mapview import build_map
from riskmap.project import Project
from riskmap.settings import COUNTY_NAME, NOTE_APPROXIMATE, NOTE_DEMO, Settings
from riskmap.store import open_store
from riskmap.ui import paper
from riskmap.ui import progress as progress_ui
from riskmap.ui.caching import (
    dashboard_data,
    filtered_layers,
    headline_figures,
    map_args,
    show_map,
)
from riskmap.ui.chrome import install_chinese_chrome
from riskmap.ui.downloads import township_downloads
from riskmap.ui.importing import datum_notice, import_tab
from riskmap.ui.mapstate import (
    MAP_HEIGHT_PX,
    grade_filters,
    init_grades,
    init_selection,
    initial_view,
    no_match_notice,
    offline_basemap,
    url_state,
)
from riskmap.ui.text import fmt
from riskmap.ui.text import md as _md
from riskmap.ui.warnings import warnings_view

APP_DIR = Path(__file__).resolve().parent
ALL = "全县"
SHARES_EMPTY = pd.DataFrame(columns=SHARE_COLUMNS)
DEFAULT_STATUSES = [s for s in STATUS_ORDER if s != STATUS_CLEARED]
NO_CHORO = ""
# Okabe-Ito (colour-blind safe) for the rectification stages, in lifecycle order.
STATUS_COLORS = {"在册": "#E69F00", "监测中": "#56B4E9", "治理中": "#0072B2", "已销号": "#009E73",
                 aggregate.UNKNOWN_STATUS: "#999999"}  # fmt: skip
SELECTED_ROW_STYLE = "background-color: #fff3b0; font-weight: bold"
TAB_KEY = "tab"  # session key of the open tab under the map (tests set it to open one)
# The tabs under the map, in order (each a view in `_tabs`). No docstring here: Streamlit's
# "magic" would print a bare string at the top level of the page.
TAB_NAMES = ("统计", "清单", "下载清单", "清零进度", "导入调查表", "预警", "使用说明")
METRICS_PER_ROW = 9  # one row above the map: the map still fits a 1366×768 screen


def _county_name() -> str:
    """County name for the title (`Settings.county_name`); a bad setting is reported in `main`."""
    try:
        return Settings.from_env().county_name
    except (RiskmapError, ValueError):
        return COUNTY_NAME


st.set_page_config(page_title=f"{_county_name()}安全风险一张图", page_icon="🗺️", layout="wide")


@st.cache_resource
def _logger() -> logging.Logger:
    """Return the ``riskmap.app`` logger: one line per run and per data load, on stderr."""
    log = logging.getLogger("riskmap.app")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s riskmap.app %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


@st.cache_resource(show_spinner="正在准备离线底图…")
def _basemap(settings: Settings) -> BasemapLayer | None:
    """Install the offline basemap (``RISKMAP_BASEMAP``) once per server; None without one."""
    try:
        return offline_basemap(settings, APP_DIR / "static")
    except RiskmapError as exc:
        st.warning(f"离线底图不可用：{_md(exc)}")
        return None


@st.cache_resource
def _static_assets() -> bool:
    """Copy Leaflet files into ./static/vendor once per server (not data)."""
    install_static_assets(APP_DIR / "static")
    return True


def _data_version(settings: Settings) -> str:
    """Return the store's stamp, which changes whenever a layer, record or boundary file changes."""
    return open_store(settings).stamp()


@st.cache_resource(show_spinner="正在加载图层与乡镇界线…", max_entries=4)
def _load(_settings: Settings, version: str) -> Project:
    """
    Load and join every layer; cached per data version (never on pan, zoom or filters).

    `st.cache_resource`, not `st.cache_data` (the style guide's default): `cache_data` hands
    each rerun an unpickled copy, which costs 0.35 s at 100,000 points (bench case 4) against
    a 0.3 s rerun budget. Sharing is safe here: `Project` is a frozen dataclass, every riskmap
    function returns new frames and never mutates its inputs, and pandas' copy-on-write (the
    default since pandas 3) keeps any frame derived from the shared one from writing through.
    """
    del version
    started = time.perf_counter()
    project = project_module.load_project(_settings)
    _logger().info("load_project %.3f s", time.perf_counter() - started)
    return project


# ----------------------------------------------------------------------------- filters

CHORO_LABEL_ALL = "全部图层"


def _init_filters(project: Project) -> None:
    """First run of a session: widget state from the URL query string (a shared view)."""
    if st.session_state.get("_filters_ready"):
        return
    qp = st.query_params
    names = [ALL, *project.township_codes["name"]]
    township = qp.get("township", ALL)
    if township not in names:
        try:
            township = project.township(township)[1]
        except RiskmapError:
            st.session_state["_qp_error"] = f"网址中的乡镇“{township}”不存在，已显示全县。"
            township = ALL
    st.session_state["f_township"] = township
    layer_ids = list(project.layers)
    raw_layers = qp.get("layers")
    shown = layer_ids if raw_layers is None else raw_layers.split(",")
    for lid in layer_ids:
        st.session_state[f"show_{lid}"] = lid in shown
    raw_status = qp.get("statuses")
    statuses = DEFAULT_STATUSES if raw_status is None else raw_status.split(",")
    st.session_state["f_statuses"] = [s for s in STATUS_ORDER if s in statuses]
    st.session_state["f_q"] = qp.get("q", "")
    choro = qp.get("choropleth", NO_CHORO)
    st.session_state["f_choro"] = choro if choro in {"all", *layer_ids} else NO_CHORO
    init_grades(project, qp.get("grades", ""))
    init_selection(project, qp)
    st.session_state["_filters_ready"] = True


def _sidebar(project: Project) -> dict:
    """Read the filters and mirror them in the URL query string (shareable views)."""
    _init_filters(project)
    sb = st.sidebar
    sb.header("筛选")
    names = [ALL, *project.township_codes["name"]]
    township = sb.selectbox("乡镇/街道", names, key="f_township")
    text = sb.text_input(
        "搜索名称或编号", key="f_q", placeholder="如：滑坡、GH-0001", help="名称或统一编号的一部分"
    )
    sb.markdown("**图层**")
    visible = [lid for lid in project.layers if sb.checkbox(_md(project.layers[lid].spec.name),
                                                             key=f"show_{lid}")]  # fmt: skip
    statuses = sb.multiselect("状态", list(STATUS_ORDER), key="f_statuses")
    progress_ui.cleared_toggle(sb)
    classes = grade_filters(sb, project, visible)
    choro_options = [NO_CHORO, "all", *project.layers]
    labels = {NO_CHORO: "不着色", "all": CHORO_LABEL_ALL}
    labels |= {lid: layer.spec.name for lid, layer in project.layers.items()}
    choropleth = sb.selectbox(
        "按乡镇点位数着色", choro_options, format_func=labels.get, key="f_choro"
    )
    st.query_params.from_dict(
        {
            "township": township,
            "layers": ",".join(visible),
            "statuses": ",".join(statuses),
            "q": text,
            "choropleth": choropleth,
            **url_state(project, classes),
        }
    )
    if message := st.session_state.pop("_qp_error", None):
        sb.warning(_md(message))
    return {
        "township": township,
        "visible": visible,
        "statuses": statuses,
        "classes": classes,
        "text": text,
        "choropleth": choropleth or None,
    }


def _feature_filter(project: Project, f: dict, *, with_status: bool = True) -> FeatureFilter:
    """Turn the sidebar's choices into the library's filter spec (`visible` is layout only)."""
    return FeatureFilter(
        township_code=None if f["township"] == ALL else project.township(f["township"])[0],
        classes={lid: tuple(c) for lid, c in f["classes"].items()},
        statuses=tuple(f["statuses"]) if with_status else None,
        text=f["text"],
    )


def _filtered(
    project: Project, version: str, f: dict, *, with_status: bool = True
) -> dict[str, LayerData]:
    """Every layer filtered by township, class, search text and (optionally) status (cached)."""
    return filtered_layers(project, version, _feature_filter(project, f, with_status=with_status))


# ----------------------------------------------------------------------------- figures


def _metric_rows(figures: list[aggregate.Figure], per_row: int = METRICS_PER_ROW) -> None:
    """Show figures as metric tiles, at most `per_row` to a row."""
    for first in range(0, len(figures), per_row):
        row = figures[first : first + per_row]
        for col, fig in zip(st.columns(per_row), row, strict=False):
            col.metric(_md(fig.label), fig.text)


def _figures(project: Project, version: str, layers: dict[str, LayerData], f: dict) -> None:
    """Headline figures of what the map shows (each feature once), as the catalog declares."""
    shown = replace(_feature_filter(project, f), layer_ids=tuple(f["visible"]))
    _metric_rows(headline_figures(version, shown, {lid: layers[lid] for lid in f["visible"]}))


def _progress_chart(layers: dict[str, LayerData], df: pd.DataFrame) -> alt.Chart:
    """Return the 整治进度 bars of `df` (`aggregate.status_counts` of `layers`)."""
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            y=alt.Y("图层:N", sort=[layer.spec.name for layer in layers.values()], title=None),
            x=alt.X("sum(数量):Q", title="点位数", axis=alt.Axis(format="d", tickMinStep=1)),
            color=alt.Color(
                "状态:N",
                scale=alt.Scale(domain=list(STATUS_COLORS), range=list(STATUS_COLORS.values())),
                legend=alt.Legend(orient="top", title=None, labelFontSize=13),
            ),
            order=alt.Order("序:Q"),
            tooltip=["图层", "状态", "数量"],
        )
        .properties(height=44 * max(len(layers), 1) + 40)
        .configure_axis(labelFontSize=13, titleFontSize=13)
    )


def _dashboard(project: Project, version: str, f: dict) -> None:
    """Show the township's (or county's) figures over all statuses, so progress shows."""
    shown = _filtered(project, version, f, with_status=False)
    layers = {lid: shown[lid] for lid in f["visible"]}  # the figures follow the layer choice too
    where = "全县" if f["township"] == ALL else f["township"]
    st.markdown(f"#### {_md(where)}：风险点位概况（含全部状态，不受状态筛选影响）")
    if no_match_notice(layers, f["visible"], f["text"]):
        return
    ff = replace(_feature_filter(project, f, with_status=False), layer_ids=tuple(f["visible"]))
    data = dashboard_data(project, version, ff, layers)
    fig = data.totals
    c = st.columns(3)
    for col, (key, label, hint) in zip(c, aggregate.FIGURE_LABELS, strict=True):
        value = aggregate.format_quantity(fig[key], aggregate.COUNT_UNIT)
        col.metric(_md(label), value, help=_md(hint))
    _metric_rows([fig for fig in data.headline if fig.field is not None])
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**整治进度（在册 / 监测中 / 治理中 / 已销号）**")
        st.altair_chart(_progress_chart(layers, data.status_counts), width="stretch")
    with right:
        st.markdown("**按图层和等级统计**")
        st.dataframe(data.class_counts, hide_index=True, width="stretch", height=300)
    if data.townships is not None:
        st.markdown("**各乡镇风险点统计**")
        st.dataframe(data.townships, hide_index=True, width="stretch")


# ----------------------------------------------------------------------------- map ↔ lists


def _table_key(lid: str) -> str:
    return f"tbl_{lid}_{st.session_state.get(f'_round_{lid}', 0)}"


def _table_picks(visible: list[str]) -> None:
    """Select (and highlight on the map) the feature of a row newly selected in a list."""
    for lid in visible:
        state = st.session_state.get(_table_key(lid))
        if state is None:  # list not drawn last run (e.g. a sign-in rerun): keep the selection
            continue
        rows = list(state.selection.rows)
        keys = st.session_state.get(f"_rows_{lid}", [])
        picked = keys[rows[0]] if rows and rows[0] < len(keys) else None
        if picked == st.session_state.get(f"_picked_{lid}"):
            continue
        st.session_state[f"_picked_{lid}"] = picked
        if picked is not None:
            st.session_state["sel"] = (lid, picked)
            st.session_state["hl"] = (lid, picked)
        elif (sel := st.session_state.get("sel") or (None, None))[0] == lid and sel[1] in keys:
            # only a list that shows the selected point can deselect it (a point just
            # cleared or filtered out stays selected, e.g. for its status panel)
            st.session_state["sel"] = st.session_state["hl"] = None


def _map_pick(result: dict | None, layers: dict[str, LayerData]) -> None:
    """Select the row of a feature newly clicked on the map (its list is re-created)."""
    drawing = (result or {}).get("last_active_drawing") or {}
    props = drawing.get("properties") or {}
    lid, key = props.get("layer"), props.get("key")
    if lid not in layers or key is None:
        return
    key = str(key)
    if (lid, key) == st.session_state.get("_last_click"):
        return
    st.session_state["_last_click"] = (lid, key)
    st.session_state["sel"] = (lid, key)
    st.session_state[f"_round_{lid}"] = st.session_state.get(f"_round_{lid}", 0) + 1
    st.session_state[f"_picked_{lid}"] = key


def _selected_panel(layers: dict[str, LayerData]) -> None:
    sel = st.session_state.get("sel")
    if not sel or sel[0] not in layers:
        st.caption("点击地图上的点位或清单中的一行，查看并联动选中该点位。")
        return
    lid, key = sel
    layer = layers[lid]
    spec = layer.spec
    rows = layer.gdf[layer.gdf[spec.key].astype(str) == key]
    if rows.empty:
        st.info(f"已选点位 {_md(spec.name)} {_md(key)} 不在当前筛选结果中。")
        return
    cols = [c for c in spec.popup if c in rows.columns]
    row, config = _display_table(rows, spec, cols)
    st.markdown(fmt("**已选点位：{} · {}（{}）**", spec.name, rows.iloc[0].get("name", key), key))
    st.dataframe(row, hide_index=True, width="stretch", column_config=config)


def _lists(layers: dict[str, LayerData], visible: list[str]) -> None:
    sel = st.session_state.get("sel")
    if not visible:
        st.info("未选择任何图层：请在左侧勾选要显示的图层。")
    for lid in visible:
        layer = layers[lid]
        spec = layer.spec
        cols = [c for c in spec.list_fields if c in layer.gdf.columns]
        keys = layer.gdf[spec.key].astype(str).tolist()
        if keys != st.session_state.get(f"_rows_{lid}", keys):
            # other rows (a filter or status changed): a new table, so that the old row
            # number of the selection does not select another point in the new rows
            st.session_state[f"_round_{lid}"] = st.session_state.get(f"_round_{lid}", 0) + 1
        st.session_state[f"_rows_{lid}"] = keys
        table, config = _display_table(layer.gdf, spec, cols)
        st.markdown(f"**{_md(spec.name)}**（{len(table):d}）")
        if table.empty:
            st.caption("无符合条件的点位。")
            continue
        default = None
        data: pd.DataFrame | object = table
        if sel and sel[0] == lid and sel[1] in keys:
            pos = keys.index(sel[1])
            default = {"selection": {"rows": [pos]}}
            data = table.style.apply(
                lambda r, pos=pos: [SELECTED_ROW_STYLE if r.name == pos else ""] * len(r), axis=1
            )
        st.dataframe(
            data,
            hide_index=True,
            width="stretch",
            key=_table_key(lid),
            on_select="rerun",
            selection_mode="single-row",
            selection_default=default,
            column_config=config,
        )


def _display_table(
    table: pd.DataFrame, spec: LayerSpec, keys: list[str]
) -> tuple[pd.DataFrame, dict]:
    """Typed from the catalog (`exporters.typed_table`); blanks empty; numbers shown plain."""
    out = exporters.typed_table(table, spec, keys, blank="")
    number = st.column_config.NumberColumn(format="plain")
    config = {h: number for h in out.columns if pd.api.types.is_numeric_dtype(out[h])}
    return out, config


# Less white space above the title, one row of metrics that fits a 1366-px laptop: the title,
# the figures and the whole map fit a 1366×768 screen.
PAGE_CSS = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 1.5rem; padding-bottom: 3rem; }
[data-testid="stMainBlockContainer"] h1 { font-size: 1.7rem; padding: 0 0 0.1rem 0; }
[data-testid="stMetricValue"] { font-size: 1.25rem; }
[data-testid="stMetricLabel"] p { font-size: 0.8rem; }
[data-testid="stSidebarHeader"] { height: 2.5rem; }
</style>"""

HELP = f"""
**使用说明**

1. **筛选**：左侧选择乡镇/街道、搜索名称或统一编号、勾选图层、状态和等级；地图、统计和清单随之更新。
   浏览器地址栏的网址包含当前筛选条件，复制发送即可分享同一视图。
2. **地图**：先点击地图再用滚轮缩放（或按住 Ctrl 键滚动），拖动平移；左侧勾选图层；
   右上角图例可折叠；左上角“全县”按钮回到全县视野。更改筛选时地图保持当前视野，选择乡镇时缩放到该乡镇；
   当前视野也写在网址里（view=纬度,经度,级别）。等级筛选可选“≥ 大型”等下限，也可逐项增减。
3. **联动**：点击地图上的点位查看详情，清单中对应行被选中并高亮；
   在“清单”中选中一行，地图定位并圈出该点位。
4. **统计**：本乡镇（或全县）按图层和等级的点位数、威胁户数/人数/财产、
   整治进度（在册/监测中/治理中/已销号）。
5. **下载清单**：选择乡镇后下载 Excel / CSV / GeoJSON 清单；全县可生成各乡镇清单压缩包（ZIP）。
6. **导入调查表**：上传 CSV / Excel → 核对列对应与坐标系 → 预览 → 确认导入；
   导入错了可“撤销最近一次导入”。

{NOTE_APPROXIMATE}（使用官方界线时不显示此句）；数据为演示数据时页面会标明。页面不访问互联网。
"""


def _map_section(project: Project, version: str, layers: dict[str, LayerData], f: dict) -> None:
    """Show the map (built once per data version and view); list and map select both ways."""
    _table_picks(f["visible"])
    code = None if f["township"] == ALL else project.township(f["township"])[0]
    hl = st.session_state.get("hl")
    if hl is not None and hl[0] not in f["visible"]:
        hl = None
    view = initial_view(code or "county", hl)
    basemap = _basemap(project.settings)

    def build() -> folium.Map:
        return build_map(
            progress_ui.map_layers(project, {lid: layers[lid] for lid in f["visible"]}),
            project.gdf_townships,
            project.gdf_county,
            settings=project.settings,
            choropleth=f["choropleth"],
            selected_township=code,
            highlight=hl,
            demo=project.demo,
            view_key=code or "county",
            view=view,
            layer_control=False,
            basemap_layer=basemap,
        )

    ff = replace(_feature_filter(project, f), layer_ids=tuple(f["visible"]))
    key = (version, repr(ff), f["choropleth"], hl, view, basemap, progress_ui.today())
    args = map_args(build, key, widget_key="map")  # logs "map built" when it builds
    result = show_map(
        args, key="map", height=MAP_HEIGHT_PX, returned_objects=["last_active_drawing"]
    )
    _map_pick(result, layers)


def _downloads(project: Project, version: str, f: dict) -> None:
    """Offer downloads of exactly what the screen shows (filter spec, visible layers only)."""
    shown = replace(_feature_filter(project, f), layer_ids=tuple(f["visible"]))
    township_downloads(
        project,
        version,
        shown.township_code,
        include_cleared=STATUS_CLEARED in f["statuses"],
        selection=shown,
    )


def main() -> None:
    """Render the page."""
    started = time.perf_counter()
    install_chinese_chrome(PAGE_CSS)
    st.title(f"{_md(_county_name())}安全风险“一张图”")
    try:
        _static_assets()
        settings = Settings.from_env()
        version = _data_version(settings)
        project = _load(settings, version)
    except RiskmapError as exc:
        st.error(f"数据加载失败：{_md(exc)}")
        st.info("请检查上面提到的文件（格式、编码、字段），修正后刷新页面。")
        st.stop()
    except OSError as exc:
        st.error(f"数据加载失败：无法读取数据文件（{_md(exc)}）。")
        st.stop()
    if project.approximate and project.demo:
        st.caption(NOTE_APPROXIMATE + "；" + NOTE_DEMO)
    elif project.approximate or project.demo:
        st.caption(NOTE_APPROXIMATE if project.approximate else NOTE_DEMO)
    datum_notice(project)  # an approximate datum conversion is never silent (c27)
    f = _sidebar(project)
    who = sign_in_panel(st.sidebar, settings=settings)  # viewing needs no sign-in
    layers = _filtered(project, version, f)
    no_match_notice(layers, f["visible"], f["text"])
    _figures(project, version, layers, f)
    _map_section(project, version, layers, f)
    _selected_panel(layers)
    progress_ui.status_panel(project, settings, who)
    _tabs(project, settings, version, layers, f, who)
    ctx = get_script_run_ctx()
    session = ctx.session_id if ctx is not None else "-"
    _logger().info("run %.3f s session=%s", time.perf_counter() - started, session)


def _tabs(
    project: Project, settings: Settings, version: str, layers: dict[str, LayerData], f: dict,
    who: EditorSession,
) -> None:  # fmt: skip
    """
    Lay out the tabs under the map: one call per feature view, run only for the open tab.

    ``on_change="rerun"`` makes `st.tabs` track the open tab (``tab.open``), so a run builds
    one tab's content instead of all seven (issue 17: the page opens ≤ 3 s; issue 15: a filter
    change ≤ 1 s); choosing a tab reruns the page, cheap now that the map is cached.
    """

    def import_view() -> None:
        if who.can_edit and who.editor:
            import_tab(project, settings, who)
        else:
            st.info("查看无需登录；导入调查表、撤销导入需登录（左侧“编辑权限”）。")

    def download_view() -> None:
        _downloads(project, version, f)
        paper.downloads(project, settings, who.editor)

    views = {
        "统计": lambda: _dashboard(project, version, f),
        "清单": lambda: _lists(layers, f["visible"]),
        "下载清单": download_view,
        "清零进度": lambda: progress_ui.progress_view(project, settings, who),
        "导入调查表": import_view,
        "预警": lambda: warnings_view(project, settings, who),
        "使用说明": lambda: st.markdown(HELP),
    }
    for name, tab in zip(
        TAB_NAMES, st.tabs(TAB_NAMES, key=TAB_KEY, on_change="rerun"), strict=True
    ):
        if tab.open:
            with tab:
                views[name]()


main()
