"""Per-township lists: XLSX / CSV / GeoJSON / ZIP. Expected values are worked out by hand.

Dataset (all in code, plus the c15/c16/c18 case files):

- townships A = 500229001 葛城街道, box lon 108.60-108.70; B = 500229102 巴山镇, 108.70-108.80;
  both lat 31.90-32.00, approximate partition.
- geohazard: 001 (c16: =HYPERLINK note as 防治措施, +86 phone, @ reporter; demo;
  3 户 12 人 50.5 万元, 搬迁 3, in A),
  002 (5 户 20 人 120.0 万元, village "-桥头组", in A), 003 (c18: all numbers blank, in A),
  004 (已销号, 9 户 100 人, in A), 005 (150 户 600 人 -3.5 万元, in B).
- bridge B01 in A with bridge_code 500229001000 (c15) and a blank route code (c15 row 2).
- firezone F01: box lon 108.65-108.75, lat 31.92-31.98, straddling A and B half and half.
- waterlogging: declared, empty.

Hand figures, township A without cleared points: 3 geohazard points; 威胁户数 3+5 = 8;
威胁人数 12+20 = 32; 威胁财产 50.5+120.0 = 170.5; 计划搬迁人数 3. With 004: 4 points, 132 人.
Township B: 1 point, 150 户, 600 人, -3.5 万元. 险情等级 (DZ/T 0286): 001, 002 小型 (< 100 人,
< 500 万元); 003 none (未分级); 005 大型 (500 <= 600 < 1000).
Zone F01: 0.10 deg x 0.06 deg at lat 31.95: 0.10 * 111.32 km * cos(31.95 deg) = 9.445 km wide,
0.06 * 110.87 km = 6.652 km high, about 6283 ha; each township holds about half.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tomllib
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import geopandas as gpd
from shapely.geometry import Point, box

from riskmap import exporters
from riskmap.catalog import catalog_from_dict
from riskmap.errors import RiskmapError, TownshipNotFoundError
from riskmap.io import empty_layer
from riskmap.layers import prepare_layer

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
A, B = "500229001", "500229102"
AS_OF = dt.date(2026, 3, 15)
GENERATED = dt.date(2026, 4, 1)
BOM = b"\xef\xbb\xbf"


def _case(name: str) -> list[dict[str, str]]:
    return pd.read_csv(DATA / name, dtype=str, keep_default_na=False).to_dict("records")


@pytest.fixture(scope="module")
def catalog():
    return catalog_from_dict(tomllib.loads((ROOT / "layers" / "catalog.toml").read_text("utf-8")))


@pytest.fixture(scope="module")
def gdf_townships() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "adcode": [A, B],
            "adcode12": [A + "000", B + "000"],
            "name": ["葛城街道", "巴山镇"],
            "level": ["街道", "镇"],
            "approximate": [True, True],
            "also_covers": ["", ""],
        },
        geometry=[box(108.60, 31.90, 108.70, 32.00), box(108.70, 31.90, 108.80, 32.00)],
        crs="EPSG:4326",
    )


@pytest.fixture(scope="module")
def township_codes(gdf_townships) -> pd.DataFrame:
    return pd.DataFrame(gdf_townships[["adcode", "name", "level"]])


@pytest.fixture(scope="module")
def layers(catalog, gdf_townships):
    c15 = _case("c15_codes_leading_zeros.csv")
    (c16,) = _case("c16_formula_injection.csv")
    (c18,) = _case("c18_blank_and_nan.csv")
    geo = gpd.GeoDataFrame(
        {
            "uid": [c15[0]["点号"], c15[1]["点号"], "003", "004", "005"],
            "name": [c16["名称"], "乙村崩塌", c18["名称"], "丙村滑坡", "丁村泥石流"],
            "village": ["甲村", "-桥头组", None, "丙村", "丁村"],
            "hazard_type": ["滑坡", "崩塌", "滑坡", "滑坡", "泥石流"],
            "threat_households": [3, 5, None, 9, 150],
            "threat_people": [12, 20, c18["威胁人数"], 100, 600],
            "threat_property_wan": [50.5, 120.0, None, 10.0, -3.5],
            "danger_grade": [None, None, c18["风险等级"], None, None],
            "has_station": [True, False, None, None, True],
            "relocate_people": [3, None, None, None, None],
            "measures": [c16["备注"], "群测群防", None, "工程治理", "专业监测"],
            "resp_name": [c16["上报人"], "李四", None, None, "王五"],
            "resp_phone": [c16["联系电话"], "13800000000", None, None, None],
            "status": ["在册", "监测中", "治理中", "已销号", "在册"],
            "updated_at": ["2026-03-01", "2026-03-15", None, "2026-01-10", "2026-02-20"],
            "demo": [True, False, False, False, False],
        },
        geometry=[
            Point(108.6640, 31.9460),
            Point(108.68, 31.95),
            Point(108.62, 31.93),
            Point(108.63, 31.94),
            Point(108.76, 31.95),
        ],
        crs="EPSG:4326",
    )
    bridge = gpd.GeoDataFrame(
        {
            "uid": ["B01"],
            "name": ["甲村大桥"],
            "bridge_code": [c15[0]["乡镇代码"]],
            "route_code": [c15[1]["乡镇代码"]],
            "condition_class": ["4类"],
            "dr_score": [45.0],
            "built_year": [1988],
            "status": ["在册"],
        },
        geometry=[Point(108.65, 31.96)],
        crs="EPSG:4326",
    )
    zone = gpd.GeoDataFrame(
        {
            "uid": ["F01"],
            "name": ["城郊火险区"],
            "zone_grade": ["I级"],
            "rangers": [4],
            "status": ["在册"],
            "updated_at": ["2026-02-01"],
        },
        geometry=[box(108.65, 31.92, 108.75, 31.98)],
        crs="EPSG:4326",
    )
    raw = {
        "geohazard": geo,
        "waterlogging": empty_layer(catalog.get("waterlogging")),
        "bridge": bridge,
        "firezone": zone,
    }
    return {
        lid: prepare_layer(gdf, catalog.get(lid), gdf_townships, metric_crs="EPSG:4545")
        for lid, gdf in raw.items()
    }


def _kw():
    return {"as_of": AS_OF, "generated": GENERATED}


def _rows(ws) -> list[list]:
    return [[c.value for c in row] for row in ws.iter_rows()]


def _table(ws, header_row: int = 3) -> tuple[list[str], list[list], list]:
    """Header, data rows and the 合计 row of a list sheet."""
    rows = _rows(ws)
    header = rows[header_row - 1]
    body = rows[header_row:]
    assert body[-1][0] == "合计"
    return header, body[:-1], body[-1]


def _col(header: list[str], row: list, name: str):
    return row[header.index(name)]


@pytest.fixture(scope="module")
def book_a(layers):
    data = exporters.xlsx_township(layers, A, "葛城街道", **_kw())
    return openpyxl.load_workbook(io.BytesIO(data))


# --- neutralise_cell ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+86-000", "'+86-000"),
        ("-桥头组", "'-桥头组"),
        ("@调查组", "'@调查组"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("  =cmd", "'  =cmd"),
        ("＝1+1", "'＝1+1"),
        ("甲村=1", "甲村=1"),
        ("001", "001"),
        ("", ""),
        (-3.5, -3.5),
        (-2, -2),
        (None, None),
    ],
)
def test_neutralise_cell(value, expected):
    assert exporters.neutralise_cell(value) == expected


@given(st.text())
def test_neutralise_cell_idempotent_and_safe(text):
    once = exporters.neutralise_cell(text)
    assert exporters.neutralise_cell(once) == once
    assert once.endswith(text)
    assert not once.lstrip(" \u3000").startswith(("=", "+", "-", "@", "\t", "\r"))


# --- frames -------------------------------------------------------------------------------


def test_frames_township_a(layers):
    frames = exporters.township_list_frames(layers, A, "葛城街道")
    assert list(frames) == ["geohazard", "waterlogging", "bridge", "firezone"]
    geo = frames["geohazard"]
    assert list(geo.columns[:4]) == ["序号", "统一编号", "名称", "村/社区"]
    assert "威胁人数(人)" in geo.columns
    assert "威胁财产(万元)" in geo.columns
    assert geo["序号"].tolist() == [1, 2, 3]
    assert geo["统一编号"].tolist() == ["001", "002", "003"]  # 004 is cleared
    assert geo["智能监测站"].tolist() == ["是", "否", None]
    assert geo["威胁人数(人)"].isna().tolist() == [False, False, True]
    assert frames["waterlogging"].empty
    assert frames["bridge"]["桥梁编码"].tolist() == ["500229001000"]
    assert frames["bridge"]["路线编号"].tolist() == [None]


def test_frames_include_cleared(layers):
    frames = exporters.township_list_frames(layers, A, "葛城街道", include_cleared=True)
    assert frames["geohazard"]["统一编号"].tolist() == ["001", "002", "003", "004"]
    assert int(frames["geohazard"]["威胁人数(人)"].sum()) == 132


def test_zone_in_both_townships_with_its_share(layers):
    for code in (A, B):
        zone = exporters.township_list_frames(layers, code, "")["firezone"]
        assert zone["统一编号"].tolist() == ["F01"]
        assert zone["面积(ha)"].iloc[0] == pytest.approx(6283, rel=0.01)
        assert zone["本乡镇面积(ha)"].iloc[0] == pytest.approx(6283 / 2, rel=0.01)
        assert zone["本乡镇占比(%)"].iloc[0] == pytest.approx(50.0, abs=0.5)


def test_bad_township_code(layers):
    with pytest.raises(TownshipNotFoundError, match="9"):
        exporters.township_list_frames(layers, "500229", "x")


# --- XLSX ---------------------------------------------------------------------------------


def test_xlsx_sheets_title_and_notes(book_a):
    assert book_a.sheetnames == ["汇总", "地质灾害隐患点", "内涝积水点", "危旧桥梁", "森林火险区"]
    ws = book_a["地质灾害隐患点"]
    assert ws["A1"].value == "城口县葛城街道安全风险点位清单"
    notes = ws["A2"].value
    assert "截至 2026-03-15（数据更新时间）" in notes
    assert "乡镇界线为示意边界（非官方），归属仅供参考" in notes
    assert "演示数据（非真实点位）" in notes
    # 序号 + 18 list fields + 经度 + 纬度 = 21 columns, A..U
    assert any(str(r) == "A1:U1" for r in ws.merged_cells.ranges)
    assert ws.freeze_panes == "D4"
    assert ws["A3"].font.bold


def test_xlsx_list_rows_and_subtotals(book_a):
    header, body, total = _table(book_a["地质灾害隐患点"])
    assert header[:3] == ["序号", "统一编号", "名称"]
    assert [r[0] for r in body] == [1, 2, 3]
    assert total[1] == "共3处"
    assert _col(header, total, "威胁户数(户)") == 8
    assert _col(header, total, "威胁人数(人)") == 32
    assert _col(header, total, "威胁财产(万元)") == pytest.approx(170.5)
    assert _col(header, total, "计划搬迁人数(人)") == 3
    assert _col(header, body[2], "威胁人数(人)") is None  # c18 blank stays blank


def test_xlsx_no_formula_cells_and_neutralised(book_a):
    ws = book_a["地质灾害隐患点"]
    header, body, _ = _table(ws)
    for sheet in book_a.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", cell.coordinate
    assert _col(header, body[0], "名称") == "壬村滑坡"
    assert _col(header, body[0], "防治措施") == "'" + '=HYPERLINK("http://example.invalid","详情")'
    assert _col(header, body[0], "联系电话") == "'+86-000-0000-0000"
    assert _col(header, body[0], "责任人") == "'@调查组"
    assert _col(header, body[1], "村/社区") == "'-桥头组"


def test_xlsx_codes_are_text(book_a):
    ws = book_a["地质灾害隐患点"]
    cell = ws["B4"]
    assert cell.value == "001"
    assert cell.data_type == "s"
    assert cell.number_format == "@"
    header, body, _ = _table(book_a["危旧桥梁"])
    assert _col(header, body[0], "桥梁编码") == "500229001000"
    assert _col(header, body[0], "路线编号") is None
    assert _col(header, body[0], "修建年度") == 1988


def test_xlsx_negative_number_stays_number(layers):
    book = openpyxl.load_workbook(io.BytesIO(exporters.xlsx_township(layers, B, "巴山镇", **_kw())))
    ws = book["地质灾害隐患点"]
    header, body, total = _table(ws)
    col = header.index("威胁财产(万元)")
    assert body[0][col] == -3.5
    assert ws.cell(row=4, column=col + 1).data_type == "n"
    assert _col(header, total, "威胁人数(人)") == 600
    assert _col(header, total, "威胁财产(万元)") == pytest.approx(-3.5)
    assert "演示数据" not in ws["A2"].value


def test_xlsx_summary_sheet(book_a):
    rows = _rows(book_a["汇总"])
    assert rows[0][0] == "城口县葛城街道安全风险点位汇总"
    assert rows[2] == ["图层", "统计项", "分类", "数值"]
    table = {(r[0], r[1], r[2]): r[3] for r in rows[3:]}
    assert table["地质灾害隐患点", "点位数", "合计"] == 3
    assert table["地质灾害隐患点", "险情等级", "小型"] == 2
    assert table["地质灾害隐患点", "险情等级", "大型"] == 0
    assert table["地质灾害隐患点", "险情等级", "未分级"] == 1
    assert table["地质灾害隐患点", "状态", "在册"] == 1
    assert table["地质灾害隐患点", "状态", "已销号"] == 0
    assert table["地质灾害隐患点", "威胁人数(人)", "合计"] == 32
    assert table["内涝积水点", "点位数", "合计"] == 0
    assert table["危旧桥梁", "技术状况等级", "4类"] == 1
    assert table["森林火险区", "本乡镇面积(ha)", "合计"] == pytest.approx(6283 / 2, rel=0.01)


def test_xlsx_zone_sheet_and_empty_sheet(book_a):
    header, body, total = _table(book_a["森林火险区"])
    assert [r[1] for r in body] == ["F01"]
    assert _col(header, total, "本乡镇面积(ha)") == pytest.approx(6283 / 2, rel=0.01)
    _, body, total = _table(book_a["内涝积水点"])
    assert body == []
    assert total[1] == "共0处"


# --- CSV ----------------------------------------------------------------------------------


def test_csv_bom_codes_blanks_and_neutralised(layers):
    data = exporters.csv_township(layers, A, "葛城街道")
    assert data.startswith(BOM)
    assert b"nan" not in data.lower()
    df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(df.columns[:4]) == ["图层", "序号", "统一编号", "名称"]
    assert df["图层"].tolist() == ["地质灾害隐患点"] * 3 + ["危旧桥梁", "森林火险区"]
    assert df["统一编号"].tolist() == ["001", "002", "003", "B01", "F01"]
    assert df["桥梁编码"].tolist() == ["", "", "", "500229001000", ""]
    geo = df[df["图层"] == "地质灾害隐患点"]
    assert geo["防治措施"].iloc[0].startswith("'=HYPERLINK(")
    assert geo["联系电话"].iloc[0] == "'+86-000-0000-0000"
    assert geo["责任人"].iloc[0] == "'@调查组"
    assert geo["威胁人数(人)"].tolist() == ["12", "20", ""]
    assert geo["威胁财产(万元)"].tolist() == ["50.5", "120", ""]


def test_csv_negative_number_untouched(layers):
    data = exporters.csv_township(layers, B, "巴山镇")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0]["威胁财产(万元)"] == "-3.5"


# --- GeoJSON ------------------------------------------------------------------------------


def _strict(data: bytes) -> dict:
    def refuse(name: str):
        msg = f"non-standard JSON constant {name}"
        raise ValueError(msg)

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def test_geojson_strict_with_members(layers):
    fc = _strict(exporters.geojson_township(layers, A, "葛城街道", **_kw()))
    assert fc["type"] == "FeatureCollection"
    assert fc["title"] == "城口县葛城街道安全风险点位清单"
    assert fc["township"] == {"code": A, "name": "葛城街道"}
    assert fc["approximate_boundaries"] is True
    assert fc["demo"] is True
    assert fc["generated"] == "2026-04-01"
    assert fc["as_of"] == "2026-03-15"
    assert "crs" not in fc
    by_uid = {f["properties"]["uid"]: f for f in fc["features"]}
    assert sorted(by_uid) == ["001", "002", "003", "B01", "F01"]
    blank = by_uid["003"]["properties"]
    assert blank["threat_people"] is None
    assert blank["threat_property_wan"] is None
    # GeoJSON is data: values are not neutralised
    assert by_uid["001"]["properties"]["measures"].startswith("=HYPERLINK(")
    assert by_uid["B01"]["properties"]["bridge_code"] == "500229001000"
    assert by_uid["F01"]["properties"]["township_share"] == pytest.approx(0.5, abs=0.005)
    assert by_uid["001"]["geometry"]["coordinates"] == pytest.approx([108.664, 31.946])


def test_geojson_township_b_not_demo(layers):
    fc = _strict(exporters.geojson_township(layers, B, "巴山镇", approximate=False, **_kw()))
    assert fc["demo"] is False
    assert fc["approximate_boundaries"] is False
    assert sorted(f["properties"]["uid"] for f in fc["features"]) == ["005", "F01"]


# --- ZIP and county overview ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xlsx", "csv", "geojson"])
def test_zip_members(layers, township_codes, fmt):
    data = exporters.all_townships_zip(layers, township_codes, fmt=fmt, **_kw())
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert names == [f"500229001_葛城街道.{fmt}", f"500229102_巴山镇.{fmt}", "城口县_汇总.xlsx"]
        assert all(info.flag_bits & 0x800 for info in zf.infolist())  # UTF-8 names
        for name in names:
            body = zf.read(name)
            if name.endswith(".xlsx"):
                openpyxl.load_workbook(io.BytesIO(body))
            elif name.endswith(".csv"):
                assert body.startswith(BOM)
            else:
                _strict(body)


def test_zip_overview(layers, township_codes):
    data = exporters.all_townships_zip(layers, township_codes, fmt="xlsx", **_kw())
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        book = openpyxl.load_workbook(io.BytesIO(zf.read("城口县_汇总.xlsx")))
    ws = book["汇总"]
    rows = _rows(ws)
    assert rows[0][0] == "城口县安全风险点位汇总（按乡镇）"
    sub = rows[3]
    assert sub[:3] == ["乡镇代码", "乡镇名称", "级别"]
    a, b, total = rows[4], rows[5], rows[6]
    assert a[:3] == [A, "葛城街道", "街道"]
    assert ws["A5"].data_type == "s"
    geo = rows[2].index("地质灾害隐患点")
    people = geo + sub[geo:].index("威胁人数(人)")
    assert (a[geo], b[geo], total[geo]) == (3, 1, 4)
    assert (a[people], b[people], total[people]) == (32, 600, 632)
    zone = rows[2].index("森林火险区")
    assert (a[zone], b[zone], total[zone]) == (1, 1, 1)  # one zone, counted once in the county
    assert total[0] == "全县合计"
    area = sub.index("面积(ha)")
    assert a[area] == round(a[area], 2)
    assert a[area] == pytest.approx(6283 / 2, rel=0.01)
    assert total[area] == pytest.approx(6283, rel=0.01)  # the whole zone, once


def test_as_of_defaults_to_latest_update(layers):
    assert exporters.data_as_of(layers) == dt.date(2026, 3, 15)
    fc = _strict(exporters.geojson_township(layers, A, "葛城街道", generated=GENERATED))
    assert fc["as_of"] == "2026-03-15"


def test_zip_rejects_unknown_format(layers, township_codes):
    with pytest.raises(ValueError, match="fmt"):
        exporters.all_townships_zip(layers, township_codes, fmt="pdf")


# --- c16: tab / CR leading characters through the writers --------------------------------------


@pytest.fixture(scope="module")
def layers_tab_cr(layers):
    """Township B's point with a tab-led village and a CR-led measure (c16 kind)."""
    geo = layers["geohazard"]
    gdf = geo.gdf.copy()
    i = gdf.index[gdf["uid"] == "005"][0]
    gdf.loc[i, "village"] = "\t=1+1"
    gdf.loc[i, "measures"] = "\r@SUM(A1)"
    return {**layers, "geohazard": exporters.LayerData(spec=geo.spec, gdf=gdf, shares=geo.shares)}


