"""Issue 10 round 3: what a fresh tester found in survey import (tests/data/fresh)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import unicodedata

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskmap import io
from riskmap.cells import number_text
from riskmap.importing import commit_import, plan_import
from riskmap.schema import parse_date
from riskmap.settings import Settings
from riskmap.store.files import FileStore
from tests.conftest import DATA, ROOT

FRESH = DATA / "fresh"


@pytest.fixture
def geo(catalog):
    return catalog.get("geohazard")


@pytest.fixture(scope="module")
def county():
    """The bundled township polygons and county outline (the fresh files are real places)."""
    settings = Settings()
    return io.read_townships(settings), io.read_county(settings)


@pytest.fixture
def plan_fresh(geo, county):
    gdf_townships, gdf_county = county

    def run(name: str, data: bytes | None = None, *, existing=None, **kw):
        return plan_import(
            (FRESH / name).read_bytes() if data is None else data,
            name,
            geo,
            existing=io.empty_layer(geo) if existing is None else existing,
            gdf_townships=gdf_townships,
            gdf_county=gdf_county,
            **kw,
        )

    return run


def _full_width(text: str) -> str:
    """ASCII digits, sign and point → their full-width forms (U+FF10…), as IMEs type them."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# --- 1. full-width numbers -------------------------------------------------------------------


def test_b09_full_width_whole_numbers_are_kept(plan_fresh):
    plan = plan_fresh("b09_fullwidth_numbers.csv")
    (row,) = plan.report.rows
    assert row.action == "add"
    assert row.status == "ok", row.messages
    new = plan.gdf_new.iloc[0]
    # the file says １２ and ３: U+FF11 U+FF12 and U+FF13
    assert int(new["threat_people"]) == int(unicodedata.normalize("NFKC", "１２"))
    assert int(new["threat_households"]) == 3
    assert not bool(new["incomplete"])


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=99))
def test_number_text_full_width_and_decimals(whole, cents):
    decimal = f"{whole}.{cents:02d}"
    assert float(number_text(_full_width(decimal))) == float(decimal)
    assert int(number_text(_full_width(str(whole)))) == whole


@pytest.mark.parametrize(
    ("cell", "thousands", "expected"),
    [
        ("1,200", True, "1200"),
        ("12,345.5", True, "12345.5"),
        ("１，２００", True, "1200"),
        ("1,200", False, "1,200"),  # ';' file: ',' is a decimal comma, not removed
        ("12,5", True, "12,5"),  # not grouped by 3: left as is, fails as a number
        ("1,20,0", True, "1,20,0"),
        ("－３", True, "-3"),
    ],
)
def test_number_text_table(cell, thousands, expected):
    assert number_text(cell, thousands=thousands) == expected


@pytest.mark.parametrize(
    ("people", "households", "ok", "expect_people"),
    [
        ("１２", "３", True, 12),
        ("1,200", "3", True, 1200),
        ("１２．５", "3", False, None),  # a decimal where an integer is due: 应为整数, not 应为数字
    ],
)
def test_number_cells_through_import(plan_fresh, people, households, ok, expect_people):
    text = (
        "名称,经度,纬度,灾害类型,威胁人数,威胁户数\n"
        f'全角数字点,108.664111,31.946111,滑坡,"{people}","{households}"\n'
    )
    plan = plan_fresh("n.csv", text.encode())
    (row,) = plan.report.rows
    if ok:
        assert row.action == "add"
        assert int(plan.gdf_new.iloc[0]["threat_people"]) == expect_people
    else:
        assert row.action == "reject"
        reasons = " ".join(m.reason for m in row.messages)
        assert "整数" in reasons
        assert "应为数字" not in reasons


def test_full_width_decimal_in_float_field(plan_fresh):
    text = "名称,经度,纬度,灾害类型,威胁人数,威胁财产\n点,108.664111,31.946111,滑坡,3,１２．５\n"
    plan = plan_fresh("f.csv", text.encode())
    assert plan.gdf_new.iloc[0]["threat_property_wan"] == pytest.approx(12.5)


# --- 2/3. storage: untouched features stay byte-identical; provenance kept -----------------


@pytest.fixture
def bundled_store(tmp_path):
    """A file store holding a copy of the bundled geohazard layer."""
    layers = tmp_path / "layers"
    layers.mkdir()
    for name in ("catalog.toml", "geohazard.geojson"):
        shutil.copy(ROOT / "layers" / name, layers / name)
    return FileStore(Settings.from_env({}, root=tmp_path))


