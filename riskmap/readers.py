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
import io
import re
import unicodedata
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
from riskmap.workbooks import (  # noqa: F401 - the workbook readers and their caps, re-exported
    CJK_DATE_FORMAT_IDS,
    CJK_TIME_FORMAT_IDS,
    HEADER_SCAN_ROWS,
    MAX_COLUMNS,
    MAX_XLSX_CELLS,
    MAX_XLSX_ROW_CELLS,
    MAX_XLSX_UNCOMPRESSED,
    MergedRange,
    _column_letter,
    _prescan_xlsx,
    _rows_from_xls,
    _rows_from_xlsx,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

MAX_ROWS = 1_000_000
"""Default cap on data rows per file."""
UNPRINTABLE_MAX = 0.05
"""Largest share of control/unassigned characters in decoded text before it counts as binary."""
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

INVISIBLE_RE = r"\p{Cf}"
"""Unicode format characters (category Cf: ZWSP U+200B, ZWJ, LRM/RLM, BOM U+FEFF, soft hyphen…)."""
NBSP_RE = r" *[\x{00A0}\x{2007}\x{202F}]+ *"
"""No-break spaces (NBSP, figure space, narrow NBSP), with the ordinary spaces beside them:
one ordinary space (``"高楠镇 \u00a0方斗村"`` → ``"高楠镇 方斗村"``, not two spaces)."""
_NBSP_PY = re.compile(r" *[\u00a0\u2007\u202f]+ *")


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
        Chinese notes on what the reader did (title rows skipped, blank rows dropped,
        invisible characters removed, …).
    unevaluated
        ``{(row number, header): (cell reference, formula)}`` for formula cells with no
        cached result (a file written by a program and never opened in a spreadsheet); the
        cell text is blank, and the importer names the cell and formula instead of "为空".
    cleaned
        ``{header: [row numbers]}`` of cells from which invisible characters were removed.
    """

    cells: dict[str, tc.Column]
    rows: list[int]
    encoding: str = ""
    delimiter: str = ""
    sheet: str = ""
    header_row: int = 1
    fmt: str = "csv"
    notes: list[str] = field(default_factory=list)
    unevaluated: dict[tuple[int, str], tuple[str, str]] = field(default_factory=dict)
    cleaned: dict[str, list[int]] = field(default_factory=dict)

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
        if "field larger than field limit" in str(exc):
            limit = csv.field_size_limit()
            msg = (
                f"第 {reader.line_num} 行附近有单元格超过 {limit:,} 个字符的上限，文件未导入；"
                '请检查该行（常见于误粘贴的大段文字或缺少配对的引号 "）'
            )
        else:
            msg = f"CSV 格式错误（第 {reader.line_num} 行附近，{exc}）：请检查引号和分隔符"
        raise _fail(filename, msg) from None
    return rows


def _columns_from_text(
    text: str, delimiter: str, filename: str = ""
) -> list[pa.ChunkedArray] | None:
    """
    Parse delimited text with Arrow's CSV reader: every row as strings, header row included.

    Returns None when Arrow refuses the file (rows of different lengths, a blank line in a
    multi-column file, unterminated quotes, …) or a field is longer than Python's
    `csv.field_size_limit`: that raises `ImportFileError` naming the row and column (in
    Chinese, with the limit). The caller reads a refused file with `csv` (same cells, or
    its error).
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
    if len(text) >= limit:
        for j, c in enumerate(columns):
            lengths = pc.utf8_length(c)
            if (pc.max(lengths).as_py() or 0) >= limit:
                i = pc.index(pc.greater_equal(lengths, limit), True).as_py()
                raise _huge_cell(filename, i + 1, j, c[0].as_py(), limit)
    return columns


def _huge_cell(filename: str, row: int, col: int, header: str, limit: int) -> ImportFileError:
    """Build the error for a cell over `csv.field_size_limit` characters (row and column)."""
    name = f"「{header.strip()[:20]}」" if header and header.strip() else ""
    msg = (
        f"第 {row} 行第 {col + 1} 列{name}的单元格超过 {limit:,} 个字符的上限，"
        "文件未导入；请检查该单元格（常见于误粘贴的大段文字），删减后再导入"
    )
    return _fail(filename, msg)


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
    unevaluated: dict[tuple[int, int], tuple[str, str]] = {}
    merged: list[MergedRange] = []
    if not data.strip():
        raise _fail(filename, "文件为空")
    if data.startswith(ZIP_MAGIC):
        fmt = "xlsx"
        rows, chosen, notes, unevaluated, merged = _rows_from_xlsx(
            data, filename, sheet, max_rows, max_uncompressed, max_columns, is_known
        )
    elif data.startswith(OLE_MAGIC):
        fmt = "xls"
        rows, chosen, notes, unevaluated, merged = _rows_from_xls(data, filename, sheet, max_rows)
    else:
        fmt = "csv"
        text, encoding = decode_text(data, filename)
        delimiter = sniff_delimiter(text)
        columns = _columns_from_text(text, delimiter, filename)  # fast Arrow path, or None
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
        unevaluated=unevaluated,
        merged=merged,
    )


