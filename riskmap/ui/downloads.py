"""下载清单: the township list download buttons and the all-townships ZIP.

The buttons are the export formats registry (`riskmap.exporters.EXPORT_FORMATS`), the same
registry ``riskmap export --format`` offers: `offered_formats` is what this view shows.
Downloads hold exactly what the screen shows: the app passes its `FeatureFilter` (layers,
classes, statuses, search text), and the file's note row says which conditions applied.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

import streamlit as st

from riskmap import exporters
from riskmap.errors import RiskmapError
from riskmap.ui.text import md

if TYPE_CHECKING:
    from riskmap.filters import FeatureFilter
    from riskmap.project import Project

ZIP_FORMAT = "xlsx"
"""Format of the township files in the app's all-townships ZIP."""


def offered_formats() -> tuple[str, ...]:
    """Ids of the formats this view offers a button for, in button order."""
    return tuple(exporters.EXPORT_FORMATS)


@st.cache_data(show_spinner=False, max_entries=64)
def _export(
    _project: Project,
    version: object,
    fmt: str,
    code: str,
    include: bool,
    _selection: FeatureFilter | None,
    selection_key: str,
) -> bytes:
    """One township's list in format `fmt`, cached per data version and selection."""
    del version, selection_key
    return exporters.township_export(
        _project.layers,
        code,
        _project.township(code)[1],
        fmt=fmt,
        include_cleared=include,
        approximate=_project.approximate,
        county_name=_project.settings.county_name,
        selection=_selection,
    )


def _zip_button(project: Project, include_cleared: bool, selection: FeatureFilter | None) -> None:
    if not st.button("生成全县各乡镇清单（ZIP）"):
        return
    n = len(project.township_codes)
    with st.status(f"正在生成 {n:d} 个乡镇的清单…", expanded=False) as status:
        try:
            data = exporters.all_townships_zip(
                project.layers,
                project.township_codes,
                fmt=ZIP_FORMAT,
                include_cleared=include_cleared,
                approximate=project.approximate,
                county_name=project.settings.county_name,
                selection=selection,
            )
        except RiskmapError as exc:
            status.update(label="生成失败", state="error")
            st.error(f"生成清单失败：{md(exc)}")
            return
        status.update(label=f"已生成（{len(data) / 1024:.0f} KB）", state="complete")
    name = exporters.zip_file_name(project.settings.county_name, ZIP_FORMAT)
    st.download_button(
        "下载全县各乡镇清单（ZIP）", data, name, exporters.ZIP_MEDIA_TYPE, on_click="ignore"
    )


def township_downloads(
    project: Project,
    version: object,
    township_code: str | None,
    *,
    include_cleared: bool,
    selection: FeatureFilter | None = None,
) -> None:
    """
    Show the download buttons of one township's list, or the county's ZIP button.

    Parameters
    ----------
    project
        The loaded project.
    version
        The data version (the store's stamp): the cache key of the built files.
    township_code
        9-digit code of the township chosen, or None for the whole county.
    include_cleared
        Also list cleared (已销号) features.
    selection
        What the screen shows; the files hold just that (None = everything).
    """
    st.caption(
        "清单内容：含已销号点位。"
        if include_cleared
        else "清单内容：不含已销号点位（在“状态”中勾选已销号可包含）。"
    )
    if selection is not None:
        shown = replace(selection, township_code=None).describe(project.layers)
        st.caption(f"下载内容与当前屏幕一致（{md(shown)}），文件说明行注明筛选条件。")
    if township_code is None:
        st.info("请在左侧选择一个乡镇/街道后下载其风险点位清单；或生成全县各乡镇清单压缩包。")
        _zip_button(project, include_cleared, selection)
        return
    name = project.township(township_code)[1]
    formats = [exporters.EXPORT_FORMATS[fmt] for fmt in offered_formats()]
    key = repr(selection)
    for col, fmt in zip(st.columns(len(formats)), formats, strict=True):
        # Deferred: the file is built when the button is clicked, not on every rerun (an
        # Excel list of a few thousand points takes seconds with openpyxl).
        data = partial(
            _export, project, version, fmt.id, township_code, include_cleared, selection, key
        )
        file_name = exporters.township_file_name(township_code, name, fmt.extension)
        col.download_button(md(fmt.label), data, file_name, fmt.media_type, on_click="ignore")