def test_tab_and_cr_led_text_neutralised_in_xlsx_and_csv(layers_tab_cr):
    book = openpyxl.load_workbook(
        io.BytesIO(exporters.xlsx_township(layers_tab_cr, B, "巴山镇", **_kw()))
    )
    ws = book["地质灾害隐患点"]
    header, body, _ = _table(ws)
    assert _col(header, body[0], "村/社区") == "'\t=1+1"
    assert _col(header, body[0], "防治措施").startswith("'")
    assert _col(header, body[0], "防治措施").endswith("@SUM(A1)")
    money = header.index("威胁财产(万元)")
    assert body[0][money] == -3.5
    assert ws.cell(row=4, column=money + 1).data_type == "n"
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f"
            assert not (isinstance(cell.value, str) and cell.value[:1] in "=+-@\t\r")
    data = exporters.csv_township(layers_tab_cr, B, "巴山镇")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0]["村/社区"] == "'\t=1+1"
    assert rows[0]["防治措施"] == "'\r@SUM(A1)"
    assert rows[0]["威胁财产(万元)"] == "-3.5"
    for row in rows:
        for value in row.values():
            assert value[:1] not in {"=", "+", "@", "\t", "\r"}


# --- public release (公开版) ---------------------------------------------------------------------


def test_personal_fields_declared_in_catalog(catalog):
    for spec in catalog:
        # 应急队伍 also carry their duty line (值班电话): a phone, masked like the others
        expected = {"resp_name", "resp_phone"} | ({"duty_phone"} if spec.id == "teams" else set())
        assert set(spec.personal) == expected
        assert set(exporters.personal_fields(spec)) == expected


