"""Plain-text tables for the terminal, aligned for Chinese (CJK) text.

``DataFrame.to_string`` pads by character count, so a column under 葛城街道 (4 characters,
8 terminal cells) drifts. Here each cell is padded by its display width from `wcwidth`
(Unicode East Asian Width, UAX #11: CJK ideographs and full-width punctuation take two cells).
Numbers are right-aligned, text left-aligned; integers print without ``.0`` and blanks
(None, NaN, NA) print as empty cells.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real

import pandas as pd
from wcwidth import wcswidth


def text_width(text: str) -> int:
    """
    Terminal display width of `text` in cells (CJK = 2); non-printable characters count 1.

    Parameters
    ----------
    text
        One line of text.

    Returns
    -------
    width
        Number of terminal cells.
    """
    if text.isascii() and text.isprintable():
        return len(text)  # one cell per printable ASCII character: no table lookup
    return _wide_text_width(text)


@functools.lru_cache(maxsize=4096)
def _wide_text_width(text: str) -> int:
    """`text_width` of text with non-ASCII characters; cached (reasons, labels repeat)."""
    width = wcswidth(text)
    return width if width >= 0 else len(text)


def _blank(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def format_cell(value: object, *, decimals: int | None = None) -> str:
    """
    Text of one table cell.

    Parameters
    ----------
    value
        Any scalar.
    decimals
        Digits after the point for a number: 0 = integer; None = integers as integers
        (``26.0`` → ``26``) and other floats at up to 2 decimals, trailing zeros dropped.

    Returns
    -------
    text
        ``""`` for a blank, ``"是"``/``"否"`` for booleans, else the formatted value.
    """
    if _blank(value):
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, Integral):
        return str(int(value)) if not decimals else f"{int(value):.{decimals}f}"
    if isinstance(value, Real):
        number = float(value)
        if decimals is not None:
            return f"{number:.{decimals}f}"
        if number.is_integer():
            return str(int(number))
        return f"{number:.2f}".rstrip("0").rstrip(".")
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def format_table(
    df: pd.DataFrame,
    *,
    decimals: Mapping[str, int] | None = None,
    gap: int = 2,
) -> str:
    """
    Render `df` as an aligned text table (header line + one line per row, no index).

    Parameters
    ----------
    df
        Any frame; column names are the headers.
    decimals
        Per column, digits after the point (0 = integer), e.g. from the catalog's field
        types. Columns not named use `format_cell`'s default: integers as integers, other
        numbers at up to 2 decimals, and then the column is padded to a common number of
        decimals so the points line up.
    gap
        Spaces between columns.

    Returns
    -------
    text
        Lines joined by newlines; each column as wide (in terminal cells) as its widest cell.
    """
    decimals = dict(decimals or {})
    padded: list[list[str]] = []
    for i, col in enumerate(df.columns):
        values = df.iloc[:, i].tolist()  # by position: headers may repeat (已销号 per layer)
        cells = _text_cells(values)
        is_num = False
        if cells is None:  # not only text and blanks: numbers, booleans, dates …
            numeric = [v for v in values if not _blank(v)]
            is_num = bool(numeric) and all(_is_number(v) for v in numeric)
            places = decimals.get(str(col))
            if is_num and places is None:
                texts = [format_cell(v) for v in numeric]
                places = max((len(t.partition(".")[2]) for t in texts), default=0)
            cells = [format_cell(v, decimals=places if is_num else None) for v in values]
        cells = [str(col), *cells]
        widths = [text_width(c) for c in cells]
        width = max(widths)
        if is_num:
            padded.append([" " * (width - w) + c for c, w in zip(cells, widths, strict=True)])
        else:
            padded.append([c + " " * (width - w) for c, w in zip(cells, widths, strict=True)])
    if not padded:  # no columns: an empty line per row and for the header
        return "\n".join("" for _ in range(len(df) + 1))
    sep = " " * gap
    return "\n".join(sep.join(parts).rstrip() for parts in zip(*padded, strict=True))


def _text_cells(values: list[object]) -> list[str] | None:
    """`format_cell` of a column holding only text and blanks (None/NaN/NA); else None."""
    out = []
    for v in values:
        if type(v) is str:
            out.append(v)
        elif _blank(v):
            out.append("")
        else:
            return None
    return out


def decimals_from_types(columns: Sequence[str], types: Mapping[str, str]) -> dict[str, int]:
    """
    Integer columns by declared field type: ``{column: 0}`` for each ``"int"`` column.

    Parameters
    ----------
    columns
        Column names of the table.
    types
        Declared type per column (`riskmap.catalog.FieldSpec.type`: ``"int"``, ``"float"``...).

    Returns
    -------
    decimals
        Mapping for `format_table`'s `decimals`.
    """
    return {c: 0 for c in columns if types.get(c) == "int"}
