r"""Uploaded bytes → a table of text cells (CSV/TXT, XLSX, XLS). Pure: no file is opened here.

`read_table` works on the raw bytes of a file (read by `riskmap.io.read_import_bytes` or
received from an upload) so the CLI and the app share one reader. The format is sniffed
from the content, never trusted from the extension: ZIP magic ``PK\\x03\\x04`` → XLSX, OLE
magic → XLS (needs the optional ``xlrd``), anything else → delimited text.

Every cell comes back as text (``dtype=str``; blank = ``""``), so codes keep their leading
zeros (``001``) and 12-digit township codes never become ``500229001000.0``.

Delimited text is parsed by Arrow's CSV reader (C++, all cells as strings) when the file is
regular (every row the same number of fields, no blank line in a multi-column file, no
field over `csv.field_size_limit`); on anything else Arrow refuses, and Python's `csv`
module reads the file exactly as before. Both give the same cells (differential fuzzing:
``tests/test_inputs.py``). Columns are kept as Arrow strings (`RawTable.cells`); the object
frame is built only when asked for.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import charset_normalizer
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from riskmap import cells as tc
from riskmap.errors import ImportFileError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

MAX_ROWS = 1_000_000
"""Default cap on data rows per file."""
MAX_COLUMNS = 200
"""Default cap on columns per file."""
MAX_XLSX_UNCOMPRESSED = 200 * 1024 * 1024
"""Default cap (bytes) on the uncompressed size of an XLSX archive: zip-bomb guard."""
MAX_XLSX_CELLS = 30_000_000
"""Default cap on the cells of all worksheets of an XLSX (counted before parsing)."""
MAX_XLSX_ROW_CELLS = 16_384
"""Cap on the cells of one worksheet row (Excel's own column limit, XFD)."""
UNPRINTABLE_MAX = 0.05
"""Largest share of control/unassigned characters in decoded text before it counts as binary."""
HEADER_SCAN_ROWS = 30
"""How many leading rows are searched for the header row (title rows above it are skipped)."""
MAX_COLUMNS_PARSED = 1000
"""Files with more fields per row than this are left to the `csv` reader (then refused)."""

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
DELIMITERS = ",;\t|"

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_NUMERIC_RE = re.compile(r"^[\s+\-]*[\d.,]+\s*$")
_ZERO_FORMAT_RE = re.compile(r"^0+$")


@dataclass
class RawTable:
    """
    A table read from a file, all cells as text.

    Attributes
    ----------
    cells
        Data rows below the header, one column per header, in file order: ``{header: Arrow
        string array}`` (blank cell = ``""``, never missing); headers are the header texts
        (NFC, stripped; blank headers become ``列<letter>``; repeats get ``_2``, ``_3``).
        Fully blank rows are dropped (see `rows`). `frame` is the same as a DataFrame.
    rows
        Row number of each data row as the user sees it in Excel (1-based), same length.
    encoding
        Detected text encoding (``"utf-8"``, ``"utf-8-sig"``, ``"gb18030"``, …), or ``""`` for
        spreadsheets.
    delimiter
        Sniffed field separator for text files, ``""`` for spreadsheets.
    sheet
        Sheet read (spreadsheets), else ``""``.
    header_row
        1-based row number of the header row.
    fmt
        ``"csv"``, ``"xlsx"`` or ``"xls"``.
    notes
        Chinese notes on what the reader did (title rows skipped, blank rows dropped, …).
    """

    cells: dict[str, tc.Column]
    rows: list[int]
    encoding: str = ""
    delimiter: str = ""
    sheet: str = ""
    header_row: int = 1
    fmt: str = "csv"
    notes: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """The headers, in file order."""
        return list(self.cells)

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The cells as a DataFrame, ``dtype=object`` of ``str`` (built on first use)."""
        return pd.DataFrame(
            {h: tc.to_object(c) for h, c in self.cells.items()},
            columns=list(self.cells),
            index=pd.RangeIndex(len(self.rows)),
            dtype=object,
        )


def _fail(filename: str, why: str) -> ImportFileError:
    return ImportFileError(f"{filename}: {why}")


def decode_text(data: bytes, filename: str) -> tuple[str, str]:
    """
    Decode a text file: BOM, then strict UTF-8, then GB18030, then charset-normalizer.

    UTF-8 is tried before GB18030 because GB18030 decodes most UTF-8 bytes silently into
    mojibake; GB18030 (a superset of GBK/GB2312) covers files saved by Excel/WPS on Chinese
    Windows, including characters GBK lacks (㙟).

    Returns
    -------
    text, encoding
        The decoded text (BOM removed) and the encoding name reported to the user.

    Raises
    ------
    ImportFileError
        When no encoding decodes the bytes or the text holds NUL characters (a binary file).
    """
    text: str | None = None
    encoding = ""
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                text, encoding = data.decode(name), name
            except UnicodeDecodeError:
                msg = f"文件以 {name} BOM 开头，但内容无法按 {name} 解码"
                raise _fail(filename, msg) from None
            text = text.removeprefix("\ufeff")
            break
    if text is None and b"\x00" in data[:8192]:
        raise _fail(filename, "文件含二进制内容（不是 CSV 文本，也不是 Excel 文件）")
    if text is None:
        for name in ("utf-8", "gb18030"):
            try:
                text, encoding = data.decode(name), name
                break
            except UnicodeDecodeError:
                continue
    if text is None:
        best = charset_normalizer.from_bytes(data).best()
        if best is None:
            raise _fail(filename, "无法识别文件编码（不是 UTF-8/GB18030 文本，也不是 Excel 文件）")
        text, encoding = str(best), str(best.encoding)
    if "\x00" in text or _unprintable_share(text[:8192]) > UNPRINTABLE_MAX:
        raise _fail(filename, "文件含二进制内容（不是 CSV 文本，也不是 Excel 文件）")
    return text, encoding


def _unprintable_share(text: str) -> float:
    """Share of control / unassigned / private-use characters (tab and newlines allowed)."""
    if not text:
        return 0.0
    bad = sum(
        1
        for ch in text
        if ch not in "\t\r\n" and unicodedata.category(ch) in {"Cc", "Cn", "Co", "Cs"}
    )
    return bad / len(text)


def sniff_delimiter(text: str) -> str:
    """
    Guess the field separator among ``, ; TAB |``.

    `csv.Sniffer` is tried on the first lines; when it fails, the candidate giving the most
    lines with the same (> 1) field count wins. A ``;`` file with decimal commas
    (``108,6640;31,9460``) is recognised because ``;`` splits every line consistently.

    Returns
    -------
    delimiter
        One character; ``","`` when nothing better is found.
    """
    sample = "\n".join(text.splitlines()[:50])
    best, best_score = ",", (0, 0)
    for cand in DELIMITERS:
        try:
            counts = [
                len(row)
                for row in csv.reader(io.StringIO(sample), delimiter=cand)
                if any(c.strip() for c in row)
            ]
        except csv.Error:  # e.g. a field over csv.field_size_limit(): not this separator
            continue
        if not counts:
            continue
        common = max(set(counts), key=counts.count)
        if common < 2:  # noqa: PLR2004
            continue
        score = (counts.count(common), common)
        # Prefer the separator that splits the most lines consistently; a decimal comma
        # inside ';'-separated rows gives ',' a larger but inconsistent field count.
        if score > best_score:
            best, best_score = cand, score
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return best
    if sniffed != best and best_score[0] > 0:
        return best
    return sniffed


def _rows_from_text(text: str, delimiter: str, max_rows: int, filename: str) -> list[list[str]]:
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            rows.append(row)
            if len(rows) > max_rows + HEADER_SCAN_ROWS:
                msg = f"行数超过上限 {max_rows:,}"
                raise _fail(filename, msg)
    except csv.Error as exc:
        msg = f"CSV 格式错误（第 {reader.line_num} 行附近）: {exc}"
        raise _fail(filename, msg) from None
    return rows


def _columns_from_text(text: str, delimiter: str) -> list[pa.ChunkedArray] | None:
    """
    Parse delimited text with Arrow's CSV reader: every row as strings, header row included.

    Returns None when Arrow refuses the file (rows of different lengths, a blank line in a
    multi-column file, unterminated quotes, …) or a field is longer than Python's
    `csv.field_size_limit`: the caller then reads it with `csv` (same cells, or its error).
    Quoting follows the `csv` defaults (``"``, doubled ``""`` inside quotes, line breaks
    inside quotes kept, text after a closing quote appended).
    """
    try:
        buffer = pa.py_buffer(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None
    read = pa_csv.ReadOptions(autogenerate_column_names=True, use_threads=True)
    parse = pa_csv.ParseOptions(
        delimiter=delimiter,
        quote_char='"',
        double_quote=True,
        escape_char=False,
        newlines_in_values=True,
        ignore_empty_lines=False,
    )
    # Autogenerated names are f0, f1, …; type every possible one as text (no inference).
    convert = pa_csv.ConvertOptions(
        column_types={f"f{i}": pa.string() for i in range(MAX_COLUMNS_PARSED)},
        null_values=[],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        check_utf8=False,
    )
    try:
        table = pa_csv.read_csv(buffer, read, parse, convert)
    except (pa.ArrowException, ValueError):
        return None
    columns = table.columns
    if table.num_columns > MAX_COLUMNS_PARSED or any(c.type != pa.string() for c in columns):
        return None
    limit = csv.field_size_limit()
    if len(text) >= limit and any(
        (pc.max(pc.utf8_length(c)).as_py() or 0) >= limit for c in columns
    ):
        return None  # csv raises "field larger than field limit"
    return columns


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


def _rows_from_xlsx(
    data: bytes,
    filename: str,
    sheet: str | None,
    max_rows: int,
    max_uncompressed: int,
    max_columns: int = MAX_COLUMNS,
) -> tuple[list[list[str]], str, list[str]]:
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
                notes.append(f"工作簿有 {len(names)} 个工作表，读取第一个「{chosen}」")
        elif sheet in names:
            chosen = sheet
        else:
            msg = f"没有名为「{sheet}」的工作表；现有: {'、'.join(names)}"
            raise _fail(filename, msg)
        ws = wb[chosen]
        rows: list[list[str]] = []
        try:
            for row in ws.iter_rows():
                if len(row) > max_columns and any(
                    getattr(c, "value", None) not in (None, "") for c in row[max_columns:]
                ):
                    msg = f"列数超过上限 {max_columns}"
                    raise _fail(filename, msg)  # noqa: TRY301 - re-raised as is below
                rows.append(
                    [
                        _cell_text(c.value, getattr(c, "number_format", "") or "")
                        for c in row[:max_columns]
                    ]
                )
                if len(rows) > max_rows + HEADER_SCAN_ROWS:
                    msg = f"行数超过上限 {max_rows:,}"
                    raise _fail(filename, msg)  # noqa: TRY301 - re-raised as is below
        except ImportFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - malformed sheet XML
            msg = f"工作表「{chosen}」内容损坏: {type(exc).__name__}: {exc}"
            raise _fail(filename, msg) from None
    finally:
        wb.close()
    return rows, chosen, notes


def _rows_from_xls(
    data: bytes, filename: str, sheet: str | None, max_rows: int
) -> tuple[list[list[str]], str, list[str]]:
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
    return rows, chosen, []


def _xls_value(cell: object, datemode: int, xlrd: object) -> object:
    ctype = getattr(cell, "ctype", 0)
    value = getattr(cell, "value", None)
    if ctype == 3:  # noqa: PLR2004 - XL_CELL_DATE
        return xlrd.xldate.xldate_as_datetime(value, datemode)  # type: ignore[attr-defined]
    if ctype == 0:
        return None
    return value


def find_header_row(rows: list[list[str]], is_known: Callable[[str], bool]) -> int:
    """
    Find the header row below any title rows.

    Parameters
    ----------
    rows
        Leading rows of the table (text cells).
    is_known
        Returns True for a cell that is a known column name (``经度``, ``名称``, …).

    Returns
    -------
    index
        0-based index of the first row with ≥ 2 non-empty cells that are known column names;
        else of the first row with ≥ 2 non-empty cells, most of them text (not numbers);
        else 0.
    """
    scan = rows[:HEADER_SCAN_ROWS]
    for i, row in enumerate(scan):
        if sum(1 for c in row if c.strip() and is_known(c)) >= 2:  # noqa: PLR2004
            return i
    for i, row in enumerate(scan):
        filled = [c for c in row if c.strip()]
        text = [c for c in filled if not _NUMERIC_RE.match(unicodedata.normalize("NFKC", c))]
        if len(filled) >= 2 and len(text) * 2 > len(filled):  # noqa: PLR2004
            return i
    return 0


def _column_letter(i: int) -> str:
    letters = ""
    i += 1
    while i:
        i, rem = divmod(i - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _unique_headers(cells: Iterable[str]) -> list[str]:
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, cell in enumerate(cells):
        name = unicodedata.normalize("NFC", cell).strip().removeprefix("\ufeff").strip()
        name = name or f"列{_column_letter(i)}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        out.append(name)
    return out


def read_table(
    data: bytes,
    filename: str,
    *,
    sheet: str | None = None,
    is_known: Callable[[str], bool] | None = None,
    max_rows: int = MAX_ROWS,
    max_columns: int = MAX_COLUMNS,
    max_uncompressed: int = MAX_XLSX_UNCOMPRESSED,
) -> RawTable:
    """
    Read uploaded bytes into a table of text cells.

    Parameters
    ----------
    data
        The whole file content.
    filename
        Name shown in messages (the extension is not trusted: the content is sniffed).
    sheet
        Worksheet name for spreadsheets; None = the first sheet (noted when there are more).
    is_known
        Header recogniser for `find_header_row`; default: any non-numeric text.
    max_rows, max_columns
        Caps on data rows and columns (default 1,000,000 and 200).
    max_uncompressed
        Cap in bytes on an XLSX archive's uncompressed size (zip-bomb guard; default 200 MiB).

    Returns
    -------
    table
        `RawTable` with every cell as text.

    Raises
    ------
    ImportFileError
        When the file cannot be read: empty, binary, undecodable, malformed CSV/XLSX, missing
        sheet, over a cap. The message names the file and says why, in Chinese.
    """
    notes: list[str] = []
    encoding = delimiter = chosen = ""
    columns: list[tc.Column] | None = None
    if not data.strip():
        raise _fail(filename, "文件为空")
    if data.startswith(ZIP_MAGIC):
        fmt = "xlsx"
        rows, chosen, notes = _rows_from_xlsx(
            data, filename, sheet, max_rows, max_uncompressed, max_columns
        )
    elif data.startswith(OLE_MAGIC):
        fmt = "xls"
        rows, chosen, notes = _rows_from_xls(data, filename, sheet, max_rows)
    else:
        fmt = "csv"
        text, encoding = decode_text(data, filename)
        delimiter = sniff_delimiter(text)
        columns = _columns_from_text(text, delimiter)  # fast Arrow path, or None
        if columns is None:
            rows = _rows_from_text(text, delimiter, max_rows, filename)
    if columns is None:
        columns = _columns_from_rows(rows, filename, max_columns)
    return _table_from_columns(
        columns,
        filename,
        is_known=is_known,
        max_rows=max_rows,
        max_columns=max_columns,
        meta={"encoding": encoding, "delimiter": delimiter, "fmt": fmt, "sheet": chosen},
        notes=notes,
    )


def _columns_from_rows(
    rows: list[list[str]], filename: str, max_columns: int
) -> list[tc.Column]:
    """Rows of text cells (csv module, openpyxl, xlrd) → one text column per field."""
    width = max((len(r) for r in rows), default=0)
    while width and not any(len(r) >= width and r[width - 1].strip() for r in rows):
        width -= 1  # trailing empty columns (Excel pads rows)
    if width == 0:
        raise _fail(filename, "文件没有任何数据")
    if width > max_columns:
        msg = f"列数 {width} 超过上限 {max_columns}"
        raise _fail(filename, msg)
    rows = [(r + [""] * (width - len(r)))[:width] for r in rows]
    return [tc.text_column([r[j] for r in rows]) for j in range(width)]


def _table_from_columns(
    columns: list[tc.Column],
    filename: str,
    *,
    is_known: Callable[[str], bool] | None,
    max_rows: int,
    max_columns: int,
    meta: dict[str, str],
    notes: list[str] | None = None,
) -> RawTable:
    """Columns of every row (title, header and data rows, same length) → `RawTable`."""
    notes = list(notes or [])
    n_all = len(columns[0]) if columns else 0
    if n_all > max_rows + HEADER_SCAN_ROWS:
        msg = f"行数超过上限 {max_rows:,}"
        raise _fail(filename, msg)
    has_text = [tc.filled(c) for c in columns]
    width = len(columns)
    while width and not has_text[width - 1].any():
        width -= 1  # trailing empty columns (Excel pads rows)
    if width == 0:
        raise _fail(filename, "文件没有任何数据")
    if width > max_columns:
        msg = f"列数 {width} 超过上限 {max_columns}"
        raise _fail(filename, msg)
    columns, has_text = columns[:width], has_text[:width]
    head = [tc.to_object(c[:HEADER_SCAN_ROWS]).tolist() for c in columns]
    scan = [list(r) for r in zip(*head, strict=True)]
    known = is_known or (lambda c: not _NUMERIC_RE.match(c))
    header_idx = find_header_row(scan, known)
    if header_idx:
        notes.append(f"跳过表头上方 {header_idx} 行（标题行），第 {header_idx + 1} 行为列名")
    headers = _unique_headers(scan[header_idx])
    n_body = n_all - header_idx - 1
    keep = np.logical_or.reduce(has_text)[header_idx + 1 :]
    n_keep = int(keep.sum())
    if n_keep < n_body:
        notes.append(f"跳过 {n_body - n_keep} 个空行")
    if n_keep > max_rows:
        msg = f"数据行数 {n_keep:,} 超过上限 {max_rows:,}"
        raise _fail(filename, msg)
    numbers = np.arange(header_idx + 2, header_idx + 2 + n_body)[keep].tolist()
    cells: dict[str, tc.Column] = {}
    for h, c in zip(headers, columns, strict=True):
        body = c[header_idx + 1 :]
        if n_keep < n_body:
            body = body[keep] if isinstance(body, np.ndarray) else body.filter(pa.array(keep))
        cells[h] = body
    return RawTable(
        cells=cells,
        rows=numbers,
        encoding=meta.get("encoding", ""),
        delimiter=meta.get("delimiter", ""),
        sheet=meta.get("sheet", ""),
        header_row=header_idx + 1,
        fmt=meta.get("fmt", "csv"),
        notes=notes,
    )
