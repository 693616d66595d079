"""Reader kinds of issue 10: workbooks read by their cells, formulas, CJK date formats,
two-row headers, invisible characters (cases c19–c22, c24 and a table/property test each)."""

from __future__ import annotations

import io as _io
import re
import unicodedata
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook

from riskmap import cells as tc
from riskmap.readers import (
    CJK_DATE_FORMAT_IDS,
    CJK_TIME_FORMAT_IDS,
    merge_header_rows,
    read_table,
    remove_invisible,
)
from tests.conftest import CASES


def _patch_xlsx(data: bytes, member: str, edit) -> bytes:
    """Copy an XLSX archive with one member's XML edited by `edit(text) -> text`."""
    out = _io.BytesIO()
    with zipfile.ZipFile(_io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            body = zin.read(info)
            if info.filename == member:
                body = edit(body.decode("utf-8")).encode("utf-8")
            zout.writestr(info, body)
    return out.getvalue()


def _workbook(rows: list[list[object]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = _io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- c19: the declared <dimension> is not trusted ---------------------------------------------


def test_c19_dimension_a1_reads_all_rows():
    table = read_table((CASES / "c19_dimension_a1.xlsx").read_bytes(), "c19_dimension_a1.xlsx")
    assert table.rows == [2, 3, 4]
    assert table.frame["名称"].tolist() == ["甲村滑坡", "乙村崩塌", "丙村滑坡"]
    assert table.frame["经度"].tolist() == ["108.664", "108.665", "108.663"]


@pytest.mark.parametrize("declared", ["A1", "A1:B2", "C3", "A1:Z999"])
@pytest.mark.parametrize("n_rows", [1, 5, 40])
def test_any_wrong_dimension_is_ignored(declared, n_rows):
    rows = [["名称", "经度", "纬度"]] + [[f"点{i}", 108.6 + i / 1000, 31.9] for i in range(n_rows)]
    data = _patch_xlsx(
        _workbook(rows),
        "xl/worksheets/sheet1.xml",
        lambda xml: re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{declared}"/>', xml),
    )
    table = read_table(data, "t.xlsx")
    assert table.frame["名称"].tolist() == [f"点{i}" for i in range(n_rows)]


# --- c20: formulas -----------------------------------------------------------------------------


def test_c20_formula_without_value_is_named_with_its_cell():
    table = read_table((CASES / "c20_formula_without_value.xlsx").read_bytes(), "c20.xlsx")
    assert table.unevaluated == {
        (2, "经度"): ("E2", "=108+39/60+50.4/3600"),
        (2, "纬度"): ("F2", "=31+56/60+45.6/3600"),
    }
    assert table.frame.loc[0, "经度"] == ""


def test_formula_with_cached_value_uses_the_value():
    data = (CASES / "c20_formula_without_value.xlsx").read_bytes()
    lon = 108 + 39 / 60 + 50.4 / 3600
    lat = 31 + 56 / 60 + 45.6 / 3600

    def cache(xml: str) -> str:
        xml = xml.replace(
            "<f>108+39/60+50.4/3600</f><v />", f"<f>108+39/60+50.4/3600</f><v>{lon}</v>"
        )
        return xml.replace(
            "<f>31+56/60+45.6/3600</f><v />", f"<f>31+56/60+45.6/3600</f><v>{lat}</v>"
        )

    table = read_table(_patch_xlsx(data, "xl/worksheets/sheet1.xml", cache), "c20_cached.xlsx")
    assert table.unevaluated == {}
    assert float(table.frame.loc[0, "经度"]) == pytest.approx(lon)
    assert float(table.frame.loc[0, "纬度"]) == pytest.approx(lat)


# --- c21: CJK built-in date formats -------------------------------------------------------------


def test_c21_builtin_31_is_a_date():
    table = read_table((CASES / "c21_builtin_cjk_date_format.xlsx").read_bytes(), "c21.xlsx")
    assert table.frame.loc[0, "最近演练"] == "2023-07-15"


@pytest.mark.parametrize("fmt_id", sorted(CJK_DATE_FORMAT_IDS | CJK_TIME_FORMAT_IDS))
def test_every_cjk_builtin_date_or_time_id(fmt_id):
    data = (CASES / "c21_builtin_cjk_date_format.xlsx").read_bytes()
    data = _patch_xlsx(
        data, "xl/styles.xml", lambda xml: xml.replace('numFmtId="31"', f'numFmtId="{fmt_id}"')
    )
    # serial 45122.5 = 2023-07-15 12:00 (1900 date system)
    data = _patch_xlsx(
        data, "xl/worksheets/sheet1.xml", lambda xml: xml.replace("<v>45122</v>", "<v>45122.5</v>")
    )
    value = read_table(data, "c21.xlsx").frame.loc[0, "最近演练"]
    assert value == ("2023-07-15" if fmt_id in CJK_DATE_FORMAT_IDS else "12:00:00")


def test_plain_number_with_general_format_stays_a_number():
    data = (CASES / "c21_builtin_cjk_date_format.xlsx").read_bytes()
    data = _patch_xlsx(
        data, "xl/styles.xml", lambda xml: xml.replace('numFmtId="31"', 'numFmtId="0"')
    )
    assert read_table(data, "c21.xlsx").frame.loc[0, "最近演练"] == "45122"


# --- c22: two-row headers --------------------------------------------------------------


def test_c22_two_row_merged_header():
    table = read_table((CASES / "c22_two_row_merged_header.xlsx").read_bytes(), "c22.xlsx")
    assert table.columns == ["统一编号", "名称", "灾害类型", "威胁人数", "经度", "纬度"]
    assert table.rows == [3]
    assert any("两行" in n for n in table.notes)


@pytest.mark.parametrize(
    ("upper", "lower", "expected"),
    [
        (["名称", "坐标", ""], ["", "经度", "纬度"], ["名称", "经度", "纬度"]),
        (
            ["名称", "位置", "", "威胁"],
            ["", "东经", "北纬", "人数"],
            ["名称", "东经", "北纬", "人数"],
        ),
        (["名称", "经度", "纬度"], ["甲村", "108.66", "31.94"], None),  # a data row
        (["名称", "经度", "纬度"], ["甲村", "乙村", "丙村"], None),  # every cell filled: data
        (["名称", "坐标", ""], ["", "甲", "乙"], None),  # nothing known below
    ],
)
def test_merge_header_rows_table(upper, lower, expected):
    known = {"名称", "经度", "纬度", "东经", "北纬", "人数"}.__contains__
    assert merge_header_rows(upper, lower, known) == expected


def test_two_row_header_in_csv():
    text = "名称,坐标,\n,经度,纬度\n甲村滑坡,108.664,31.946\n"
    table = read_table(text.encode("utf-8"), "two.csv")
    assert table.columns == ["名称", "经度", "纬度"]
    assert table.frame.loc[0, "纬度"] == "31.946"


# --- c24: invisible characters ---------------------------------------------------------


def test_c24_invisible_characters_removed_and_noted():
    table = read_table((CASES / "c24_invisible_characters.csv").read_bytes(), "c24.csv")
    frame = table.frame
    for col in ("经度", "纬度", "威胁人数", "名称", "统一编号"):
        for value in frame[col]:
            assert not any(unicodedata.category(ch) == "Cf" or ch == "\xa0" for ch in value)
    assert frame["威胁人数"].tolist()[3] == "12"
    assert table.cleaned == {"威胁人数": [5], "经度": [2, 3, 4], "纬度": [2, 3]}
    assert any("不可见字符" in n for n in table.notes)


INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u200e", "\u200f", "\u00ad"]
VISIBLE = st.text(
    st.characters(blacklist_categories=("Cf", "Cs", "Cc"), blacklist_characters="\xa0\u2007\u202f"),
    max_size=20,
)


@given(
    text=VISIBLE,
    inserts=st.lists(st.tuples(st.integers(0, 20), st.sampled_from(INVISIBLE)), max_size=5),
)
def test_remove_invisible_restores_the_visible_text(text, inserts):
    dirty = text
    for pos, ch in inserts:
        dirty = dirty[:pos] + ch + dirty[pos:]
    for column in (
        tc.text_column([dirty, text]),
        tc.to_object(tc.text_column([dirty, text])).copy(),
    ):
        cleaned, changed = remove_invisible(column)
        assert tc.to_object(cleaned).tolist() == [text, text]
        assert changed.tolist() == [dirty != text, False]


# --- merged cells in the data rows -----------------------------------------------------------


def _merged_book(merges: list[str]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["城口县隐患点调查表"])
    ws.append(["乡镇", "名称", "坐标", None, "威胁人数"])
    ws.append([None, None, "经度", "纬度", None])
    ws.append(["葛城街道", "甲", 108.664, 31.946, 3])
    ws.append([None, "乙", 108.665, 31.947, None])
    ws.append([None, "丙", 108.666, 31.948, None])
    for ref in ["A1:E1", "A2:A3", "B2:B3", "C2:D2", "E2:E3", *merges]:
        ws.merge_cells(ref)
    buf = _io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("merges", "township", "people"),
    [
        ([], ["葛城街道", "", ""], ["3", "", ""]),
        (["A4:A6"], ["葛城街道"] * 3, ["3", "", ""]),
        (["A4:A5", "E4:E6"], ["葛城街道", "葛城街道", ""], ["3", "3", "3"]),
    ],
)
def test_merged_data_cells_filled_from_their_top_left(merges, township, people):
    table = read_table(_merged_book(merges), "merged.xlsx")
    assert table.columns == ["乡镇", "名称", "经度", "纬度", "威胁人数"]  # header merges combined
    assert table.rows == [4, 5, 6]
    assert table.frame["乡镇"].tolist() == township
    assert table.frame["威胁人数"].tolist() == people
    assert any("合并单元格按其左上角" in n for n in table.notes) is bool(merges)
