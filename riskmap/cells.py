"""Text cells held as Arrow strings: Python's own strip and blank rules, vectorised. Pure.

The readers give every cell as text. Columns of 100,000 cells are handled here with Arrow
compute instead of a Python loop, with exactly the results of the per-cell code they
replace: `strip` removes the characters `str.strip` removes (`PY_WHITESPACE`, not Arrow's
own whitespace class), and `text_cells` turns blank cells into missing (None), as
``cell.strip() or None`` does.

A column is a `pyarrow` string array (or chunked array); a column that could not be held as
Arrow text (never seen in practice) is a numpy object array of ``str`` and takes the
per-cell path.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from collections.abc import Sequence

PY_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
"""Every character for which `str.isspace` is True, i.e. what `str.strip()` removes."""

STR_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)
"""pandas' default text dtype (``str``): what a frame built from text cells infers."""

Column = pa.Array | pa.ChunkedArray | np.ndarray


def text_column(values: Sequence[str]) -> Column:
    """Hold a list of text cells as an Arrow string array (object array if Arrow refuses)."""
    try:
        return pa.array(values, type=pa.string())
    except (pa.ArrowException, UnicodeEncodeError):  # lone surrogates: keep Python strings
        return np.asarray(values, dtype=object)


def strip(column: Column) -> Column:
    """`str.strip` of every cell (missing cells stay missing)."""
    if isinstance(column, np.ndarray):
        return np.array([v.strip() if isinstance(v, str) else v for v in column], dtype=object)
    return pc.utf8_trim(column, characters=PY_WHITESPACE)


def filled(column: Column) -> np.ndarray:
    """Boolean mask: True where the cell is not blank after stripping."""
    if isinstance(column, np.ndarray):
        return np.array([isinstance(v, str) and bool(v.strip()) for v in column], dtype=bool)
    lengths = pc.utf8_length(strip(column))
    return pc.fill_null(pc.greater(lengths, 0), fill_value=False).to_numpy(zero_copy_only=False)


def text_cells(column: Column) -> Column:
    """Cells stripped, blank → missing (``cell.strip() or None``)."""
    if isinstance(column, np.ndarray):
        return np.array(
            [(v.strip() or None) if isinstance(v, str) else None for v in column], dtype=object
        )
    stripped = strip(column)
    return pc.if_else(pc.equal(stripped, ""), pa.scalar(None, pa.string()), stripped)


def to_object(column: Column) -> np.ndarray:
    """Numpy object array of ``str``, missing → None."""
    if isinstance(column, np.ndarray):
        return column
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)


def to_str_series(column: Column) -> pd.Series | None:
    """
    Return the cells as a pandas ``str`` column (Arrow, missing = NaN) without Python objects.

    This is what ``pd.DataFrame`` infers from `to_object` when at least one cell is present;
    None when that is not the case (no present cell, or not an Arrow column): the caller
    then hands the object array to pandas as before.
    """
    if isinstance(column, np.ndarray) or column.null_count == len(column):
        return None
    return column.to_pandas(types_mapper={pa.string(): STR_DTYPE}.get)


_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
"""A number written with ``,`` thousands separators (``1,200``, ``12,345.5``): groups of 3."""


def number_text(value: str | None, *, thousands: bool = True) -> str | None:
    """
    Return a number cell's text as Python and pandas parse it (one cell).

    NFKC first (Unicode normalisation form KC, UAX #15): full-width digits, signs and
    points (``１２``, ``１２．５``, ``－３``) become ASCII, so a value present in the file is
    parsed instead of silently becoming missing. Then, when `thousands` is True, ``,``
    thousands separators are removed if and only if the whole cell is a correctly grouped
    number (``1,200`` → ``1200``; ``1,2`` and ``12,5`` are left as they are and fail as
    numbers). Callers pass ``thousands=False`` for ``;``-separated files, where ``,`` is a
    decimal comma. Never used on coordinates (their own parser reads decimal commas).
    """
    if value is None:
        return None
    text = value if value.isascii() else unicodedata.normalize("NFKC", value)
    text = text.strip()
    if thousands and "," in text and _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    return text


def number_cells(values: np.ndarray, *, thousands: bool = True) -> np.ndarray:
    """`number_text` of every cell of an object array (shape kept), once per distinct text."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:-1] = [number_text(str(v), thousands=thousands) for v in uniques]
    mapped[-1] = None
    return mapped[codes]
