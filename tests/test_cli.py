from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from riskmap.cli import main
from riskmap.settings import Settings


@pytest.fixture
def runner():
    return CliRunner()


def test_summary_json_one_object_per_township(runner):
    result = runner.invoke(main, ["summary", "--format", "json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)["townships"]
    assert len(records) == 25
    gecheng = next(r for r in records if r["name"] == "葛城街道")
    assert gecheng["code"] == "500229001"
    assert sum(r["layers"]["geohazard"]["count"] for r in records) == 60
    assert sum(r["layers"]["waterlogging"]["count"] for r in records) == 6


def test_summary_table_says_approximate_and_demo(runner):
    result = runner.invoke(main, ["summary"])
    assert result.exit_code == 0, result.output
    assert "示意边界" in result.output
    assert "演示数据" in result.output
    assert "葛城街道" in result.output


def test_validate_ok(runner):
    result = runner.invoke(main, ["validate"])
    assert result.exit_code == 0, result.output
    assert "geohazard 地质灾害隐患点: 60 个要素, 通过" in result.output


def test_validate_reports_problems_and_exits_nonzero(runner, tmp_path, monkeypatch):
    layers = tmp_path / "layers"
    shutil.copytree(Settings().layers_dir, layers, ignore=shutil.ignore_patterns(".*"))
    text = (layers / "bridge.geojson").read_text(encoding="utf-8")
    (layers / "bridge.geojson").write_text(
        text.replace('"condition_class":"5类"', '"condition_class":"6类"', 1), encoding="utf-8"
    )
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(layers))
    result = runner.invoke(main, ["validate", "bridge"])
    assert result.exit_code == 1
    assert "condition_class=6类" in result.output
    assert "1类、2类、3类、4类、5类" in result.output


def test_unknown_layer_is_one_line_exit_2(runner):
    result = runner.invoke(main, ["validate", "nope"])
    assert result.exit_code == 2
    assert "未知图层" in result.output
    assert "Traceback" not in result.output


def test_malformed_layer_file_is_a_clear_error(runner, tmp_path, monkeypatch):
    layers = tmp_path / "layers"
    shutil.copytree(Settings().layers_dir, layers, ignore=shutil.ignore_patterns(".*"))
    (layers / "geohazard.geojson").write_text(
        '{"type": "FeatureCollection", "features": [', encoding="utf-8"
    )
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(layers))
    result = runner.invoke(main, ["summary"])
    assert result.exit_code == 2
    assert "geohazard.geojson" in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def layers_copy(tmp_path, monkeypatch):
    layers = tmp_path / "layers"
    shutil.copytree(Settings().layers_dir, layers, ignore=shutil.ignore_patterns(".*"))
    monkeypatch.setenv("RISKMAP_LAYERS_DIR", str(layers))
    return layers


