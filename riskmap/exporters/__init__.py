"""Per-township risk lists (风险点位清单 / 一览表) as XLSX, CSV, GeoJSON and ZIP. Pure.

Every function here returns bytes, frames or dicts; writing files is `riskmap.io`'s job
(`riskmap.io.write_bytes_atomic` from the CLI; the app hands the bytes to a download button).

Spreadsheet safety (OWASP "CSV injection"): in XLSX every text cell is written as a string
cell (``data_type == "s"``, number format ``"@"``), never a formula, and in XLSX and CSV a text
that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (also after leading
spaces, and their full-width forms) gets a leading ``'`` (`neutralise_cell`). Numeric columns
(declared ``int``/``float``) are never touched: ``-3.5`` stays the number -3.5. Codes
(``001``, ``500229001000``) are text and stay text in every format. GeoJSON is data, not a
spreadsheet: its values are exported unchanged.

The list frames (`township_list_frames`) hold the raw values (not neutralised) so the app can
show them; the writers neutralise.

One module per concern (this package re-exports the public API, so
``from riskmap import exporters; exporters.xlsx_township(...)`` works as before):

* `listing` — the shared list builder: which features a township lists, typed columns
  (`list_frame`, `township_list_frames`), notes, subtotals;
* `values` — cell values: formula neutralising, numbers, text;
* `sheet` — openpyxl helpers (title and note rows, header, typed cells, print setup);
* `xlsx`, `csvtable`, `geojson` — one writer per format;
* `formats` — the registry of formats (id → writer, media type, extension, label) read by
  the CLI and the app;
* `public` — the public-release filter (公开版);
* `summary` — the county overview workbook (乡镇汇总表);
* `archive` — every township's list in one ZIP.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names for type checkers and IDEs; at run time `__getattr__` loads them
    from riskmap.exporters.archive import all_townships_zip, township_file_name, zip_file_name
    from riskmap.exporters.csvtable import csv_township
    from riskmap.exporters.formats import (
        EXPORT_FORMATS,
        FORMATS,
        XLSX_MEDIA_TYPE,
        ZIP_MEDIA_TYPE,
        ExportFormat,
        ListOptions,
        export_format,
        township_export,
    )
    from riskmap.exporters.geojson import geojson_township
    from riskmap.exporters.listing import (
        AREA_HEADER,
        LAT_HEADER,
        LAYER_HEADER,
        LON_HEADER,
        NOTE_APPROXIMATE,
        NOTE_DEMO,
        NOTE_NO_CLEARED,
        NOTE_ZONES,
        SEQ_HEADER,
        SHARE_HEADER,
        data_as_of,
        list_frame,
        list_keys,
        listed_features,
        listed_layers,
        township_list_frames,
        typed_table,
    )
    from riskmap.exporters.public import (
        METRES_PER_DEGREE_LAT,
        METRES_PER_DEGREE_LON,
        PERSONAL_KEY_RE,
        PERSONAL_LABEL_RE,
        PHONE_MASK,
        PHONE_RE,
        PUBLIC_ATTR,
        grid_metres,
        personal_fields,
        public_layers,
        public_note,
    )
    from riskmap.exporters.summary import summary_xlsx
    from riskmap.exporters.values import neutralise_cell
    from riskmap.exporters.xlsx import SUMMARY_SHEET, xlsx_township
    from riskmap.layers import LayerData

_LAZY: dict[str, str] = {
    "AREA_HEADER": "riskmap.exporters.listing",
    "EXPORT_FORMATS": "riskmap.exporters.formats",
    "ExportFormat": "riskmap.exporters.formats",
    "FORMATS": "riskmap.exporters.formats",
    "LAT_HEADER": "riskmap.exporters.listing",
    "LAYER_HEADER": "riskmap.exporters.listing",
    "LON_HEADER": "riskmap.exporters.listing",
    "LayerData": "riskmap.layers",
    "ListOptions": "riskmap.exporters.formats",
    "METRES_PER_DEGREE_LAT": "riskmap.exporters.public",
    "METRES_PER_DEGREE_LON": "riskmap.exporters.public",
    "NOTE_APPROXIMATE": "riskmap.exporters.listing",
    "NOTE_DEMO": "riskmap.exporters.listing",
    "NOTE_NO_CLEARED": "riskmap.exporters.listing",
    "NOTE_ZONES": "riskmap.exporters.listing",
    "PERSONAL_KEY_RE": "riskmap.exporters.public",
    "PERSONAL_LABEL_RE": "riskmap.exporters.public",
    "PHONE_MASK": "riskmap.exporters.public",
    "PHONE_RE": "riskmap.exporters.public",
    "PUBLIC_ATTR": "riskmap.exporters.public",
    "SEQ_HEADER": "riskmap.exporters.listing",
    "SHARE_HEADER": "riskmap.exporters.listing",
    "SUMMARY_SHEET": "riskmap.exporters.xlsx",
    "XLSX_MEDIA_TYPE": "riskmap.exporters.formats",
    "ZIP_MEDIA_TYPE": "riskmap.exporters.formats",
    "all_townships_zip": "riskmap.exporters.archive",
    "csv_township": "riskmap.exporters.csvtable",
    "data_as_of": "riskmap.exporters.listing",
    "export_format": "riskmap.exporters.formats",
    "geojson_township": "riskmap.exporters.geojson",
    "grid_metres": "riskmap.exporters.public",
    "list_frame": "riskmap.exporters.listing",
    "list_keys": "riskmap.exporters.listing",
    "listed_features": "riskmap.exporters.listing",
    "listed_layers": "riskmap.exporters.listing",
    "neutralise_cell": "riskmap.exporters.values",
    "personal_fields": "riskmap.exporters.public",
    "public_layers": "riskmap.exporters.public",
    "public_note": "riskmap.exporters.public",
    "summary_xlsx": "riskmap.exporters.summary",
    "township_export": "riskmap.exporters.formats",
    "township_file_name": "riskmap.exporters.archive",
    "township_list_frames": "riskmap.exporters.listing",
    "typed_table": "riskmap.exporters.listing",
    "xlsx_township": "riskmap.exporters.xlsx",
    "zip_file_name": "riskmap.exporters.archive",
}
"""Public name → the module defining it, imported on first use (PEP 562)."""


def __getattr__(name: str) -> Any:  # noqa: ANN401 - any exported object
    """
    Import the submodule defining `name` on first use.

    ``import riskmap.exporters.formats`` (the CLI's ``--format`` choices) runs this package's
    ``__init__`` first; it must not load openpyxl, pandas and geopandas.

    Raises
    ------
    AttributeError
        When `name` is not exported.
    """
    try:
        module = _LAZY[name]
    except KeyError:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg) from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Return the module attributes, the lazily imported names included."""
    return sorted({*globals(), *_LAZY})


__all__ = [
    "AREA_HEADER",
    "EXPORT_FORMATS",
    "FORMATS",
    "LAT_HEADER",
    "LAYER_HEADER",
    "LON_HEADER",
    "METRES_PER_DEGREE_LAT",
    "METRES_PER_DEGREE_LON",
    "NOTE_APPROXIMATE",
    "NOTE_DEMO",
    "NOTE_NO_CLEARED",
    "NOTE_ZONES",
    "PERSONAL_KEY_RE",
    "PERSONAL_LABEL_RE",
    "PHONE_MASK",
    "PHONE_RE",
    "PUBLIC_ATTR",
    "SEQ_HEADER",
    "SHARE_HEADER",
    "SUMMARY_SHEET",
    "XLSX_MEDIA_TYPE",
    "ZIP_MEDIA_TYPE",
    "ExportFormat",
    "LayerData",
    "ListOptions",
    "all_townships_zip",
    "csv_township",
    "data_as_of",
    "export_format",
    "geojson_township",
    "grid_metres",
    "list_frame",
    "list_keys",
    "listed_features",
    "listed_layers",
    "neutralise_cell",
    "personal_fields",
    "public_layers",
    "public_note",
    "summary_xlsx",
    "township_export",
    "township_file_name",
    "township_list_frames",
    "typed_table",
    "xlsx_township",
    "zip_file_name",
]
