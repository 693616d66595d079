"""Point card (风险点位明白卡, 一点一案一策): one page per risk point, A4 or A5 portrait.

What a wall card needs (DOMAIN.md; the county's 明白卡/避险明白卡): where the point is (乡镇,
村, coordinates both as CGCS2000 longitude/latitude and as Gauss-Krüger X/Y for field
surveyors), a small map, its key attributes (the catalog's ``popup`` fields), who is
responsible (责任人 / 监测员, phones), who is threatened, the warning signal and where to
evacuate: the nearest 避难场所 and its straight-line distance when the catalog has a shelter
layer (``role = "shelter"``, computed by `riskmap.resources.nearest_shelter`), otherwise an
empty box to fill in by hand.

``public=True`` (公开版, for posting on site): no phone numbers. Names stay: a wall card tells
residents whom to turn to; the phones are the personal data a public copy must not carry.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from pyproj import CRS, Transformer

from riskmap import exporters
from riskmap.report import maps
from riskmap.report.render import (
    MARGIN_MM,
    ReportError,
    document,
    esc,
    page_size,
    pdf_from_html,
    svg_img,
)
from riskmap.report.sheet import notes_for, notes_html, risk_layers
from riskmap.schema import is_blank

if TYPE_CHECKING:
    import geopandas as gpd

    from riskmap.catalog import LayerSpec
    from riskmap.project import Project

SHOWN_ELSEWHERE = ("uid", "name", "township", "village", "status", "resp_unit")
"""Popup fields the card prints in its own boxes (not again under 主要属性)."""
THREAT_FIELDS = ("threat_households", "threat_people")
"""受威胁户数 / 人数 when the layer declares them (DOMAIN.md, geohazard)."""
LOCATOR_EXTENT_M = 2500.0
"""Half-width of the locator map around the point, metres."""
CARD_SIZES = ("A4", "A5")
CARD_MARGIN_MM = 9.0
"""Page margin of an A5 card (A4 uses `riskmap.report.render.MARGIN_MM`)."""
_FILE_BAD = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


class FeatureNotFoundError(ReportError, KeyError):
    """No feature with that key in the layer."""

    def __str__(self) -> str:
        """Return the message without KeyError's repr quoting."""
        return str(self.args[0]) if self.args else ""


def card_file_name(uid: str) -> str:
    """Return ``"明白卡_<uid>"``, the uid made safe as a file name (no extension)."""
    return "明白卡_" + (_FILE_BAD.sub("_", str(uid)).strip() or "_")


def is_phone_field(spec: LayerSpec, key: str) -> bool:
    """Tell whether a field holds phone numbers (key ``phone``/``tel``, label 电话/手机)."""
    fspec = spec.fields.get(key)
    label = fspec.label if fspec else key
    lowered = key.lower()
    return "phone" in lowered or "tel" in lowered or "电话" in label or "手机" in label


def _value_text(spec: LayerSpec, key: str, value: object) -> str:
    if is_blank(value):
        return ""
    fspec = spec.fields.get(key)
    if fspec is not None and fspec.type == "bool":
        return "是" if bool(value) else "否"
    text = f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    unit = fspec.unit if fspec is not None and fspec.unit else ""
    return f"{text} {unit}".strip()


def _kv_table(rows: list[tuple[str, str]], *, pairs: int = 1) -> str:
    """Label/value rows as a table, `pairs` label/value pairs per table row."""
    cells = [f"<th>{esc(k)}</th><td>{esc(v)}</td>" for k, v in rows]
    cells += ["<th></th><td></td>"] * (-len(cells) % pairs)
    body = "".join(
        "<tr>" + "".join(cells[i : i + pairs]) + "</tr>" for i in range(0, len(cells), pairs)
    )
    return f'<table class="kv">{body}</table>'


def find_feature(project: Project, layer_id: str, uid: str) -> gpd.GeoDataFrame:
    """
    Find the one feature of layer `layer_id` whose key is `uid`.

    Returns
    -------
    gdf
        One row of the prepared layer (EPSG:4326).

    Raises
    ------
    LayerNotFoundError
        When `layer_id` is not in the catalog.
    FeatureNotFoundError
        When no feature has that key.
    """
    spec = project.catalog.get(layer_id)
    gdf = project.layers[spec.id].gdf
    rows = gdf[gdf[spec.key].astype(str) == str(uid).strip()]
    if rows.empty:
        msg = f"{spec.name}中没有统一编号为 {uid!r} 的点位 (no feature {uid!r} in layer {spec.id})"
        raise FeatureNotFoundError(msg)
    return rows.iloc[:1]