def test_import_dry_run_writes_nothing_and_reports_json(runner, layers_copy, tmp_path):
    before = {p.name: p.read_bytes() for p in layers_copy.iterdir() if p.is_file()}
    report = tmp_path / "report.json"
    case = Path(__file__).parent / "data" / "cases" / "c13_outside_county.csv"
    result = runner.invoke(
        main,
        ["import", str(case), "--layer", "geohazard", "--set", "hazard_type=滑坡",
         "--set", "threat_people=0", "--dry-run", "--report-json", str(report)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "新增 1" in result.output
    assert "拒收 2" in result.output
    assert {p.name: p.read_bytes() for p in layers_copy.iterdir() if p.is_file()} == before
    data = json.loads(report.read_text(encoding="utf-8"), parse_constant=float.__call__)
    statuses = [r["status"] for r in data["rows"]]
    assert statuses == ["error", "error", "warning"]
    assert data["rows"][2]["township_code"] == "500229001"
    assert data["rows"][2]["lon"] == pytest.approx(108.6640, abs=1e-9)
    assert all("城口县外" in r["messages"][0]["reason"] for r in data["rows"][:2])


def test_import_commit_then_undo(runner, layers_copy):
    case = Path(__file__).parent / "data" / "cases" / "c01_gbk.csv"
    args = ["import", str(case), "--layer", "geohazard", "--set", "hazard_type=滑坡",
            "--set", "threat_people=3"]  # fmt: skip
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "gb18030" in result.output
    text = (layers_copy / "geohazard.geojson").read_text(encoding="utf-8")
    assert "葛城滑坡点" in text
    assert runner.invoke(main, ["undo", "--layer", "geohazard"]).exit_code == 0
    assert "葛城滑坡点" not in (layers_copy / "geohazard.geojson").read_text(encoding="utf-8")


@pytest.mark.usefixtures("layers_copy")
def test_import_bad_set_is_exit_2(runner):
    case = Path(__file__).parent / "data" / "cases" / "c01_gbk.csv"
    result = runner.invoke(main, ["import", str(case), "--layer", "geohazard", "--set", "nope"])
    assert result.exit_code == 2
    assert "字段=值" in result.output


def test_map_writes_an_offline_page(runner, tmp_path):
    out = tmp_path / "map.html"
    result = runner.invoke(main, ["map", "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    import re

    assert not re.search(r"<script[^>]+src=[\"']?https?://", html)
    assert not re.search(r"<link[^>]+href=[\"']?https?://", html)
    for text in ("地质灾害隐患点", "森林火险区", "示意边界", "演示数据", "葛城街道"):
        assert text in html
    again = runner.invoke(main, ["map", "--out", str(out)])
    assert again.exit_code == 2
    assert "--overwrite" in again.output


def test_export_township_xlsx_and_all_zip(runner, tmp_path):
    import zipfile
    from io import BytesIO

    import openpyxl

    out = tmp_path / "list.xlsx"
    result = runner.invoke(main, ["export", "--township", "500229002000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    wb = openpyxl.load_workbook(out)
    sheet = wb["内涝积水点"]
    assert sheet["A1"].value == "城口县复兴街道安全风险点位清单"
    # the three demo spots declared in 复兴街道 (inside the 葛城 cell, which also covers 复兴)
    names = [
        row[2] for row in sheet.iter_rows(min_row=4, values_only=True) if isinstance(row[0], int)
    ]
    assert len(names) == 3
    zpath = tmp_path / "all.zip"
    result = runner.invoke(main, ["export", "--all", "--out", str(zpath)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(zpath) as zf:
        names = zf.namelist()
        assert len([n for n in names if n[:9].isdigit() and n.endswith(".xlsx")]) == 25
        first = openpyxl.load_workbook(BytesIO(zf.read("500229001_葛城街道.xlsx")))
        assert "汇总" in first.sheetnames


def test_export_needs_township_or_all(runner, tmp_path):
    result = runner.invoke(main, ["export", "--out", str(tmp_path / "x.xlsx")])
    assert result.exit_code == 2
    assert "--all" in result.output


def test_export_public_drops_names_phones_and_coarsens(runner, tmp_path):
    out = tmp_path / "pub.geojson"
    result = runner.invoke(
        main,
        ["export", "--township", "巴山镇", "--format", "geojson", "--out", str(out),
         "--public", "--precision", "0.01"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    fc = json.loads(out.read_text(encoding="utf-8"))
    assert fc["features"]
    text = out.read_text(encoding="utf-8")
    assert "resp_name" not in text
    assert "resp_phone" not in text
    assert "徐某某" not in text
    assert "139000" not in text
    for feature in fc["features"]:
        if feature["geometry"]["type"] == "Point":
            for c in feature["geometry"]["coordinates"]:
                assert round(c * 100) == pytest.approx(c * 100, abs=1e-6)
    full = tmp_path / "full.geojson"
    assert (
        runner.invoke(
            main, ["export", "--township", "巴山镇", "--format", "geojson", "--out", str(full)]
        ).exit_code
        == 0
    )
    assert "resp_phone" in full.read_text(encoding="utf-8")
    folder = tmp_path / "lists"
    folder.mkdir()
    res = runner.invoke(main, ["export", "--township", "巴山镇", "--out", str(folder), "--public"])
    assert res.exit_code == 0, res.output
    assert [p.name for p in folder.iterdir()] == ["500229102_巴山镇_公开版.xlsx"]
    bad = runner.invoke(main, ["export", "--all", "--out", str(tmp_path), "--public",
                               "--precision", "-1"])  # fmt: skip
    assert bad.exit_code == 2


def test_out_with_trailing_slash_is_a_new_folder(runner, tmp_path, monkeypatch):
    """The README's `--out lists/` works before `lists` exists (click strips the slash)."""
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(main, ["export", "--township", "葛城街道", "--out", "lists/"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(main, ["export", "--all", "--out", "lists/"])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (tmp_path / "lists").iterdir()) == [
        "500229001_葛城街道.xlsx",
        "城口县_风险点位清单_xlsx.zip",
    ]
    page = runner.invoke(main, ["map", "--out", "maps/"])
    assert page.exit_code == 0, page.output
    assert (tmp_path / "maps" / "城口县_一张图.html").is_file()


def test_polygon_layer_import_and_table_as_townships_are_one_line_errors(runner, tmp_path):
    case = Path(__file__).parent / "data" / "cases" / "c01_gbk.csv"
    res = runner.invoke(main, ["import", str(case), "--layer", "firezone", "--dry-run"])
    assert res.exit_code == 2
    assert "面图层" in res.output
    table = tmp_path / "townships.csv"
    table.write_text("name,lon,lat\n葛城街道,108.66,31.95\n", encoding="utf-8")
    res = runner.invoke(main, ["summary", "--townships", str(table)])
    assert res.exit_code == 2
    assert "没有几何图形" in res.output


def test_import_lists_what_an_update_changes(runner, layers_copy, tmp_path):
    survey = tmp_path / "upd.csv"
    survey.write_text(
        "统一编号,名称,经度,纬度,威胁人数,状态\n"
        "DZ-500229-001,农民村黄泥坡滑坡,108.4494,32.1153,99,治理中\n",
        encoding="utf-8",
    )
    report = tmp_path / "r.json"
    res = runner.invoke(
        main,
        ["import", str(survey), "--layer", "geohazard", "--dry-run", "--report-json", str(report)],
    )
    assert res.exit_code == 0, res.output
    assert "威胁人数: 66 → 99" in res.output
    changes = json.loads(report.read_text("utf-8"))["changes"]["DZ-500229-001"]
    assert {"field": "status", "label": "状态", "old": "监测中", "new": "治理中"} in changes
    del layers_copy


def test_public_release_says_so_inside_the_files(runner, tmp_path):
    import openpyxl

    out = tmp_path / "pub"
    res = runner.invoke(main, ["export", "--township", "巴山镇", "--public", "--out", f"{out}/"])
    assert res.exit_code == 0, res.output
    wb = openpyxl.load_workbook(out / "500229102_巴山镇_公开版.xlsx")
    assert "公开版" in wb["地质灾害隐患点"]["A2"].value
    assert "0.01°" in wb["地质灾害隐患点"]["A2"].value
    res = runner.invoke(main, ["export", "--township", "巴山镇", "--public", "--format", "geojson",
                               "--out", f"{out}/"])  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads((out / "500229102_巴山镇_公开版.geojson").read_text("utf-8"))
    assert data["public_release"].startswith("公开版")


# --- issue 10: exit codes, README example, conflicts, coordinate forms registry -------------


CASES_DIR = Path(__file__).parent / "data" / "cases"


def test_import_choices_are_the_coordinate_forms_registry():
    from riskmap.coords import COORDINATE_FORMS

    option = next(p for p in main.commands["import"].params if p.name == "crs")
    assert list(option.type.choices) == [f.id for f in COORDINATE_FORMS]


def test_readme_import_example_on_a_minimal_sheet(runner, layers_copy, tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["名称", "经度", "纬度"])
    wb.active.append(["葛城滑坡点", 108.6640, 31.9460])
    sheet = tmp_path / "调查表.xlsx"
    wb.save(sheet)
    result = runner.invoke(main, ["import", str(sheet), "--layer", "geohazard"])
    assert result.exit_code == 0, result.output
    assert "新增 1" in result.output
    assert "待补充 1" in result.output
    assert "已生成 DZ-500229001-1" in result.output  # as the README says
    text = (layers_copy / "geohazard.geojson").read_text(encoding="utf-8")
    assert "葛城滑坡点" in text
    assert "待补充: 灾害类型、威胁人数" in text
    assert "错误" not in result.output  # notes only: 警告 / 提示


def test_import_exit_code_when_every_row_is_rejected(runner, layers_copy):
    from riskmap.importing import EXIT_NOTHING_WRITTEN

    before = (layers_copy / "geohazard.geojson").read_bytes()
    case = CASES_DIR / "c20_formula_without_value.xlsx"
    for extra in ([], ["--dry-run"]):
        result = runner.invoke(main, ["import", str(case), "--layer", "geohazard", *extra])
        assert result.exit_code == EXIT_NOTHING_WRITTEN, result.output
        assert "公式没有计算结果" in result.output
    assert (layers_copy / "geohazard.geojson").read_bytes() == before
    ok = runner.invoke(
        main,
        ["import", str(CASES_DIR / "c19_dimension_a1.xlsx"), "--layer", "geohazard", "--dry-run"],
    )
    assert ok.exit_code == 0, ok.output


def test_import_conflict_needs_accept_conflicts(runner, layers_copy):
    first = runner.invoke(
        main, ["import", str(CASES_DIR / "c28a_first_import.csv"), "--layer", "geohazard"]
    )
    assert first.exit_code == 0, first.output
    args = ["import", str(CASES_DIR / "c28b_survey_serial_number.xlsx"), "--layer", "geohazard"]
    mapping = layers_copy.parent / "map.toml"
    mapping.write_text('[mapping]\n"编号" = "uid"\n', encoding="utf-8")
    held = runner.invoke(main, [*args, "--map", str(mapping)])
    assert held.exit_code == 3, held.output
    assert "冲突" in held.output
    assert "--accept-conflicts" in held.output
    done = runner.invoke(main, [*args, "--map", str(mapping), "--accept-conflicts"])
    assert done.exit_code == 0, done.output
    assert "测试村滑坡" in (layers_copy / "geohazard.geojson").read_text(encoding="utf-8")
    undo = runner.invoke(main, ["undo", "--layer", "geohazard"])
    assert undo.exit_code == 0
    assert "c28b_survey_serial_number.xlsx" in undo.output