def test_personal_fields_safety_net_for_undeclared(catalog):
    raw = tomllib.loads((ROOT / "layers" / "catalog.toml").read_text("utf-8"))
    raw["layers"]["geohazard"]["fields"]["monitor_person"] = {"label": "监测员", "type": "str"}
    raw["layers"]["geohazard"]["fields"]["contact_tel"] = {"label": "值班手机", "type": "str"}
    raw["layers"]["geohazard"]["fields"]["own_flag"] = {
        "label": "户主",
        "type": "str",
        "personal": True,
    }
    spec = catalog_from_dict(raw).get("geohazard")
    assert {"monitor_person", "contact_tel", "own_flag"} <= set(exporters.personal_fields(spec))
    assert "resp_unit" not in exporters.personal_fields(spec)  # 责任单位 is an office
    assert "rangers" not in exporters.personal_fields(catalog.get("firezone"))  # 护林员 count


@pytest.fixture(scope="module")
def public(layers):
    geo = layers["geohazard"]
    gdf = geo.gdf.copy()
    gdf["联系电话(原表)"] = "13912345678"  # an extra column kept from an imported survey
    gdf.loc[gdf.index[1], "measures"] = "群测群防，联系 139-1234-5678 或 023-59221234"
    leaky = {**layers, "geohazard": exporters.LayerData(spec=geo.spec, gdf=gdf, shares=geo.shares)}
    return exporters.public_layers(leaky, precision_deg=0.01)