def coordinates(gdf_one: gpd.GeoDataFrame, metric_crs: str) -> dict[str, float] | None:
    """
    Give the feature's position: longitude/latitude and Gauss-Krüger X (north) / Y (east).

    Parameters
    ----------
    gdf_one
        One feature, EPSG:4326 (a polygon gives its representative point).
    metric_crs
        Gauss-Krüger CRS, e.g. ``"EPSG:4545"`` (CGCS2000 3-degree zone, CM 108°E, false
        easting 500 000 m, no zone prefix).

    Returns
    -------
    coords
        ``{"lon", "lat"}`` in degrees (EPSG:4326; CGCS2000 EPSG:4490 differs by centimetres,
        not converted) and ``{"x_m", "y_m"}`` (X = northing, Y = easting, metres, the
        surveyors' order); None when the feature has no geometry.
    """
    geom = gdf_one.geometry.iloc[0]
    if geom is None or geom.is_empty:
        return None
    point = geom if geom.geom_type == "Point" else geom.representative_point()
    to_gk = Transformer.from_crs("EPSG:4326", metric_crs, always_xy=True)
    east, north = to_gk.transform(point.x, point.y)
    return {"lon": point.x, "lat": point.y, "x_m": north, "y_m": east}


def nearest_shelter_text(project: Project, gdf_one: gpd.GeoDataFrame) -> str | None:
    """
    Say ``"<shelter name>（直线距离 约 N 米）"`` for the feature, or None when there is none.

    Uses `riskmap.resources.shelters_from_layers` (the catalog's ``role = "shelter"`` layers,
    cleared shelters left out) and `riskmap.resources.nearest_shelter` (straight-line
    distance in `Settings.metric_crs`). None when the catalog has no shelter (the card then
    prints an empty box to fill in by hand) or the feature has no location.
    """
    from riskmap.resources import nearest_shelter, shelters_from_layers  # noqa: PLC0415

    gdf_shelters = shelters_from_layers(project.layers)
    if gdf_shelters.empty:
        return None
    found = nearest_shelter(gdf_one, gdf_shelters, metric_crs=project.settings.metric_crs)
    row = found.iloc[0]
    if is_blank(row["shelter_name"]) or is_blank(row["shelter_distance_m"]):
        return None
    return f"{row['shelter_name']}（直线距离 约 {float(row['shelter_distance_m']):,.0f} 米）"


