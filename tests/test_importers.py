from __future__ import annotations

import io as _io
import json
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

import geopandas as gpd
from pyproj import Geod

from riskmap import io
from riskmap.errors import DataFileError, ImportFileError
from riskmap.importers import (
    commit_import,
    guess_mapping,
    match_columns,
    plan_import,
    report_xlsx,
    safe_cell_text,
)
from riskmap.readers import read_table
from riskmap.settings import Settings
from tests.conftest import CASES, DATA, P_LAT, P_LON

GEOD = Geod(ellps="WGS84")


def dist_m(lon, lat):
    return GEOD.inv(lon, lat, P_LON, P_LAT)[2]


@pytest.fixture
def survey(catalog):
    return catalog.get("survey")


@pytest.fixture
def plan_case(survey, gdf_townships, gdf_county):
    def run(name, *, spec=None, existing=None, **kw):
        spec = spec or survey
        is_case = name.endswith(".csv") and "\n" not in name
        data = (CASES / name).read_bytes() if is_case else name.encode()
        return plan_import(
            data,
            name,
            spec,
            existing=io.empty_layer(spec) if existing is None else existing,
            gdf_townships=gdf_townships,
            gdf_county=gdf_county,
            **kw,
        )

    return run


def only_point(plan):
    assert len(plan.gdf_result) == 1
    g = plan.gdf_result.geometry.iloc[0]
    return g.x, g.y


def at_p(plan, tol=1e-6):
    lon, lat = only_point(plan)
    assert lon == pytest.approx(P_LON, abs=tol)
    assert lat == pytest.approx(P_LAT, abs=tol)
    row = next(r for r in plan.report.rows if r.status != "error")
    assert row.lon == pytest.approx(lon)
    assert row.lat == pytest.approx(lat)


def strict_json(obj):
    return json.loads(json.dumps(obj, allow_nan=False, ensure_ascii=False))


# --- c01–c18 ----------------------------------------------------------------------------------


def test_c01_gbk_detected_and_reported(plan_case):
    plan = plan_case("c01_gbk.csv")
    assert plan.report.encoding == "gb18030"
    assert any("gb18030" in n for n in plan.report.notes)
    assert plan.gdf_result["name"].tolist() == ["葛城滑坡点"]
    at_p(plan)
    assert plan.report.rows[0].township_code == "500229001"


def test_c02_bom_stripped_from_first_header(plan_case):
    plan = plan_case("c02_utf8_bom.csv")
    assert plan.report.encoding == "utf-8-sig"
    assert "longitude" in plan.report.mapping
    assert not any(c.startswith("\ufeff") for c in plan.report.mapping)
    at_p(plan)


def test_c03_utf8_tried_before_gb18030(plan_case):
    plan = plan_case("c03_utf8_no_bom.csv")
    assert plan.report.encoding == "utf-8"
    assert plan.gdf_result["name"].tolist() == ["复兴崩塌点"]
    # 编号 = 1 is the survey's running number (c28): kept as text, not taken as 统一编号
    assert plan.gdf_result["编号"].tolist() == ["1"]
    assert plan.gdf_result["uid"].tolist() == ["SURVEY-500229001-1"]
    at_p(plan)


def test_c04_gb18030_rare_character(plan_case):
    plan = plan_case("c04_gb18030_rare_char.csv")
    assert plan.gdf_result["name"].tolist() == ["㙟口村滑坡"]
    assert plan.gdf_result["village"].tolist() == ["㙟口村"]
    at_p(plan)


def test_c05a_columns_matched_by_name(plan_case):
    plan = plan_case("c05a_lat_first_header.csv")
    assert plan.report.mapping == {"名称": "name", "纬度": "lat", "经度": "lon"}
    at_p(plan)


def test_c05b_swapped_values_warn_naming_row(plan_case):
    plan = plan_case("c05b_values_swapped.csv")
    at_p(plan)
    row = plan.report.rows[0]
    assert row.row == 2
    assert row.status == "warning"
    assert any("互换" in m.reason for m in row.messages)
    assert "互换" in plan.gdf_result["flags"].iloc[0]  # warnings are written with flags
    assert (plan.gdf_result.geometry.y < 90).all()


@pytest.mark.parametrize(
    ("name", "note"),
    [
        ("c06_cgcs2000_gk_cm108.csv", "EPSG:4545"),
        ("c07_cgcs2000_gk_zone_prefix.csv", "EPSG:4524"),
        ("c08_gk_northing_easting_swapped.csv", "纬度/Y 列取作东坐标"),
    ],
)
def test_c06_c07_c08_gauss_kruger(plan_case, name, note):
    plan = plan_case(name, crs="gk")
    lon, lat = only_point(plan)
    assert dist_m(lon, lat) < 0.5
    assert any(note in n for n in plan.report.notes)
    assert plan.report.rows[0].status == "ok"