def _features(store) -> dict[str, str]:
    """uid → the feature's JSON text exactly as stored (properties and geometry)."""
    path = store.settings.layers_dir / "geohazard.geojson"
    return {
        f["properties"]["uid"]: json.dumps(f, ensure_ascii=False, sort_keys=False)
        for f in json.loads(path.read_text(encoding="utf-8"))["features"]
    }


SURVEY = (
    "序号,点名,经度,纬度,灾害类型,威胁人数,户数说明\n"
    "1,新发现滑坡,108.664111,31.946111,滑坡,12,约三户\n"
)


def test_import_leaves_other_features_byte_identical(bundled_store, gdf_townships, gdf_county):
    store = bundled_store
    spec = store.read_catalog().get("geohazard")
    before = _features(store)
    first = json.loads(next(iter(before.values())))
    uid = first["properties"]["uid"]
    update = f"统一编号,状态,数据来源\n{uid},治理中,乡镇复核表\n"
    kw = {"gdf_townships": gdf_townships, "gdf_county": gdf_county, "today": dt.date(2026, 5, 3)}
    for name, text in (("新点.csv", SURVEY), ("复核.csv", update)):
        plan = plan_import(text.encode(), name, spec, existing=store.read_layer(spec), **kw)
        commit_import(plan, spec, store, user="测试")
    after = _features(store)
    assert len(after) == len(before) + 1
    for key, text in before.items():
        if key != uid:
            assert after[key] == text, key
    # the new point carries the survey's own columns; no other feature has them
    (new_uid,) = set(after) - set(before)
    new_props = json.loads(after[new_uid])["properties"]
    assert new_props["序号"] == "1"
    assert new_props["户数说明"] == "约三户"
    assert new_props["name"] == "新发现滑坡"  # 点名 is an alias of 名称
    for key in ("township", "township_code", "join_flag"):
        assert key not in new_props
    # the update changes status and updated_at, keeps the original source
    old_props = first["properties"]
    upd_props = json.loads(after[uid])["properties"]
    assert upd_props["status"] == "治理中"
    assert upd_props["updated_at"] == "2026-05-03"
    assert upd_props["source"] == old_props["source"]
    assert set(upd_props) - set(old_props) <= {"flags", "incomplete"}
    assert store.history(spec)[-1]["source"] == "复核.csv"
    # loading still joins townships
    loaded = store.read_layer(spec)
    assert len(loaded) == len(after)


# --- 4. group headers --------------------------------------------------------------------


def test_f02_group_header_sub_columns_are_mapped(plan_fresh):
    plan = plan_fresh("f02_wps_2row_header.xlsx")
    report = plan.report
    assert report.mapping["威胁户数"] == "threat_households"  # 威胁对象 over 户数
    assert report.mapping["威胁人数"] == "threat_people"
    notes = " ".join(report.notes)
    assert "没有必填字段" not in notes
    assert all(not r.missing for r in report.rows)


@pytest.mark.parametrize(
    ("upper", "lower", "expected"),
    [
        # 威胁对象 merged over two cells: the title is in the first only
        (["名称", "威胁对象", ""], ["", "户数", "人数"], ["名称", "威胁户数", "威胁人数"]),
        (["名称", "威胁", ""], ["", "人数", "户数"], ["名称", "威胁人数", "威胁户数"]),
        # a group whose joined name is unknown leaves the sub-column as it is
        (["坐标", "", "名称"], ["经度", "纬度", ""], ["经度", "纬度", "名称"]),
        (["基本情况", "", "灾害类型"], ["名称", "村", ""], ["名称", "村", "灾害类型"]),
    ],
)
def test_merge_header_rows_groups(geo, upper, lower, expected):
    from riskmap.importing.columns import known_header
    from riskmap.readers import merge_header_rows

    assert merge_header_rows(upper, lower, known_header(geo)) == expected


def test_plain_households_and_people_aliases(plan_fresh):
    text = "点名,经度,纬度,灾害类型,人数,户数\n甲,108.664111,31.946111,滑坡,12,3\n"
    plan = plan_fresh("p.csv", text.encode())
    assert plan.report.mapping == {
        "点名": "name", "经度": "lon", "纬度": "lat", "灾害类型": "hazard_type",
        "人数": "threat_people", "户数": "threat_households",
    }  # fmt: skip


