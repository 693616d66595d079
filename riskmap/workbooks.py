"""Workbook bytes (XLSX, XLS) → rows of text cells, read by their cells. Pure.

Used by `riskmap.readers.read_table` (which sniffs the format and finds the header). What a
spreadsheet says is read as it is shown, not as it is declared:

* the worksheet's declared ``<dimension>`` is ignored (``A1`` on a filled sheet, c19);
* a formula's cached value is used; a formula without one is reported by cell and formula
  (`RawTable.unevaluated`), never as a blank cell (c20);
* numbers in a built-in CJK date/time format (ids 27–36, 50–58, which openpyxl does not
  know) become ISO dates/times, not serial numbers (c21);
* a number format ``000`` keeps leading zeros (``001``).

Size caps are checked before openpyxl parses anything (zip bombs, millions of rows/cells).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from typing import TYPE_CHECKING, Any

from riskmap.errors import ImportFileError

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_COLUMNS = 200
"""Default cap on columns per file."""
HEADER_SCAN_ROWS = 30
"""How many leading rows are searched for the header row (title rows above it are skipped)."""
MAX_XLSX_UNCOMPRESSED = 200 * 1024 * 1024
"""Default cap (bytes) on the uncompressed size of an XLSX archive: zip-bomb guard."""
MAX_XLSX_CELLS = 30_000_000
"""Default cap on the cells of all worksheets of an XLSX (counted before parsing)."""
MAX_XLSX_ROW_CELLS = 16_384
"""Cap on the cells of one worksheet row (Excel's own column limit, XFD)."""

CJK_DATE_FORMAT_IDS = frozenset({27, 28, 29, 30, 31, 36, 50, 51, 52, 53, 54, 57, 58})
"""Built-in number format ids that are dates in the CJK locales (zh-CN, zh-TW, ja-JP, ko-KR).

ECMA-376 Part 1, §18.8.30 (numFmt): ids 27–36 and 50–58 are reserved for East Asian
locales and are *not* written into ``styles.xml``; e.g. zh-CN 31 = ``yyyy"年"m"月"d"日"``,
27/36/50/52/57 = ``yyyy"年"m"月"``, 28/29/51/53/54/58 = ``m"月"d"日"``, 30 = ``m-d-yy``.
openpyxl knows none of them (it reports "General"), so the serial number would leak out."""
CJK_TIME_FORMAT_IDS = frozenset({32, 33, 34, 35, 55, 56})
"""Built-in CJK number format ids that are times of day (``h"时"mm"分"``, 上午/下午…)."""
_ZERO_FORMAT_RE = re.compile(r"^0+$")


MergedRange = tuple[int, int, int, int]
"""A merged cell range: ``(first row, first column, last row, last column)``, 0-based."""

_MERGE_RE = re.compile(
    rb'<(?:[A-Za-z_][\w.\-]*:)?mergeCell\s[^>]*ref="([A-Z]+[0-9]+):([A-Z]+[0-9]+)"'
)


def merged_ranges(data: bytes, sheet_path: str) -> list[MergedRange]:
    """
    Read the merged cell ranges of one worksheet (``<mergeCell ref="A3:A5"/>``).

    openpyxl's read-only mode does not report merges; the sheet XML is streamed in 1 MiB
    pieces (bounded memory) and the ``mergeCell`` elements matched.

    Parameters
    ----------
    data
        The XLSX archive.
    sheet_path
        The worksheet's member name in the archive (``xl/worksheets/sheet1.xml``).

    Returns
    -------
    ranges
        `MergedRange` tuples, in file order.
    """
    from openpyxl.utils.cell import range_boundaries  # noqa: PLC0415 - heavy

    out: list[MergedRange] = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        try:
            fh = zf.open(sheet_path.lstrip("/"))
        except KeyError:
            return out
        with fh:
            tail = b""
            while chunk := fh.read(1 << 20):
                buf = tail + chunk
                cut = buf.rfind(b"<")
                seg, tail = (buf[:cut], buf[cut:]) if cut > 0 else (buf, b"")
                for a, b in _MERGE_RE.findall(seg):
                    c0, r0, c1, r1 = range_boundaries(f"{a.decode()}:{b.decode()}")
                    out.append((r0 - 1, c0 - 1, r1 - 1, c1 - 1))
            for a, b in _MERGE_RE.findall(tail):
                c0, r0, c1, r1 = range_boundaries(f"{a.decode()}:{b.decode()}")
                out.append((r0 - 1, c0 - 1, r1 - 1, c1 - 1))
    return out


def _fail(filename: str, why: str) -> ImportFileError:
    return ImportFileError(f"{filename}: {why}")


def _column_letter(i: int) -> str:
    letters = ""
    i += 1
    while i:
        i, rem = divmod(i - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _cell_text(value: object, number_format: str = "") -> str:
    """Text of a spreadsheet cell: integral floats without ``.0``, dates as ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:  # noqa: PLR2004
        value = int(value)
    if isinstance(value, int):
        text = str(value)
        if _ZERO_FORMAT_RE.match(number_format or ""):
            text = text.zfill(len(number_format))  # Excel format "000" shows 1 as 001
        return text
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


_WORKSHEET_RE = re.compile(rb"<([A-Za-z_][\w.\-]*:)?worksheet[\s>]")


def _prescan_xlsx(
    data: bytes,
    filename: str,
    max_rows: int,
    *,
    max_cells: int = MAX_XLSX_CELLS,
    max_row_cells: int = MAX_XLSX_ROW_CELLS,
) -> None:
    """
    Count rows and cells of every worksheet in the archive before openpyxl parses any.

    openpyxl (even read-only) builds each row in full and reads every row, so a small
    archive whose sheet holds millions of ``<row/>`` or one row of millions of ``<c/>``
    would take minutes and gigabytes before any cap in the row loop is reached. This
    streams each worksheet XML in 1 MiB pieces (bounded memory) and counts the ``row``
    and ``c`` start tags (any namespace prefix, any whitespace) with C-speed regexes.

    Raises
    ------
    ImportFileError
        When a worksheet has more than `max_rows` rows, a row more than `max_row_cells`
        cells, or the workbook more than `max_cells` cells.
    """
    cells_total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.lower().endswith(".xml"):
                continue
            try:
                with zf.open(info) as fh:
                    head = fh.read(4096)
                    root = _WORKSHEET_RE.search(head)
                    if root is None:
                        continue
                    prefix = re.escape(root.group(1) or b"")
                    row_re = re.compile(rb"<" + prefix + rb"row[\s/>]")
                    cell_re = re.compile(rb"<" + prefix + rb"c[\s/>]")
                    rows = current = 0
                    tail, chunk = b"", head
                    while chunk or tail:
                        buf = tail + chunk
                        cut = buf.rfind(b"<") if chunk else len(buf)
                        cut = len(buf) if cut < 0 else cut
                        seg, tail = buf[:cut], buf[cut:]
                        n_cells = len(cell_re.findall(seg))
                        n_rows = len(row_re.findall(seg))
                        cells_total += n_cells
                        rows += n_rows
                        if rows > max_rows:
                            msg = f"工作表行数超过上限 {max_rows:,}（{info.filename}）"
                            raise _fail(filename, msg)
                        if current + n_cells <= max_row_cells:
                            # no row in this piece can exceed the cap; the last row's
                            # count is at most n_cells (an upper bound is safe)
                            current = n_cells if n_rows else current + n_cells
                        else:
                            counts = [len(cell_re.findall(p)) for p in row_re.split(seg)]
                            current += counts[0]
                            widest = max([current, *counts[1:]])
                            current = counts[-1] if len(counts) > 1 else current
                            if widest > max_row_cells:
                                msg = (
                                    f"工作表一行超过 {max_row_cells:,} 个单元格（{info.filename}）"
                                )
                                raise _fail(filename, msg)
                        if cells_total > max_cells:
                            msg = f"工作簿单元格数超过上限 {max_cells:,}"
                            raise _fail(filename, msg)
                        chunk = fh.read(1 << 20) if chunk else b""
                        if not chunk and cut == len(buf):
                            break
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
                msg = f"不是有效的 XLSX 文件（{info.filename} 损坏）: {exc}"
                raise _fail(filename, msg) from None


def _xlsx_cell_text(cell: object, epoch: object) -> str:
    """
    Text of an openpyxl read-only cell, with CJK built-in date/time formats applied.

    A number whose style uses a built-in CJK date id (`CJK_DATE_FORMAT_IDS`) becomes an ISO
    date, a time id (`CJK_TIME_FORMAT_IDS`) an ISO time; everything else as `_cell_text`.
    """
    from openpyxl.utils.datetime import from_excel  # noqa: PLC0415 - heavy

    value = getattr(cell, "value", None)
    fmt_id = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            fmt_id = cell.style_array.numFmtId  # type: ignore[attr-defined]
        except (AttributeError, IndexError):
            fmt_id = None
    if fmt_id in CJK_DATE_FORMAT_IDS or fmt_id in CJK_TIME_FORMAT_IDS:
        try:
            when = from_excel(value, epoch) if epoch is not None else from_excel(value)
        except (ValueError, OverflowError, TypeError):
            when = None
        if isinstance(when, dt.datetime):
            return (
                when.date().isoformat()
                if fmt_id in CJK_DATE_FORMAT_IDS
                else (when.time().isoformat())
            )
        if isinstance(when, (dt.date, dt.time)):
            return when.isoformat()
    return _cell_text(value, getattr(cell, "number_format", "") or "")


_FORMULA_TAG_RE = re.compile(rb"<([A-Za-z_][\w.\-]*:)?f[\s>/]")


def _has_formulas(data: bytes) -> bool:
    """Tell whether any worksheet of the XLSX archive holds a formula (``<f>`` element)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            name = info.filename.lower()
            if not (name.startswith("xl/worksheets/") and name.endswith(".xml")):
                continue
            with zf.open(info) as fh:
                tail = b""
                while chunk := fh.read(1 << 20):
                    if _FORMULA_TAG_RE.search(tail + chunk):
                        return True
                    tail = chunk[-64:]
    return False


def _unevaluated_formulas(
    data: bytes, sheet: str, rows: list[list[str]], max_columns: int
) -> dict[tuple[int, int], tuple[str, str]]:
    """
    Find the formula cells of `sheet` that have no cached result.

    Reads the sheet a second time with formulas (``data_only=False``): a cell that is blank
    in `rows` (the cached values) but holds ``=…`` was never calculated.

    Returns
    -------
    unevaluated
        ``{(row index, column index): (cell reference such as "E2", "=formula")}``, 0-based.
    """
    import openpyxl  # noqa: PLC0415 - heavy; only for spreadsheets

    out: dict[tuple[int, int], tuple[str, str]] = {}
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    try:
        ws = wb[sheet]
        ws.reset_dimensions()
        for i, values in enumerate(ws.iter_rows(values_only=True)):
            if i >= len(rows):
                break
            for j, value in enumerate(values[:max_columns]):
                if isinstance(value, str) and value.startswith("=") and not rows[i][j].strip():
                    out[(i, j)] = (f"{_column_letter(j)}{i + 1}", value)
    finally:
        wb.close()
    return out


def _rows_from_xlsx(  # noqa: PLR0915 - caps, sheet choice and row loop in one place
    data: bytes,
    filename: str,
    sheet: str | None,
    max_rows: int,
    max_uncompressed: int,
    max_columns: int = MAX_COLUMNS,
    is_known: Callable[[str], bool] | None = None,
) -> tuple[
    list[list[str]], str, list[str], dict[tuple[int, int], tuple[str, str]], list[MergedRange]
]:
    """
    Rows of text cells of one worksheet, its name, notes, unevaluated formulas, merges.

    Without `sheet`, a workbook of several sheets is read from the first sheet that has a
    header row (two cells `is_known` recognises, e.g. 经度 and 纬度, or 统一编号 and 状态, in
    its first `HEADER_SCAN_ROWS` rows): a 填表说明 sheet in front of the data is skipped,
    and a note says which sheet was read. When no sheet has one, the first is read and the
    note lists the sheets and suggests ``--sheet``.
    """
    import openpyxl  # noqa: PLC0415 - heavy; only for spreadsheets

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            total = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        msg = f"不是有效的 XLSX 文件（ZIP 结构损坏）: {exc}"
        raise _fail(filename, msg) from None
    if total > max_uncompressed:
        msg = f"XLSX 解压后 {total / 2**20:.0f} MiB，超过上限 {max_uncompressed / 2**20:.0f} MiB"
        raise _fail(filename, msg)
    _prescan_xlsx(data, filename, max_rows + HEADER_SCAN_ROWS)
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for bad files
        msg = f"无法读取 XLSX 文件: {type(exc).__name__}: {exc}"
        raise _fail(filename, msg) from None
    notes: list[str] = []
    try:
        names = list(wb.sheetnames)
        if not names:
            raise _fail(filename, "XLSX 文件没有工作表")
        if sheet is None:
            chosen = names[0]
            if len(names) > 1:
                found = _sheet_with_header(wb, names, is_known) if is_known else None
                listed = "、".join(f"「{n}」" for n in names)
                if found is None:
                    notes.append(
                        f"工作簿有 {len(names)} 个工作表（{listed}），都没有可识别的列名行，"
                        f"读取第一个「{chosen}」；如数据在其他工作表，请用 --sheet 指定"
                    )
                else:
                    chosen = found
                    notes.append(
                        f"工作簿有 {len(names)} 个工作表（{listed}），读取第一个有列名行的"
                        f"「{chosen}」；其他工作表请用 --sheet 指定"
                    )
        elif sheet in names:
            chosen = sheet
        else:
            msg = f"没有名为「{sheet}」的工作表；现有: {'、'.join(names)}"
            raise _fail(filename, msg)
        ws = wb[chosen]
        # The declared <dimension> may be wrong (e.g. "A1" for a filled sheet): openpyxl's
        # read-only mode trusts it unless reset, and would read one cell (c19).
        ws.reset_dimensions()
        epoch = getattr(wb, "epoch", None)
        rows: list[list[str]] = []
        try:
            for row in ws.iter_rows():
                if len(row) > max_columns and any(
                    getattr(c, "value", None) not in (None, "") for c in row[max_columns:]
                ):
                    msg = f"列数超过上限 {max_columns}"
                    raise _fail(filename, msg)  # noqa: TRY301 - re-raised as is below
                rows.append([_xlsx_cell_text(c, epoch) for c in row[:max_columns]])
                if len(rows) > max_rows + HEADER_SCAN_ROWS:
                    msg = f"行数超过上限 {max_rows:,}"
                    raise _fail(filename, msg)  # noqa: TRY301 - re-raised as is below
        except ImportFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - malformed sheet XML
            msg = f"工作表「{chosen}」内容损坏: {type(exc).__name__}: {exc}"
            raise _fail(filename, msg) from None
        sheet_path = getattr(ws, "_worksheet_path", None)
    finally:
        wb.close()
    unevaluated = {}
    if _has_formulas(data):
        unevaluated = _unevaluated_formulas(data, chosen, rows, max_columns)
    merged = merged_ranges(data, sheet_path) if sheet_path else []
    return rows, chosen, notes, unevaluated, merged


def _sheet_with_header(
    wb: Any,  # noqa: ANN401 - an openpyxl read-only workbook
    names: list[str],
    is_known: Callable[[str], bool],
) -> str | None:
    """Name of the first sheet with a row of two known column names, or None."""
    for name in names:
        ws = wb[name]
        ws.reset_dimensions()
        for row in ws.iter_rows(max_row=HEADER_SCAN_ROWS, values_only=True):
            cells = [str(v).strip() for v in row[:MAX_COLUMNS] if v not in (None, "")]
            if sum(1 for c in cells if is_known(c)) >= 2:  # noqa: PLR2004 - as find_header_row
                return name
    return None


def _rows_from_xls(
    data: bytes, filename: str, sheet: str | None, max_rows: int
) -> tuple[
    list[list[str]], str, list[str], dict[tuple[int, int], tuple[str, str]], list[MergedRange]
]:
    try:
        import xlrd  # type: ignore[import-not-found]  # noqa: PLC0415 - optional dependency
    except ImportError:
        msg = (
            "这是旧版 Excel (.xls) 文件；请在 Excel/WPS 中另存为 .xlsx 或 CSV 后再导入"
            "（或由管理员安装可选组件以直接读取：pip install 'riskmap[xls]'）"
        )
        raise _fail(filename, msg) from None
    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
        names = book.sheet_names()
        chosen = names[0] if sheet is None else sheet
        if chosen not in names:
            msg = f"没有名为「{sheet}」的工作表；现有: {'、'.join(names)}"
            raise _fail(filename, msg)  # noqa: TRY301 - re-raised as is below
        ws = book.sheet_by_name(chosen)
        if ws.nrows > max_rows + HEADER_SCAN_ROWS:
            msg = f"行数超过上限 {max_rows:,}"
            raise _fail(filename, msg)  # noqa: TRY301 - re-raised as is below
        rows = [
            [_cell_text(_xls_value(c, book.datemode, xlrd)) for c in ws.row(r)]
            for r in range(ws.nrows)
        ]
    except ImportFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - xlrd raises many types for bad files
        msg = f"无法读取 XLS 文件: {type(exc).__name__}: {exc}"
        raise _fail(filename, msg) from None
    return rows, chosen, [], {}, []


def _xls_value(cell: object, datemode: int, xlrd: object) -> object:
    ctype = getattr(cell, "ctype", 0)
    value = getattr(cell, "value", None)
    if ctype == 3:  # noqa: PLR2004 - XL_CELL_DATE
        return xlrd.xldate.xldate_as_datetime(value, datemode)  # type: ignore[attr-defined]
    if ctype == 0:
        return None
    return value
