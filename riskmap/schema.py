"""Column and geometry contracts of layers: coercion to declared types and validation.

`coerce_layer` gives every declared field its pandas dtype; `layer_problems` lists every
breach of the declaration at once; `validate_layer` raises them all in one `SchemaError`.
Pure functions: GeoDataFrames in, new GeoDataFrames or lists out.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

import geopandas as gpd

from riskmap import cells as tc
from riskmap.errors import CRSError, SchemaError
from riskmap.settings import STORAGE_CRS

if TYPE_CHECKING:
    from collections.abc import Callable

    from riskmap.catalog import FieldSpec, LayerSpec

_TRUE = {"true", "1", "是", "有", "y", "yes", "t", "√", "✓"}
_FALSE = {"false", "0", "否", "无", "n", "no", "f", "×", "✗"}
_GEOM_OK = {"Point": {"Point"}, "Polygon": {"Polygon", "MultiPolygon"}}


@dataclass(frozen=True)
class Problem:
    """
    One breach of a layer declaration.

    Attributes
    ----------
    feature
        The feature's key value (``uid``) or ``"#<row>"`` when it has none.
    field
        Field key (or ``"geometry"``).
    value
        The offending value, as text.
    expected
        What was expected, in Chinese (with the English term where useful).
    """

    feature: str
    field: str
    value: str
    expected: str

    def __str__(self) -> str:
        """Return ``"<feature> <field>=<value>: expected ..."``."""
        return f"{self.feature} {self.field}={self.value!s}: {self.expected}"


def is_blank(value: object) -> bool:
    """Return True for None, NaN, pandas NA and strings that are empty after stripping."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def blank_mask(values: pd.Series) -> pd.Series:
    """
    Vectorised `is_blank`: a boolean Series, True where a cell is missing or only spaces.

    Works on every dtype (object, Arrow-backed ``str``, numbers, booleans); unlike
    ``values.map(is_blank)``, the result is always ``bool`` (``map`` on an Arrow string column
    would keep the string dtype).
    """
    text = values.astype("string")
    return (values.isna() | text.str.strip().eq("").fillna(value=True)).astype(bool)