def _check_width(width: int, filename: str, max_columns: int) -> None:
    """Refuse a table with no filled column, or with more than `max_columns` of them."""
    if width == 0:
        raise _fail(filename, "文件没有任何数据")
    if width > max_columns:
        msg = f"列数 {width} 超过上限 {max_columns}"
        raise _fail(filename, msg)


def _columns_from_rows(rows: list[list[str]], filename: str, max_columns: int) -> list[tc.Column]:
    """Rows of text cells (csv module, openpyxl, xlrd) → one text column per field."""
    width = max((len(r) for r in rows), default=0)
    while width and not any(len(r) >= width and r[width - 1].strip() for r in rows):
        width -= 1  # trailing empty columns (Excel pads rows)
    _check_width(width, filename, max_columns)
    rows = [(r + [""] * (width - len(r)))[:width] for r in rows]
    return [tc.text_column([r[j] for r in rows]) for j in range(width)]


def _drop_format_chars(text: str) -> str:
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def remove_invisible(column: tc.Column) -> tuple[tc.Column, np.ndarray]:
    """
    Remove invisible format characters from every cell of a text column.

    Unicode category Cf (zero-width space U+200B, word joiner, LRM/RLM, BOM U+FEFF, soft
    hyphen, …) is deleted; no-break spaces (U+00A0, U+2007, U+202F) become ordinary spaces
    (then trimmed like any space). These come with text pasted from web pages and chat apps
    and make ``108.6640`` unreadable as a number or ``DZ-1`` a different code.

    Returns
    -------
    column, changed
        The cleaned column (same type and length) and a boolean mask of changed cells.
    """
    if isinstance(column, np.ndarray):
        out = np.array(
            [_NBSP_PY.sub(" ", _drop_format_chars(v)) if isinstance(v, str) else v for v in column],
            dtype=object,
        )
        changed = np.array([a is not b and a != b for a, b in zip(out, column, strict=True)])
        return out, changed.astype(bool)
    pattern = f"{INVISIBLE_RE}|{NBSP_RE}"
    hit = pc.fill_null(pc.match_substring_regex(column, pattern), fill_value=False)
    changed = np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)
    if not changed.any():
        return column, changed
    cleaned = pc.replace_substring_regex(column, INVISIBLE_RE, "")
    cleaned = pc.replace_substring_regex(cleaned, NBSP_RE, " ")
    return cleaned, changed


def merge_header_rows(
    upper: list[str],
    lower: list[str],
    is_known: Callable[[str], bool],
    *,
    grouped: bool = True,
) -> list[str] | None:
    """
    Combine a two-row header (a group title merged over sub-columns), or None.

    The row below the header row continues it when it has at least one known column name,
    no number, and fewer filled cells than columns (the other cells are covered by
    vertically merged titles above). Each column then takes its lower cell when filled,
    else its upper cell: ``坐标`` merged over ``经度``/``纬度`` gives ``经度``, ``纬度``.

    A group title covers the blank upper cells to its right (a horizontally merged cell
    keeps its text in the first cell only). When the group title joined to the sub-column
    name is a known column, that name is used: ``威胁对象`` over ``户数``/``人数`` gives
    ``威胁户数``/``威胁人数`` (the group is tried whole, then shortened from the end to two
    characters), so the sub-columns are not mistaken for other fields nor reported missing.
    `grouped` False (no catalog to tell known names) turns this off.
    """
    filled = [c for c in lower if c.strip()]
    if not filled or len(filled) == len(lower):
        return None
    if any(_NUMERIC_RE.match(unicodedata.normalize("NFKC", c)) for c in filled):
        return None
    groups = _group_titles(upper, lower) if grouped else [""] * len(lower)
    if not any(is_known(c) for c in filled) and not any(
        _grouped_name(g, c, is_known) for g, c in zip(groups, lower, strict=True) if c.strip()
    ):
        return None
    out = []
    for up, group, lo in zip(upper, groups, lower, strict=True):
        if not lo.strip():
            out.append(up)
            continue
        out.append(_grouped_name(group, lo, is_known) or lo)
    return out


