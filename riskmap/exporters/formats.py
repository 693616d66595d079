"""The export formats registry: one declaration of every format a township list is written in.

The library (`riskmap.exporters.all_townships_zip`), the CLI (``riskmap export --format``) and
the app's download buttons (`riskmap.ui.downloads`) all read `EXPORT_FORMATS`: a new format is
one writer function plus one entry here, and shows up in all three.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypedDict, Unpack

from riskmap.errors import RiskmapError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from riskmap.filters import FeatureFilter
    from riskmap.layers import LayerData


class ListOptions(TypedDict, total=False):
    """Keyword options every township writer takes (see `riskmap.exporters.xlsx_township`)."""

    include_cleared: bool
    approximate: bool
    as_of: dt.date | None
    generated: dt.date | None
    county_name: str
    selection: FeatureFilter | None


class TownshipWriter(Protocol):
    """Signature every registered writer has: layers and a township in, file bytes out."""

    def __call__(  # noqa: D102 - documented by the protocol
        self,
        layers: Mapping[str, LayerData],
        township_code: str,
        township_name: str,
        **options: Unpack[ListOptions],
    ) -> bytes: ...


# The writers are imported when a list is written, not when the registry is read: the CLI
# reads the format ids at start-up (``riskmap --help``), and openpyxl + pandas cost ~0.5 s.


def _xlsx_writer(
    layers: Mapping[str, LayerData],
    township_code: str,
    township_name: str,
    **options: Unpack[ListOptions],
) -> bytes:
    """`riskmap.exporters.xlsx.xlsx_township`, imported on first use."""
    from riskmap.exporters.xlsx import xlsx_township  # noqa: PLC0415 - start-up time

    return xlsx_township(layers, township_code, township_name, **options)


def _geojson_writer(
    layers: Mapping[str, LayerData],
    township_code: str,
    township_name: str,
    **options: Unpack[ListOptions],
) -> bytes:
    """`riskmap.exporters.geojson.geojson_township`, imported on first use."""
    from riskmap.exporters.geojson import geojson_township  # noqa: PLC0415 - start-up time

    return geojson_township(layers, township_code, township_name, **options)


def _csv_writer(
    layers: Mapping[str, LayerData],
    township_code: str,
    township_name: str,
    **options: Unpack[ListOptions],
) -> bytes:
    """`csv_township` under the common signature: a data table has no title or note rows."""
    from riskmap.exporters.csvtable import csv_township  # noqa: PLC0415 - start-up time

    return csv_township(
        layers,
        township_code,
        township_name,
        include_cleared=options.get("include_cleared", False),
        selection=options.get("selection"),
    )


@dataclass(frozen=True)
class ExportFormat:
    """
    One export format of the township list.

    Attributes
    ----------
    id
        Value of ``--format`` and of `all_townships_zip`'s `fmt`, e.g. ``"xlsx"``.
    label
        Chinese label of the app's download button, e.g. ``"下载 Excel 清单"``.
    extension
        File name extension without the dot; equals `id` for every format today.
    media_type
        IANA media type of the file (the download's ``Content-Type``).
    writer
        The function writing one township's list (`TownshipWriter`).
    """

    id: str
    label: str
    extension: str
    media_type: str
    writer: TownshipWriter


XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
"""IANA media type of ``.xlsx`` (ECMA-376 / ISO/IEC 29500)."""
ZIP_MEDIA_TYPE = "application/zip"
"""IANA media type of the all-townships archive."""

EXPORT_FORMATS: dict[str, ExportFormat] = {
    f.id: f
    for f in (
        ExportFormat("xlsx", "下载 Excel 清单", "xlsx", XLSX_MEDIA_TYPE, _xlsx_writer),
        ExportFormat("csv", "下载 CSV", "csv", "text/csv", _csv_writer),  # RFC 4180
        # RFC 7946 §12 registers application/geo+json.
        ExportFormat("geojson", "下载 GeoJSON", "geojson", "application/geo+json", _geojson_writer),
    )
}
"""Every export format by id, in the order the app shows its buttons."""
FORMATS = tuple(EXPORT_FORMATS)
"""Ids of `EXPORT_FORMATS`: ``("xlsx", "csv", "geojson")``."""


def export_format(fmt: str) -> ExportFormat:
    """
    Look up a registered export format.

    Raises
    ------
    RiskmapError
        When `fmt` is not registered (the message lists the ones that are).
    """
    try:
        return EXPORT_FORMATS[fmt]
    except KeyError:
        msg = f"不支持的导出格式 {fmt!r}（可选: {', '.join(FORMATS)}）"
        raise RiskmapError(msg) from None


def township_export(
    layers: Mapping[str, LayerData],
    township_code: str,
    township_name: str,
    *,
    fmt: str,
    **options: Unpack[ListOptions],
) -> bytes:
    """
    Write one township's list in the registered format `fmt`.

    Parameters
    ----------
    layers, township_code, township_name
        As in `riskmap.exporters.xlsx_township`.
    fmt
        An id of `EXPORT_FORMATS`.
    **options
        `ListOptions`, as in `riskmap.exporters.xlsx_township` (a format without notes
        ignores the document options).

    Returns
    -------
    data
        The file's bytes.

    Raises
    ------
    RiskmapError
        When `fmt` is not registered.
    TownshipNotFoundError
        When `township_code` is not 9 digits.
    """
    return export_format(fmt).writer(layers, township_code, township_name, **options)