def parse_bool(value: object) -> bool | None:
    """
    Parse a boolean cell: true/false, 1/0, 是/否, 有/无, yes/no, √/×.

    Returns
    -------
    value
        True, False, or None for a blank cell.

    Raises
    ------
    ValueError
        When the text is not a recognised boolean spelling.
    """
    if is_blank(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    msg = f"not a boolean: {value!r}"
    raise ValueError(msg)


_CN_DIGITS = str.maketrans("〇零○O一二三四五六七八九", "0000123456789")
_CN_DATE = re.compile(
    r"([〇零○O一二三四五六七八九]{4})年([一二三四五六七八九十]{1,3})月(?:([一二三四五六七八九十]{1,3})日)?"
)
EXCEL_EPOCH = dt.date(1899, 12, 30)
"""Day 0 of Excel's 1900 date system (serial 1 = 1900-01-01; Excel counts a 1900-02-29)."""
SERIAL_RANGE = (18264, 73050)
"""Excel serials read as dates: 1950-01-01 … 2099-12-31 (a survey date outside is a typo)."""


def _cn_number(text: str) -> str:
    """``五`` → ``5``, ``十`` → ``10``, ``十二`` → ``12``, ``二十一`` → ``21`` (1–99)."""
    if "十" not in text:
        return text.translate(_CN_DIGITS)
    tens, _, ones = text.partition("十")
    return str(int(tens.translate(_CN_DIGITS) or 1) * 10 + int(ones.translate(_CN_DIGITS) or 0))


def excel_serial_date(value: object) -> str | None:
    """
    Read a whole number in `SERIAL_RANGE` as an Excel date serial (ISO text), else None.

    A date typed in a General-format cell is stored as its serial (45415 = 2024-05-03);
    serials count days from 1899-12-30 for every date after 1900-02-28 (ECMA-376 Part 1,
    §18.17.4.1, 1900 date system).
    """
    if isinstance(value, bool):
        return None
    text = str(value).strip()
    if not re.fullmatch(r"\d{5}(?:\.0+)?", text):
        return None
    serial = int(float(text))
    if not SERIAL_RANGE[0] <= serial <= SERIAL_RANGE[1]:
        return None
    return (EXCEL_EPOCH + dt.timedelta(days=serial)).isoformat()


def parse_date(value: object) -> str | None:
    """
    Parse a date cell to ISO 8601 ``yyyy-mm-dd`` text.

    Accepts ISO dates and datetimes, ``yyyy/mm/dd``, ``yyyy.mm.dd``, ``yyyy年m月d日``,
    Chinese-numeral dates (``二〇二四年五月三日``), full-width digits (NFKC), Excel date
    serials in `SERIAL_RANGE` (`excel_serial_date`: a date in a General cell) and
    date/datetime objects (as openpyxl returns them).

    Raises
    ------
    ValueError
        When the text is not a date.
    """
    if is_blank(value):
        return None
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if (serial := excel_serial_date(text)) is not None:
        return serial
    if m := _CN_DATE.fullmatch(text):
        year, month, day = m.group(1).translate(_CN_DIGITS), _cn_number(m.group(2)), m.group(3)
        text = f"{year}-{month}" + (f"-{_cn_number(day)}" if day else "")
    for old, new in (("年", "-"), ("月", "-"), ("日", ""), ("/", "-"), (".", "-")):
        text = text.replace(old, new)
    text = text.split("T")[0].split(" ")[0]
    try:
        return dt.date.fromisoformat("-".join(p.zfill(2) for p in text.split("-"))).isoformat()
    except ValueError:
        msg = f"not a date (expected yyyy-mm-dd): {value!r}"
        raise ValueError(msg) from None


def _as_text(value: object) -> str | None:
    if is_blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        # A code that came through a float column: 500229001000.0 -> "500229001000".
        return str(int(value))
    return str(value).strip()


def _per_unique(series: pd.Series, func: Callable[[object], object]) -> np.ndarray:
    """
    Return ``[func(v) for v in series]`` as an object array, calling `func` once per value.

    Only for homogeneous columns (all text, or one numpy dtype), where equal values are the
    same value: in a mixed object column ``True == 1 == 1.0`` would merge cells whose
    results differ. Missing cells (None/NaN/NA) give ``func(None)``.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:-1] = [func(v) for v in uniques]
    mapped[-1] = func(None)
    return mapped[codes]  # code -1 picks the last slot: func(None)


def _homogeneous(series: pd.Series) -> str | None:
    """``"text"`` (every non-missing cell a str), ``"typed"`` (a non-object dtype) or None."""
    if series.dtype != object and not isinstance(series.dtype, pd.StringDtype):
        return "typed"
    if pd.api.types.infer_dtype(series, skipna=True) in {"string", "empty"}:
        return "text"
    return None


def _text_column(series: pd.Series) -> pa.Array:
    """`_as_text` of every cell of a text column, vectorised, as an Arrow string array."""
    if isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow":
        # Arrow text (pandas' default str dtype): strip in Arrow, no Python object per cell;
        # a column with nothing to strip and no blank cell is shared, not copied.
        column = pa.array(series.array)
        stripped = tc.strip(column)
        lengths = pc.binary_length(stripped)
        if pc.all(pc.equal(lengths, pc.binary_length(column))).as_py() is not False and not (
            pc.any(pc.equal(lengths, 0)).as_py()
        ):
            return column  # all(...) is None when every cell is missing
        return pc.if_else(pc.equal(lengths, 0), pa.scalar(None, pa.string()), stripped)
    cells = series.to_numpy(dtype=object, na_value=None)
    return tc.text_cells(pa.array(cells, type=pa.string(), from_pandas=True))


def _text_series(values: pa.Array | np.ndarray | list, index: pd.Index) -> pd.Series:
    """
    Text cells (str or None) as a pandas ``str`` column backed by Arrow (missing = NaN).

    One Arrow string buffer instead of a Python ``str`` object per cell: a million short
    texts take ~20 MB instead of ~80 MB. Cells are already stripped, blank → missing.
    """
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(values, type=pa.string(), from_pandas=True)
    return pd.Series(pd.array(values, dtype=tc.STR_DTYPE), index=index, copy=False)


def _per_unique_text(series: pd.Series, func: Callable[[object], str | None]) -> pa.Array:
    """
    `_per_unique` for a function returning text: an Arrow ``take`` of the distinct results.

    When `func` returns every distinct text of an Arrow-backed column unchanged (dates
    already in ISO form), the column itself is returned: shared, not copied.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = [func(v) for v in uniques]
    if (
        isinstance(series.dtype, pd.StringDtype)
        and series.dtype.storage == "pyarrow"
        and func(None) is None
        and all(m == u for m, u in zip(mapped, uniques, strict=True))
    ):
        return pa.array(series.array)
    mapped.append(func(None))
    codes[codes < 0] = len(mapped) - 1
    return pa.array(mapped, type=pa.string()).take(pa.array(codes))


def _numbers_from_text(series: pd.Series) -> pd.Series:
    """
    ``pd.to_numeric(number_cells(cells), errors="coerce")`` of a text column, per distinct text.

    Each distinct text is normalised (`riskmap.cells.number_text`, no thousands separators)
    and parsed once, then spread back; the dtype is what ``pd.to_numeric`` gives the whole
    column (integers stay int64 when no cell is missing, float64 with NaN otherwise).
    """
    codes, uniques = pd.factorize(series.to_numpy(dtype=object, na_value=None))
    texts = [tc.number_text(str(u), thousands=False) for u in uniques]
    parsed = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce")
    if (codes < 0).any() or parsed.dtype == object:
        spread = np.append(parsed.to_numpy(dtype=float, na_value=np.nan), np.nan)[codes]
    else:
        spread = parsed.to_numpy()[codes]
    return pd.Series(spread, index=series.index)


def _coerce_series(series: pd.Series, spec: FieldSpec) -> pd.Series:
    """
    Cast one column to the declared type; cells that cannot be cast become missing.

    Same result as applying `parse_bool` / `parse_date` / `_as_text` cell by cell, but text
    columns are stripped in one vectorised pass and repeated values (statuses, dates,
    booleans) are parsed once per distinct value; mixed-type object columns (survey files)
    still go cell by cell.
    """
    if spec.type in {"int", "float"}:
        if _homogeneous(series) == "text":  # ``１２`` is 12, not missing (NFKC)
            numeric = _numbers_from_text(series)
        else:
            numeric = pd.to_numeric(series, errors="coerce")
        if spec.type == "int":
            whole = numeric.where(numeric.isna() | (numeric == np.floor(numeric)))
            return whole.astype("Int64")
        return numeric.astype("float64")
    kind = _homogeneous(series)
    if spec.type == "bool":
        if series.dtype == bool:
            return series.astype("boolean")

        def safe_bool(v: object) -> bool | None:
            try:
                return parse_bool(v)
            except ValueError:
                return None

        values = _per_unique(series, safe_bool) if kind else [safe_bool(v) for v in series]
        return pd.Series(values, index=series.index, dtype="boolean")
    if spec.type in {"date", "datetime"}:

        def safe_date(v: object) -> str | None:
            try:
                return parse_date(v)
            except ValueError:
                return None

        values = _per_unique_text(series, safe_date) if kind else [safe_date(v) for v in series]
        return _text_series(values, series.index)
    if kind == "text":
        values = _text_column(series)
    elif kind == "typed":
        values = _per_unique_text(series, _as_text)
    else:
        values = [_as_text(v) for v in series]
    return _text_series(values, series.index)


def coerce_layer(gdf: gpd.GeoDataFrame, spec: LayerSpec) -> gpd.GeoDataFrame:
    """
    Give every declared field its dtype; add declared fields that are missing.

    Types: ``str``/``date`` → pandas ``str`` backed by Arrow (`riskmap.cells.STR_DTYPE`:
    stripped text, blank → missing NaN; dates as ISO text), ``int`` → ``Int64``,
    ``float`` → float64, ``bool`` → ``boolean``. Codes stay text: a float ``500229001000.0``
    becomes ``"500229001000"``. Undeclared columns are kept unchanged (extra properties).

    Parameters
    ----------
    gdf
        Features of one layer, any CRS.
    spec
        The layer's declaration.

    Returns
    -------
    gdf_coerced
        A new GeoDataFrame, same index, CRS and geometry; declared columns first.
    """
    # No deep copy: every declared column is replaced by a new one, undeclared columns and the
    # geometry are shared (pandas copy-on-write: writes to either frame copy first).
    geom_name = gdf.geometry.name
    columns: dict[str, Any] = {}
    for key, fspec in spec.fields.items():
        if key in gdf.columns:
            columns[key] = _coerce_series(gdf[key], fspec)
        else:
            columns[key] = _coerce_series(pd.Series([None] * len(gdf), index=gdf.index), fspec)
    for col in gdf.columns:
        if col not in spec.fields and col != geom_name:
            columns[col] = gdf[col]
    columns[geom_name] = gdf.geometry
    out = gpd.GeoDataFrame(columns, index=gdf.index, geometry=geom_name, crs=gdf.crs, copy=False)
    out.attrs = dict(gdf.attrs)
    return out


def _check_value(fspec: FieldSpec, value: object) -> str | None:
    """Return what was expected if `value` breaks `fspec`, else None. Blank is fine here."""
    if is_blank(value):
        return None
    if fspec.type in {"int", "float"}:
        try:
            number = (
                float(tc.number_text(str(value), thousands=False) or "")
                if not isinstance(value, (int, float))
                else float(value)
            )
        except ValueError:
            return "应为数字 (number)"
        if math.isnan(number) or math.isinf(number):
            return "应为有限数字 (finite number)"
        if fspec.type == "int" and not number.is_integer():
            return "应为整数 (integer)"
        if fspec.min is not None and number < fspec.min:
            return f"应 ≥ {fspec.min:g}{fspec.unit}"
        if fspec.max is not None and number > fspec.max:
            return f"应 ≤ {fspec.max:g}{fspec.unit}"
        return None
    if fspec.type == "bool":
        try:
            parse_bool(value)
        except ValueError:
            return "应为 是/否 (boolean)"
        return None
    if fspec.type in {"date", "datetime"}:
        try:
            parse_date(value)
        except ValueError:
            return "应为日期 yyyy-mm-dd (ISO 8601)"
        return None
    if fspec.values and str(value).strip() not in fspec.values:
        return f"应为以下之一: {'、'.join(fspec.values)}"
    return None


def field_problem(fspec: FieldSpec, value: object) -> str | None:
    """
    Check one cell against its field declaration.

    Returns
    -------
    expected
        Chinese description of what was expected (with type/range/allowed values), or None
        when the cell is fine. A blank required cell returns ``"必填 (required)"``.
    """
    if fspec.required and is_blank(value):
        return "必填 (required)"
    return _check_value(fspec, value)


def layer_problems(gdf: gpd.GeoDataFrame, spec: LayerSpec) -> list[Problem]:
    """
    List every breach of the layer declaration.

    Checks: CRS is EPSG:4326; geometry present and of the declared type, coordinates within
    lon [-180, 180], lat [-90, 90]; required fields present and non-blank (except on features
    marked ``incomplete``, 待补充: imported without them on purpose); types, ranges and
    allowed values; the key field unique.

    Parameters
    ----------
    gdf
        Features of one layer as read from its GeoJSON (before or after `coerce_layer`).
    spec
        The layer's declaration.

    Returns
    -------
    problems
        Empty when the layer is valid.
    """
    problems: list[Problem] = []
    keys = (
        gdf[spec.key] if spec.key in gdf.columns else pd.Series([None] * len(gdf), index=gdf.index)
    )
    labels = [(str(k) if not is_blank(k) else f"#{i + 1}") for i, k in enumerate(keys.tolist())]
    if gdf.crs is None or not gdf.crs.equals(STORAGE_CRS):
        problems.append(
            Problem("(layer)", "crs", str(gdf.crs), "应为 EPSG:4326 (WGS84 经纬度, RFC 7946)")
        )
    allowed = _GEOM_OK[spec.geometry]
    geom = gdf.geometry
    for label, g in zip(labels, geom, strict=True):
        if g is None or g.is_empty:
            problems.append(Problem(label, "geometry", "null", f"应有 {spec.geometry} 几何"))
        elif g.geom_type not in allowed:
            problems.append(Problem(label, "geometry", g.geom_type, f"应为 {spec.geometry}"))
        else:
            minx, miny, maxx, maxy = g.bounds
            if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):  # noqa: PLR2004
                problems.append(
                    Problem(label, "geometry", f"{g.bounds}", "经纬度超出范围 (lon/lat)")
                )
    # A point imported without a required attribute is marked incomplete (待补充, see
    # docs/import.md): its blank required cells are known, not a breach of the declaration.
    incomplete = (
        [isinstance(v, (bool, np.bool_)) and bool(v) for v in gdf["incomplete"].tolist()]
        if "incomplete" in gdf.columns
        else [False] * len(gdf)
    )
    for key, fspec in spec.fields.items():
        if key not in gdf.columns:
            if fspec.required and not all(incomplete):
                problems.append(Problem("(layer)", key, "", f"缺少必填字段 {fspec.label}"))
            continue
        for label, value, todo in zip(labels, gdf[key].tolist(), incomplete, strict=True):
            if todo and fspec.required and is_blank(value):
                continue
            if (expected := field_problem(fspec, value)) is not None:
                problems.append(Problem(label, key, _show(value), f"{fspec.label}{expected}"))
    dup = keys[keys.notna() & keys.duplicated(keep=False)]
    problems.extend(
        Problem(str(k), spec.key, str(k), f"{spec.label(spec.key)}重复 (must be unique)")
        for k in sorted(set(map(str, dup)))
    )
    return problems


