"""Issue 10 round 3: what a fresh tester found in survey import (tests/data/fresh)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskmap import io
from riskmap.cells import number_text
from riskmap.importing import plan_import
from tests.conftest import DATA

FRESH = DATA / "fresh"


@pytest.fixture
def geo(catalog):
    return catalog.get("geohazard")


@pytest.fixture
def plan_fresh(geo, gdf_townships, gdf_county):
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
