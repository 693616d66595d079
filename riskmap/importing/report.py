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
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from riskmap.coords import LEVEL_ERROR, LEVEL_INFO, LEVEL_WARNING

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

LEVEL_LABELS = {LEVEL_ERROR: "错误", LEVEL_WARNING: "警告", LEVEL_INFO: "提示"}
"""Chinese label of each message level, as users see it."""

ACTION_LABELS = {
    "add": "新增",
    "update": "更新",
    "unchanged": "无变化",
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
        ``"add"``, ``"update"``, ``"unchanged"`` (names a stored point and changes nothing:
        not written, not counted as updated), ``"conflict"`` (an update held: moves > 100 m
        or replaces the name), ``"duplicate"`` (an addition held: probably a point already on
        the map or earlier in the file) or ``"reject"``.
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


def _finite_list(values: np.ndarray) -> list[float | None]:
    """`_finite` of every value of a float array, vectorised: a list of float or None."""
    values = np.asarray(values, dtype=float)
    out = np.round(values, 8)
    # numpy rounds by scaling: where that moved a value, take Python's correctly rounded
    # `round` (imported coordinates have 7 decimals, so this is normally no row at all)
    for i in np.flatnonzero(np.isfinite(values) & (out != values)):
        out[i] = round(float(values[i]), 8)
    listed = out.astype(object)
    listed[~np.isfinite(values)] = None
    return listed.tolist()


_ROW_KEYS = (
    "row", "status", "action", "uid", "lon", "lat", "township_code", "attributes_only",
    "missing", "messages",
)  # fmt: skip


class RowReports(Sequence[RowReport]):
    """
    The report rows of an import, stored column-wise; a `RowReport` is built on access.

    A 100,000-row import keeps arrays (row number, status, action, uid, coordinates,
    township code) and the findings only of the rows that have some, instead of one Python
    object per row (issue 15). Indexing and iteration give `RowReport` snapshots: changing
    one does not change the report.

    Parameters
    ----------
    row
        Excel row numbers, int array ``(n,)``.
    status, action
        Object arrays ``(n,)`` of `RowReport.status` / `RowReport.action` values.
    uid, township_code
        Object arrays ``(n,)``: text or None.
    lon, lat
        Float arrays ``(n,)``, WGS84 degrees; NaN = not located (None in a `RowReport`).
    attributes_only
        Bool array ``(n,)``.
    messages
        ``{row position: [Message]}`` for the rows that have findings (others: none).
    missing
        ``{row position: [label]}`` for the rows imported as 待补充.
    """

    def __init__(
        self,
        *,
        row: np.ndarray,
        status: np.ndarray,
        action: np.ndarray,
        uid: np.ndarray,
        lon: np.ndarray,
        lat: np.ndarray,
        township_code: np.ndarray,
        attributes_only: np.ndarray,
        messages: dict[int, list[Message]] | None = None,
        missing: dict[int, list[str]] | None = None,
    ) -> None:
        self.row = np.asarray(row, dtype=np.int64)
        n = len(self.row)
        self.status = np.asarray(status, dtype=object)
        self.action = np.asarray(action, dtype=object)
        self.uid = np.asarray(uid, dtype=object)
        self.lon = np.asarray(lon, dtype=float)
        self.lat = np.asarray(lat, dtype=float)
        self.township_code = np.asarray(township_code, dtype=object)
        self.attributes_only = np.asarray(attributes_only, dtype=bool)
        self.messages = {k: v for k, v in (messages or {}).items() if v}
        self.missing = {k: v for k, v in (missing or {}).items() if v}
        for name in ("status", "action", "uid", "lon", "lat", "township_code", "attributes_only"):
            if len(getattr(self, name)) != n:
                msg = f"RowReports: column {name} has {len(getattr(self, name))} rows, not {n}"
                raise ValueError(msg)

    @classmethod
    def from_rows(cls, rows: Iterable[RowReport]) -> RowReports:
        """Store `RowReport` objects column-wise."""
        rows = list(rows)
        nan = float("nan")
        return cls(
            row=np.array([r.row for r in rows], dtype=np.int64),
            status=np.array([r.status for r in rows], dtype=object),
            action=np.array([r.action for r in rows], dtype=object),
            uid=np.array([r.uid for r in rows], dtype=object),
            lon=np.array([nan if r.lon is None else r.lon for r in rows], dtype=float),
            lat=np.array([nan if r.lat is None else r.lat for r in rows], dtype=float),
            township_code=np.array([r.township_code for r in rows], dtype=object),
            attributes_only=np.array([r.attributes_only for r in rows], dtype=bool),
            messages={i: list(r.messages) for i, r in enumerate(rows) if r.messages},
            missing={i: list(r.missing) for i, r in enumerate(rows) if r.missing},
        )

    def __len__(self) -> int:
        """Return the number of report rows."""
        return len(self.row)

    def _at(self, pos: int) -> RowReport:
        lon, lat = self.lon[pos], self.lat[pos]
        return RowReport(
            row=int(self.row[pos]),
            status=str(self.status[pos]),
            lon=float(lon) if not math.isnan(lon) else None,
            lat=float(lat) if not math.isnan(lat) else None,
            township_code=self.township_code[pos],
            uid=self.uid[pos],
            action=str(self.action[pos]),
            messages=list(self.messages.get(pos, [])),
            attributes_only=bool(self.attributes_only[pos]),
            missing=list(self.missing.get(pos, [])),
        )

    @overload
    def __getitem__(self, index: int) -> RowReport: ...
    @overload
    def __getitem__(self, index: slice) -> list[RowReport]: ...
    def __getitem__(self, index: int | slice) -> RowReport | list[RowReport]:
        """Return the row at position `index` (a slice: a list); raises IndexError."""
        if isinstance(index, slice):
            return [self._at(i) for i in range(*index.indices(len(self)))]
        pos = range(len(self))[index]  # negative indices; IndexError when out of range
        return self._at(pos)

    def __iter__(self) -> Iterator[RowReport]:
        """Rows in file order, each built on access."""
        return (self._at(i) for i in range(len(self)))

    def __repr__(self) -> str:
        """Size, not content."""
        return f"RowReports({len(self)} rows, {len(self.messages)} with findings)"

    def counts(self) -> dict[str, int]:
        """`ImportReport.counts`, computed on the columns."""
        action = self.action
        written = np.isin(action, ["add", "update"])
        return {
            "rows": len(self),
            "added": int((action == "add").sum()),
            "updated": int((action == "update").sum()),
            "unchanged": int((action == "unchanged").sum()),
            "rejected": int((action == "reject").sum()),
            "warnings": int((self.status == "warning").sum()),
            "conflicts": int((action == "conflict").sum()),
            "duplicates": int((action == "duplicate").sum()),
            "incomplete": sum(bool(written[pos]) for pos in self.missing),
        }

    def json_rows(self) -> list[dict[str, Any]]:
        """`RowReport.to_json_dict` of every row, built from the columns."""
        n = len(self)
        missing = [[] for _ in range(n)]
        for pos, labels in self.missing.items():
            missing[pos] = list(labels)
        messages = [[] for _ in range(n)]
        for pos, found in self.messages.items():
            messages[pos] = [m.to_json_dict() for m in found]
        columns = (
            self.row.tolist(),
            self.status.tolist(),
            self.action.tolist(),
            self.uid.tolist(),
            _finite_list(self.lon),
            _finite_list(self.lat),
            self.township_code.tolist(),
            self.attributes_only.tolist(),
            missing,
            messages,
        )
        return [dict(zip(_ROW_KEYS, values, strict=True)) for values in zip(*columns, strict=True)]


    def json_lines(self, start: int = 0, stop: int | None = None) -> list[str]:
        """
        Encode rows ``start:stop`` (default all) as lines of JSON text, from the columns.

        Returns
        -------
        lines
            ``json.loads(lines[i]) == json_rows()[i]``; the text is what
            ``json.dumps(row, ensure_ascii=False)`` writes. Only rows with findings (and
            text needing escapes) are encoded one by one.
        """
        encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
        start, stop, _ = slice(start, stop).indices(len(self))
        n = max(stop - start, 0)
        if n == 0:
            return []

        def texts(column: np.ndarray) -> list[str]:
            values = column[start:stop]
            out = np.full(n, "null", dtype=object)
            present = np.flatnonzero(pd.notna(values))
            items = [str(v) for v in values[present].tolist()]
            escaped = pc.match_substring_regex(pa.array(items, pa.string()), _JSON_ESCAPED)
            plain = ~escaped.to_numpy(zero_copy_only=False)
            out[present] = [
                f'"{v}"' if ok else encode(v) for v, ok in zip(items, plain, strict=True)
            ]
            return out.tolist()

        def numbers(column: np.ndarray) -> list[str]:
            values = column[start:stop]
            out = np.full(n, "null", dtype=object)
            listed = _finite_list(values)
            finite = np.flatnonzero(np.isfinite(values))
            out[finite] = [repr(listed[i]) for i in finite.tolist()]
            return out.tolist()

        def labels(column: np.ndarray) -> list[str]:
            codes, uniques = pd.factorize(pd.Series(column[start:stop], dtype=object))
            return np.array([encode(u) for u in uniques], dtype=object)[codes].tolist()

        missing = np.full(n, "[]", dtype=object)
        for pos, found in self.missing.items():
            if start <= pos < stop:
                missing[pos - start] = encode(list(found))
        messages = np.full(n, "[]", dtype=object)
        for pos, found in self.messages.items():
            if start <= pos < stop:
                messages[pos - start] = encode([m.to_json_dict() for m in found])
        flags = np.where(self.attributes_only[start:stop], "true", "false").tolist()
        return [
            f'{{"row": {r}, "status": {st}, "action": {a}, "uid": {u}, "lon": {x}, "lat": {y}, '
            f'"township_code": {t}, "attributes_only": {f}, "missing": {mi}, "messages": {me}}}'
            for r, st, a, u, x, y, t, f, mi, me in zip(
                self.row[start:stop].tolist(),
                labels(self.status),
                labels(self.action),
                texts(self.uid),
                numbers(self.lon),
                numbers(self.lat),
                texts(self.township_code),
                flags,
                missing.tolist(),
                messages.tolist(),
                strict=True,
            )
        ]


_JSON_ESCAPED = r'["\\\x00-\x1f]'
"""Characters `json` escapes with ``ensure_ascii=False``: quote, backslash, U+0000–U+001F."""


def _as_row_reports(rows: Sequence[RowReport]) -> RowReports:
    return rows if isinstance(rows, RowReports) else RowReports.from_rows(rows)


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
        One `RowReport` per non-blank input row, in file order: a `RowReports` (stored
        column-wise; a list of `RowReport` given here is converted).
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
    rows: Sequence[RowReport] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Store the rows column-wise."""
        self.rows = _as_row_reports(self.rows)

    @property
    def counts(self) -> dict[str, int]:
        """
        Row counts by outcome.

        ``{"rows", "added", "updated", "unchanged", "rejected", "warnings", "conflicts",
        "duplicates", "incomplete"}``: unchanged rows name a stored point and change nothing;
        conflicts and duplicates are held rows (not written unless
        confirmed); incomplete rows are written, marked 待补充.
        """
        return _as_row_reports(self.rows).counts()

    def to_json_dict(self, *, with_rows: bool = True) -> dict[str, Any]:
        """
        JSON-ready dict (strict JSON: no NaN).

        Parameters
        ----------
        with_rows
            False: ``"rows"`` is an empty list (`report_json_text` writes the rows itself).

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
            "rows": _as_row_reports(self.rows).json_rows() if with_rows else [],
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


REPORT_COLUMNS = (
    "行号", "状态", "处理", "统一编号", "经度", "纬度", "乡镇代码", "级别", "列", "值", "原因",
)  # fmt: skip
"""Columns of `report_frame` (and of the 导入结果 sheet)."""


def report_frame(report: ImportReport, *, only_messages: bool = False) -> pd.DataFrame:
    """
    One row per message (rows without messages once), for display and export.

    Built column-wise from `RowReports`: the rows without findings cost no Python object.

    Parameters
    ----------
    report
        The import report.
    only_messages
        True: only the rows with a message (what ``riskmap import`` prints); the frame is
        then the same as the full one filtered on ``级别`` not blank.

    Returns
    -------
    frame
        Columns `REPORT_COLUMNS`: 行号, 状态, 处理, 统一编号, 经度, 纬度, 乡镇代码, 级别, 列,
        值, 原因 (text/None); 级别 is the message's level (错误/警告/提示).
    """
    rr = _as_row_reports(report.rows)
    n = len(rr)
    per_row = np.zeros(n, dtype=np.int64) if only_messages else np.ones(n, dtype=np.int64)
    for pos, found in rr.messages.items():
        per_row[pos] = len(found)
    idx = np.repeat(np.arange(n), per_row)
    start = np.cumsum(per_row) - per_row  # first frame row of each report row
    size = len(idx)
    level, column, value, reason = (np.full(size, None, dtype=object) for _ in range(4))
    for pos, found in rr.messages.items():
        at = int(start[pos])
        for k, m in enumerate(found):
            level[at + k], column[at + k] = m.level_label, m.column
            value[at + k], reason[at + k] = m.value, m.reason

    def labelled(values: np.ndarray, labels: dict[str, str]) -> list[object]:
        return [labels.get(v, v) for v in values[idx].tolist()]

    def degrees(values: np.ndarray) -> list[str | None]:
        return [None if not math.isfinite(v) else f"{v:.7f}" for v in values[idx].tolist()]

    data = {
        "行号": rr.row[idx].tolist(),
        "状态": labelled(rr.status, STATUS_LABELS),
        "处理": labelled(rr.action, ACTION_LABELS),
        "统一编号": rr.uid[idx].tolist(),
        "经度": degrees(rr.lon),
        "纬度": degrees(rr.lat),
        "乡镇代码": rr.township_code[idx].tolist(),
        "级别": level.tolist(),
        "列": column.tolist(),
        "值": value.tolist(),
        "原因": reason.tolist(),
    }
    return pd.DataFrame(data, columns=list(REPORT_COLUMNS))


def report_json_text(report: ImportReport, **extra: object) -> str:
    """
    Encode the report as JSON text: `ImportReport.to_json_dict` + `extra`, a row per line.

    Strict JSON (no NaN). Encoded by the standard library's C encoder (an indented dump
    falls back to the pure-Python one: 3× slower at 100,000 rows); each top-level key and
    each report row is on a line of its own, so the file stays readable and greppable.

    Parameters
    ----------
    report
        The import report.
    **extra
        More top-level keys (e.g. ``changes``), JSON-serialisable.

    Returns
    -------
    text
        A JSON object; ``json.loads(text) == {**report.to_json_dict(), **extra}``.
    """
    return "".join(report_json_chunks(report, **extra))


def report_json_chunks(
    report: ImportReport, *, batch: int = 20_000, **extra: object
) -> Iterator[str]:
    """
    Yield `report_json_text` in pieces (at most `batch` report rows each), for streaming.

    A 1,000,000-row report is ~300 MB of text: written piece by piece
    (``riskmap.io.write_bytes_atomic`` takes chunks), it is never held whole.
    """
    rr = _as_row_reports(report.rows)
    data = {**report.to_json_dict(with_rows=False), **extra}
    encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    keys = list(data)
    for k, key in enumerate(keys):
        lead = "{\n " if k == 0 else ",\n "
        if key == "rows" and len(rr):
            yield f"{lead}{encode(key)}: [\n  "
            for start in range(0, len(rr), batch):
                part = rr.json_lines(start, start + batch)
                yield ("" if start == 0 else ",\n  ") + ",\n  ".join(part)
            yield "\n ]"
        else:
            yield f"{lead}{encode(key)}: {encode(data[key])}"
    yield "\n}\n" if keys else "{\n}\n"


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
        ("无变化", counts["unchanged"]),
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
