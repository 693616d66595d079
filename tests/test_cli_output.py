"""CLI output: CJK-aligned tables with integers as integers; --out folder/extension rules;
the .xls message names the optional extra."""

from __future__ import annotations

import sys
import zipfile

import pandas as pd
import pytest
from click.testing import CliRunner

import geopandas as gpd

from riskmap.cli import main
from riskmap.settings import Settings
from riskmap.texttable import format_cell, format_table, text_width

SETTINGS = Settings()


@pytest.fixture
def runner():
    return CliRunner()


def _table_lines(output: str) -> list[str]:
    lines = output.splitlines()
    return lines[: lines.index("") if "" in lines else len(lines)]


def test_summary_columns_line_up_in_terminal_cells(runner):
    result = runner.invoke(main, ["summary"])
    assert result.exit_code == 0, result.output
    lines = _table_lines(result.output)
    assert len(lines) == 26  # header + 25 townships
    # the last column is right-aligned numbers: every line ends at the same terminal cell
    assert len({text_width(line) for line in lines}) == 1
    # numbers are right-aligned under their header: the cells end where the header ends
    header_ends = _token_ends(lines[0])
    for line in lines[1:]:
        ends = _token_ends(line)
        assert len(ends) == len(header_ends)
        assert ends[2:] == header_ends[2:], line


def _token_ends(line: str) -> list[int]:
    """Terminal cell at which each space-separated token ends."""
    ends, pos = [], 0
    for token in line.split():
        pos = line.index(token, pos) + len(token)
        ends.append(text_width(line[:pos]))
    return ends


def test_summary_prints_integer_sums_as_integers(runner):
    result = runner.invoke(main, ["summary"])
    lines = _table_lines(result.output)
    header = lines[0].split()
    i_households = header.index("威胁户数(户)")
    i_people = header.index("威胁人数(人)")
    # independent count: geohazard points joined to the township cells with geopandas
    gdf_points = gpd.read_file(SETTINGS.layers_dir / "geohazard.geojson")
    gdf_t = gpd.read_file(SETTINGS.township_polygons_path)
    gdf_t = gdf_t[["name", "geometry"]].rename(columns={"name": "township_name"})
    joined = gpd.sjoin(gdf_points, gdf_t, predicate="within")
    bashan = joined[(joined["township_name"] == "巴山镇") & (joined["status"] != "已销号")]
    row = next(line.split() for line in lines if "巴山镇" in line)
    assert row[i_households] == str(int(bashan["threat_households"].sum()))
    assert row[i_people] == str(int(bashan["threat_people"].sum()))
    assert ".0 " not in " ".join(
        line.split()[i_households] + " " + line.split()[i_people] + " " for line in lines[1:]
    )


def test_format_table_pads_by_display_width_and_blanks_are_empty():
    df = pd.DataFrame(
        {
            "乡镇": ["葛城街道", "巴山镇", None],
            "户数": [26.0, 3.0, float("nan")],
            "x": [1.5, 10.25, 2.0],
        }
    )
    text = format_table(df, decimals={"户数": 0})
    lines = text.splitlines()
    assert lines[1].startswith("葛城街道  ")
    assert lines[2].startswith("巴山镇    ")  # 6 cells + 2 padding = 8, like 葛城街道
    assert lines[1].split()[1] == "26"
    assert "nan" not in text
    assert "None" not in text
    assert [line.split()[-1] for line in lines[1:]] == ["1.50", "10.25", "2.00"]
    assert len({text_width(line) for line in lines}) == 1
    assert format_cell(value=True) == "是"
    assert format_cell(108.60000000000001) == "108.6"


def test_out_without_extension_is_a_folder_not_a_file(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(main, ["export", "--all", "--out", "lists"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "lists").is_dir()
    (zip_path,) = (tmp_path / "lists").iterdir()
    assert zip_path.suffix == ".zip"
    with zipfile.ZipFile(zip_path) as zf:
        assert len([n for n in zf.namelist() if n[:9].isdigit() and n.endswith(".xlsx")]) == 25
    res = runner.invoke(main, ["export", "--township", "巴山镇", "--format", "csv", "--out", "one"])
    assert res.exit_code == 0, res.output
    assert [p.suffix for p in (tmp_path / "one").iterdir()] == [".csv"]


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (["export", "--all", "--out", "清单.xlsx"], ".zip"),
        (["export", "--township", "巴山镇", "--out", "巴山.csv"], ".xlsx"),
        (["map", "--out", "图.png"], ".html"),
    ],
)
def test_out_with_the_wrong_extension_is_refused(runner, tmp_path, monkeypatch, args, want):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(main, args)
    assert res.exit_code == 2
    assert "扩展名应为" in res.output
    assert want in res.output
    assert list(tmp_path.iterdir()) == []


def test_xls_without_xlrd_names_the_optional_extra(runner, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "xlrd", None)  # as on a machine without the extra
    old = tmp_path / "旧表.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1024)  # OLE2 (BIFF .xls) magic
    res = runner.invoke(main, ["import", str(old), "--layer", "geohazard", "--dry-run"])
    assert res.exit_code == 2
    assert "旧表.xls" in res.output
    assert "pip install 'riskmap[xls]'" in res.output


def test_missing_or_folder_input_file_is_one_chinese_line(runner, tmp_path):
    """A wrong path is ``错误：找不到文件 …`` (exit 2), not click's English usage block."""
    missing = tmp_path / "调查 表.csv"
    for args, expected in [
        (["import", str(missing), "--layer", "geohazard", "--dry-run"], "找不到文件"),
        (["import", str(tmp_path), "--layer", "geohazard", "--dry-run"], "是文件夹"),
        (["summary", "--townships", str(missing)], "找不到文件"),
    ]:
        result = runner.invoke(main, args)
        assert result.exit_code == 2, result.output
        assert result.output.startswith("错误：")
        assert expected in result.output
        assert "Usage" not in result.output
        assert "Invalid value" not in result.output
        assert len(result.output.strip().splitlines()) == 1
