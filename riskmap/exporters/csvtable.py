"""The township list as one CSV table (UTF-8 with BOM). Pure."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from riskmap.exporters.listing import (
    LAYER_HEADER,
    township_list_frames,
)
from riskmap.exporters.values import (
    _is_numeric,
    _number_text,
    _text,
    neutralise_cell,
)
from riskmap.layers import LayerData

if TYPE_CHECKING:
    from collections.abc import Mapping

    from riskmap.filters import FeatureFilter


def csv_township(
    layers: Mapping[str, LayerData],
    township_code: str,
    township_name: str,
    *,
    include_cleared: bool = False,
    selection: FeatureFilter | None = None,
) -> bytes:
    """
    Write the township's risk list as one CSV table (UTF-8 with BOM, CRLF line ends).

    Columns: `LAYER_HEADER` (layer's Chinese name), `SEQ_HEADER` (1..n within the layer),
    then the union of the layers' list headers in first-seen order (cells of a column a
    layer lacks are empty). No title, notes or subtotal rows: the CSV is a data table (for
    re-import or other tools); the XLSX is the document. Blanks are empty cells (never
    ``nan``); numbers are plain (``35``, ``12.5``, ``-3.5``); text cells are neutralised
    (`neutralise_cell`); codes keep their leading zeros.

    Parameters
    ----------
    layers, township_code, township_name, include_cleared, selection
        As in `riskmap.exporters.xlsx_township` (the name is not a column; a CSV has no
        note row, so the selection is not described).

    Returns
    -------
    data
        The UTF-8 byte order mark (EF BB BF) followed by the UTF-8 CSV.

    Raises
    ------
    TownshipNotFoundError
        When `township_code` is not 9 digits.
    """
    frames = township_list_frames(
        layers, township_code, township_name, include_cleared=include_cleared, selection=selection
    )
    columns: list[str] = [LAYER_HEADER]
    for df in frames.values():
        columns.extend(c for c in df.columns if c not in columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([neutralise_cell(c) for c in columns])
    for lid, df in frames.items():
        cells: dict[str, list[str]] = {LAYER_HEADER: [layers[lid].spec.name] * len(df)}
        for col in df.columns:
            series = df[col]
            if _is_numeric(series):
                cells[col] = [_number_text(v) for v in series.tolist()]
            else:
                cells[col] = [neutralise_cell(_text(v)) for v in series.tolist()]
        blank = [""] * len(df)
        for i in range(len(df)):
            writer.writerow([cells.get(c, blank)[i] for c in columns])
    return buf.getvalue().encode("utf-8-sig")