def test_c07_zone_prefix_undeclared_still_zone_36_with_warning(plan_case):
    plan = plan_case("c07_cgcs2000_gk_zone_prefix.csv")  # declared wgs84 (default)
    lon, lat = only_point(plan)
    assert dist_m(lon, lat) < 0.5
    assert plan.report.rows[0].status == "warning"


def test_c09_five_dms_spellings(plan_case):
    plan = plan_case("c09_dms.csv")
    assert len(plan.gdf_result) == 5
    for g in plan.gdf_result.geometry:
        assert g.x == pytest.approx(P_LON, abs=1e-6)
        assert g.y == pytest.approx(P_LAT, abs=1e-6)


def test_c10_fullwidth(plan_case):
    at_p(plan_case("c10_fullwidth.csv"))


def test_c11_gcj02_converted_within_half_metre(plan_case):
    plan = plan_case("c11_gcj02_from_amap.csv", crs="gcj02")
    lon, lat = only_point(plan)
    assert dist_m(lon, lat) < 0.5
    assert any("GCJ-02" in n for n in plan.report.notes)
    assert plan.gdf_result.crs.equals("EPSG:4326")


def test_c12_missing_coords_listed_with_row_and_reason(plan_case):
    plan = plan_case("c12_missing_coords.csv")
    assert plan.counts == {"added": 1, "updated": 0, "rejected": 2}
    assert len(plan.gdf_result) == 1
    bad = {r.row: r for r in plan.report.rows if r.status == "error"}
    assert set(bad) == {3, 4}
    assert bad[3].lon is None
    assert any("为空" in m.reason and m.column == "经度" for m in bad[3].messages)
    assert any(m.value == "无" and "无法识别" in m.reason for m in bad[4].messages)


def test_c13_outside_county_rejected(plan_case):
    plan = plan_case("c13_outside_county.csv")
    rows = plan.report.rows
    assert [r.status for r in rows] == ["error", "error", "ok"]
    for r in rows[:2]:
        assert any("位于城口县外" in m.reason for m in r.messages)
    assert len(plan.gdf_rejected) == 2
    assert plan.gdf_rejected["_row"].tolist() == [2, 3]
    at_p(plan)


def test_c14_semicolon_and_decimal_comma(plan_case):
    plan = plan_case("c14_semicolon_decimal_comma.csv")
    assert plan.report.delimiter == ";"
    at_p(plan)


def test_c15_codes_stay_text(plan_case):
    # 001/002 are running numbers: used as uids only when the user maps them (c28)
    plan = plan_case("c15_codes_leading_zeros.csv", mapping={"点号": "uid"})
    gdf = plan.gdf_result
    assert gdf["uid"].tolist() == ["001", "002"]
    assert gdf["township_declared"].iloc[0] == "500229001000"
    assert pd.isna(gdf["township_declared"].iloc[1])  # missing text: NaN (Arrow-backed str)
    assert all(isinstance(v, str) for v in gdf["uid"])
    text = io.geojson_text(gdf)
    assert '"uid":"001"' in text
    assert '"township_declared":"500229001000"' in text
    assert "500229001000.0" not in text
    # no disagreement: the 12-digit declared code is the joined township
    assert plan.report.rows[0].status == "ok"


def test_c15_report_xlsx_cells_are_text(plan_case):
    plan = plan_case("c15_codes_leading_zeros.csv")
    wb = load_workbook(_io.BytesIO(report_xlsx(plan.report)))
    ws = wb["导入结果"]
    cells = [c for row in ws.iter_rows() for c in row if c.value is not None]
    assert all(c.data_type == "s" for c in cells)
    assert "500229001" in [c.value for c in cells]


def test_c16_values_kept_literally_and_xlsx_neutralised(plan_case):
    plan = plan_case("c16_formula_injection.csv")
    row = plan.gdf_result.iloc[0]
    assert row["note"] == '=HYPERLINK("http://example.invalid","详情")'
    assert row["resp_phone"] == "+86-000-0000-0000"
    assert row["resp_name"] == "@调查组"
    bad = "名称,经度,纬度\n=1+1,=cmd|' /C calc'!A0,31.946\n"
    plan = plan_case(bad)
    data = report_xlsx(plan.report)
    wb = load_workbook(_io.BytesIO(data))
    for ws in wb.worksheets:
        for r in ws.iter_rows():
            for c in r:
                if c.value is not None:
                    assert c.data_type == "s"
                    assert not str(c.value).startswith(("=", "+", "-", "@"))
    assert any(c.value == "'=cmd|' /C calc'!A0" for r in wb["导入结果"].iter_rows() for c in r)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+86", "'+86"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("ok", "ok"),
        (None, ""),
        (float("nan"), ""),
        ("a\x01b", "ab"),
    ],
)
def test_safe_cell_text(value, expected):
    assert safe_cell_text(value) == expected


