"""Printed documents (riskmap.report): township sheet, point card, county poster.

Each PDF is opened as a reader would: page size and count with pypdf, text with poppler's
``pdftotext``, fonts with ``pdffonts`` (the CJK font must be embedded, ``emb yes``), pages
rendered with ``pdftoppm`` into ``tests/artifacts`` for a person to look at. Expected
values (which points a township lists, their phones, coordinates, sums) are computed here
from the bundled files with geopandas/pyproj directly, not through riskmap's pipeline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

import geopandas as gpd
from pyproj import Transformer

from riskmap.cli import main
from riskmap.project import load_project
from riskmap.report import (
    FeatureNotFoundError,
    ReportError,
    all_township_sheets_zip,
    county_poster_pdf,
    maps,
    point_card_pdf,
    render,
    township_sheet_pdf,
)

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PT_PER_MM = 72 / 25.4
A4_LANDSCAPE = (297 * PT_PER_MM, 210 * PT_PER_MM)
A3_LANDSCAPE = (420 * PT_PER_MM, 297 * PT_PER_MM)
A4_PORTRAIT = (210 * PT_PER_MM, 297 * PT_PER_MM)
TODAY = dt.date(2026, 11, 30)

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdffonts") is None,
    reason="poppler-utils (pdftotext, pdffonts) not installed",
)


@pytest.fixture(scope="module")
def project(settings):
    return load_project(settings)


def pdf_text(data: bytes, tmp_path: Path, *, first: int | None = None) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    args = ["pdftotext", "-enc", "UTF-8"]
    if first is not None:
        args += ["-f", str(first)]
    return subprocess.run(
        [*args, str(path), "-"], capture_output=True, check=True, text=True
    ).stdout


def embedded_fonts(data: bytes, tmp_path: Path) -> list[tuple[str, str]]:
    """``[(font name, emb)]`` as pdffonts lists them."""
    path = tmp_path / "fonts.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, check=True, text=True).stdout
    rows = []
    for line in out.splitlines()[2:]:
        parts = line.split()
        # name type... encoding emb sub uni id gen: emb is the 5th field from the end
        rows.append((parts[0], parts[-5]))
    return rows


def page_sizes(data: bytes) -> list[tuple[float, float]]:
    reader = PdfReader(io.BytesIO(data))
    return [(float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages]


def save_pngs(data: bytes, stem: str, *, resolution: int = 60) -> None:
    """Render every page into tests/artifacts (git-ignored) to look at."""
    if shutil.which("pdftoppm") is None:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = ARTIFACTS / f"{stem}.pdf"
    pdf.write_bytes(data)
    subprocess.run(
        ["pdftoppm", "-r", str(resolution), "-png", str(pdf), str(ARTIFACTS / stem)], check=True
    )


def expected_listed(code: str) -> dict[str, set[str]]:
    """
    Uids a township's sheet must list, from the raw files: active (状态 ≠ 已销号) points
    inside the township polygon, zones intersecting it.
    """
    towns = gpd.read_file(ROOT / "data" / "townships_approx.geojson")
    poly = towns.loc[towns["adcode"] == code, "geometry"].iloc[0]
    out = {}
    for lid, pred in (
        ("geohazard", "within"),
        ("waterlogging", "within"),
        ("bridge", "within"),
        ("firezone", "intersects"),
    ):
        gdf = gpd.read_file(ROOT / "layers" / f"{lid}.geojson")
        gdf = gdf[gdf["status"].fillna("") != "已销号"]
        hit = gdf.geometry.within(poly) if pred == "within" else gdf.geometry.intersects(poly)
        out[lid] = set(gdf.loc[hit, "uid"])
    return out


def raw_feature(layer: str, uid: str) -> dict:
    doc = json.loads((ROOT / "layers" / f"{layer}.geojson").read_text(encoding="utf-8"))
    return next(f for f in doc["features"] if f["properties"]["uid"] == uid)


# --- township sheet ---------------------------------------------------------------------------


@needs_poppler
def test_township_sheet_lists_every_active_point_on_a4_landscape(project, tmp_path):
    expected = expected_listed("500229102")  # 巴山镇
    assert sum(len(v) for v in expected.values()) >= 2  # the test means something
    data = township_sheet_pdf(project, "巴山镇", generated=TODAY)
    sizes = page_sizes(data)
    assert all(w == pytest.approx(A4_LANDSCAPE[0], abs=1) for w, _ in sizes)
    assert all(h == pytest.approx(A4_LANDSCAPE[1], abs=1) for _, h in sizes)
    text = pdf_text(data, tmp_path)
    lists = pdf_text(data, tmp_path, first=2)  # the list pages, not the map labels
    assert "城口县巴山镇安全风险点位图表" in text
    for lid, uids in expected.items():
        for uid in uids:
            assert uid in lists, (lid, uid)
    # no point of another township on its lists
    others = set(re.findall(r"[A-Z]{2}-500229-\d{3}", lists))
    assert others == set().union(*expected.values())
    n = len(sizes)
    for i in range(1, n + 1):
        assert f"第{i}页/共{n}页" in text.replace(" ", "")
    assert "示意边界" in text
    assert "演示数据" in text
    assert "北" in text
    assert "公里" in text
    assert "制表单位" in text
    assert "审核" in text
    assert "清零进度" in text
    save_pngs(data, "sheet_巴山镇")


@needs_poppler
def test_township_sheet_totals_match_raw_data(project, tmp_path):
    expected = expected_listed("500229102")
    data = township_sheet_pdf(project, "500229102", generated=TODAY)
    text = pdf_text(data, tmp_path, first=2)
    raw = gpd.read_file(ROOT / "layers" / "geohazard.geojson").set_index("uid")
    people = int(raw.loc[sorted(expected["geohazard"]), "threat_people"].sum())
    assert f"共{len(expected['geohazard'])}处" in text
    # the 合计 row of the geohazard list carries the threatened people sum
    total_line = next(line for line in text.splitlines() if line.startswith("合计"))
    assert str(people) in text, (people, total_line)


@needs_poppler
def test_cjk_font_is_embedded(project, tmp_path):
    data = township_sheet_pdf(project, "葛城街道", generated=TODAY)
    fonts = embedded_fonts(data, tmp_path)
    cjk = [(name, emb) for name, emb in fonts if "CJK" in name]
    assert cjk, fonts
    assert all(emb == "yes" for _, emb in fonts), fonts


def test_township_sheet_a3(project):
    data = township_sheet_pdf(project, "葛城", size="A3", generated=TODAY)
    w, h = page_sizes(data)[0]
    assert (w, h) == pytest.approx(A3_LANDSCAPE, abs=1)


@needs_poppler
def test_township_without_polygon_shows_covering_cell(project, tmp_path):
    data = township_sheet_pdf(project, "复兴街道", generated=TODAY)
    text = pdf_text(data, tmp_path)
    assert "复兴街道" in text
    assert "没有单独的范围" in text


@needs_poppler
def test_data_text_is_printed_as_text_not_markup(project, tmp_path):
    layer = project.layers["geohazard"]
    gdf = layer.gdf.copy()
    code = "500229102"
    mine = layer.shares.loc[layer.shares["township_code"] == code, "key"]
    row = gdf.index[gdf["uid"].isin(mine)][0]
    gdf.loc[row, "name"] = '<b>x</b>"}&amp;'
    hacked = project.with_layer(dataclasses.replace(layer, gdf=gdf))
    text = pdf_text(township_sheet_pdf(hacked, code, generated=TODAY), tmp_path, first=2)
    assert '<b>x</b>"}&amp;' in text.replace("\n", "")


def test_unknown_township_and_size_are_clear_errors(project):
    with pytest.raises(Exception, match="找不到乡镇"):
        township_sheet_pdf(project, "不存在乡")
    with pytest.raises(ReportError, match="纸张尺寸"):
        township_sheet_pdf(project, "葛城", size="B5")


@needs_poppler
def test_all_zip_one_pdf_per_township_plus_county_map(project, tmp_path):
    two = dataclasses.replace(project, township_codes=project.township_codes.iloc[:2])
    data = all_township_sheets_zip(two, generated=TODAY)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert names == [
            "500229001_葛城街道.pdf",
            "500229002_复兴街道.pdf",
            "城口县_风险点位总图.pdf",
        ]
        for name in names[:2]:
            text = pdf_text(zf.read(name), tmp_path)
            assert name.split("_")[1].removesuffix(".pdf") in text
            assert re.search(r"第\s*1\s*页\s*/\s*共\s*\d+\s*页", text)


# --- point card -------------------------------------------------------------------------------


@needs_poppler
def test_card_one_page_with_location_people_and_blank_shelter_box(project, tmp_path):
    uid = "DZ-500229-001"
    feat = raw_feature("geohazard", uid)
    props = feat["properties"]
    lon, lat = feat["geometry"]["coordinates"][:2]
    data = point_card_pdf(project, "geohazard", uid, generated=TODAY)
    sizes = page_sizes(data)
    assert len(sizes) == 1
    assert sizes[0] == pytest.approx(A4_PORTRAIT, abs=1)
    text = pdf_text(data, tmp_path).replace("\n", "")
    assert uid in text
    assert props["name"] in text
    assert props["resp_phone"] in text
    assert props["resp_name"] in text
    assert f"{props['threat_people']} 人" in text
    east, north = Transformer.from_crs(4326, 4545, always_xy=True).transform(lon, lat)
    flat = re.sub(r"\s+", "", text)
    assert f"X（北）{north:.1f}米" in flat
    assert f"Y（东）{east:.1f}米" in flat
    assert f"{lon:.6f}°E" in text
    # nearest shelter, computed here from the raw shelter file in the metric CRS
    shelters = gpd.read_file(ROOT / "layers" / "shelters.geojson")
    shelters = shelters[shelters["status"].fillna("") != "已销号"].to_crs(4545)
    here = gpd.GeoSeries(gpd.points_from_xy([lon], [lat]), crs=4326).to_crs(4545).iloc[0]
    dist = shelters.distance(here)
    nearest = shelters.loc[dist.idxmin()]
    assert f"最近避难场所：{nearest['name']}（直线距离约{dist.min():,.0f}米）" in flat
    save_pngs(data, "card_DZ-500229-001", resolution=80)


@needs_poppler
def test_public_card_has_no_phone_and_a5_fits_one_page(project, tmp_path):
    uid = "DZ-500229-001"
    phone = raw_feature("geohazard", uid)["properties"]["resp_phone"]
    data = point_card_pdf(project, "geohazard", uid, public=True, size="A5", generated=TODAY)
    sizes = page_sizes(data)
    assert len(sizes) == 1
    assert sizes[0] == pytest.approx((148 * PT_PER_MM, 210 * PT_PER_MM), abs=1)
    text = pdf_text(data, tmp_path).replace("\n", "")
    assert phone not in text
    assert "公开版" in text
    save_pngs(data, "card_A5_public", resolution=80)


@pytest.mark.parametrize("layer_id", ["geohazard", "waterlogging", "bridge", "firezone"])
def test_longest_card_of_each_layer_fits_one_page(project, layer_id):
    layer = project.layers[layer_id]
    cols = [c for c in layer.spec.popup if c in layer.gdf.columns]
    lengths = layer.gdf[cols].map(lambda v: len(str(v))).sum(axis=1)
    uid = layer.gdf.loc[lengths.idxmax(), "uid"]
    assert len(page_sizes(point_card_pdf(project, layer_id, uid, size="A5"))) == 1


def test_card_unknown_point_is_a_clear_error(project):
    with pytest.raises(FeatureNotFoundError, match="没有统一编号为 'NOPE'"):
        point_card_pdf(project, "geohazard", "NOPE")
    with pytest.raises(ReportError, match="A4 或 A5"):
        point_card_pdf(project, "geohazard", "DZ-500229-001", size="A3")


@needs_poppler
def test_card_without_shelter_layer_has_a_box_to_fill_by_hand(project, tmp_path):
    risk_only = {lid: layer for lid, layer in project.layers.items() if lid != "shelters"}
    no_shelters = dataclasses.replace(project, layers=risk_only)
    data = point_card_pdf(no_shelters, "geohazard", "DZ-500229-001", generated=TODAY)
    flat = re.sub(r"\s+", "", pdf_text(data, tmp_path))
    assert "最近避难场所：" in flat
    assert "尚无避难场所图层" in flat
    assert len(page_sizes(data)) == 1


# --- county poster ----------------------------------------------------------------------------


@needs_poppler
def test_poster_a3_one_page_with_every_township_named(project, tmp_path):
    data = county_poster_pdf(project, generated=TODAY)
    sizes = page_sizes(data)
    assert sizes == [pytest.approx(A3_LANDSCAPE, abs=1)]
    text = pdf_text(data, tmp_path)
    towns = gpd.read_file(ROOT / "data" / "townships_approx.geojson")
    for name in towns["name"]:
        assert name in text
    assert "城口县安全风险点位总图" in text
    assert "图例" in text
    for layer in ("地质灾害隐患点", "内涝积水点", "危旧桥梁", "森林火险区"):
        assert layer in text
    assert "2026-11-30" in text
    assert "data/SOURCES.md" in text
    save_pngs(data, "poster_A3", resolution=50)


def test_poster_a2(project):
    data = county_poster_pdf(project, size="A2", generated=TODAY)
    assert page_sizes(data) == [pytest.approx((594 * PT_PER_MM, 420 * PT_PER_MM), abs=1)]


# --- pieces -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span_m", "expected"), [(110_000, 20_000), (12_000, 2_000), (5_000, 1_000), (2_600, 500)]
)
def test_scale_bar_length(span_m, expected):
    assert maps.nice_length_m(span_m) == expected


def test_css_string_cannot_be_closed_by_data():
    literal = render.css_string('a"} body{color:red} \\')
    assert literal.count('"') == 2
    assert "}" not in literal


def test_missing_cjk_font_is_a_clear_error(monkeypatch):
    from matplotlib import font_manager

    def missing(*_args, **_kwargs):
        raise ValueError

    monkeypatch.setattr(font_manager, "findfont", missing)
    with pytest.raises(ReportError, match="fonts-noto-cjk"):
        render.check_cjk_font()


# --- CLI --------------------------------------------------------------------------------------


def test_cli_report_card_poster(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(main, ["report", "--township", "巴山", "--out", f"{out}/"])
    assert result.exit_code == 0, result.output
    assert (out / "500229102_巴山镇.pdf").read_bytes().startswith(b"%PDF")
    result = runner.invoke(main, ["report", "--township", "巴山", "--out", f"{out}/"])
    assert result.exit_code == 2
    assert "已存在" in result.output
    result = runner.invoke(
        main, ["card", "DZ-500229-001", "--layer", "geohazard", "--public", "--out", f"{out}/"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "明白卡_DZ-500229-001_公开版.pdf").exists()
    result = runner.invoke(main, ["poster", "--size", "A2", "--out", str(out / "p.pdf")])
    assert result.exit_code == 0, result.output
    assert len(page_sizes((out / "p.pdf").read_bytes())) == 1


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["report", "--out", str(tmp_path / "x.pdf")])
    assert result.exit_code == 2
    assert "--township" in result.output
    result = runner.invoke(
        main, ["card", "NOPE", "--layer", "geohazard", "--out", str(tmp_path / "c.pdf")]
    )
    assert result.exit_code == 2
    assert "没有统一编号为 'NOPE' 的点位" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "c.pdf").exists()


def test_list_column_widths_and_one_line_tokens():
    from riskmap.report.sheet import column_widths, is_token

    assert is_token(pd.Series(["13900001234", None, "DZ-500229-001"]))
    assert not is_token(pd.Series(["巴山镇", "13900001234"]))
    assert not is_token(pd.Series([None, None]))
    df = pd.DataFrame({"序号": [1, 2], "名称": ["农民村黄泥坡滑坡", "坪上村"], "电话": ["1", "2"]})
    widths = column_widths(df)
    assert sum(widths) == pytest.approx(100)
    assert widths[1] > widths[0]  # 16 half-width units of text vs the minimum


@needs_poppler
def test_township_map_labels_uids_up_to_the_limit(project, tmp_path):
    from riskmap.report.sheet import MAX_LABELS

    code = "500229102"
    text = pdf_text(township_sheet_pdf(project, code, generated=TODAY), tmp_path)
    first_page = text.split("\f")[0]
    for uid in expected_listed(code)["geohazard"]:
        assert uid in first_page  # the map labels its points
    layer = project.layers["geohazard"]
    mine = layer.gdf[layer.gdf["township_code"] == code]
    n = MAX_LABELS // len(mine) + 1
    many = pd.concat([mine] * n, ignore_index=True)
    many["uid"] = [f"DZ-T-{i:04d}" for i in range(len(many))]
    shares = pd.DataFrame(
        {"key": many["uid"], "township_code": code, "township": "巴山镇", "area_ha": float("nan"),
         "share": 1.0}
    )  # fmt: skip
    crowded = project.with_layer(
        dataclasses.replace(layer, gdf=gpd.GeoDataFrame(many, crs=4326), shares=shares)
    )
    text = pdf_text(township_sheet_pdf(crowded, code, generated=TODAY), tmp_path)
    first_page = text.split("\f")[0]
    assert "图中不标注编号" in first_page
    assert "DZ-T-0000" not in first_page
    assert f"地质灾害隐患点 {len(many)} 处" in first_page