# --- 5. dates: serials in General cells, Chinese numerals; wrong optional values -------------


@pytest.mark.parametrize(
    ("cell", "iso"),
    [
        ("二〇二四年五月三日", "2024-05-03"),
        ("二〇二四年十二月三十一日", "2024-12-31"),
        ("二〇二四年十月十日", "2024-10-10"),
        ("45415", "2024-05-03"),
        ("45415.0", "2024-05-03"),
        ("２０２４年５月３日", "2024-05-03"),
    ],
)
def test_parse_date_serials_and_chinese_numerals(cell, iso):
    assert parse_date(cell) == iso


@given(st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2099, 12, 31)))
def test_excel_serial_round_trip(day):
    serial = (day - dt.date(1899, 12, 30)).days  # ECMA-376 1900 date system, after 1900-03-01
    assert parse_date(str(serial)) == day.isoformat()


@pytest.mark.parametrize("cell", ["12345", "二〇二四年五月", "2024-13-01"])
def test_parse_date_still_refuses(cell):
    with pytest.raises(ValueError, match="not a date"):
        parse_date(cell)


def test_f03_serial_and_chinese_dates_imported(plan_fresh):
    plan = plan_fresh("f03_chinese_dates.xlsx")
    assert all(r.action != "reject" for r in plan.report.rows)
    by_row = {r.row: r for r in plan.report.rows}
    serial_notes = [m for m in by_row[4].messages if m.column == "更新时间"]
    assert len(serial_notes) == 1
    assert serial_notes[0].level == "info"
    assert "45415" in serial_notes[0].reason
    assert "2024-05-03" in serial_notes[0].reason


def test_wrong_optional_value_keeps_point_on_map(plan_fresh):
    text = (
        "名称,经度,纬度,灾害类型,威胁人数,更新时间,规模等级\n"
        "甲,108.664111,31.946111,滑坡,3,上个月,小型\n"
        "乙,108.665111,31.947111,滑坡,3,2024-05-03,很小\n"
    )
    plan = plan_fresh("o.csv", text.encode())
    rows = plan.report.rows
    assert [r.action for r in rows] == ["add", "add"]
    assert [r.status for r in rows] == ["warning", "warning"]
    (m,) = [m for m in rows[0].messages if m.column == "更新时间"]
    assert m.value == "上个月"
    assert "留空" in m.reason
    new = plan.gdf_new.set_index("name")
    assert new.loc["甲", "updated_at"] != "上个月"  # blank cell → the import date
    assert new.loc["乙", "scale_grade"] is None or pd.isna(new.loc["乙", "scale_grade"])
    strict = plan_fresh("o.csv", text.encode(), strict=True)
    assert [r.action for r in strict.report.rows] == ["reject", "reject"]


# --- 6. data on the second sheet --------------------------------------------------------------


def test_f10_data_on_second_sheet_found(plan_fresh):
    plan = plan_fresh("f10_two_sheets_data_second.xlsx")
    assert plan.report.sheet == "隐患点清单"
    assert plan.counts["added"] == 2
    (note,) = [n for n in plan.report.notes if "工作表" in n]
    assert "隐患点清单" in note
    assert "--sheet" in note