PERSONAL = ("调查组", "李四", "王五", "13800000000", "+86-000", "13912345678", "1234-5678")


def _no_personal(text: str) -> None:
    for value in PERSONAL:
        assert value not in text, value
    for label in ("责任人", "联系电话"):
        assert label not in text, label


def test_public_layers_drop_personal_and_extra_columns(public, layers):
    geo = public["geohazard"]
    assert "resp_name" not in geo.gdf.columns
    assert "resp_phone" not in geo.gdf.columns
    assert "联系电话(原表)" not in geo.gdf.columns
    assert "resp_name" not in geo.spec.fields
    assert "resp_phone" not in geo.spec.list_fields
    assert "resp_phone" not in geo.spec.popup
    assert "resp_unit" in geo.spec.list_fields
    assert geo.gdf["measures"].iloc[1] == "群测群防，联系 [电话已隐去] 或 [电话已隐去]"
    assert geo.gdf["threat_people"].tolist() == layers["geohazard"].gdf["threat_people"].tolist()
    assert "resp_name" in layers["geohazard"].gdf.columns  # the input is not modified


def test_public_layers_snap_points_keep_townships(public, layers):
    before = layers["geohazard"].gdf
    after = public["geohazard"].gdf
    assert after.geometry.x.tolist() == [108.66, 108.68, 108.62, 108.63, 108.76]
    assert after.geometry.y.tolist() == [31.95, 31.95, 31.93, 31.94, 31.95]
    assert after["township_code"].tolist() == before["township_code"].tolist()
    dx = (after.geometry.x - before.geometry.x).abs()
    dy = (after.geometry.y - before.geometry.y).abs()
    assert (dx <= 0.005 + 1e-12).all()
    assert (dy <= 0.005 + 1e-12).all()
    # polygons are left as they are
    assert public["firezone"].gdf.geometry.iloc[0].equals(layers["firezone"].gdf.geometry.iloc[0])
    ew, ns = exporters.grid_metres(0.01)
    assert 940 < ew < 950
    assert 1105 < ns < 1112


