"""Every township's list in one ZIP, plus the county overview. Pure."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from dataclasses import replace
from typing import TYPE_CHECKING

import pandas as pd

from riskmap.aggregate import summarize_townships
from riskmap.errors import SchemaError
from riskmap.exporters.formats import FORMATS, township_export
from riskmap.exporters.listing import (
    data_as_of,
    listed_layers,
    selection_note,
)
from riskmap.exporters.summary import summary_xlsx
from riskmap.layers import LayerData
from riskmap.settings import COUNTY_NAME

if TYPE_CHECKING:
    from collections.abc import Mapping

    from riskmap.filters import FeatureFilter


_FILE_BAD = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def _file_part(text: str) -> str:
    return _FILE_BAD.sub("_", str(text)).strip() or "_"


def township_file_name(code: str, name: str, fmt: str) -> str:
    """``"500229001_葛城街道.xlsx"``: 9-digit code, underscore, name, extension."""
    return f"{_file_part(code)}_{_file_part(name)}.{fmt}"


def zip_file_name(county_name: str, fmt: str, *, public: bool = False) -> str:
    """``"城口县_风险点位清单_xlsx.zip"`` (``_公开版`` before the format for a public release)."""
    suffix = "_公开版" if public else ""
    return f"{_file_part(county_name)}_风险点位清单{suffix}_{fmt}.zip"


def all_townships_zip(
    layers: Mapping[str, LayerData],
    township_codes: pd.DataFrame,
    *,
    fmt: str = "xlsx",
    include_cleared: bool = False,
    approximate: bool = True,
    as_of: dt.date | None = None,
    generated: dt.date | None = None,
    county_name: str = COUNTY_NAME,
    selection: FeatureFilter | None = None,
) -> bytes:
    """
    Every township's list in one ZIP, plus the county overview.

    Why this form: a county office (应急局/规自局) sends each township government its own
    list to act on (核查, 巡查, 转移): one file per township, named by code and name, can be
    forwarded as is, and a township never sees (or mis-reads) another's points. The county
    keeps the overview ``<county>_汇总.xlsx`` (one row per township, 全县合计) to follow up.
    One workbook with 25 sheets would have to be split by hand before sending.

    Members (UTF-8 names, ZIP flag bit 11): ``<code>_<name>.<fmt>`` for every row of
    `township_codes`, in its order (a township with no features still gets its file: an
    empty list is an answer), then ``<county>_汇总.xlsx``.

    Parameters
    ----------
    layers
        Prepared layers by id.
    township_codes
        The code table: columns ``adcode`` (9-digit text), ``name``, ``level``.
    fmt
        ``"xlsx"``, ``"csv"`` or ``"geojson"`` (`FORMATS`) for the township files.
    include_cleared, approximate, as_of, generated, county_name, selection
        As in `xlsx_township`; the overview counts the selected features too.

    Returns
    -------
    data
        The ZIP file (deflated; member times = `generated`, so equal inputs give equal bytes
        apart from the XLSX internals).

    Raises
    ------
    ValueError
        When `fmt` is not one of `FORMATS` (`riskmap.exporters.formats.EXPORT_FORMATS`).
    SchemaError
        When `township_codes` lacks ``adcode``, ``name`` or ``level``.
    TownshipNotFoundError
        When a code is not 9 digits.
    """
    if fmt not in FORMATS:
        msg = f"fmt must be one of {FORMATS}, got {fmt!r}"
        raise ValueError(msg)
    if missing := sorted({"adcode", "name", "level"} - set(township_codes.columns)):
        msg = f"township_codes lacks columns {missing} (expected adcode, name, level)"
        raise SchemaError(msg)
    generated = generated or dt.date.today()
    as_of = as_of or data_as_of(layers)
    stamp = (generated.year, generated.month, generated.day, 0, 0, 0)
    common = {"include_cleared": include_cleared, "selection": selection}
    doc = {
        "approximate": approximate,
        "as_of": as_of,
        "generated": generated,
        "county_name": county_name,
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for code, name in zip(township_codes["adcode"], township_codes["name"], strict=True):
            data = township_export(layers, str(code), str(name), fmt=fmt, **common, **doc)
            info = zipfile.ZipInfo(township_file_name(str(code), str(name), fmt), stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
        selected = (
            layers if selection is None else replace(selection, township_code=None).apply(layers)
        )
        shown = listed_layers(selected, include_cleared=include_cleared)
        df_summary = summarize_townships(shown, None, township_codes)  # type: ignore[arg-type]
        overview = summary_xlsx(
            df_summary,
            shown,
            include_cleared=include_cleared,
            selection_text=selection_note(layers, selection),
            **doc,
        )
        info = zipfile.ZipInfo(f"{_file_part(county_name)}_汇总.xlsx", stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, overview)
    return buf.getvalue()