def point_card_pdf(
    project: Project,
    layer_id: str,
    uid: str,
    *,
    public: bool = False,
    size: str = "A4",
    generated: dt.date | None = None,
) -> bytes:
    """
    Make the one-page card of one risk point as PDF.

    Parameters
    ----------
    project
        The loaded installation.
    layer_id
        Catalog layer id, e.g. ``"geohazard"``.
    uid
        The feature's key (统一编号).
    public
        公开版: leave out phone numbers (fields that are phones: `is_phone_field`).
    size
        ``"A4"`` (default) or ``"A5"``, portrait.
    generated
        Date printed as 制卡日期; default today.

    Returns
    -------
    pdf
        The PDF file (one page).

    Raises
    ------
    LayerNotFoundError, FeatureNotFoundError
        When the layer or the point does not exist.
    ReportError
        When `size` is not A4/A5, or the CJK font / Pango is missing.
    """
    if size.strip().upper() not in CARD_SIZES:
        msg = f"明白卡纸张应为 A4 或 A5 (card size): {size!r}"
        raise ReportError(msg)
    paper = page_size(size)
    small = paper.name == "A5"
    generated = generated or dt.date.today()
    gdf_one = find_feature(project, layer_id, uid)
    spec = project.catalog.get(layer_id)
    rec = gdf_one.iloc[0]
    notes = notes_for(project, {layer_id: gdf_one}, include_cleared=True)
    if public:
        notes.append("公开版：不含电话号码")

    def val(key: str) -> str:
        return _value_text(spec, key, rec.get(key)) if key in gdf_one.columns else ""

    title = f"{spec.name}明白卡：{val('name') or uid}"
    coords = coordinates(gdf_one, project.settings.metric_crs)
    where = [
        ("乡镇", val("township")),
        ("村/社区", val("village")),
    ]
    if coords is None:
        where.append(("坐标", "无坐标"))
    else:
        where += [
            ("经度 / 纬度", f"{coords['lon']:.6f}°E，{coords['lat']:.6f}°N（CGCS2000）"),
            (
                "高斯-克吕格",
                (
                    f"X（北）{coords['x_m']:.1f} 米，Y（东）{coords['y_m']:.1f} 米"
                    f"（{project.settings.metric_crs}"
                    + ("）" if small else f" {CRS(project.settings.metric_crs).name}）")
                ),
            ),
        ]
    ident = [
        ("名称", val("name")),
        ("统一编号", str(uid)),
        ("图层", spec.name),
        (spec.label(spec.class_field), val(spec.class_field)),
        ("状态", val("status")),
    ]
    personal = set(spec.personal)
    attrs = [
        (spec.header(k), val(k))
        for k in spec.popup
        if k not in SHOWN_ELSEWHERE and k not in personal and k != spec.class_field
        and k not in THREAT_FIELDS
    ]  # fmt: skip
    people = [("责任单位", val("resp_unit"))] if "resp_unit" in spec.fields else []
    for key in spec.personal:
        if public and is_phone_field(spec, key):
            continue
        people.append((spec.label(key), val(key)))
    threat = [(spec.header(k), val(k)) for k in THREAT_FIELDS if k in spec.fields]
    if not threat:
        threat = [("受威胁对象", "本图层未登记")]
    shelter = nearest_shelter_text(project, gdf_one)
    blank = '<span class="blank"></span>'
    shelter_html = (
        f"<p>最近避难场所：{esc(shelter)}</p>"
        if shelter
        else (
            f"<p>最近避难场所：{blank}　直线距离：{blank} 米"
            "（目录中尚无避难场所图层，请手工填写）</p>"
        )
    )
    width, _ = paper.oriented(landscape=False)
    margin = CARD_MARGIN_MM if small else MARGIN_MM
    map_w = width - 2 * margin
    map_h = 36.0 if small else 66.0
    layers = risk_layers(project)
    neighbours = {
        lid: (layer.spec, layer.gdf[layer.gdf[layer.spec.key].astype(str) != str(uid)])
        for lid, layer in layers.items()
    }
    svg = maps.map_svg(
        neighbours,
        project.gdf_townships,
        project.gdf_county,
        metric_crs=project.settings.metric_crs,
        width_mm=map_w,
        height_mm=map_h,
        legend=False,
        marker_size=14.0,
        extent_m=LOCATOR_EXTENT_M,
        highlight=gdf_one if coords is not None else None,
    )
    map_html = (
        svg_img(svg, width_mm=map_w, height_mm=map_h, alt="位置示意图")
        if coords is not None
        else '<div class="box">无坐标，无法绘制位置图</div>'
    )
    body = [
        f"<h1>{esc(title)}</h1>",
        notes_html(notes),
        '<div class="cols">',
        f'<div class="col"><h2>基本信息</h2>{_kv_table(ident)}</div>',
        f'<div class="col"><h2>位置</h2>{_kv_table(where)}</div>',
        "</div>",
        f"<h2>位置示意图（红星为本点，周边 {LOCATOR_EXTENT_M / 1000:g} 公里）</h2>",
        map_html,
        f"<h2>主要属性</h2>{_kv_table(attrs, pairs=2)}",
        '<div class="cols">',
        f'<div class="col"><h2>责任人 / 监测员</h2>{_kv_table(people)}</div>',
        f'<div class="col"><h2>受威胁</h2>{_kv_table(threat)}</div>',
        "</div>",
        '<h2>预警信号与避险撤离</h2><div class="box">',
        f"<p>预警信号：{blank}　撤离信号：{blank}</p>",
        f"<p>撤离路线：{blank}{blank}{blank}</p>",
        shelter_html,
        "</div>",
    ]
    extra = ".cols { display: flex; gap: 4mm; } .col { flex: 1; } .box p { margin: 1.5mm 0; }"
    if small:
        extra += (
            "h1 { font-size: 11pt; margin: 0 0 1mm 0; }"
            " h2 { font-size: 8.5pt; margin: 2mm 0 1mm 0; }"
            " .blank { min-width: 22mm; } table.kv th { width: 20mm; } .box { padding: 1mm; }"
        )
    doc = document(
        "".join(body),
        title=title,
        right=f"制卡日期 {generated.isoformat()}",
        left_foot="；".join(n for n in notes[1:] if n != exporters.NOTE_NO_CLEARED),
        size=paper,
        landscape=False,
        base_pt=6.5 if small else 8.5,
        extra_css=extra,
        margin_mm=margin,
    )
    return pdf_from_html(doc, title=title)