def test_c17_strings_kept_literally(plan_case):
    plan = plan_case("c17_popup_injection.csv")
    assert plan.gdf_result["name"].tolist() == [
        "Xi'an Lu 滑坡点",
        "${document.title=7*7}",
        "癸村滑坡",
    ]
    assert plan.gdf_result["note"].tolist() == [
        "正常",
        "注意`落石`",
        "<img src=x onerror=alert(1)>",
    ]


def test_c18_blanks_are_none_not_nan(plan_case):
    plan = plan_case("c18_blank_and_nan.csv")
    gdf = plan.gdf_result
    assert plan.report.unknown_columns == ["威胁人数", "风险等级"]  # not fields of this layer
    assert gdf["威胁人数"].iloc[0] is None
    assert gdf["风险等级"].iloc[0] is None
    data = json.loads(io.geojson_text(gdf))  # strict parser: no NaN
    props = data["features"][0]["properties"]
    assert "威胁人数" not in props  # a blank survey-only column is not written (sparse)
    assert all(str(v).lower() != "nan" for v in props.values())
    strict_json(plan.report.to_json_dict())


def test_c18_geohazard_blank_required_is_incomplete_and_none(plan_case, catalog):
    spec = catalog.get("geohazard")
    plan = plan_case("c18_blank_and_nan.csv", spec=spec)
    row = plan.report.rows[0]
    assert row.status == "warning"
    assert row.missing == ["灾害类型", "威胁人数"]  # no 灾害类型 column, blank 威胁人数
    assert pd.isna(plan.gdf_result["threat_people"].iloc[0])
    assert plan.gdf_result["incomplete"].tolist() == [True]
    assert "待补充: 灾害类型、威胁人数" in plan.gdf_result["flags"].iloc[0]
    strict_json(plan.report.to_json_dict())
    plan = plan_case("c18_blank_and_nan.csv", spec=spec, strict=True)
    row = plan.report.rows[0]
    assert row.status == "error"
    assert any(m.column == "威胁人数" and "必填" in m.reason for m in row.messages)
    assert plan.gdf_rejected["threat_people"].iloc[0] is None
    assert len(plan.gdf_result) == 0
    strict_json(plan.report.to_json_dict())


# --- report shape -----------------------------------------------------------------------------


def test_report_json_shape(plan_case):
    d = strict_json(plan_case("c12_missing_coords.csv").report.to_json_dict())
    assert d["encoding"] == "utf-8"
    assert set(d["rows"][0]) == {
        "row", "status", "action", "uid", "lon", "lat", "township_code", "attributes_only",
        "missing", "messages",
    }  # fmt: skip
    assert set(d["rows"][1]["messages"][0]) == {"column", "value", "reason", "level"}
    assert d["rows"][1]["lon"] is None


# --- mapping ----------------------------------------------------------------------------------


def test_guess_mapping_synonyms_labels_units(catalog):
    spec = catalog.get("geohazard")
    cols = [
        "隐患点名称",
        "统一编号",
        "威胁人数（人）",
        "威胁户数",
        "灾害类型",
        "所属乡镇",
        "村/社区",
        "备注",
        "联系电话",
        "上报人",
        "东经 ",
        "ＬＡＴ",
        "规模(m³)",
        "险情等级",
        "自编字段",
    ]
    m = guess_mapping(cols, spec)
    assert m == {
        "隐患点名称": "name",
        "统一编号": "uid",
        "威胁人数（人）": "threat_people",
        "威胁户数": "threat_households",
        "灾害类型": "hazard_type",
        "所属乡镇": "township_declared",
        "村/社区": "village",
        "备注": "note",
        "联系电话": "resp_phone",
        "上报人": "resp_name",
        "东经 ": "lon",
        "ＬＡＴ": "lat",
        "规模(m³)": "volume_m3",
        "险情等级": "danger_grade",
    }


def test_ambiguous_columns_not_auto_mapped(survey):
    mapping, ambiguous = match_columns(["经度", "longitude", "纬度", "名称"], survey)
    assert "经度" not in mapping
    assert "longitude" not in mapping
    assert ambiguous == {"经度": ["lon"], "longitude": ["lon"]}


def test_township_code_column_wins(survey):
    mapping, _ = match_columns(["所属乡镇", "乡镇代码"], survey)
    assert mapping == {"乡镇代码": "township_declared"}


def test_ambiguous_coordinates_refused_then_fixed_by_explicit_mapping(plan_case):
    text = "名称,经度,longitude,纬度\n甲,108.664,0,31.946\n"
    plan = plan_case(text)
    assert plan.report.file_error is not None
    assert "找不到坐标列" in plan.report.file_error
    plan = plan_case(text, mapping={"经度": "lon", "longitude": None})
    assert plan.report.file_error is None
    assert "longitude" in plan.report.unknown_columns
    at_p(plan)