def test_public_layers_precision_none_and_invalid(layers):
    exact = exporters.public_layers(layers, precision_deg=None)
    assert exact["geohazard"].gdf.geometry.x.iloc[0] == pytest.approx(108.6640)
    coarse = exporters.public_layers(layers, precision_deg=0.1)
    assert coarse["geohazard"].gdf.geometry.x.iloc[0] == pytest.approx(108.7)
    for bad in (0, -0.01, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="precision_deg"):
            exporters.public_layers(layers, precision_deg=bad)


def test_public_exports_hold_no_personal_data(public, township_codes):
    book = exporters.xlsx_township(public, A, "葛城街道", **_kw())
    wb = openpyxl.load_workbook(io.BytesIO(book))
    cells = " ".join(
        str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value
    )
    _no_personal(cells)
    assert "责任单位" in cells
    _no_personal(exporters.csv_township(public, A, "葛城街道").decode("utf-8-sig"))
    fc = _strict(exporters.geojson_township(public, A, "葛城街道", **_kw()))
    _no_personal(json.dumps(fc, ensure_ascii=False))
    coords = [
        f["geometry"]["coordinates"]
        for f in fc["features"]
        if f["properties"]["layer"] == "geohazard"
    ]
    assert [108.66, 31.95] in coords
    with zipfile.ZipFile(io.BytesIO(exporters.all_townships_zip(public, township_codes))) as zf:
        for name in zf.namelist():
            with zipfile.ZipFile(io.BytesIO(zf.read(name))) as inner:
                text = " ".join(inner.read(n).decode("utf-8", "replace") for n in inner.namelist())
            _no_personal(text)


