"""导入调查表: upload → column mapping → preview (report, held rows, map) → commit; history, undo.

Widget code only: reading, planning and committing are `riskmap.readers` and
`riskmap.importing`; the history table is `riskmap.importing.history`. Held rows (冲突 =
an update moving a point > 100 m or replacing its name; 疑似重复 = a uid-less row that looks
like a point already there) are shown with a tick box each; ticked rows are applied on the
next preview, and nothing is written before 确认导入.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from riskmap import exporters
from riskmap.auth import EditorSession, guarded_store, require_editor
from riskmap.coordforms import coordinate_form_labels
from riskmap.errors import RiskmapError
from riskmap.importing import (
    COORD_ROLES,
    LONLAT_ROLE,
    ImportPlan,
    ImportReport,
    commit_import,
    known_header,
    plan_import,
    report_frame,
    report_xlsx,
)
from riskmap.importing.columns import plan_columns
from riskmap.importing.history import history_frame, undo_description
from riskmap.layers import SHARE_COLUMNS, LayerData
from riskmap.mapview import build_map
from riskmap.readers import read_table
from riskmap.store import open_store
from riskmap.ui.text import fmt, md

if TYPE_CHECKING:
    from riskmap.catalog import LayerSpec
    from riskmap.project import Project
    from riskmap.settings import Settings

KEEP = "（保留为附加属性）"
"""Mapping choice: keep the column as an extra property."""
ROLE_LABELS = {
    "lon": "经度 lon",
    "lat": "纬度 lat",
    "x": "X 坐标",
    "y": "Y 坐标",
    LONLAT_ROLE: "经纬度（一列两个值）",
}
"""Chinese labels of the coordinate roles in the mapping editor."""
HELD = {"conflict": "冲突", "duplicate": "疑似重复"}


def import_tab(project: Project, settings: Settings, who: EditorSession) -> None:
    """
    Render the whole import page for a signed-in editor.

    Parameters
    ----------
    project
        The loaded project (catalog, townships, county).
    settings
        Upload cap, metric CRS, county name; where the store is.
    who
        The signed-in session: every import and undo goes through
        `riskmap.auth.guarded_store` (refused for a viewer on the server, whatever the
        widgets), and the audit log records ``who.editor``.
    """
    st.markdown(
        "上传外业调查表（CSV / Excel），核对列对应与坐标系，预览无误后导入；可撤销最近一次导入。"
    )
    datum_notice(project)
    point_layers = [lid for lid, layer in project.layers.items() if layer.spec.geometry == "Point"]
    c1, c2, c3 = st.columns(3)
    layer_id = c1.selectbox(
        "导入到图层", point_layers, format_func=lambda lid: project.layers[lid].spec.name
    )
    forms = coordinate_form_labels()
    crs = c2.selectbox("坐标系", list(forms), format_func=forms.get)
    sheet = c3.text_input("Excel 工作表（留空 = 第一个）") or None
    spec = project.catalog.get(layer_id)
    if flash := st.session_state.pop("import_flash", None):
        st.success(md(flash))
    round_ = st.session_state.get("upload_round", 0)
    upload = st.file_uploader(
        "调查表文件", type=["csv", "txt", "xlsx", "xls"], key=f"upload_{round_}"
    )
    if upload is not None:
        _upload(upload, project, settings, spec, crs, sheet, who)
    history_panel(spec, settings, who)


def datum_notice(project: Project) -> None:
    """Show each datum warning of the loaded boundaries (`riskmap.coords.datum_warning`)."""
    for gdf in (project.gdf_townships, project.gdf_county):
        for warning in getattr(gdf, "attrs", {}).get("datum_warnings", []):
            st.warning(md(warning))


def _upload(
    upload: object, project: Project, settings: Settings, spec: LayerSpec, crs: str,
    sheet: str | None, who: EditorSession,
) -> None:  # fmt: skip
    data = upload.getvalue()  # type: ignore[attr-defined]
    name = upload.name  # type: ignore[attr-defined]
    if len(data) > settings.upload_max_mb * 2**20:
        st.error(f"文件 {len(data) / 2**20:.1f} MB，超过上限 {settings.upload_max_mb:g} MB。")
        return
    try:
        raw = read_table(data, name, sheet=sheet, is_known=known_header(spec))
    except RiskmapError as exc:
        st.error(f"无法读取文件：{md(exc)}")
        return
    st.caption(
        f"编码: {md(raw.encoding or '-')}　分隔符: {md(raw.delimiter or '-')}　"
        f"表头行: 第 {md(raw.header_row)} 行　数据行: {len(raw.rows):d}"
    )
    columns = list(raw.columns)
    with st.expander("列对应（自动识别，可修改）", expanded=True):
        guessed = plan_columns(raw, spec, ImportReport(filename=name, layer=spec.id))
        mapping = _mapping_editor(columns, spec, guessed.mapping if guessed else {})
    # the editor returns only the user's changes: what is mapped is the guess plus those
    effective = {**(guessed.mapping if guessed else {}), **mapping}
    mapped = {target for target in effective.values() if target}
    missing = [k for k in spec.required if k != spec.key and k not in mapped]
    defaults = {}
    if missing:
        st.info(
            fmt(
                "文件没有必填字段：{}。点位照常导入并标记“待补充”；也可填写默认值（每行会标注警告）。",
                "、".join(spec.label(k) for k in missing),
            )
        )
        for k in missing:
            # the plain label (no unit): Streamlit uses the label source as the aria-label
            if value := st.text_input(f"{md(spec.label(k))} 默认值", key=f"default_{k}"):
                defaults[k] = value
    strict = st.checkbox(
        "严格模式：缺少必填项的行不导入", key="import_strict",
        help="默认：位置正确的点位即使缺少属性也导入（标记待补充），以免遗漏隐患点。",
    )  # fmt: skip
    confirmed = st.session_state.setdefault("import_confirmed", {})
    ident = (hashlib.sha256(data).hexdigest(), name, spec.id)
    chosen = confirmed.get(ident, {"conflict": frozenset(), "duplicate": frozenset()})
    plan = _plan(project, settings, spec, data, name, crs, sheet, mapping, defaults, strict, chosen)
    if plan is not None:
        _show_plan(plan, project, settings, who, ident, chosen)


def _mapping_editor(columns: list[str], spec: LayerSpec, guessed: dict[str, str]) -> dict:
    """Let the user see and correct the column mapping; returns {source column: target}."""
    targets = [KEEP, *COORD_ROLES, LONLAT_ROLE, *spec.fields]
    labels = {KEEP: KEEP, **ROLE_LABELS}
    labels |= {k: f"{spec.header(k)} ({k})" for k in spec.fields}
    chosen = {}
    cols = st.columns(3)
    for i, col in enumerate(columns):
        default = guessed.get(col, KEEP)
        chosen[col] = cols[i % 3].selectbox(
            f"「{md(col)}」→",
            targets,
            index=targets.index(default) if default in targets else 0,
            format_func=labels.get,
            key=f"map_{col}",
        )
    # Only the user's changes are explicit: an unchanged guess stays a guess, so the
    # running-number rule (编号 = 1…n is not a uid unless chosen) still applies.
    return {c: ("" if t == KEEP else t) for c, t in chosen.items() if t != guessed.get(c, KEEP)}


def _plan(
    project: Project, settings: Settings, spec: LayerSpec, data: bytes, filename: str,
    crs: str, sheet: str | None, mapping: dict, defaults: dict, strict: bool,
    chosen: dict[str, frozenset[int]],
) -> ImportPlan | None:  # fmt: skip
    """Plan the import once per (file, options, ticks, data version); reruns reuse it."""
    ident = (
        hashlib.sha256(data).hexdigest(), filename, spec.id, crs, sheet,
        tuple(sorted(mapping.items())), tuple(sorted(defaults.items())), strict,
        tuple(sorted(chosen["conflict"])), tuple(sorted(chosen["duplicate"])),
        open_store(settings).stamp(),
    )  # fmt: skip
    cached = st.session_state.get("_plan")
    if cached is not None and cached[0] == ident:
        return cached[1]
    with st.spinner("正在检查调查表…"):
        try:
            plan = plan_import(
                data, filename, spec,
                existing=open_store(settings).read_layer(spec),
                gdf_townships=project.gdf_townships, gdf_county=project.gdf_county,
                crs=crs, sheet=sheet, mapping=mapping or None, defaults=defaults or None,
                metric_crs=settings.metric_crs, county_name=settings.county_name,
                strict=strict, accept_conflicts=chosen["conflict"],
                add_duplicates=chosen["duplicate"],
            )  # fmt: skip
        except RiskmapError as exc:
            st.error(f"无法检查调查表：{md(exc)}")
            return None
    st.session_state["_plan"] = (ident, plan)
    return plan


def held_rows(plan: ImportPlan, chosen: dict[str, frozenset[int]]) -> pd.DataFrame:
    """
    Rows the user may confirm: held ones and those already ticked.

    Returns
    -------
    frame
        Columns 确认 (bool), 行号, 类型, 统一编号, 名称, 原因; one row per conflict or probable
        duplicate (held now, or applied because ticked).
    """
    ticked = {("conflict", r) for r in chosen["conflict"]} | {
        ("duplicate", r) for r in chosen["duplicate"]
    }
    records = []
    rejected = plan.gdf_rejected
    names = dict(zip(rejected["_row"].tolist(), rejected.get("name", []), strict=False))
    for r in plan.report.rows:
        kind = r.action if r.action in HELD else None
        if kind is None:
            kind = next((k for k in HELD if (k, r.row) in ticked), None)
        if kind is None:
            continue
        reason = "；".join(m.reason for m in r.messages if "冲突" in m.reason or "重复" in m.reason)
        records.append(
            {
                "确认": (kind, r.row) in ticked,
                "行号": r.row,
                "类型": HELD[kind],
                "统一编号": r.uid or "",
                "名称": str(names.get(r.row) or ""),
                "原因": reason,
            }
        )
    return pd.DataFrame(records, columns=["确认", "行号", "类型", "统一编号", "名称", "原因"])


def _show_plan(
    plan: ImportPlan, project: Project, settings: Settings, who: EditorSession,
    ident: tuple, chosen: dict[str, frozenset[int]],
) -> None:  # fmt: skip
    """Preview of a planned import: counts, row report, held rows, updates, map; commit."""
    spec = project.catalog.get(plan.layer_id)
    report = plan.report
    for note in report.notes:
        st.caption(f"· {md(note)}")
    if report.file_error:
        st.error(f"整份文件未导入：{md(report.file_error)}")
        return
    c = report.counts
    cols = st.columns(7)
    for col, (label, value) in zip(cols, [
        ("新增", c["added"]), ("更新", c["updated"]), ("无变化", c["unchanged"]),
        ("未导入", c["rejected"]),
        ("冲突待确认", c["conflicts"]), ("疑似重复", c["duplicates"]), ("待补充", c["incomplete"]),
    ], strict=True):  # fmt: skip
        col.metric(md(label), value)
    st.dataframe(report_frame(report), hide_index=True, width="stretch")
    held = held_rows(plan, chosen)
    if len(held):
        st.markdown("**需要确认的行**（勾选后按文件更新/新增；不勾选则不写入）")
        edited = st.data_editor(
            held, hide_index=True, width="stretch", key=f"held_{ident[0][:12]}",
            disabled=["行号", "类型", "统一编号", "名称", "原因"],
        )  # fmt: skip
        ticks = list(zip(edited["行号"], edited["类型"], edited["确认"], strict=True))
        new = {
            kind: frozenset(int(r) for r, t, ok in ticks if ok and t == label)
            for kind, label in HELD.items()
        }
        if new != chosen:
            st.session_state["import_confirmed"][ident] = new
            st.rerun()
    if plan.changes:
        st.markdown("**将更新的点位**")
        st.dataframe(plan.gdf_updated[[spec.key, "name", "changes"]], hide_index=True)
    st.download_button(
        "下载导入报告（Excel）", report_xlsx(report), f"导入报告_{plan.filename}.xlsx",
        exporters.XLSX_MEDIA_TYPE, on_click="ignore",
    )  # fmt: skip
    if len(plan.gdf_new):
        shares = pd.DataFrame(columns=SHARE_COLUMNS)
        preview = LayerData(spec=spec, gdf=plan.gdf_new, shares=shares)
        st_folium(
            build_map({spec.id: preview}, project.gdf_townships, project.gdf_county,
                      settings=settings, demo=False),
            height=360, use_container_width=True, returned_objects=[], key="preview_map",
        )  # fmt: skip
    if not plan.can_commit and plan.report.counts["unchanged"]:
        st.info("文件中的点位与图层已有记录一致（无变化），无需导入。")
    elif not plan.can_commit:
        st.info("没有可导入的点位：请根据上表修改调查表后重新上传，或勾选需要确认的行。")
    if st.button("确认导入", type="primary", disabled=not plan.can_commit):
        try:
            store = guarded_store(open_store(settings), who)  # refuses a viewer
            commit_import(plan, spec, store, user=require_editor(who, "import"))
        except RiskmapError as exc:
            st.error(f"导入失败：{md(exc)}")
        else:
            _done(f"已导入 {spec.name}：新增 {c['added']}，更新 {c['updated']}。")


def _done(message: str) -> None:
    """After a write: show `message` on the next run, clear the uploader, reload the data."""
    st.session_state["import_flash"] = message
    st.session_state["upload_round"] = st.session_state.get("upload_round", 0) + 1
    st.session_state.pop("_plan", None)
    st.session_state.pop("import_confirmed", None)
    st.session_state.pop("undo_asked", None)
    st.rerun()


def history_panel(spec: LayerSpec, settings: Settings, who: EditorSession) -> None:
    """Show the layer's change history (Chinese, local time) and an undo that asks first.

    Corrupt log lines are skipped by the store (`riskmap.io.read_log`); their count is
    shown, never a traceback.
    """
    try:
        with warnings.catch_warnings(record=True) as skipped:
            warnings.simplefilter("always")
            history = open_store(settings).history(spec)
    except RiskmapError as exc:
        st.error(f"无法读取修改记录：{md(exc)}")
        return
    st.markdown(f"**{md(spec.name)} 修改记录**（北京时间）")
    if skipped:
        st.warning(
            f"修改记录中有 {len(skipped):d} 行已损坏，已跳过（管理员可运行 riskmap history verify）"
        )
    if not history:
        st.caption("暂无导入记录。")
        return
    st.dataframe(history_frame(history), hide_index=True, width="stretch")
    what = undo_description(history)
    if what is None:
        return
    if st.session_state.get("undo_asked") != spec.id:
        if st.button("撤销最近一次修改…", key=f"undo_{spec.id}"):
            st.session_state["undo_asked"] = spec.id
            st.rerun()
        return
    st.warning(f"确认要{md(what)}")
    c1, c2 = st.columns(2)
    if c1.button("确认撤销", type="primary", key=f"undo_yes_{spec.id}"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the skipped lines were reported above
                guarded_store(open_store(settings), who).undo(spec)
        except RiskmapError as exc:
            st.error(f"撤销失败：{md(exc)}")
        else:
            _done(f"已撤销：{spec.name} 已恢复到上一版本（{what}）")
    if c2.button("取消", key=f"undo_no_{spec.id}"):
        st.session_state.pop("undo_asked", None)
        st.rerun()