def test_explicit_mapping_by_label_and_invalid_target(plan_case):
    text = "点名,E,N\n甲,108.664,31.946\n"
    plan = plan_case(text, mapping={"点名": "名称", "E": "lon", "N": "lat"})
    assert plan.report.mapping == {"点名": "name", "E": "lon", "N": "lat"}
    at_p(plan)
    plan = plan_case(text, mapping={"点名": "no_such_field", "E": "lon", "N": "lat"})
    assert "no_such_field" in plan.report.file_error
    assert len(plan.gdf_result) == 0


def test_unknown_columns_kept_as_extra_properties(plan_case):
    text = "名称,经度,纬度,调查人员,name\n甲,108.664,31.946,张三,x\n"
    plan = plan_case(text)
    # "name" and "名称" both claim the name field: both kept, neither guessed
    assert plan.report.file_error is not None or plan.report.ambiguous_columns
    plan = plan_case(text, mapping={"name": None})
    assert plan.gdf_result["调查人员"].tolist() == ["张三"]
    assert plan.gdf_result["name(原表)"].tolist() == ["x"]
    assert "调查人员" in plan.report.unknown_columns


# --- validation -------------------------------------------------------------------------------


GEO_CSV = (
    "统一编号,名称,灾害类型,威胁人数,威胁财产(万元),险情等级,乡镇,经度,纬度\n"
    "G1,甲滑坡,滑坡,12,30,,葛城街道,108.664,31.946\n"
    "G2,乙崩塌,崩塌,600,,小型,,108.665,31.947\n"
    "G3,丙,地震,abc,,,,108.666,31.948\n"
    "G3,丁,滑坡,1,,,,108.667,31.949\n"
    "G5,戊,滑坡,3,,,葛城街道,108.75,31.95\n"
)


def test_geohazard_validation_and_derived(plan_case, catalog):
    plan = plan_case(GEO_CSV, spec=catalog.get("geohazard"))
    rows = {r.row: r for r in plan.report.rows}
    assert rows[2].status == "ok"
    assert rows[3].status == "warning"  # stated 小型, derived 大型 (600 people)
    assert any("应为大型" in m.reason for m in rows[3].messages)
    reasons = " ".join(m.reason for m in rows[4].messages)
    assert "灾害类型" in reasons
    assert "威胁人数" in reasons
    assert any("重复" in m.reason for m in rows[5].messages)  # G3 twice: both rejected
    assert rows[5].status == "error"
    assert rows[6].status == "warning"  # declared 葛城街道, lands in 复兴街道
    assert rows[6].township_code == "500229002"
    assert any(m.column == "乡镇" for m in rows[6].messages)
    gdf = plan.gdf_result.set_index("uid")
    assert list(gdf.index) == ["G1", "G2", "G5"]
    assert gdf.loc["G2", "danger_grade"] == "大型"
    assert gdf.loc["G1", "danger_grade"] == "小型"
    assert isinstance(gdf.loc["G1", "source"], str)
    assert plan.gdf_new.set_index("uid").loc["G1", "township"] == "葛城街道"  # preview: joined
    assert "township" not in gdf.columns  # derived at load time, never stored


def test_defaults_fill_blank_required_with_warning(plan_case, catalog):
    text = "名称,威胁人数,经度,纬度\n甲,5,108.664,31.946\n"
    spec = catalog.get("geohazard")
    plan = plan_case(text, spec=spec, strict=True)
    assert plan.report.rows[0].status == "error"
    assert any("灾害类型" in n for n in plan.report.notes)
    plan = plan_case(text, spec=spec)  # not strict: imported, marked 待补充
    assert plan.report.rows[0].missing == ["灾害类型"]
    assert plan.gdf_result["incomplete"].tolist() == [True]
    plan = plan_case(text, spec=spec, defaults={"hazard_type": "滑坡"})
    assert plan.report.rows[0].status == "warning"
    assert plan.gdf_result["hazard_type"].tolist() == ["滑坡"]


def test_update_existing_uid_lists_changes(plan_case, catalog):
    spec = catalog.get("geohazard")
    first = plan_case(GEO_CSV, spec=spec)
    existing = first.gdf_result
    text = (
        "统一编号,名称,威胁人数,备注,经度,纬度\n"
        "G1,甲滑坡(复核),12,,108.6642,31.946\n"
        "N1,新点,3,,108.668,31.95\n"
    )
    plan = plan_case(text, spec=spec, existing=existing, defaults={"hazard_type": "滑坡"})
    assert plan.counts == {"added": 1, "updated": 1, "rejected": 0}
    assert [r.action for r in plan.report.rows] == ["update", "add"]
    fields = {c.field: c for c in plan.changes["G1"]}
    assert fields["name"].old == "甲滑坡"
    assert fields["name"].new == "甲滑坡(复核)"
    assert "geometry" in fields
    assert "threat_people" not in fields  # unchanged
    assert "名称: 甲滑坡 → 甲滑坡(复核)" in plan.gdf_updated["changes"].iloc[0]
    res = plan.gdf_result.set_index("uid")
    assert list(res.index) == ["G1", "G2", "G5", "N1"]  # existing order kept, new appended
    assert res.loc["G1", "hazard_type"] == "滑坡"  # blank cell keeps the old value
    assert res.loc["G1", "threat_property_wan"] == 30  # column absent: old value kept
    assert res.loc["G1"].geometry.x == pytest.approx(108.6642)


