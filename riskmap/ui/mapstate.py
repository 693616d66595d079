"""What the URL carries beyond the basic filters, the grade filter, and the map's furniture.

Every filter is in the page URL, so a copied link opens the same view: ``grades`` (per-layer
classes kept, only for layers not showing every class), ``sel`` (the selected point,
``layer:key``) and ``view`` (the map view, ``lat,lng,zoom``, written by the map itself as the
user moves it, see ``riskmap/mapview/static/riskmap.js``). The grade filter offers a threshold
(``≥ 大型``: what planners ask for, "大型及以上") beside the per-class choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from riskmap.basemap import BasemapLayer, install_basemap, open_basemap
from riskmap.catalog import UNCLASSED
from riskmap.layers import LayerData
from riskmap.project import Project
from riskmap.settings import Settings
from riskmap.ui.text import md

MAP_HEIGHT_PX = 480
"""Map height: with the title, notes and one row of figures it fits a 1366×768 screen."""

ALL_GRADES = "全部等级"
CUSTOM_GRADES = "自选（见下方）"
GRADE_SEP = ";"
CLASS_SEP = "|"


def _all_classes(layer: LayerData) -> list[str]:
    return [*layer.spec.classes, UNCLASSED]


def parse_grades(project: Project, text: str) -> dict[str, list[str]]:
    """
    Parse the URL's ``grades`` value: ``"geohazard:大型|特大型;bridge:4类|5类"``.

    Unknown layers and classes are dropped; a layer named with no known class keeps none.

    Returns
    -------
    classes
        ``{layer_id: classes kept}`` for the layers named.
    """
    out: dict[str, list[str]] = {}
    for part in text.split(GRADE_SEP):
        lid, _, values = part.partition(":")
        if lid not in project.layers:
            continue
        allowed = _all_classes(project.layers[lid])
        wanted = set(values.split(CLASS_SEP)) if values else set()
        out[lid] = [c for c in allowed if c in wanted]
    return out


def init_grades(project: Project, text: str) -> None:
    """First run: every layer's class multiselect state from the URL (default: all classes)."""
    chosen = parse_grades(project, text)
    for lid, layer in project.layers.items():
        st.session_state[f"cls_{lid}"] = chosen.get(lid, _all_classes(layer))
        st.session_state[f"min_{lid}"] = _threshold_of(layer, st.session_state[f"cls_{lid}"])


def init_selection(project: Project, qp: Mapping[str, str]) -> None:
    """First run: the selected point (``sel=layer:key``) and the shared map view from the URL."""
    lid, _, key = str(qp.get("sel", "")).partition(":")
    if lid in project.layers and key:
        st.session_state["sel"] = st.session_state["hl"] = (lid, key)
    st.session_state["_view0"] = qp.get("view") or None


def initial_view(view_key: str, highlight: tuple[str, str] | None) -> str | None:
    """
    Return the shared URL's map view while the page still shows what that URL showed.

    The first call of a session pins `view_key` and `highlight`; once either changes (another
    township, another point) the map should move there, so the URL's view no longer applies.
    """
    state = st.session_state
    if "_view0_key" not in state:
        state["_view0_key"] = (view_key, highlight)
    if state["_view0_key"] != (view_key, highlight):
        return None
    return state.get("_view0")


def _thresholds(layer: LayerData) -> list[str]:
    classes = list(layer.spec.classes)
    return [ALL_GRADES, *[f"≥ {c}" for c in classes[1:]], CUSTOM_GRADES]


def _threshold_of(layer: LayerData, kept: list[str]) -> str:
    """Return the threshold option that gives exactly `kept` (自选 for a hand-picked set)."""
    classes = list(layer.spec.classes)
    if set(kept) == set(_all_classes(layer)):
        return ALL_GRADES
    for i in range(1, len(classes)):
        if kept == classes[i:]:
            return f"≥ {classes[i]}"
    return CUSTOM_GRADES


