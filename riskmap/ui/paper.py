"""Streamlit view: print downloads (PDF) — township sheet, selected point's card, county map.

Widget code only; the documents come from `riskmap.report`. Each PDF is made when its
button is clicked (a deferred ``data`` callable), not on every rerun: a sheet takes about a
second. Reads the township filter (``st.session_state["f_township"]``) and the selected point
(``st.session_state["sel"] = (layer_id, key)``) that `app.py` keeps.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import streamlit as st

from riskmap import exporters, report
from riskmap.ui.text import md

if TYPE_CHECKING:
    from riskmap.project import Project
    from riskmap.settings import Settings

PDF_MIME = "application/pdf"
ALL_TOWNSHIPS = "全县"
"""The township filter's 'no township' value (`app.ALL`)."""


def _township_code(project: Project, township: str | None) -> tuple[str, str] | None:
    if not township or township == ALL_TOWNSHIPS:
        return None
    return project.township(township)


def _selected(project: Project) -> tuple[str, str] | None:
    sel = st.session_state.get("sel")
    if not sel or sel[0] not in project.layers:
        return None
    lid, key = sel
    gdf = project.layers[lid].gdf
    if not gdf[project.layers[lid].spec.key].astype(str).eq(str(key)).any():
        return None
    return str(lid), str(key)


def downloads(project: Project, settings: Settings, editor: str | None) -> None:
    """
    Show the print section: township sheet (A4/A3), point card (A4/A5, 公开版), county map.

    Parameters
    ----------
    project
        The loaded installation (read only).
    settings
        Unused: printing reads only `project` (kept for the `riskmap.ui` signature).
    editor
        Unused: printing needs no sign-in.
    """
    del settings, editor
    st.markdown("#### 打印（PDF）")
    st.caption(
        "乡镇图表（地图、清单、清零进度、签字栏）、点位明白卡、全县总图；点击后生成。"
        "打印件含全部风险图层，不随图层、等级和搜索筛选变化（“状态”中勾选已销号则包含已销号点位）。"
    )
    size = st.radio("图表纸张", ["A4", "A3"], horizontal=True, key="paper_size")
    include = "已销号" in st.session_state.get("f_statuses", [])
    town = _township_code(project, st.session_state.get("f_township"))
    c1, c2, c3 = st.columns(3)
    if town is None:
        c1.info("在左侧选择一个乡镇/街道后可下载其图表。")
    else:
        code, name = town
        c1.download_button(
            f"下载{md(name)}图表（PDF）",
            partial(report.township_sheet_pdf, project, code, size=size, include_cleared=include),
            exporters.township_file_name(code, name, "pdf"),
            PDF_MIME,
            on_click="ignore",
            key="paper_sheet",
        )
    picked = _selected(project)
    if picked is None:
        c2.info("在地图或清单中选中一个点位后可下载其明白卡。")
    else:
        lid, key = picked
        card_size = c2.radio("明白卡纸张", ["A4", "A5"], horizontal=True, key="paper_card_size")
        public = c2.checkbox("公开版（不含电话）", key="paper_public")
        suffix = "_公开版" if public else ""
        c2.download_button(
            f"下载明白卡 {md(key)}（PDF）",
            partial(report.point_card_pdf, project, lid, key, public=public, size=card_size),
            f"{report.card_file_name(key)}{suffix}.pdf",
            PDF_MIME,
            on_click="ignore",
            key="paper_card",
        )
    c3.download_button(
        "下载全县总图（A3，PDF）",
        partial(report.county_poster_pdf, project, size="A3", include_cleared=include),
        f"{project.settings.county_name}_风险点位总图_A3.pdf",
        PDF_MIME,
        on_click="ignore",
        key="paper_poster",
    )
