"""Cell values of the lists: formula neutralising, numbers, text, display width. Pure."""

from __future__ import annotations

import math
import unicodedata
from typing import Any

import numpy as np
import pandas as pd

from riskmap.schema import is_blank

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
_LEADING_SPACE = " \u3000"


def neutralise_cell(value: Any) -> Any:  # noqa: ANN401 - any cell value passes through
    """
    Neutralise a spreadsheet formula in a text cell (OWASP CSV-injection guidance).

    Parameters
    ----------
    value
        A cell value of any type.

    Returns
    -------
    value
        ``"'" + value`` when `value` is a ``str`` whose first character after leading
        (half- or full-width) spaces is ``= + - @``, a tab, a carriage return, or one of the
        full-width ``＝ ＋ － ＠``; otherwise `value` unchanged (numbers, None, other text).
        Idempotent: a neutralised text starts with ``'`` and is returned as is.
    """
    if isinstance(value, str) and value.lstrip(_LEADING_SPACE).startswith(_FORMULA_START):
        return "'" + value
    return value


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _number(value: Any) -> int | float | None:  # noqa: ANN401 - numpy/pandas scalars
    """Return a finite Python number, or None for NA/NaN/inf."""
    if is_blank(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else None


def _number_text(value: Any) -> str:  # noqa: ANN401 - numpy/pandas scalars
    number = _number(value)
    if number is None:
        return ""
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e15:  # noqa: PLR2004
        return str(int(number))
    return repr(number) if isinstance(number, float) else str(number)


def _text(value: Any) -> str:  # noqa: ANN401 - any cell value
    return "" if is_blank(value) else str(value)


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
