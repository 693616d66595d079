"""Import reports: per-row findings at three levels (错误 / 警告 / 提示), counts, exports. Pure.

A `Message` is one finding on one cell or row; its level says what it means for the row:

* ``error`` (错误): the row is not written (not located, invalid value, duplicate uid …);
* ``warning`` (警告): the row is written, but someone should check it (swapped lon/lat,
  declared township ≠ joined one, a default filled in, a missing attribute: 待补充);
* ``info`` (提示): information only (the file's encoding, a generated uid, a split column).

Information is never labelled 错误 (issue 10).
"""

from __future__ import annotations

import io as _bytesio
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from riskmap.coords import LEVEL_ERROR, LEVEL_INFO, LEVEL_WARNING

if TYPE_CHECKING:
    from collections.abc import Iterable

LEVEL_LABELS = {LEVEL_ERROR: "错误", LEVEL_WARNING: "警告", LEVEL_INFO: "提示"}
"""Chinese label of each message level, as users see it."""

ACTION_LABELS = {
    "add": "新增",
    "update": "更新",
    "conflict": "冲突（待确认）",
    "duplicate": "疑似重复（待确认）",
    "reject": "未导入",
}
"""Chinese label of each row action. ``conflict`` and ``duplicate`` rows are held: not
written unless the user confirms them (`riskmap.importing.plan.plan_import`)."""

STATUS_LABELS = {"ok": "正常", "info": "提示", "warning": "警告", "error": "错误"}
"""Chinese label of each row status."""

_FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")
_ILLEGAL_XML_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass(frozen=True)
class Message:
    """One finding on one row: source column, cell value, Chinese reason and its level."""

    column: str
    value: str
    reason: str
    level: str = LEVEL_ERROR

    @property
    def level_label(self) -> str:
        """错误, 警告 or 提示."""
        return LEVEL_LABELS.get(self.level, self.level)

    def to_json_dict(self) -> dict[str, str]:
        """``{"column", "value", "reason", "level"}``."""
        return {
            "column": self.column,
            "value": self.value,
            "reason": self.reason,
            "level": self.level,
        }


@dataclass
class RowReport:
    """
    What happened to one input row.

    Attributes
    ----------
    row
        Row number as the user sees it in Excel (1-based; header row + offset).
    status
        ``"ok"`` (imported; at most 提示 messages), ``"warning"`` (imported or held, check
        the messages) or ``"error"`` (not imported).
    lon, lat
        WGS84 degrees after conversion, or None when the row is not located.
    township_code
        9-digit code of the joined township (imported rows), else None.
    uid
        The row's uid (as given or generated), or None.
    action
        ``"add"``, ``"update"``, ``"conflict"`` (an update held: moves > 100 m or replaces
        the name), ``"duplicate"`` (an addition held: probably a point already on the map
        or earlier in the file) or ``"reject"``.
    attributes_only
        True when the row updates attributes of an existing point and carries no
        coordinates (the point keeps its location).
    missing
        Labels of required attributes the row lacks (imported as 待补充).
    messages
        Findings, Chinese reasons.
    """

    row: int
    status: str = "ok"
    lon: float | None = None
    lat: float | None = None
    township_code: str | None = None
    uid: str | None = None
    action: str = "add"
    messages: list[Message] = field(default_factory=list)
    attributes_only: bool = False
    missing: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        """``{"row", "status", "action", "uid", "lon", "lat", "township_code", "messages"}``."""
        return {
            "row": self.row,
            "status": self.status,
            "action": self.action,
            "uid": self.uid,
            "lon": _finite(self.lon),
            "lat": _finite(self.lat),
            "township_code": self.township_code,
            "attributes_only": self.attributes_only,
            "missing": list(self.missing),
            "messages": [m.to_json_dict() for m in self.messages],
        }


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 8)


@dataclass
class ImportReport:
    """
    Everything the user needs to judge an import before committing it.

    Attributes
    ----------
    filename, layer, crs
        File name, target layer id, declared coordinate system.
    encoding, delimiter, sheet, header_row
        What the reader detected (``""`` when not applicable; header_row 1-based).
    mapping
        ``{source column: field key | coordinate role}`` actually used.
    unknown_columns
        Source columns kept as extra properties (not mapped to a field).
    ambiguous_columns
        ``{source column: [candidate targets]}`` not auto-mapped.
    notes
        File-level notes in Chinese (encoding, conversions, skipped rows, generated uids, …).
    file_error
        Why the whole file was refused, or None.
    rows
        One `RowReport` per non-blank input row, in file order.
    """

    filename: str
    layer: str
    crs: str = "wgs84"
    encoding: str = ""
    delimiter: str = ""
    sheet: str = ""
    header_row: int | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    unknown_columns: list[str] = field(default_factory=list)
    ambiguous_columns: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    file_error: str | None = None
    rows: list[RowReport] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """
        Row counts by outcome.

        ``{"rows", "added", "updated", "rejected", "warnings", "conflicts", "duplicates",
        "incomplete"}``: conflicts and duplicates are held rows (not written unless
        confirmed); incomplete rows are written, marked 待补充.
        """
        actions = [r.action for r in self.rows]
        return {
            "rows": len(self.rows),
            "added": actions.count("add"),
            "updated": actions.count("update"),
            "rejected": actions.count("reject"),
            "warnings": sum(r.status == "warning" for r in self.rows),
            "conflicts": actions.count("conflict"),
            "duplicates": actions.count("duplicate"),
            "incomplete": sum(bool(r.missing) and r.action in {"add", "update"} for r in self.rows),
        }

    def to_json_dict(self) -> dict[str, Any]:
        """
        JSON-ready dict (strict JSON: no NaN).

        Returns
        -------
        data
            ``{"encoding", "rows": [{"row", "status", "lon", "lat", "township_code",
            "messages": [{"column", "value", "reason"}]}], "filename", "layer", "crs",
            "delimiter", "sheet", "header_row", "mapping", "unknown_columns",
            "ambiguous_columns", "notes", "file_error", "counts"}``.
        """
        return {
            "encoding": self.encoding,
            "rows": [r.to_json_dict() for r in self.rows],
            "filename": self.filename,
            "layer": self.layer,
            "crs": self.crs,
            "delimiter": self.delimiter,
            "sheet": self.sheet,
            "header_row": self.header_row,
            "mapping": dict(self.mapping),
            "unknown_columns": list(self.unknown_columns),
            "ambiguous_columns": {k: list(v) for k, v in self.ambiguous_columns.items()},
            "notes": list(self.notes),
            "file_error": self.file_error,
            "counts": self.counts,
        }