def test_reimport_without_uid_is_a_probable_duplicate(plan_case):
    a = plan_case("c01_gbk.csv")
    assert a.gdf_result["uid"].tolist() == ["SURVEY-500229001-1"]  # readable: prefix-乡镇-n
    b = plan_case("c01_gbk.csv", existing=a.gdf_result)
    assert b.counts == {"added": 0, "updated": 0, "rejected": 0, "held": 1}
    assert b.report.rows[0].action == "duplicate"
    assert len(b.gdf_result) == 1
    c = plan_case("c01_gbk.csv", existing=a.gdf_result, add_duplicates={2})
    assert c.gdf_result["uid"].tolist() == ["SURVEY-500229001-1", "SURVEY-500229001-2"]


# --- reading: title rows, xlsx, guards ----------------------------------------------------------


def _xlsx(rows, *, title="隐患点", extra_sheet=None):
    wb = Workbook()
    ws = wb.active
    ws.title = title
    for r in rows:
        ws.append(r)
    if extra_sheet:
        wb.create_sheet(extra_sheet).append(["x"])
    buf = _io.BytesIO()
    wb.save(buf)
    return buf.getvalue(), ws


def test_xlsx_title_rows_codes_and_row_numbers(survey, gdf_townships, gdf_county):
    wb = Workbook()
    ws = wb.active
    ws.title = "一览表"
    ws.append(["城口县地质灾害隐患点一览表"])
    ws.append(["填报日期: 2026-03-01"])
    ws.append(["点号", "名称", "乡镇代码", "经度", "纬度", "编码"])
    ws.append(["001", "甲", 500229001000, 108.664, 31.946, 7])
    ws.append([None, None, None, None, None, None])
    ws.append(["002", "乙", None, "108°39'50.4\"", 31.946, 8])
    ws["F4"].number_format = "000"
    wb.create_sheet("说明").append(["x"])
    buf = _io.BytesIO()
    wb.save(buf)
    data = buf.getvalue()
    plan = plan_import(
        data,
        "upload.bin",
        survey,
        existing=io.empty_layer(survey),
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
    )
    rep = plan.report
    assert rep.file_error is None
    assert rep.sheet == "一览表"
    assert rep.header_row == 3
    assert [r.row for r in rep.rows] == [4, 6]  # blank row 5 skipped, numbering kept
    gdf = plan.gdf_result
    assert gdf["点号"].tolist() == ["001", "002"]  # running numbers: kept, not uids (c28)
    assert gdf["uid"].tolist() == ["SURVEY-500229001-1", "SURVEY-500229001-2"]
    assert gdf["township_declared"].iloc[0] == "500229001000"
    assert gdf["township_declared"].isna().tolist() == [False, True]
    assert gdf["编码"].tolist() == ["007", "8"]
    assert any("标题行" in n for n in rep.notes)
    missing = plan_import(
        data,
        "a.xlsx",
        survey,
        existing=io.empty_layer(survey),
        sheet="无此表",
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
    )
    assert "无此表" in missing.report.file_error
    assert "一览表" in missing.report.file_error


def test_xlsx_zip_bomb_guard():
    data, _ = _xlsx([["名称", "经度", "纬度"], ["甲", 108.664, 31.946]])
    with pytest.raises(ImportFileError, match="超过上限"):
        read_table(data, "big.xlsx", max_uncompressed=1000)


def test_row_and_column_caps():
    text = "名称,经度,纬度\n" + "甲,108.664,31.946\n" * 20
    with pytest.raises(ImportFileError, match="上限"):
        read_table(text.encode(), "a.csv", max_rows=10)
    with pytest.raises(ImportFileError, match="列数"):
        read_table(text.encode(), "a.csv", max_columns=2)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "文件为空"),
        (b"PK\x03\x04garbage", "XLSX"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "xls"),
        (b"\x00\x01\x02\xff\xfe\x00binary", "二进制"),
        ("名称,备注\n甲,乙\n".encode(), "找不到坐标列"),
        ("名称,经度,纬度\n".encode(), "没有数据行"),
    ],
)
def test_file_level_errors_are_reported_not_raised(data, why, survey, gdf_townships, gdf_county):
    plan = plan_import(
        data,
        "bad.csv",
        survey,
        existing=io.empty_layer(survey),
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
    )
    assert why.lower() in plan.report.file_error.lower()
    assert "bad.csv" in plan.report.file_error or why == "找不到坐标列"
    assert not plan.can_commit
    assert len(plan.gdf_result) == 0
    strict_json(plan.report.to_json_dict())


