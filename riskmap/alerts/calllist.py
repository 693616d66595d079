"""The call list (叫应表) of a warning: per township, who must be called, and its XLSX/JSON.

Phones and names are masked in public versions (`mask_phone`, `mask_name`).
"""

from __future__ import annotations

import io as _bytes_io
import json
import re
import unicodedata
from typing import TYPE_CHECKING, Any

from riskmap.alerts.common import DUTY_COLLECTION
from riskmap.alerts.totals import response_states, warning_totals

if TYPE_CHECKING:
    from collections.abc import Mapping

    from riskmap.store import Store


# --- the call list (叫应表) -------------------------------------------------------------------

CALL_HEADERS = [
    ("seq", "序号"),
    ("layer_name", "图层"),
    ("uid", "统一编号"),
    ("name", "名称"),
    ("village", "村/社区"),
    ("resp_name", "责任人"),
    ("resp_phone", "联系电话"),
    ("people", "威胁人数(人)"),
    ("households", "威胁户数(户)"),
    ("intersect_ha", "范围内面积(ha)"),
    ("shelter_name", "最近避难场所"),
    ("shelter_distance_m", "直线距离(m)"),
    ("shelter_remaining", "场所剩余容量(人)"),
    ("called_at", "叫应时间"),
    ("moved", "已转移(人)"),
    ("unreachable", "无法联系"),
    ("by", "登记人"),
]
"""Columns of a call-list row: key in `call_list` rows, header in the XLSX."""
MOBILE_RE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
"""A mainland mobile number (11 digits, 13x–19x), masked in public versions."""


def mask_phone(text: str | None) -> str | None:
    """
    Mask a phone number for a public version: ``13900001234`` → ``139****1234``.

    Any other digit run of 7+ (a landline) keeps only its last 4 digits. None stays None.
    """
    if text is None:
        return None
    out = MOBILE_RE.sub(r"\1****\2", text)
    return re.sub(
        r"(?<![\d*])\d{3,}(\d{4})(?!\d)", lambda m: "*" * (len(m.group(0)) - 4) + m.group(1), out
    )


def mask_name(text: str | None) -> str | None:
    """Mask a person's name for a public version: keep the surname, ``王某某`` → ``王**``."""
    if not text:
        return text
    return text[0] + "*" * max(len(text) - 1, 1)


def duty_contacts(store: Store) -> dict[str, dict[str, Any]]:
    """
    Return the township duty contacts (乡镇值班) by 9-digit township code.

    Read from the records collection ``duty_contacts``: objects with ``township_code``,
    ``township``, ``duty_name``, ``duty_phone``, ``duty_office`` (and ``demo``).
    """
    return {
        str(r.get("township_code")): dict(r)
        for r in store.read_records(DUTY_COLLECTION)
        if r.get("township_code")
    }


def call_list(
    record: Mapping[str, Any],
    duties: Mapping[str, Mapping[str, Any]],
    *,
    public: bool = False,
) -> dict[str, Any]:
    """
    Build the call list (叫应表) of a warning: grouped by township, duty contact first.

    Parameters
    ----------
    record
        The warning (`get_warning`).
    duties
        Duty contacts by township code (`duty_contacts`).
    public
        Public version: every phone masked (`mask_phone`) and names reduced to the surname
        (`mask_name`).

    Returns
    -------
    doc
        ``{"id", "level", "type", "valid_from", "valid_to", "status", "public", "demo",
        "totals" (`warning_totals`), "townships": [{"township_code", "township", "duty":
        {"duty_name", "duty_phone", "duty_office"} | None, "totals": {points, people,
        called, moved, unreachable}, "rows": [{key of `CALL_HEADERS`: value}]}]}``; rows
        keep the warning's order (layer, most people first).
    """
    states = response_states(record)
    by_town: dict[str, list[Mapping[str, Any]]] = {}
    names: dict[str, str] = {}
    for p in record.get("points", []):
        code = p.get("township_code") or ""
        by_town.setdefault(code, []).append(p)
        names[code] = p.get("township") or "（未落入乡镇）"
    towns = []
    for code in sorted(by_town):
        rows = []
        for seq, p in enumerate(by_town[code], start=1):
            s = states.get(p["uid"]) or {}
            rows.append(
                {
                    "seq": seq,
                    "layer_name": p.get("layer_name"),
                    "uid": p["uid"],
                    "name": p.get("name"),
                    "village": p.get("village"),
                    "resp_name": mask_name(p.get("resp_name")) if public else p.get("resp_name"),
                    "resp_phone": mask_phone(p.get("resp_phone"))
                    if public
                    else p.get("resp_phone"),
                    "people": int(p.get("people") or 0),
                    "households": int(p.get("households") or 0),
                    "intersect_ha": p.get("intersect_ha"),
                    "shelter_name": p.get("shelter_name"),
                    "shelter_distance_m": p.get("shelter_distance_m"),
                    "shelter_remaining": p.get("shelter_remaining"),
                    "called_at": s.get("called_at"),
                    "moved": s.get("moved"),
                    "unreachable": "是" if s.get("unreachable") else None,
                    "by": (mask_name(s.get("by")) if public else s.get("by")) if s else None,
                }
            )
        duty_raw = duties.get(code)
        duty = None
        if duty_raw:
            duty = {
                "duty_name": mask_name(duty_raw.get("duty_name"))
                if public
                else duty_raw.get("duty_name"),
                "duty_phone": mask_phone(duty_raw.get("duty_phone"))
                if public
                else duty_raw.get("duty_phone"),
                "duty_office": duty_raw.get("duty_office"),
            }
        part = warning_totals({"points": by_town[code], "responses": record.get("responses", [])})
        towns.append(
            {
                "township_code": code or None,
                "township": names[code],
                "duty": duty,
                "totals": {
                    k: part[k] for k in ("points", "people", "called", "moved", "unreachable")
                },
                "rows": rows,
            }
        )
    return {
        "id": record["id"],
        "level": record["level"],
        "type": record["type"],
        "valid_from": record.get("valid_from"),
        "valid_to": record.get("valid_to"),
        "status": record.get("status"),
        "public": public,
        "demo": bool(record.get("demo")),
        "totals": warning_totals(record),
        "townships": towns,
    }