def test_unfiltered_export_still_has_personal_data(layers):
    """Guard for the test above: the normal export does carry the names and phones."""
    text = exporters.csv_township(layers, A, "葛城街道").decode("utf-8-sig")
    assert "李四" in text
    assert "13800000000" in text


# --- the export formats registry ------------------------------------------------------------


def test_cli_and_app_offer_the_registered_formats():
    """One registry: ``riskmap export --format`` and the app's buttons offer the same set."""
    from riskmap.cli import export
    from riskmap.ui.downloads import offered_formats

    option = next(p for p in export.params if p.name == "fmt")
    assert tuple(option.type.choices) == exporters.FORMATS
    assert offered_formats() == exporters.FORMATS
    assert set(exporters.FORMATS) == {"xlsx", "csv", "geojson"}
    for fmt in exporters.EXPORT_FORMATS.values():
        assert fmt.label.startswith("下载")
        assert "/" in fmt.media_type


def _parse(fmt: str, data: bytes) -> object:
    """Read back a written list by what its media type says it is."""
    media = exporters.export_format(fmt).media_type
    if media == exporters.XLSX_MEDIA_TYPE:
        book = openpyxl.load_workbook(io.BytesIO(data))
        return {ws.title: _rows(ws) for ws in book.worksheets}
    if media == "text/csv":
        assert data.startswith(BOM)
        return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert media == "application/geo+json"
    return _strict(data)


