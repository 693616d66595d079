"""清零进度 view and status changes (issue 11): Streamlit widgets over the library.

- `status_panel`: under the selected point, editors change its status (销号 with date,
  reason, note, evidence) or undo the last status change. Viewers see nothing; the library
  (`riskmap.lifecycle.commit_status_change`) refuses them anyway.
- `progress_view`: the 清零进度 tab — county and township figures, a chart per township,
  考核 targets with traffic lights, 一点一案一策 completeness, the status log and the
  survey-round diff.
- `cleared_toggle`: the sidebar switch that shows cleared points (faded on the map).
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING

import altair as alt
import pandas as pd
import streamlit as st

from riskmap import completeness, diff, io, lifecycle, targets
from riskmap import progress as prog
from riskmap.aggregate import risk_layers
from riskmap.errors import RiskmapError
from riskmap.layers import isin
from riskmap.store import open_store
from riskmap.ui.text import md

if TYPE_CHECKING:
    from riskmap.auth import EditorSession
    from riskmap.layers import LayerData
    from riskmap.project import Project
    from riskmap.settings import Settings

CLEARED = "已销号"
LIGHT_CSS = {"绿": "background-color: #C6EFCE", "黄": "background-color: #FFEB9C",
             "红": "background-color: #FFC7CE"}  # fmt: skip


def _today() -> dt.date:
    return dt.date.today()


def today() -> dt.date:
    """Return the day 逾期 marks are computed for (a key of the cached map: they change daily)."""
    return _today()


# --- sidebar toggle ------------------------------------------------------------------------


def cleared_toggle(container: object, statuses_key: str = "f_statuses") -> None:
    """
    Draw "显示已销号点位（淡显）": ticking adds 已销号 to the status filter, unticking removes it.

    Kept in step with the status multiselect under `statuses_key` (either control works).
    """

    def sync() -> None:
        current = [s for s in st.session_state.get(statuses_key, []) if s != CLEARED]
        if st.session_state["f_cleared"]:
            current.append(CLEARED)
        st.session_state[statuses_key] = current

    st.session_state["f_cleared"] = CLEARED in st.session_state.get(statuses_key, [])
    container.checkbox(  # type: ignore[attr-defined]
        "显示已销号点位（淡显）", key="f_cleared", on_change=sync,
        help="已销号点位默认隐藏；勾选后在地图上淡显，清单中列出。",
    )  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=8)
def _overdue_keys(_project: Project, version: str, as_of: dt.date) -> dict[str, list]:
    """Keys of the 逾期 features per layer; cached per data version and day."""
    del version
    spec = lifecycle.lifecycle_spec(_project.catalog)
    marked = prog.with_overdue(_project.layers, spec, as_of=as_of)
    return {
        lid: layer.gdf.loc[layer.gdf["overdue"], layer.spec.key].tolist()
        for lid, layer in marked.items()
    }


def map_layers(project: Project, layers: dict[str, LayerData]) -> dict[str, LayerData]:
    """
    Mark 逾期 features of the layers shown on the map (column ``overdue``, outlined red).

    Uses `riskmap.progress.with_overdue` on the whole project once per data version and day.
    """
    keys = _overdue_keys(project, open_store(project.settings).stamp(), _today())
    return {
        lid: replace(layer, gdf=layer.gdf.assign(
            overdue=isin(layer.gdf[layer.spec.key], keys.get(lid, []))))
        for lid, layer in layers.items()
    }  # fmt: skip


# --- status change of the selected point ----------------------------------------------------


def _transition_label(spec: lifecycle.LifecycleSpec, old: str, new: str) -> str:
    t = spec.transition(old, new)
    return f"{new}（{t.label}）" if t else new


def status_panel(project: Project, settings: Settings, who: EditorSession) -> None:
    """
    Status change of the selected point (``st.session_state["sel"]``), editors only.

    Draws nothing for a viewer. The change is planned on the stored layer, checked by
    `riskmap.lifecycle`, committed through the store (audited) and can be undone here.
    """
    if not who.can_edit:
        return
    if message := st.session_state.pop("_status_done", None):
        st.success(md(message))  # stored as plain text, escaped once here
    sel = st.session_state.get("sel")
    if not sel or sel[0] not in project.layers:
        return
    lid, key = sel
    layer = project.layers[lid]
    spec = lifecycle.lifecycle_spec(project.catalog)
    rows = layer.gdf[layer.gdf[layer.spec.key].astype(str) == key]
    if rows.empty:
        return
    raw = rows.iloc[0].get("status")
    old = spec.statuses[0] if pd.isna(raw) or not str(raw).strip() else str(raw)
    options = [t.to for t in spec.transitions if old in t.from_statuses]
    with st.expander(f"变更状态（当前：{md(old)}）", expanded=False):
        if not options:
            st.caption(f"状态“{md(old)}”没有可用的变更。")
        else:
            _status_form(project, settings, who, layer, key, old, options, spec)
        _undo_button(project, settings, who, layer)


def _status_form(
    project: Project,
    settings: Settings,
    who: EditorSession,
    layer: LayerData,
    key: str,
    old: str,
    options: list[str],
    spec: lifecycle.LifecycleSpec,
) -> None:
    del project
    with st.form(key=f"status_form_{layer.spec.id}_{key}", clear_on_submit=False):
        new = st.selectbox(
            "新状态", options, key="st_to", format_func=lambda s: _transition_label(spec, old, s)
        )
        date = st.date_input("销号日期（销号时必填）", value=_today(), max_value=_today(),
                             key="st_date", format="YYYY-MM-DD")  # fmt: skip
        reason = st.selectbox("销号原因（销号时必填）", ["", *spec.reasons], key="st_reason")
        why = st.text_input("原因说明（重新入册时必填）", key="st_why")
        note = st.text_input("备注（可选）", key="st_note")
        evidence = st.file_uploader(
            f"证明材料（照片或 PDF，可选，≤ {spec.evidence_max_mb:g} MB）",
            type=["jpg", "jpeg", "png", "pdf"], key="st_evidence",
        )  # fmt: skip
        submitted = st.form_submit_button("确认变更状态")
    if not submitted:
        return
    store = open_store(settings)
    lspec = layer.spec
    given_reason = reason if new == spec.cleared else why
    try:
        change = lifecycle.plan_status_change(
            store.read_layer(lspec), lspec, spec, key, new,
            cleared_date=date if new == spec.cleared else None, reason=given_reason,
            note=note, base_version=store.layer_version(lspec),
        )  # fmt: skip
        lifecycle.commit_status_change(
            change, lspec, store, who,
            evidence=evidence.getvalue() if evidence is not None else None,
            evidence_name=evidence.name if evidence is not None else "", spec=spec,
        )  # fmt: skip
    except RiskmapError as exc:
        st.error(f"未变更：{md(exc)}")
        return
    st.session_state["_status_done"] = (
        f"已变更：{lspec.name} {key} {change.old or '（空）'} → {change.new}。"
        "可点“撤销最近一次状态变更”恢复。"
    )
    st.rerun()


def _undo_button(
    project: Project, settings: Settings, who: EditorSession, layer: LayerData
) -> None:
    del project
    if st.button("撤销最近一次状态变更", key=f"status_undo_{layer.spec.id}"):
        try:
            entry = lifecycle.undo_last_status(open_store(settings), layer.spec, who)
        except RiskmapError as exc:
            st.error(f"未撤销：{md(exc)}")
            return
        st.session_state["_status_done"] = (
            f"已撤销：{layer.spec.name} {entry.get('uid', '')} 恢复为"
            f" {entry.get('from') or '（空）'}。"
        )
        st.rerun()


# --- 清零进度 tab ------------------------------------------------------------------------------


def _light_style(df: pd.DataFrame) -> pd.io.formats.style.Styler:
    return df.style.map(lambda v: LIGHT_CSS.get(v, ""), subset=["状态"])


def _township_chart(df: pd.DataFrame, layer_name: str) -> alt.Chart:
    rows = []
    for r in df.itertuples():
        rows += [
            {
                "乡镇": r.name,
                "类别": "在册隐患（未逾期）",
                "数量": int(r.active - r.overdue),
                "序": 0,
            },
            {"乡镇": r.name, "类别": "逾期", "数量": int(r.overdue), "序": 1},
            {"乡镇": r.name, "类别": "已销号", "数量": int(r.cleared), "序": 2},
        ]
    colors = {"在册隐患（未逾期）": "#0072B2", "逾期": "#D55E00", "已销号": "#009E73"}
    return (
        alt.Chart(pd.DataFrame(rows), title=f"{layer_name}：各乡镇清零进度")
        .mark_bar()
        .encode(
            y=alt.Y(
                "乡镇:N",
                sort=list(df["name"]),
                title=None,
                axis=alt.Axis(labelOverlap=False, labelFontSize=12),
            ),
            x=alt.X("sum(数量):Q", title="点位数", axis=alt.Axis(format="d", tickMinStep=1)),
            color=alt.Color(
                "类别:N",
                scale=alt.Scale(domain=list(colors), range=list(colors.values())),
                legend=alt.Legend(orient="top", title=None),
            ),
            order=alt.Order("序:Q"),
            tooltip=["乡镇", "类别", "数量"],
        )
        .properties(height=26 * max(len(df), 1) + 60)
    )


@st.cache_data(show_spinner="正在计算清零进度…", max_entries=8)
def _figures(_project: Project, version: str, as_of: dt.date) -> dict:
    """Every figure of the tab, computed once per data version and day (reruns reuse them)."""
    del version
    project = _project
    spec = lifecycle.lifecycle_spec(project.catalog)
    names = {lid: layer.spec.name for lid, layer in risk_layers(project.layers).items()}
    out: dict = {
        "progress": prog.progress_frame(project.layers, project.township_codes, spec,
                                        as_of=as_of),
        "targets_error": "",
    }  # fmt: skip
    shares, missing = completeness.completeness_frame(
        project.layers, project.township_codes, as_of=as_of
    )
    out["completeness"] = completeness.completeness_table(shares, names)
    out["missing"] = missing
    try:
        declared = targets.targets_from_dict(io.read_targets_raw(project.settings),
                                             project.catalog)  # fmt: skip
    except RiskmapError as exc:
        out["targets_error"] = str(exc)
        return out
    df = targets.measure_targets(declared, project.layers, project.township_codes, as_of=as_of)
    flags = [n for n, on in (("示意边界", project.approximate), ("演示数据", project.demo)) if on]
    out["targets"] = df
    out["xlsx"] = targets.targets_xlsx(
        df, title=f"{project.settings.county_name}{as_of.year}年风险隐患考核表",
        notes=[f"截至 {as_of.isoformat()}", *flags], completeness=out["completeness"],
    )  # fmt: skip
    return out


def progress_view(project: Project, settings: Settings, who: EditorSession) -> None:
    """Draw the 清零进度 tab: figures, chart per township, 考核, 一点一案一策, log, round diff."""
    as_of = _today()
    names = {lid: layer.spec.name for lid, layer in risk_layers(project.layers).items()}
    figures = _figures(project, open_store(settings).stamp(), as_of)
    df = figures["progress"]
    county = df[df["code"] == prog.COUNTY]
    st.markdown(f"#### 全县清零进度（截至 {md(as_of.isoformat())}）")
    cols = st.columns(5)
    total, cleared = int(county["total"].sum()), int(county["cleared"].sum())
    taken = int(county["in_progress"].sum()) + cleared
    cols[0].metric("在册隐患", f"{int(county['active'].sum())} 处", help="未销号的点位")
    cols[1].metric("今年销号", f"{int(county['cleared_this_year'].sum())} 处")
    cols[2].metric("逾期", f"{int(county['overdue'].sum())} 处", help="治理中且已过整改期限")
    cols[3].metric("销号率", f"{cleared / total:.1%}" if total else "—", help="已销号 ÷ 合计")
    cols[4].metric("整改率", f"{cleared / taken:.1%}" if taken else "—",
                   help="已销号 ÷（治理中 + 已销号）")  # fmt: skip
    st.dataframe(prog.progress_table(county, names).drop(columns=["乡镇"]), hide_index=True,
                 width="stretch")  # fmt: skip
    lid = st.selectbox("图层", list(names), format_func=names.get, key="prog_layer")
    towns = df[(df["code"] != prog.COUNTY) & (df["layer"] == lid) & (df["total"] > 0)]
    if len(towns):
        st.altair_chart(_township_chart(towns, names[lid]), width="stretch")
        st.dataframe(prog.progress_table(towns, names), hide_index=True, width="stretch")
    _targets_section(figures, as_of, names)
    _status_log(project, settings)
    _diff_section(project, settings, names)
    del who


def _targets_section(figures: dict, as_of: dt.date, names: dict[str, str]) -> None:
    st.markdown("#### 考核目标（2026年工作要点）")
    if figures["targets_error"]:
        st.error(f"考核目标文件有误：{md(figures['targets_error'])}")
    elif figures["targets"].empty:
        st.info("未声明考核目标（图层文件夹中没有 targets.toml，或其中没有目标）。")
    else:
        county = figures["targets"][figures["targets"]["code"] == "county"]
        table = targets.targets_table(county).drop(columns=["乡镇"])
        st.dataframe(_light_style(table), hide_index=True, width="stretch")
        st.caption("状态：绿 = 已完成；黄 = 完成 60% 以上；红 = 不足 60%。")
    st.markdown("#### 一点一案一策：责任落实情况（在册隐患）")
    st.dataframe(figures["completeness"], hide_index=True, width="stretch", height=260)
    missing = figures["missing"]
    if len(missing):
        st.markdown(f"**缺项点位（{len(missing):d}）**")
        shown = missing.assign(layer=missing["layer"].map(names)).drop(columns=["code"])
        shown.columns = ["乡镇", "图层", "统一编号", "名称", "缺项"]
        st.dataframe(shown, hide_index=True, width="stretch")
    if "xlsx" in figures:
        st.download_button(
            "下载考核表（Excel，含各乡镇与一点一案一策）", figures["xlsx"],
            file_name=f"考核表_{as_of.isoformat()}.xlsx",
            mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            on_click="ignore", key="dl_targets",
        )  # fmt: skip


def _status_log(project: Project, settings: Settings) -> None:
    store = open_store(settings)
    rows = []
    skipped = 0
    for layer in project.layers.values():
        try:
            with warnings.catch_warnings(record=True) as caught:  # corrupt log lines: counted
                warnings.simplefilter("always")
                entries = lifecycle.status_entries(store, layer.spec)
        except RiskmapError:
            continue
        skipped += sum(issubclass(w.category, UserWarning) for w in caught)
        for e in entries:
            when = dt.datetime.fromisoformat(e["time"]).astimezone(diff.LOCAL_TZ)
            rows.append({
                "时间": when.strftime("%Y-%m-%d %H:%M"), "操作人": e.get("user", ""),
                "图层": layer.spec.name, "统一编号": e.get("uid", ""),
                "变更": f"{e.get('from') or '（空）'} → {e.get('to', '')}",
                "原因": e.get("reason", ""), "备注": e.get("note", ""),
                "证明材料": e.get("evidence_name", ""), "已撤销": "是" if e["undone"] else "",
            })  # fmt: skip
    st.markdown("#### 状态变更记录")
    if skipped:
        st.warning(
            f"修改记录中有 {skipped:d} 行已损坏，已跳过（可用 riskmap history verify 检查）。"
        )
    if rows:
        st.dataframe(pd.DataFrame(rows[::-1]), hide_index=True, width="stretch")
    else:
        st.caption("暂无状态变更。")


def _diff_section(project: Project, settings: Settings, names: dict[str, str]) -> None:
    st.markdown("#### 排查轮次对比（汛前 / 汛中 / 汛后）")
    c = st.columns(3)
    start = c[0].date_input("自（当日 0 时的数据）", value=_today() - dt.timedelta(days=30),
                            key="diff_from", format="YYYY-MM-DD")  # fmt: skip
    end = c[1].date_input("至（当日 0 时；今天 = 现在）", value=_today(), key="diff_to",
                          format="YYYY-MM-DD")  # fmt: skip
    label = c[2].text_input("轮次名称", value="", key="diff_label", placeholder="如：汛前排查")
    to_ref = None if end >= _today() else end.isoformat()
    if st.button("对比", key="diff_run"):
        try:
            df, _ = diff.diff_store(
                open_store(settings), list(project.catalog), project.gdf_townships,
                metric_crs=settings.metric_crs, ref_from=start.isoformat(), ref_to=to_ref,
            )  # fmt: skip
        except RiskmapError as exc:
            st.session_state["_diff"] = str(exc)
        else:
            st.session_state["_diff"] = df
    result = st.session_state.get("_diff")
    if result is None:
        st.caption("选择日期后点“对比”：列出新增、销号、变更（字段 原值 → 新值）和移动的点位。")
        return
    if isinstance(result, str):
        st.info(f"无法对比：{md(result)}")
        return
    df = result
    if not len(df):
        st.caption("这段时间内没有变化。")
        return
    table = diff.diff_table(df, names)
    st.dataframe(table, hide_index=True, width="stretch")
    title = f"{settings.county_name}{label or '风险点位'}变化清单（{start} → {end}）"
    st.download_button("下载变化清单（Excel）", diff.diff_xlsx(table, title=title, notes=[]),
                       file_name=f"{label or '变化清单'}.xlsx", on_click="ignore",
                       key="dl_diff")  # fmt: skip