def call_list_json(doc: Mapping[str, Any]) -> bytes:
    """Return the call list as UTF-8 JSON bytes (indented, Chinese kept)."""
    return (json.dumps(doc, ensure_ascii=False, allow_nan=False, indent=1) + "\n").encode()


def call_list_xlsx(doc: Mapping[str, Any], *, county_name: str = "城口县") -> bytes:  # noqa: PLR0915 - one sheet, laid out top to bottom
    """
    Write the call list as a print-ready XLSX workbook (one sheet, A4 landscape).

    Layout: title (级别、类型、编号), a note line (validity, totals, 演示数据/公开版), then per
    township a bold band with the township and its duty contact (值班), the header row and
    the points. Header rows repeat on every printed page; columns fit one page wide; every
    text is written as a text cell (never a formula: OWASP CSV-injection guidance, as the
    township lists do).

    Returns
    -------
    data
        The ``.xlsx`` bytes.
    """
    from openpyxl import Workbook  # noqa: PLC0415 - heavy import kept local
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # noqa: PLC0415
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side  # noqa: PLC0415
    from openpyxl.utils import get_column_letter  # noqa: PLC0415

    from riskmap.exporters import neutralise_cell  # noqa: PLC0415

    wb = Workbook()
    ws = wb.active
    ws.title = "叫应表"
    ncols = len(CALL_HEADERS)
    thin = Side(style="thin", color="999999")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    band_fill = PatternFill("solid", fgColor="FCE4D6")
    head_fill = PatternFill("solid", fgColor="DDEBF7")

    def put(row: int, col: int, value: Any) -> Any:  # noqa: ANN401
        cell = ws.cell(row=row, column=col)
        if value is None:
            return cell
        if isinstance(value, bool):
            value = "是" if value else "否"
        if isinstance(value, (int, float)):
            cell.value = value
            return cell
        cell.value = ILLEGAL_CHARACTERS_RE.sub("", neutralise_cell(str(value)))
        cell.data_type = "s"
        cell.number_format = "@"
        return cell

    totals = doc["totals"]
    flags = []
    if doc.get("public"):
        flags.append("公开版：电话、姓名已隐去")
    if doc.get("demo"):
        flags.append("演示数据")
    title = f"{county_name}{doc['level']}色{doc['type']}预警 叫应表（{doc['id']}）"
    put(1, 1, title).font = Font(bold=True, size=14)
    ws.cell(row=1, column=1).alignment = Alignment(horizontal="center")
    rate = f"{totals['call_rate'] * 100:.0f}%"
    note = (
        f"有效期 {str(doc.get('valid_from'))[:16]} 至 {str(doc.get('valid_to'))[:16]}；"
        f"点位 {totals['points']} 个，威胁 {totals['people']} 人 {totals['households']} 户；"
        f"已叫应 {totals['called']}（叫应率 {rate}），已转移 {totals['moved']} 人，"
        f"无法联系 {totals['unreachable']}"
    )
    put(2, 1, "；".join([note, *flags])).alignment = Alignment(wrap_text=True, vertical="top")
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=ncols)
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=ncols)
    ws.row_dimensions[2].height = 30
    widths = [len(h) * 2 for _, h in CALL_HEADERS]
    row = 4
    first_header = row + 1
    for town in doc["townships"]:
        duty = town.get("duty") or {}
        t = town["totals"]
        band = (
            f"{town['township']}（{town.get('township_code') or '-'}）  值班："
            f"{duty.get('duty_office') or '-'} {duty.get('duty_name') or '-'} "
            f"{duty.get('duty_phone') or '-'}  |  点位 {t['points']} 个，威胁 {t['people']} 人，"
            f"已叫应 {t['called']}，已转移 {t['moved']} 人，无法联系 {t['unreachable']}"
        )
        cell = put(row, 1, band)
        cell.font = Font(bold=True)
        cell.fill = band_fill
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=ncols)
        row += 1
        for col, (_, header) in enumerate(CALL_HEADERS, start=1):
            cell = put(row, col, header)
            cell.font = Font(bold=True)
            cell.fill = head_fill
            cell.border = border
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        row += 1
        for item in town["rows"]:
            for col, (key, _) in enumerate(CALL_HEADERS, start=1):
                value = item.get(key)
                cell = put(row, col, value)
                cell.border = border
                if key == "shelter_distance_m" and value is not None:
                    cell.number_format = "0"
                width = sum(
                    2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(value or "")
                )
                widths[col - 1] = max(widths[col - 1], width)
            row += 1
        row += 1
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = min(max(width + 2, 6), 40)
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.print_title_rows = f"{first_header}:{first_header}"
    ws.freeze_panes = "A4"
    buf = _bytes_io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