def _group_titles(upper: list[str], lower: list[str]) -> list[str]:
    """Group title over each column: the upper cell, or the last one to its left when blank."""
    out, current = [], ""
    for up, lo in zip(upper, lower, strict=True):
        if up.strip():
            current = up.strip()
        elif not lo.strip():
            current = ""
        out.append(current if lo.strip() else up)
    return out


def _grouped_name(group: str, sub: str, is_known: Callable[[str], bool]) -> str | None:
    """``group + sub`` (group shortened from the end, ≥ 2 chars) when that is a known name."""
    group, sub = group.strip(), sub.strip()
    for end in range(len(group), 1, -1):
        name = group[:end] + sub
        if is_known(name):
            return name
    return None


def _locate_header(
    scan: list[list[str]], is_known: Callable[[str], bool] | None, notes: list[str]
) -> tuple[int, list[str], int]:
    """Header row index (0-based), its cells (two rows combined) and how many rows it takes."""
    known = is_known or (lambda c: not _NUMERIC_RE.match(c))
    header_idx = find_header_row(scan, known)
    if header_idx:
        notes.append(f"跳过表头上方 {header_idx} 行（标题行），第 {header_idx + 1} 行为列名")
    if header_idx + 1 < len(scan):
        merged = merge_header_rows(
            scan[header_idx], scan[header_idx + 1], known, grouped=is_known is not None
        )
        if merged is not None:
            notes.append(
                f"列名占两行（第 {header_idx + 1}–{header_idx + 2} 行，合并单元格），"
                "已按下一行的子列名合并"
            )
            return header_idx, merged, 2
    return header_idx, scan[header_idx], 1


SUMMARY_ROW_RE = (
    r"^\s*(?:(?:合|小|总)\s*计|共\s*计)\s*[:：]?\s*$"
    r"|^\s*(?:备\s*注|注|说\s*明|填表说明|填表人|制表人|审核人)\s*[:：]"
    r"|^\s*(?:填表说明|注\s*[0-9一二三四五六七八九十]+\s*[.、：:])"
)
"""First cell of a row that is not data: 合计/小计/总计 rows and notes (备注:, 注:, 填表说明)."""


def _summary_rows(
    columns: list[tc.Column], has_text: list[np.ndarray], first_body: int, notes: list[str]
) -> np.ndarray:
    """
    Mask of body rows whose first filled cell marks a summary or note row; one note each.

    A 合计 row sums the columns above it and a 备注:/填表说明 row is text for people: read as
    data they give 2–5 errors each (no coordinates, not a number). They are skipped with one
    提示 naming the row wherever they are (end of the table or between data rows).
    """
    n_body = len(has_text[0]) - first_body if has_text else 0
    out = np.zeros(n_body, dtype=bool)
    if n_body <= 0:
        return out
    filled = np.vstack([h[first_body:] for h in has_text])
    first = np.where(filled.any(axis=0), filled.argmax(axis=0), -1)
    for j in np.unique(first[first >= 0]):
        rows = first == j
        body = columns[j][first_body:]
        if isinstance(body, np.ndarray):
            hit = np.array(
                [isinstance(v, str) and re.search(SUMMARY_ROW_RE, v) is not None for v in body]
            )
        else:
            match = pc.match_substring_regex(body, SUMMARY_ROW_RE)
            hit = np.asarray(pc.fill_null(match, fill_value=False).to_numpy(zero_copy_only=False))
        out |= rows & hit.astype(bool)
    for i in np.flatnonzero(out):
        cell = tc.to_object(columns[int(first[i])][first_body + i : first_body + i + 1])[0]
        short = cell.strip()[:20]
        kind = "合计行" if re.search(r"计", short[:4]) else "说明行"
        notes.append(f"第 {first_body + i + 1} 行是{kind}（「{short}」），不是隐患点数据，已跳过")
    return out


def _cleaned_note(cleaned: dict[str, list[int]]) -> str:
    """Say where invisible characters were removed (first 10 rows of each column)."""
    total = sum(len(v) for v in cleaned.values())
    shown = 10
    where = "；".join(
        f"{h}: 第 {'、'.join(map(str, rs[:shown]))}{' 等' if len(rs) > shown else ''} 行"
        for h, rs in cleaned.items()
    )
    return (
        f"已删除 {total} 个单元格中的不可见字符（零宽空格、BOM、不换行空格等，"
        f"常见于从网页或聊天软件复制的文字）: {where}"
    )