def _show(value: Any) -> str:  # noqa: ANN401 - any cell value
    return "" if is_blank(value) else str(value)


def validate_layer(gdf: gpd.GeoDataFrame, spec: LayerSpec, *, source: str = "") -> gpd.GeoDataFrame:
    """
    Raise one `SchemaError` listing every breach, or return `gdf` unchanged.

    Parameters
    ----------
    gdf
        Features of one layer.
    spec
        The layer's declaration.
    source
        File name used in the message.

    Raises
    ------
    SchemaError
        With every problem: feature id, field, value and what was expected.
    """
    if problems := layer_problems(gdf, spec):
        where = f"{source}: " if source else ""
        shown = "; ".join(map(str, problems[:50]))
        more = f" … 共 {len(problems)} 处" if len(problems) > 50 else ""  # noqa: PLR2004
        msg = f"{where}图层 {spec.id}（{spec.name}）有 {len(problems)} 处问题: {shown}{more}"
        raise SchemaError(msg)
    return gdf


def require_crs(gdf: gpd.GeoDataFrame, name: str = "gdf") -> gpd.GeoDataFrame:
    """
    Return `gdf` if it has a CRS.

    Raises
    ------
    CRSError
        When ``gdf.crs`` is None; only importers may set a CRS, from the source's declaration.
    """
    if gdf.crs is None:
        msg = f"`{name}` has no CRS; declare it in the importer."
        raise CRSError(msg)
    return gdf