def test_csv_title_row_detected(plan_case):
    plan = plan_case("城口县隐患点清单\n\n名称,经度,纬度\n甲,108.664,31.946\n")
    assert plan.report.header_row == 3
    assert plan.report.rows[0].row == 4
    at_p(plan)


def test_tab_and_pipe_delimiters(plan_case):
    for sep in ("\t", "|"):
        plan = plan_case(f"名称{sep}经度{sep}纬度\n甲{sep}108.664{sep}31.946\n")
        assert plan.report.delimiter == sep
        at_p(plan)


# --- never raises, never writes -----------------------------------------------------------------


@pytest.fixture
def no_write(monkeypatch, tmp_path, survey, gdf_townships, gdf_county):
    """Settings at tmp_path, and every io writer patched to fail: planning must not write."""

    def forbidden(*_args, **_kwargs):
        msg = "plan_import must not write"
        raise AssertionError(msg)

    for name in ("write_layer", "write_text_atomic", "write_bytes_atomic"):
        monkeypatch.setattr(io, name, forbidden)
    cfg = Settings.from_env({}, root=tmp_path)
    kw = {
        "existing": io.empty_layer(survey),
        "gdf_townships": gdf_townships,
        "gdf_county": gdf_county,
    }
    return cfg, kw


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_never_raise_never_write(data, survey, no_write):
    cfg, kw = no_write
    plan = plan_import(data, "x.csv", survey, **kw)
    strict_json(plan.report.to_json_dict())
    report_xlsx(plan.report)
    assert not any(cfg.root.rglob("*"))  # settings' root (tmp_path) stays empty


_cell = st.one_of(
    st.sampled_from(
        [
            "108.664",
            "31.946",
            "",
            "无",
            "=1+1",
            "108°39'50.4\"",
            '"',
            "\n",
            ";",
            "3536057.06",
            "562780.81",
            "001",
            "nan",
            "１０８．６６４",
        ]
    ),
    st.text(max_size=8),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(_cell, min_size=1, max_size=5), max_size=6),
    fmt=st.tuples(
        st.sampled_from([",", ";", "\t", "|"]),
        st.sampled_from(["utf-8", "gb18030", "utf-8-sig"]),
        st.sampled_from(["wgs84", "gk", "gcj02", "bd09"]),
    ),
)
def test_garbled_csv_never_raises_never_writes(rows, fmt, survey, no_write):
    sep, enc, crs = fmt
    cfg, kw = no_write
    text = "名称" + sep + "经度" + sep + "纬度\n" + "\n".join(sep.join(r) for r in rows)
    data = text.encode(enc, errors="replace")
    plan = plan_import(data, "g.csv", survey, crs=crs, **kw)
    d = strict_json(plan.report.to_json_dict())
    assert len(plan.gdf_result) == plan.counts["added"]
    assert all(r["status"] in {"ok", "warning", "error"} for r in d["rows"])
    assert not any(cfg.root.rglob("*"))


# --- commit / undo ------------------------------------------------------------------------------


def test_commit_and_undo_round_trip(store, gdf_townships, gdf_county):
    """Commit and undo through the store: runs on files and on PostGIS (``store`` fixture)."""
    spec = store.read_catalog().get("geohazard")
    existing = store.read_layer(spec)
    plan = plan_import(
        GEO_CSV.encode(),
        "survey_2026.csv",
        spec,
        existing=existing,
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
    )
    assert plan.can_commit
    assert store.layer_version(spec) == ""  # planning wrote nothing
    commit_import(plan, spec, store, user="tester")
    stored = store.read_layer(spec)
    assert sorted(stored["uid"]) == ["G1", "G2", "G5"]
    assert "join_flag" not in stored.columns
    if store.kind == "files":
        json.loads(store.layer_path(spec).read_text(encoding="utf-8"))  # strict JSON
    log = store.history(spec)
    assert log[-1]["action"] == "import"
    assert log[-1]["source"] == "survey_2026.csv"
    assert (log[-1]["added"], log[-1]["updated"], log[-1]["rejected"]) == (3, 0, 2)
    # second import updates G1
    plan2 = plan_import(
        "统一编号,名称,经度,纬度\nG1,甲滑坡改,108.664,31.946\n".encode(),
        "fix.csv",
        spec,
        existing=stored,
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
    )
    assert plan2.counts == {"added": 0, "updated": 1, "rejected": 0}
    commit_import(plan2, spec, store, user="tester")
    assert "甲滑坡改" in store.read_layer(spec)["name"].tolist()
    store.undo(spec, user="tester")
    assert "甲滑坡" in store.read_layer(spec)["name"].tolist()
    store.undo(spec, user="tester")
    assert len(store.read_layer(spec)) == 0  # back to before the first import