def _apply_threshold(lid: str, layer: LayerData) -> None:
    """Set the class multiselect to the classes at or above the chosen threshold (callback)."""
    choice = st.session_state[f"min_{lid}"]
    classes = list(layer.spec.classes)
    if choice == CUSTOM_GRADES:
        return  # the classes below stay as picked
    if choice == ALL_GRADES:
        st.session_state[f"cls_{lid}"] = _all_classes(layer)
    else:
        st.session_state[f"cls_{lid}"] = classes[classes.index(choice.removeprefix("≥ ")) :]


def _sync_threshold(lid: str, layer: LayerData) -> None:
    """Show the threshold that matches the hand-picked classes (multiselect callback)."""
    st.session_state[f"min_{lid}"] = _threshold_of(layer, st.session_state[f"cls_{lid}"])


def grade_filters(sb: DeltaGenerator, project: Project, visible: list[str]) -> dict[str, list[str]]:
    """
    Per visible layer: a threshold (``≥ 大型``) and the per-class choice it fills in.

    Parameters
    ----------
    sb
        The Streamlit container (the sidebar).
    project
        Loaded project (layer specs).
    visible
        Layer ids shown.

    Returns
    -------
    classes
        ``{layer_id: classes kept}`` for every visible layer.
    """
    sb.markdown("**等级筛选**")
    classes: dict[str, list[str]] = {}
    for lid in visible:
        layer = project.layers[lid]
        spec = layer.spec
        label = spec.label(spec.class_field)
        sb.selectbox(
            f"{md(spec.name)} · {md(label)}",
            _thresholds(layer),
            key=f"min_{lid}",
            on_change=_apply_threshold,
            args=(lid, layer),
            help=f"选“≥ 某级”只看该级及以上的{md(spec.name)}；下方可逐项增减",
        )
        classes[lid] = sb.multiselect(
            f"{md(spec.name)} · {md(label)}（逐项选择）",
            _all_classes(layer),
            key=f"cls_{lid}",
            on_change=_sync_threshold,
            args=(lid, layer),
            label_visibility="collapsed",
        )
    return classes


def url_state(project: Project, classes: Mapping[str, list[str]]) -> dict[str, str]:
    """
    Return the URL parameters this module owns, for ``st.query_params.from_dict``.

    Returns
    -------
    params
        ``grades`` (only layers not showing every class), ``sel`` (``layer:key``) and
        ``view`` (as the URL had it; the map's script keeps it current in the browser), each
        only when set.
    """
    grades = [
        f"{lid}:{CLASS_SEP.join(kept)}"
        for lid, kept in classes.items()
        if set(kept) != set(_all_classes(project.layers[lid]))
    ]
    sel = st.session_state.get("sel")
    params = {"grades": GRADE_SEP.join(grades), "sel": f"{sel[0]}:{sel[1]}" if sel else ""}
    params["view"] = st.session_state.get("_view0") or ""
    return {k: v for k, v in params.items() if v}  # absent = default: old links stay valid


def no_match_notice(layers: Mapping[str, LayerData], visible: list[str], text: str) -> bool:
    """
    Say 无符合条件的点位 when the filters leave nothing to show; return True then.

    Parameters
    ----------
    layers
        The filtered layers.
    visible
        Layer ids shown.
    text
        The search text (named in the message when set).
    """
    if any(len(layers[lid].gdf) for lid in visible if lid in layers):
        return False
    if not visible:
        st.info("无符合条件的点位：未选择任何图层，请在左侧勾选要显示的图层。")
    elif text.strip():
        st.warning(
            f"无符合条件的点位：没有名称或编号包含“{md(text.strip())}”的点位（当前筛选条件下）。"
        )
    else:
        st.warning("无符合条件的点位：请放宽左侧的乡镇、状态或等级筛选。")
    return True


def offline_basemap(settings: Settings, static_dir: Path) -> BasemapLayer | None:
    """
    Install ``settings.basemap`` for the county (see `riskmap.basemap`); None when unset.

    Raises
    ------
    RiskmapError
        The file is missing, malformed, of another area, or its CRS is not declared.
    """
    if settings.basemap is None:
        return None
    archive = open_basemap(settings.basemap, crs=settings.basemap_crs)
    from riskmap import io  # noqa: PLC0415 - geo stack only when a basemap is configured

    left, bottom, right, top = io.read_county(settings).total_bounds
    return install_basemap(archive, static_dir, (left, bottom, right, top))