@pytest.mark.parametrize("fmt", ["xlsx", "csv", "geojson"])
def test_registry_writer_is_the_format_writer(layers, fmt):
    """`township_export` gives what the format's own writer gives, readable as its media type."""
    direct = {
        "xlsx": lambda: exporters.xlsx_township(layers, A, "葛城街道", **_kw()),
        "csv": lambda: exporters.csv_township(layers, A, "葛城街道"),
        "geojson": lambda: exporters.geojson_township(layers, A, "葛城街道", **_kw()),
    }[fmt]()
    via = exporters.township_export(layers, A, "葛城街道", fmt=fmt, county_name="城口县", **_kw())
    assert _parse(fmt, via) == _parse(fmt, direct)


def test_registry_unknown_format_names_the_known_ones():
    with pytest.raises(RiskmapError, match="xlsx, csv, geojson"):
        exporters.export_format("pdf")


# --- location columns (issue 17): 村/社区, 经度/纬度 ----------------------------------------


def test_point_lists_carry_place_and_coordinates(book_a, layers):
    lon, lat = "经度(CGCS2000)", "纬度(CGCS2000)"
    header, body, _ = _table(book_a["地质灾害隐患点"])
    place = header.index("村/社区")
    assert header[place + 1 : place + 3] == [lon, lat]
    first = body[0]  # 001 at (108.6640, 31.9460), 甲村
    assert (_col(header, first, "村/社区"), first[place + 1], first[place + 2]) == (
        "甲村",
        108.664,
        31.946,
    )
    ws = book_a["地质灾害隐患点"]
    assert ws.cell(row=4, column=place + 2).number_format == "0.000000"
    # the bridge list has no 村/社区 in the catalog: it is added after 名称, coordinates after it
    header, body, _ = _table(book_a["危旧桥梁"])
    assert header[1:6] == ["统一编号", "名称", "村/社区", lon, lat]
    assert body[0][4:6] == [108.65, 31.96]
    header, _, _ = _table(book_a["森林火险区"])
    assert lon not in header  # zones have areas, not a point
    rows = list(
        csv.reader(io.StringIO(exporters.csv_township(layers, A, "葛城街道").decode("utf-8-sig")))
    )
    assert lon in rows[0]
    assert rows[1][rows[0].index(lon)] == "108.664"