def test_reimporting_the_same_rows_is_unchanged_not_updated(store, gdf_townships, gdf_county):
    """A row that repeats a stored point is 无变化: not counted or listed as an update, the
    stored feature kept as it is; a file of only such rows writes nothing (a tester's
    finding: it reported 更新 3 with empty change lists and added an undo step)."""
    spec = store.read_catalog().get("geohazard")
    kw = {"gdf_townships": gdf_townships, "gdf_county": gdf_county}
    sheet = GEO_CSV.replace("600,,小型,", "600,,,")  # G2's grade is derived from 600 people
    first = plan_import(sheet.encode(), "a.csv", spec, existing=store.read_layer(spec), **kw)
    commit_import(first, spec, store, user="tester")
    stored = store.read_layer(spec)
    version = store.layer_version(spec)
    again = plan_import(sheet.encode(), "a.csv", spec, existing=stored, **kw)
    c = again.report.counts
    assert (c["added"], c["updated"], c["unchanged"], c["rejected"]) == (0, 0, 3, 2)
    assert again.changes == {}
    assert len(again.gdf_updated) == 0
    assert not again.can_commit
    assert {r.action for r in again.report.rows if r.uid in {"G1", "G2", "G5"}} == {"unchanged"}
    with pytest.raises(ImportFileError):
        commit_import(again, spec, store, user="tester")
    assert store.layer_version(spec) == version  # nothing written
    # one row really changes: 1 updated, 2 unchanged, and the unchanged ones stay as stored
    edited = sheet.replace("G2,乙崩塌,崩塌,600", "G2,乙崩塌,崩塌,650")
    mixed = plan_import(edited.encode(), "b.csv", spec, existing=stored, **kw)
    c = mixed.report.counts
    assert (c["updated"], c["unchanged"]) == (1, 2)
    assert list(mixed.changes) == ["G2"]
    changed = [(f.field, f.old, f.new) for f in mixed.changes["G2"]]
    assert changed == [("threat_people", "600", "650")]
    result = mixed.gdf_result.set_index("uid")
    before = stored.set_index("uid")
    for uid in ("G1", "G5"):
        kept, was = result.loc[uid].drop("geometry"), before.loc[uid].drop("geometry")
        assert set(kept.index) - set(was.index) <= {"flags"}
        assert pd.isna(kept.get("flags")) or kept.get("flags") == was.get("flags")
        for col in was.index:  # blanks may be None or NaN in memory: both are stored as null
            assert kept[col] == was[col] or (pd.isna(kept[col]) and pd.isna(was[col])), col
        assert result.loc[uid, "geometry"].equals(before.loc[uid, "geometry"])


def test_commit_refuses_stale_plan_and_bad_plans(store, gdf_townships, gdf_county):
    spec = store.read_catalog().get("geohazard")
    kw = {"gdf_townships": gdf_townships, "gdf_county": gdf_county}
    plan_a = plan_import(GEO_CSV.encode(), "a.csv", spec, existing=store.read_layer(spec), **kw)
    plan_b = plan_import(GEO_CSV.encode(), "b.csv", spec, existing=store.read_layer(spec), **kw)
    commit_import(plan_a, spec, store, user="a")
    version_a = store.layer_version(spec)
    with pytest.raises(DataFileError, match="重新预览"):
        commit_import(plan_b, spec, store, user="b")
    assert store.layer_version(spec) == version_a  # refused: nothing written
    bad = plan_import(b"\x00\x01", "bad.bin", spec, existing=store.read_layer(spec), **kw)
    with pytest.raises(ImportFileError):
        commit_import(bad, spec, store, user="c")


def test_read_import_bytes_and_mapping_file(tmp_path):
    f = tmp_path / "a.csv"
    f.write_bytes(b"x" * 2048)
    assert io.read_import_bytes(f) == b"x" * 2048
    with pytest.raises(ImportFileError, match="超过上限"):
        io.read_import_bytes(f, max_mb=0.001)
    with pytest.raises(ImportFileError):
        io.read_import_bytes(tmp_path / "missing.csv")
    m = tmp_path / "map.toml"
    m.write_text(
        '[mapping]\nid = "uid"\nhazard_type = ""\n[defaults]\nhazard_type = "滑坡"\n',
        encoding="utf-8",
    )
    assert io.read_mapping_file(m) == {"id": "uid", "hazard_type": None}
    assert io.read_defaults_file(m) == {"hazard_type": "滑坡"}
    j = tmp_path / "map.json"
    j.write_text('{"经度": "lon", "纬度": "lat"}', encoding="utf-8")
    assert io.read_mapping_file(j) == {"经度": "lon", "纬度": "lat"}
    j.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ImportFileError):
        io.read_mapping_file(j)