def test_no_sheet_with_columns_lists_sheets(plan_fresh, tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    wb.active.append(["请按要求填写"])
    wb.active.append(["1. 经纬度填十进制度"])
    wb.create_sheet("备用").append(["甲", "乙"])
    path = tmp_path / "none.xlsx"
    wb.save(path)
    plan = plan_fresh("none.xlsx", path.read_bytes())
    assert "「说明」、「备用」" in plan.report.file_error
    assert "--sheet" in plan.report.file_error


# --- 8. no contradictory messages; summary and note rows skipped ------------------------------


def test_f07_rejected_row_not_said_imported_as_incomplete(plan_fresh):
    existing = io.read_layer_file(ROOT / "layers" / "geohazard.geojson")
    plan = plan_fresh("f07_status_update.xlsx", existing=existing)
    assert not any("待补充" in n for n in plan.report.notes)
    rejected = [r for r in plan.report.rows if r.action == "reject"]
    assert rejected
    for r in rejected:
        assert not any("待补充" in m.reason for m in r.messages)


def test_missing_column_note_kept_when_rows_are_marked(plan_fresh):
    text = "经度,纬度,灾害类型\n108.664111,31.946111,滑坡\n"
    plan = plan_fresh("m.csv", text.encode())
    assert any(n.startswith("文件中没有必填字段「威胁人数") for n in plan.report.notes)
    assert any(n.startswith("文件中没有必填字段「名称") for n in plan.report.notes)


@pytest.mark.parametrize(
    ("first_cell", "skipped"),
    [
        ("合计", True),
        ("合 计", True),
        ("小计：", True),
        ("总计", True),
        ("备注：坐标为CGCS2000", True),
        ("注:本表由乡镇填写", True),
        ("填表说明", True),
        ("合计村滑坡", False),  # a place name, not a summary
        ("备注村崩塌", False),
    ],
)
def test_summary_and_note_rows(plan_fresh, first_cell, skipped):
    text = (
        "名称,经度,纬度,灾害类型,威胁人数\n"
        "甲,108.664111,31.946111,滑坡,3\n"
        f"{first_cell},,,,3\n"
        "乙,108.665111,31.947111,滑坡,4\n"
    )
    plan = plan_fresh("s.csv", text.encode())
    rows = [r.row for r in plan.report.rows]
    if skipped:
        assert rows == [2, 4]
        (note,) = [n for n in plan.report.notes if "第 3 行" in n]
        assert "已跳过" in note
        assert all(r.status != "error" for r in plan.report.rows)
    else:
        assert rows == [2, 3, 4]


def test_f05_total_row_skipped_with_one_note(plan_fresh):
    plan = plan_fresh("f05_gbk_dms_heji.csv")
    assert plan.counts["rejected"] == 0
    assert sum("合计行" in n for n in plan.report.notes) == 1


# --- 10. one huge cell: a Chinese message naming the row and the limit ------------------------


@pytest.mark.parametrize("size", [200_000, 2_000_000])  # Arrow path / over Arrow's block
def test_huge_cell_message_is_chinese_and_names_row(plan_fresh, size):
    import csv

    limit = csv.field_size_limit()
    text = "名称,经度,纬度,灾害类型,威胁人数,备注\n甲,108.664111,31.946111,滑坡,3,短\n"
    text += "乙,108.664777,31.946777,滑坡,3," + "长" * size + "\n"
    plan = plan_fresh("huge.csv", text.encode())
    error = plan.report.file_error
    assert "第 3 行" in error
    assert f"{limit:,}" in error
    assert "field" not in error


# --- 11. stored coordinates rounded to 7 decimals ----------------------------------------------


def test_coordinates_rounded_to_7_decimals(plan_fresh):
    # 108°39'50.4" = 108.664 exactly; 31°56'45.67" = 31.946019444…
    text = "名称,经度,纬度,灾害类型,威胁人数\n甲,108°39'50.4\",31°56'45.67\",滑坡,3\n"
    plan = plan_fresh("d.csv", text.encode())
    geom = plan.gdf_result.geometry.iloc[0]
    expected_lat = 31 + 56 / 60 + 45.67 / 3600
    assert geom.y == round(expected_lat, 7)
    assert geom.x == pytest.approx(108.664, abs=1e-12)
    text_out = io.geojson_text(plan.gdf_result)
    assert f"{round(expected_lat, 7)}" in text_out
    assert f"{expected_lat}" not in text_out


# --- 12. smaller ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("高楠镇 \u00a0方斗村", "高楠镇 方斗村"),
        ("高楠镇\u00a0\u00a0方斗村", "高楠镇 方斗村"),
        ("高楠镇\u202f方斗村", "高楠镇 方斗村"),
        ("高楠镇  方斗村", "高楠镇  方斗村"),  # ordinary spaces alone are the user's
    ],
)
def test_nbsp_becomes_one_space(cell, expected):
    from riskmap.readers import read_table

    text = f"名称,经度\n{cell},108.66\n"
    table = read_table(text.encode(), "n.csv")
    assert table.frame.loc[0, "名称"] == expected


def test_undo_message_says_beijing_time():
    from riskmap.importing.history import undo_description

    entry = {"time": "2026-03-02T02:00:00+00:00", "action": "import", "backup": "b1"}
    assert undo_description([entry]).startswith("撤销 北京时间 2026-03-02 10:00:00")