def test_public_list_coordinates_are_coarsened(public):
    """0.01° grid: 108.664 → 108.66, 31.946 → 31.95 (nearest multiple of 0.01)."""
    frames = exporters.township_list_frames(public, A, "葛城街道")
    geo = frames["geohazard"]
    assert geo["经度(CGCS2000)"].iloc[0] == pytest.approx(108.66, abs=1e-9)
    assert geo["纬度(CGCS2000)"].iloc[0] == pytest.approx(31.95, abs=1e-9)
    assert geo["村/社区"].iloc[0] == "甲村"


# --- downloads = screen (issue 17): a FeatureFilter passed to the writers -------------------


def test_xlsx_lists_only_the_screen_selection_and_says_so(layers):
    from riskmap.filters import FeatureFilter

    shown = FeatureFilter(layer_ids=("geohazard",), statuses=("在册",))
    book = openpyxl.load_workbook(
        io.BytesIO(exporters.xlsx_township(layers, A, "葛城街道", selection=shown, **_kw()))
    )
    assert book.sheetnames == ["汇总", "地质灾害隐患点"]
    header, body, total = _table(book["地质灾害隐患点"])
    # Township A holds 001 在册, 002 监测中, 003 治理中, 004 已销号: only 001 is shown.
    assert [_col(header, r, "统一编号") for r in body] == ["001"]
    assert _col(header, total, "威胁人数(人)") == 12
    assert "筛选条件：图层 地质灾害隐患点；状态 在册" in book["地质灾害隐患点"]["A2"].value
    full = openpyxl.load_workbook(
        io.BytesIO(exporters.xlsx_township(layers, A, "葛城街道", **_kw()))
    )
    assert "筛选条件" not in full["地质灾害隐患点"]["A2"].value


def test_csv_geojson_and_zip_follow_the_selection(layers, township_codes):
    from riskmap.filters import FeatureFilter

    shown = FeatureFilter(text="乙村")  # 002 乙村崩塌 only
    rows = list(
        csv.reader(
            io.StringIO(
                exporters.csv_township(layers, A, "葛城街道", selection=shown).decode("utf-8-sig")
            )
        )
    )
    assert [r[rows[0].index("统一编号")] for r in rows[1:]] == ["002"]
    fc = _strict(exporters.geojson_township(layers, A, "葛城街道", selection=shown, **_kw()))
    assert [f["properties"]["uid"] for f in fc["features"]] == ["002"]
    assert fc["selection"] == "筛选条件：名称或编号含“乙村”"
    data = exporters.all_townships_zip(layers, township_codes, fmt="csv", selection=shown, **_kw())
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        body_b = zf.read("500229102_巴山镇.csv").decode("utf-8-sig")
        overview = openpyxl.load_workbook(io.BytesIO(zf.read("城口县_汇总.xlsx")))["汇总"]
    assert len(list(csv.reader(io.StringIO(body_b)))) == 1  # header only: 乙村 is in A
    assert "筛选条件：名称或编号含“乙村”" in overview["A2"].value
    sub, rows_b = _rows(overview)[3], _rows(overview)
    assert rows_b[6][0] == "全县合计"
    assert rows_b[6][sub.index("合计")] == 1  # one geohazard point selected county-wide


def test_xlsx_float_cells_use_the_declared_decimals(book_a, catalog):
    """威胁财产 declares decimals = 2 in catalog.toml: its cells show 0.00, totals too."""
    assert catalog.get("geohazard").fields["threat_property_wan"].decimals == 2
    ws = book_a["地质灾害隐患点"]
    header, body, _ = _table(ws)
    col = header.index("威胁财产(万元)") + 1
    assert {ws.cell(row=r, column=col).number_format for r in range(4, 4 + len(body) + 1)} == {
        "0.00"
    }
    assert _col(header, body[0], "威胁财产(万元)") == 50.5  # the value itself is untouched
