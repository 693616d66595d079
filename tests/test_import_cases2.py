"""Cases c19–c30 (files planners really send) as the cases README says, plus table and
property tests of each kind beyond the file: identity, conflicts, duplicates, attribute-only
updates, the missing-attribute policy, message levels and readable uids."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyproj import Geod

from riskmap import io
from riskmap.importing import (
    commit_import,
    generated_uids,
    is_running_number,
    plan_attribute_update,
    plan_import,
    report_frame,
    similar_names,
    split_lonlat,
    uid_key,
)
from riskmap.settings import Settings
from riskmap.store.files import FileStore
from tests.conftest import CASES, P_LAT, P_LON, ROOT

GEOD = Geod(ellps="WGS84")


def dist_m(lon: float, lat: float, lon2: float = P_LON, lat2: float = P_LAT) -> float:
    return GEOD.inv(lon, lat, lon2, lat2)[2]


@pytest.fixture
def geo(catalog):
    return catalog.get("geohazard")


@pytest.fixture
def plan_file(geo, gdf_townships, gdf_county):
    def run(name: str, *, existing=None, **kw):
        return plan_import(
            (CASES / name).read_bytes(),
            name,
            geo,
            existing=io.empty_layer(geo) if existing is None else existing,
            gdf_townships=gdf_townships,
            gdf_county=gdf_county,
            **kw,
        )

    return run


@pytest.fixture
def after_c28a(plan_file):
    """The layer after c28a was committed: uid 001 (甲村滑坡) at P."""
    plan = plan_file("c28a_first_import.csv")
    assert plan.gdf_result["uid"].tolist() == ["001"]
    return plan.gdf_result


def at_p(gdf, tol_deg=1e-6):
    assert len(gdf) > 0
    assert np.allclose(gdf.geometry.x, P_LON, atol=tol_deg)
    assert np.allclose(gdf.geometry.y, P_LAT, atol=tol_deg)


# --- c19–c24: reading -------------------------------------------------------------------------


def test_c19_all_rows_of_a_dimension_a1_workbook(plan_file):
    plan = plan_file("c19_dimension_a1.xlsx")
    assert plan.counts == {"added": 3, "updated": 0, "rejected": 0}
    gdf = plan.gdf_result
    d = [dist_m(p.x, p.y) for p in gdf.geometry]
    assert d[0] < 0.1
    assert all(x < 150 for x in d[1:])


def test_c20_formula_without_value_named_not_blank(plan_file):
    plan = plan_file("c20_formula_without_value.xlsx")
    row = plan.report.rows[0]
    assert row.action == "reject"
    reasons = [m.reason for m in row.messages]
    assert any(
        "公式没有计算结果" in r and "E2" in r and "=108+39/60+50.4/3600" in r for r in reasons
    )
    assert any("公式没有计算结果" in r and "F2" in r for r in reasons)
    assert not any("为空" in r for r in reasons)


def test_c21_cjk_builtin_date(plan_file):
    plan = plan_file("c21_builtin_cjk_date_format.xlsx")
    assert str(plan.gdf_result["drill_date"].iloc[0])[:10] == "2023-07-15"


def test_c22_two_row_header(plan_file):
    plan = plan_file("c22_two_row_merged_header.xlsx")
    assert plan.counts["added"] == 1
    at_p(plan.gdf_result)


def test_c23_combined_lonlat_column_split_and_noted(plan_file):
    plan = plan_file("c23_lonlat_in_one_cell.csv")
    assert plan.counts["added"] == 2
    at_p(plan.gdf_result)
    assert any("拆分" in n for n in plan.report.notes)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("108.6640,31.9460", ("108.6640", "31.9460")),
        ("108.6640，31.9460", ("108.6640", "31.9460")),
        ("108.6640 ; 31.9460", ("108.6640", "31.9460")),
        ("108.6640 31.9460", ("108.6640", "31.9460")),
        ("108.6640/31.9460", ("108.6640", "31.9460")),
        ("108°39'50.4\",31°56'45.6\"", ("108°39'50.4\"", "31°56'45.6\"")),
        ("108.6640", ("108.6640", None)),
        (None, (None, None)),
    ],
)
def test_split_lonlat_table(cell, expected):
    first, second = split_lonlat(np.array([cell], dtype=object))
    assert (first[0], second[0]) == expected


def test_c24_invisible_characters(plan_file):
    plan = plan_file("c24_invisible_characters.csv")
    assert plan.counts["added"] == 4
    at_p(plan.gdf_result)
    assert plan.gdf_result["threat_people"].tolist()[3] == 12
    assert any("不可见字符" in n for n in plan.report.notes)


# --- c25: identity of uids --------------------------------------------------------------------


def test_c25_one_uid_four_ways_is_a_duplicate_in_the_file(plan_file):
    plan = plan_file("c25_same_uid_four_ways.csv")
    assert plan.counts == {"added": 0, "updated": 0, "rejected": 4}
    for row in plan.report.rows:
        assert any("在文件中重复" in m.reason for m in row.messages)


@pytest.mark.parametrize(
    "spelling", ["DZ-C25-1", "DZ-C25-1 ", "ＤＺ－Ｃ２５－１", "dz-c25-1", "\u200bDZ-C25-1"]
)
def test_c25_each_spelling_updates_the_stored_uid_and_keeps_its_spelling(
    spelling, plan_file, geo, gdf_townships, gdf_county
):
    first = plan_file("c25_same_uid_four_ways.csv")  # nothing added; make the point directly
    text = f"统一编号,名称,灾害类型,威胁人数,经度,纬度\nDZ-C25-1,甲,滑坡,1,{P_LON},{P_LAT}\n"
    base = plan_import(
        text.encode(),
        "a.csv",
        geo,
        existing=io.empty_layer(geo),
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
    )
    existing = base.gdf_result
    text = f"统一编号,名称,灾害类型,威胁人数,经度,纬度\n{spelling},甲,滑坡,7,{P_LON},{P_LAT}\n"
    plan = plan_import(
        text.encode(),
        "b.csv",
        geo,
        existing=existing,
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
    )
    assert first.counts["added"] == 0
    assert plan.counts == {"added": 0, "updated": 1, "rejected": 0}
    assert plan.gdf_result["uid"].tolist() == ["DZ-C25-1"]
    assert plan.gdf_result["threat_people"].tolist() == [7]


@given(
    core=st.text(st.sampled_from("ABCDEFGHXYZ0123456789-"), min_size=1, max_size=12),
    lead=st.sampled_from(["", " ", "\u3000", "\t"]),
    trail=st.sampled_from(["", " ", "\u3000", "\xa0"]),
    width=st.booleans(),
    lower=st.booleans(),
)
def test_uid_key_ignores_width_case_and_outer_space(core, lead, trail, width, lower):
    spelled = core.lower() if lower else core
    if width:
        spelled = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in spelled)
    assert uid_key(lead + spelled + trail) == uid_key(core)


# --- c26: long names in the map (see tests/test_mapview.py for the tooltip) -------------------


def test_c26_long_name_kept_whole_in_data(plan_file):
    plan = plan_file("c26_long_name.csv")
    assert len(plan.gdf_result["name"].iloc[0]) == 210


# --- c28: running numbers and conflicts -------------------------------------------------------


def test_c28b_running_number_not_taken_as_uid(plan_file, after_c28a):
    plan = plan_file("c28b_survey_serial_number.xlsx", existing=after_c28a)
    assert plan.counts == {"added": 1, "updated": 0, "rejected": 0}
    res = plan.gdf_result.set_index("uid")
    assert res.loc["001", "name"] == "甲村滑坡"  # untouched
    assert dist_m(res.loc["001"].geometry.x, res.loc["001"].geometry.y) < 0.1
    assert any("流水号" in n for n in plan.report.notes)


def test_c28b_mapped_uid_is_a_conflict_until_confirmed(plan_file, after_c28a):
    plan = plan_file("c28b_survey_serial_number.xlsx", existing=after_c28a, mapping={"编号": "uid"})
    row = plan.report.rows[0]
    assert row.action == "conflict"
    assert plan.counts == {"added": 0, "updated": 0, "rejected": 0, "held": 1}
    assert not plan.can_commit
    reason = " ".join(m.reason for m in row.messages)
    assert "冲突" in reason
    assert "米" in reason
    assert "测试村滑坡" in reason
    assert plan.gdf_result.set_index("uid").loc["001", "name"] == "甲村滑坡"
    frame = report_frame(plan.report)
    assert "冲突（待确认）" in frame["处理"].tolist()
    ok = plan_file(
        "c28b_survey_serial_number.xlsx",
        existing=after_c28a,
        mapping={"编号": "uid"},
        accept_conflicts={3},
    )
    assert ok.counts == {"added": 0, "updated": 1, "rejected": 0}
    assert ok.gdf_result.set_index("uid").loc["001", "name"] == "测试村滑坡"


@pytest.mark.parametrize(
    ("dlon", "new_name", "action"),
    [
        (0.0, "甲村滑坡", "unchanged"),  # repeats the stored point: 无变化
        (0.0005, "甲村滑坡", "update"),  # ~47 m
        (0.0015, "甲村滑坡", "conflict"),  # ~142 m
        (0.0, "甲村滑坡(复核)", "update"),  # name extended, not replaced
        (0.0, "乙村崩塌", "conflict"),  # name replaced
        (0.0, "", "unchanged"),  # blank name keeps the old one: nothing else changes
    ],
)
def test_update_conflict_table(dlon, new_name, action, geo, after_c28a, gdf_townships, gdf_county):
    text = f"统一编号,名称,经度,纬度\n001,{new_name},{P_LON + dlon},{P_LAT}\n"
    plan = plan_import(
        text.encode(),
        "u.csv",
        geo,
        existing=after_c28a,
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
    )
    assert plan.report.rows[0].action == action


@pytest.mark.parametrize(
    ("values", "running"),
    [
        (["1", "2", "3"], True),
        (["001", "002", "003"], True),
        (["１", "２"], True),
        (["1", "3"], False),
        (["2", "3"], False),
        (["001", None], False),
        (["A1", "A2"], False),
        (["500229001", "500229002"], False),
        ([], False),
    ],
)
def test_is_running_number_table(values, running):
    assert is_running_number(np.array(values, dtype=object)) is running


# --- c29: probable duplicates -----------------------------------------------------------------


def test_c29_resent_point_is_a_probable_duplicate(plan_file, after_c28a):
    plan = plan_file("c29_resent_under_new_name.csv", existing=after_c28a)
    row = plan.report.rows[0]
    assert row.action == "duplicate"
    assert any("001" in m.reason and "疑似重复" in m.reason for m in row.messages)
    assert len(plan.gdf_result) == 1
    chosen = plan_file("c29_resent_under_new_name.csv", existing=after_c28a, add_duplicates=True)
    assert chosen.counts["added"] == 1
    assert len(chosen.gdf_result) == 2


def test_duplicates_within_the_same_file(geo, gdf_townships, gdf_county):
    text = (
        "名称,灾害类型,威胁人数,经度,纬度\n"
        f"葛城滑坡点,滑坡,1,{P_LON},{P_LAT}\n"
        f"葛城滑坡,滑坡,1,{P_LON + 0.0002},{P_LAT}\n"  # ~19 m, similar name
        f"1号点,滑坡,1,{P_LON},{P_LAT}\n"
        f"2号点,滑坡,1,{P_LON},{P_LAT}\n"  # numbered points are distinct
        f"葛城滑坡点,滑坡,1,{P_LON + 0.002},{P_LAT}\n"  # same name ~190 m away
    )
    plan = plan_import(
        text.encode(),
        "d.csv",
        geo,
        existing=io.empty_layer(geo),
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
    )
    assert [r.action for r in plan.report.rows] == ["add", "duplicate", "add", "add", "add"]
    assert "第 2 行" in " ".join(m.reason for m in plan.report.rows[1].messages)


@pytest.mark.parametrize(
    ("a", "b", "similar"),
    [
        ("甲村滑坡", "甲村滑坡", True),
        ("葛城滑坡", "葛城滑坡点", True),
        ("甲村 滑坡", "甲村滑坡（复核）", True),
        ("ABC Landslide", "abc landslide", True),
        ("甲村滑坡", "测试村滑坡", False),
        ("1号点", "2号点", False),
        ("甲村1号滑坡", "甲村2号滑坡", False),
        ("", "甲", False),
        (None, "甲", False),
    ],
)
def test_similar_names_table(a, b, similar):
    assert similar_names(a, b) is similar
    assert similar_names(b, a) is similar


# --- c30: attribute-only updates ---------------------------------------------------------------


def test_c30_status_sheet_updates_only_the_given_fields(plan_file, after_c28a):
    plan = plan_file("c30_status_only_sheet.csv", existing=after_c28a)
    assert plan.report.file_error is None
    assert plan.counts == {"added": 0, "updated": 1, "rejected": 0}
    row = plan.report.rows[0]
    assert row.attributes_only
    res = plan.gdf_result.set_index("uid").loc["001"]
    assert res["status"] == "已销号"
    assert str(res["cleared_date"])[:10] == "2026-06-30"
    assert res["cleared_reason"] == "工程治理"
    assert res["name"] == "甲村滑坡"
    assert dist_m(res.geometry.x, res.geometry.y) < 0.1
    changed = {c.field for c in plan.changes["001"]}
    assert changed == {"status", "cleared_date", "cleared_reason"}


def test_attribute_only_row_for_an_unknown_uid_is_rejected(
    geo, after_c28a, gdf_townships, gdf_county
):
    text = "统一编号,状态\n001,监测中\n999,已销号\n"
    plan = plan_import(
        text.encode(),
        "s.csv",
        geo,
        existing=after_c28a,
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
    )
    assert [r.action for r in plan.report.rows] == ["update", "reject"]
    assert any("不在图层中" in m.reason for m in plan.report.rows[1].messages)


def test_sheet_without_coordinates_or_known_uid_is_refused(geo, gdf_townships, gdf_county):
    text = "统一编号,状态\n999,已销号\n"
    plan = plan_import(
        text.encode(),
        "s.csv",
        geo,
        existing=io.empty_layer(geo),
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
    )
    assert "找不到坐标列" in plan.report.file_error


def test_invalid_status_value_is_an_error(geo, after_c28a, gdf_townships, gdf_county):
    text = "统一编号,状态\n001,作废\n"
    plan = plan_import(
        text.encode(),
        "s.csv",
        geo,
        existing=after_c28a,
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
    )
    assert plan.report.rows[0].action == "reject"


@pytest.fixture
def store_settings(tmp_path):
    layers = tmp_path / "layers"
    layers.mkdir()
    shutil.copy(ROOT / "layers" / "catalog.toml", layers / "catalog.toml")
    return Settings.from_env({}, root=tmp_path)


def test_c28a_then_c30_commit_audit_and_undo(store_settings, gdf_townships, gdf_county):
    store = FileStore(store_settings)
    spec = store.read_catalog().get("geohazard")
    kw = {"gdf_townships": gdf_townships, "gdf_county": gdf_county}
    a = plan_import(
        (CASES / "c28a_first_import.csv").read_bytes(),
        "c28a_first_import.csv",
        spec,
        existing=store.read_layer(spec),
        **kw,
    )
    commit_import(a, spec, store, user="甲")
    s = plan_import(
        (CASES / "c30_status_only_sheet.csv").read_bytes(),
        "c30_status_only_sheet.csv",
        spec,
        existing=store.read_layer(spec),
        **kw,
    )
    commit_import(s, spec, store, user="乙")
    stored = store.read_layer(spec).set_index("uid")
    assert stored.loc["001", "status"] == "已销号"
    last = store.history(spec)[-1]
    assert (last["action"], last["source"], last["user"], last["updated"]) == (
        "import",
        "c30_status_only_sheet.csv",
        "乙",
        1,
    )
    store.undo(spec, user="乙")
    assert store.read_layer(spec).set_index("uid").loc["001", "status"] == "在册"


def test_plan_attribute_update_from_records(geo, after_c28a, gdf_townships):
    records = pd.DataFrame({"uid": ["001"], "status": ["治理中"], "resp_name": ["王五"]})
    plan = plan_attribute_update(
        records,
        geo,
        existing=after_c28a,
        gdf_townships=gdf_townships,
        source="状态变更",
        action="status",
    )
    assert plan.action == "status"
    assert plan.counts == {"added": 0, "updated": 1, "rejected": 0}
    res = plan.gdf_result.set_index("uid").loc["001"]
    assert (res["status"], res["resp_name"], res["name"]) == ("治理中", "王五", "甲村滑坡")
    bad = plan_attribute_update(
        pd.DataFrame({"uid": ["001"], "status": ["作废"]}),
        geo,
        existing=after_c28a,
        gdf_townships=gdf_townships,
        source="x",
    )
    assert not bad.can_commit


# --- the README's minimal sheet; missing-attribute policy; levels; uids ----------------------


MINIMAL = f"名称,经度,纬度\n葛城滑坡点,{P_LON},{P_LAT}\n"


def test_minimal_sheet_imports_as_incomplete(geo, gdf_townships, gdf_county):
    plan = plan_import(
        MINIMAL.encode(),
        "min.csv",
        geo,
        existing=io.empty_layer(geo),
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
    )
    assert plan.counts == {"added": 1, "updated": 0, "rejected": 0}
    assert plan.report.counts["incomplete"] == 1
    gdf = plan.gdf_result
    assert gdf["incomplete"].tolist() == [True]
    assert gdf["uid"].tolist() == ["DZ-500229001-1"]
    assert "待补充: 灾害类型、威胁人数" in gdf["flags"].iloc[0]
    levels = {m.reason: m.level for m in plan.report.rows[0].messages}
    assert levels["无统一编号，已生成 DZ-500229001-1"] == "info"
    assert all(level != "error" for level in levels.values())
    frame = report_frame(plan.report)
    assert set(frame["级别"].dropna()) <= {"警告", "提示"}
    strict = plan_import(
        MINIMAL.encode(),
        "min.csv",
        geo,
        existing=io.empty_layer(geo),
        gdf_townships=gdf_townships,
        gdf_county=gdf_county,
        strict=True,
    )
    assert strict.counts == {"added": 0, "updated": 0, "rejected": 1}


def test_update_filling_the_missing_attribute_clears_incomplete(geo, gdf_townships, gdf_county):
    kw = {"gdf_townships": gdf_townships, "gdf_county": gdf_county}
    a = plan_import(MINIMAL.encode(), "min.csv", geo, existing=io.empty_layer(geo), **kw)
    existing = a.gdf_result
    text = "统一编号,灾害类型,威胁人数\nDZ-500229001-1,滑坡,8\n"
    b = plan_import(text.encode(), "fill.csv", geo, existing=existing, **kw)
    assert b.counts == {"added": 0, "updated": 1, "rejected": 0}
    assert b.gdf_result["incomplete"].tolist() == [False]
    assert "待补充" not in str(b.gdf_result["flags"].iloc[0])


@given(
    codes=st.lists(st.sampled_from(["500229001", "500229002", None]), max_size=12),
    start=st.integers(0, 5),
)
def test_generated_uids_unique_readable_and_never_reused(codes, start):
    used = [f"DZ-500229001-{i}" for i in range(1, start + 1)]
    made = generated_uids(codes, used, "DZ")
    assert len(set(made)) == len(made)
    assert not set(made) & set(used)
    for code, uid in zip(codes, made, strict=True):
        assert uid.startswith(f"DZ-{code or '000000000'}-")


def test_incomplete_points_pass_layer_validation(geo, gdf_townships, gdf_county):
    from riskmap.schema import layer_problems

    plan = plan_import(
        MINIMAL.encode(), "min.csv", geo, existing=io.empty_layer(geo),
        gdf_townships=gdf_townships, gdf_county=gdf_county,
    )  # fmt: skip
    gdf = plan.gdf_result
    assert layer_problems(gdf, geo) == []
    broken = gdf.assign(incomplete=False)  # the same blanks without the mark are problems
    assert {p.field for p in layer_problems(broken, geo)} == {"hazard_type", "threat_people"}