def safe_cell_text(value: object) -> str:
    """
    Text for a spreadsheet/CSV cell that no spreadsheet evaluates.

    Blank → ``""``; text starting with ``= + - @`` TAB or CR gets a leading ``'`` (OWASP CSV
    injection advice); XML-illegal control characters are removed.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = _ILLEGAL_XML_RE.sub("", str(value))
    return f"'{text}" if text.startswith(_FORMULA_LEAD) else text


def report_frame(report: ImportReport) -> pd.DataFrame:
    """
    One row per message (rows without messages once), for display and export.

    Returns
    -------
    frame
        Columns 行号, 状态, 处理, 统一编号, 经度, 纬度, 乡镇代码, 级别, 列, 值, 原因
        (text/None); 级别 is the message's level (错误/警告/提示).
    """
    status_cn, action_cn = STATUS_LABELS, ACTION_LABELS
    records = []
    for r in report.rows:
        base = {
            "行号": r.row,
            "状态": status_cn.get(r.status, r.status),
            "处理": action_cn.get(r.action, r.action),
            "统一编号": r.uid,
            "经度": None if _finite(r.lon) is None else f"{r.lon:.7f}",
            "纬度": None if _finite(r.lat) is None else f"{r.lat:.7f}",
            "乡镇代码": r.township_code,
        }
        if not r.messages:
            records.append({**base, "级别": None, "列": None, "值": None, "原因": None})
        records.extend(
            {**base, "级别": m.level_label, "列": m.column, "值": m.value, "原因": m.reason}
            for m in r.messages
        )
    columns = [
        "行号", "状态", "处理", "统一编号", "经度", "纬度", "乡镇代码", "级别", "列", "值", "原因",
    ]  # fmt: skip
    return pd.DataFrame(records, columns=columns)


def report_xlsx(report: ImportReport) -> bytes:
    """
    Render the report as an Excel workbook: sheet 导入结果 (one row per message) and 说明.

    Every cell is a **text** cell (never a formula); text starting with ``= + - @`` is
    neutralised by `safe_cell_text`.

    Returns
    -------
    data
        XLSX bytes.
    """
    from openpyxl import Workbook  # noqa: PLC0415 - heavy; only for this export

    wb = Workbook()
    ws = wb.active
    ws.title = "导入结果"
    frame = report_frame(report)

    def put(sheet: Any, row: int, values: Iterable[object]) -> None:  # noqa: ANN401
        for col, value in enumerate(values, start=1):
            cell = sheet.cell(row=row, column=col)
            cell.value = safe_cell_text(value)
            cell.data_type = "s"

    put(ws, 1, frame.columns)
    for i, rec in enumerate(frame.itertuples(index=False), start=2):
        put(ws, i, rec)
    info = wb.create_sheet("说明")
    counts = report.counts
    lines: list[tuple[object, object]] = [
        ("文件", report.filename),
        ("图层", report.layer),
        ("坐标系", report.crs),
        ("编码", report.encoding),
        ("分隔符", {"\t": "TAB"}.get(report.delimiter, report.delimiter)),
        ("工作表", report.sheet),
        ("列名所在行", report.header_row),
        ("文件错误", report.file_error),
        ("新增", counts["added"]),
        ("更新", counts["updated"]),
        ("未导入", counts["rejected"]),
        ("冲突（待确认）", counts["conflicts"]),
        ("疑似重复（待确认）", counts["duplicates"]),
        ("待补充", counts["incomplete"]),
        ("警告", counts["warnings"]),
    ]
    lines += [(f"列映射: {k}", v) for k, v in report.mapping.items()]
    lines += [("保留为附加属性的列", c) for c in report.unknown_columns]
    lines += [
        ("未能自动映射的列", f"{k}: {'/'.join(v)}") for k, v in report.ambiguous_columns.items()
    ]
    lines += [("说明", n) for n in report.notes]
    for i, pair in enumerate(lines, start=1):
        put(info, i, pair)
    buf = _bytesio.BytesIO()
    wb.save(buf)
    return buf.getvalue()