# --- NASA Global Landslide Catalog (real foreign-format file) ---------------------------------

NASA_MAPPING = {
    "id": "uid",
    "nearest_places": "name",
    "hazard_type": None,  # "landslide" is not a 灾害类型 value: keep as extra property
    "latitude": "lat",
    "longitude": "lon",
}


@pytest.fixture(scope="module")
def county_check():
    return gpd.read_file(DATA / "county_check_wgs84.geojson")


def test_nasa_catalog_one_event_in_county(catalog, county_check):
    spec = catalog.get("geohazard")
    townships = county_check.assign(
        adcode="500229001",
        adcode12="500229001000",
        name="葛城街道",
        level="街道",
        approximate=True,
        also_covers="",
    )
    data = (DATA / "glc_nasa_chongqing_region.csv").read_bytes()
    kw = {
        "existing": io.empty_layer(spec),
        "gdf_townships": townships,
        "gdf_county": county_check,
        "mapping": NASA_MAPPING,
    }
    plan = plan_import(data, "glc_nasa_chongqing_region.csv", spec, **kw)
    rows = plan.report.rows
    assert len(rows) == 47
    outside = [r for r in rows if any("位于城口县外" in m.reason for m in r.messages)]
    inside = [r for r in rows if r not in outside]
    assert len(outside) == 46
    assert [r.uid for r in inside] == ["2,096"]  # ids are kept literally, as text
    # NASA has no 威胁人数: the point is imported, marked 待补充 (strict mode rejects it)
    assert inside[0].status == "warning"
    assert inside[0].missing == ["灾害类型", "威胁人数"]
    assert any("威胁人数" in m.reason for m in inside[0].messages)
    assert plan.counts["added"] == 1
    strict = plan_import(data, "glc_nasa_chongqing_region.csv", spec, strict=True, **kw)
    assert strict.counts["added"] == 0
    # the user may state defaults explicitly; each filled row then carries a warning
    plan = plan_import(
        data,
        "glc_nasa_chongqing_region.csv",
        spec,
        defaults={"hazard_type": "滑坡", "threat_people": 0},
        **kw,
    )
    assert plan.counts == {"added": 1, "updated": 0, "rejected": 46}
    gdf = plan.gdf_result
    assert gdf["uid"].tolist() == ["2,096"]
    assert gdf["name"].iloc[0].startswith("Luojiang river, Chengkou county")
    assert gdf["hazard_type(原表)"].iloc[0] == "landslide"
    assert gdf["fatalities"].iloc[0] == "0"
    assert gdf.geometry.iloc[0].x == pytest.approx(108.6989)
    assert plan.report.rows[18].status == "warning"
    assert "geolocation" in plan.report.unknown_columns


# --- speed ------------------------------------------------------------------------------------


def test_twenty_thousand_rows_quickly(survey, gdf_townships, gdf_county):
    rng = np.random.default_rng(7)
    n = 20_000
    df = pd.DataFrame(
        {
            "编号": [f"P{i:06d}" for i in range(n)],
            "名称": [f"点{i}" for i in range(n)],
            "经度": np.round(rng.uniform(108.61, 108.79, n), 6),
            "纬度": np.round(rng.uniform(31.91, 31.98, n), 6),
        }
    )
    data = df.to_csv(index=False).encode("utf-8")
    t0 = time.perf_counter()
    plan = plan_import(
        data,
        "big.csv",
        survey,
        existing=io.empty_layer(survey),
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
    )
    elapsed = time.perf_counter() - t0
    assert plan.counts["added"] == n
    assert elapsed < 15


def test_huge_field_in_the_sniffed_lines_is_a_report_not_a_crash(
    catalog, gdf_townships, gdf_county
):
    """A field longer than csv.field_size_limit() near the top: a file-level report, no raise."""
    data = ("名称,经度,纬度\n" + "x" * 200_000 + ",108.664,31.946\n").encode()
    plan = plan_import(
        data, "huge.csv", catalog.get("survey"),
        existing=gpd.GeoDataFrame(geometry=[], crs=4326),
        gdf_townships=gdf_townships, gdf_county=gdf_county,
    )  # fmt: skip
    assert "第 2 行" in plan.report.file_error
    assert "个字符的上限" in plan.report.file_error
    assert not plan.can_commit


def test_new_points_start_as_listed_status(catalog, gdf_townships, gdf_county):
    """A new point imported without a status is 在册 (visible under the default filter)."""
    data = "名称,经度,纬度,状态\n甲,108.6640,31.9460,\n乙,108.6641,31.9461,治理中\n".encode()
    plan = plan_import(
        data, "s.csv", catalog.get("survey"),
        existing=gpd.GeoDataFrame(geometry=[], crs=4326),
        gdf_townships=gdf_townships, gdf_county=gdf_county,
    )  # fmt: skip
    assert plan.gdf_new["status"].tolist() == ["在册", "治理中"]