def _fill_merged(
    columns: list[tc.Column], merged: list[MergedRange], first_body: int, notes: list[str]
) -> list[tc.Column]:
    """
    Give every cell of a merged range in the data rows the value of its top-left cell.

    A spreadsheet shows a merged 乡镇 or 村 cell beside each row it spans, but stores the value
    only in the first: read as stored, the other rows would lose it. Ranges reaching into the
    header rows are left alone (`merge_header_rows` handles those).
    """
    width, n_all = len(columns), len(columns[0]) if columns else 0
    touched: dict[int, list[str | None]] = {}
    spans = []
    for r0, c0, r1, c1 in merged:
        if r0 < first_body or r0 >= n_all or c0 >= width:
            continue
        source = touched.setdefault(c0, tc.to_object(columns[c0]).tolist())
        value = source[r0]
        if value is None or not str(value).strip():
            continue
        for c in range(c0, min(c1, width - 1) + 1):
            cells = touched.setdefault(c, tc.to_object(columns[c]).tolist())
            for r in range(r0, min(r1, n_all - 1) + 1):
                if cells[r] is None or not str(cells[r]).strip():
                    cells[r] = value
        spans.append(f"{_column_letter(c0)}{r0 + 1}:{_column_letter(c1)}{r1 + 1}")
    for c, cells in touched.items():
        columns[c] = tc.text_column(["" if v is None else v for v in cells])
    if spans:
        shown = "、".join(spans[:10]) + (" 等" if len(spans) > 10 else "")  # noqa: PLR2004
        notes.append(f"合并单元格按其左上角的值填入所跨的每一行: {shown}")
    return columns


def _table_from_columns(
    columns: list[tc.Column],
    filename: str,
    *,
    is_known: Callable[[str], bool] | None,
    max_rows: int,
    max_columns: int,
    meta: dict[str, str],
    notes: list[str] | None = None,
    unevaluated: dict[tuple[int, int], tuple[str, str]] | None = None,
    merged: list[MergedRange] | None = None,
) -> RawTable:
    """Columns of every row (title, header and data rows, same length) → `RawTable`."""
    notes = list(notes or [])
    n_all = len(columns[0]) if columns else 0
    if n_all > max_rows + HEADER_SCAN_ROWS:
        msg = f"行数超过上限 {max_rows:,}"
        raise _fail(filename, msg)
    changed_masks = []
    for j, column in enumerate(columns):
        columns[j], changed = remove_invisible(column)
        changed_masks.append(changed)
    has_text = [tc.filled(c) for c in columns]
    width = len(columns)
    while width and not has_text[width - 1].any():
        width -= 1  # trailing empty columns (Excel pads rows)
    _check_width(width, filename, max_columns)
    columns, has_text = columns[:width], has_text[:width]
    head = [tc.to_object(c[:HEADER_SCAN_ROWS]).tolist() for c in columns]
    scan = [["" if v is None else v for v in r] for r in zip(*head, strict=True)]
    header_idx, header_cells, header_rows = _locate_header(scan, is_known, notes)
    headers = _unique_headers(header_cells)
    first_body = header_idx + header_rows
    if merged:
        columns = _fill_merged(columns, merged, first_body, notes)
        has_text = [tc.filled(c) for c in columns]
    n_body = n_all - first_body
    keep = np.logical_or.reduce(has_text)[first_body:]
    n_blank = n_body - int(keep.sum())
    if n_blank:
        notes.append(f"跳过 {n_blank} 个空行")
    keep &= ~_summary_rows(columns, has_text, first_body, notes)
    n_keep = int(keep.sum())
    if n_keep > max_rows:
        msg = f"数据行数 {n_keep:,} 超过上限 {max_rows:,}"
        raise _fail(filename, msg)
    all_numbers = np.arange(first_body + 1, first_body + 1 + n_body)
    numbers = all_numbers[keep].tolist()
    cells: dict[str, tc.Column] = {}
    cleaned: dict[str, list[int]] = {}
    for h, c, changed in zip(headers, columns, changed_masks[:width], strict=True):
        body = c[first_body:]
        if n_keep < n_body:
            body = body[keep] if isinstance(body, np.ndarray) else body.filter(pa.array(keep))
        cells[h] = body
        if changed[first_body:].any():
            cleaned[h] = all_numbers[changed[first_body:] & keep].tolist()
    if cleaned:
        notes.append(_cleaned_note(cleaned))
    uneval: dict[tuple[int, str], tuple[str, str]] = {}
    for (i, j), item in (unevaluated or {}).items():
        if i >= first_body and j < width:
            uneval[(i + 1, headers[j])] = item
    return RawTable(
        cells=cells,
        rows=numbers,
        encoding=meta.get("encoding", ""),
        delimiter=meta.get("delimiter", ""),
        sheet=meta.get("sheet", ""),
        header_row=header_idx + 1,
        fmt=meta.get("fmt", "csv"),
        notes=notes,
        unevaluated=uneval,
        cleaned=cleaned,
    )
