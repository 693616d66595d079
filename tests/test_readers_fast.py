"""The Arrow CSV path of `read_table` gives exactly what Python's `csv` module gives."""

from __future__ import annotations

import csv
import io
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmap import cells as tc
from riskmap import readers
from riskmap.errors import ImportFileError
from riskmap.schema import _text_column

FUZZ = settings()  # examples and deadline: the profile (tests/conftest.py)
PIECES = ["a", "1", "108.66", " ", "\u3000", ",", ";", "\t", '"', '""', "\n", "\r", "\r\n"]
PIECES += ["\x85", "\u2028", "\x0b", "经度", "纬度", "é"]


def _slow(text: str) -> object:
    """`read_table` with the Arrow path switched off: the csv module reads every file."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(readers, "_columns_from_text", lambda *_: None)
        return _read(text)


def _read(text: str) -> object:
    try:
        table = readers.read_table(text.encode("utf-8"), "t.csv")
    except ImportFileError as exc:
        return str(exc)
    return (table.frame, table.rows, table.header_row, table.delimiter, table.notes)


def _same(fast: object, slow: object) -> None:
    if isinstance(fast, str) or isinstance(slow, str):
        assert fast == slow
        return
    pd.testing.assert_frame_equal(fast[0], slow[0])
    assert fast[1:] == slow[1:]


def test_python_whitespace_is_what_str_strip_removes():
    every = "".join(ch for ch in map(chr, range(sys.maxunicode + 1)) if ch.isspace())
    assert every == tc.PY_WHITESPACE


def test_strip_and_blank_match_python():
    values = [" a ", "\u3000b\x85", "", " ", "\x1c", "\u200b", "c\u2028", "x y"]
    got = tc.to_object(tc.text_cells(pa.array(values)))
    assert got.tolist() == [v.strip() or None for v in values]
    assert tc.filled(pa.array(values)).tolist() == [bool(v.strip()) for v in values]


def test_text_column_of_arrow_strings_matches_object_path():
    values = [" a ", None, "\u3000", "b\x85", "001"]
    arrow = pd.Series(values, dtype=tc.STR_DTYPE)
    expect = _text_column(pd.Series(values, dtype=object))
    assert _text_column(arrow).tolist() == expect.tolist() == ["a", None, None, "b", "001"]


@pytest.mark.parametrize(
    "text",
    [
        "名称,经度,纬度\n甲,108.66,31.9\n乙,108.7,31.8\n",
        '名称,备注\n"甲,乙","他说""好"""\n"多\n行",x\n',
        "名称,备注\n甲,x\n\n乙,y\n",  # a blank line: csv module path
        "名称,备注\n甲,x,多余\n乙\n",  # ragged rows: csv module path
        '名称,备注\n"甲"尾,a"b"\n"未闭合,x\n',  # odd quoting
        "标题\n\n名称,经度\n甲,1\n",
        "名称\n甲\n\n乙\n",
        "名称;经度\n甲;108,66\n",
    ],
)
def test_fast_and_csv_module_agree(text):
    _same(_read(text), _slow(text))


def test_field_size_limit_still_raises_the_csv_error():
    # below the 50 lines the delimiter sniffer reads (which raises a bare csv.Error itself)
    text = "名称,备注\n" + "甲,1\n" * 60 + "乙," + "x" * (csv.field_size_limit() + 1) + "\n"
    with pytest.raises(ImportFileError, match=r"第 62 行.*个字符的上限"):
        readers.read_table(text.encode(), "t.csv")


def test_frame_is_object_text():
    table = readers.read_table("名称,编号\n甲,001\n".encode(), "t.csv")
    assert table.frame.dtypes.tolist() == [np.dtype(object)] * 2
    assert table.frame.iloc[0].tolist() == ["甲", "001"]


@FUZZ
@given(
    pieces=st.lists(st.sampled_from(PIECES), max_size=60),
    regular=st.lists(
        st.lists(
            st.sampled_from(["", " x ", "1", '"a,b"', '"q""q"', '"l\nb"', "经度"]),
            min_size=3,
            max_size=3,
        ),
        min_size=1,
        max_size=12,
    ),
    use_regular=st.booleans(),
)
def test_fuzz_fast_path_equals_csv_module(pieces, regular, use_regular):
    text = "\n".join(",".join(r) for r in regular) if use_regular else "".join(pieces)
    _same(_read(text), _slow(text))
    assert csv.reader(io.StringIO(text, newline=""))  # the reference reader accepts str
