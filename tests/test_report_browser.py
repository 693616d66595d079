"""The print downloads in a real headless Chromium: the PDFs arrive and are the right ones.

Reuses the live-server fixtures of `tests.test_browser` (a second server for this module).
"""

from __future__ import annotations

import io
from urllib.parse import quote

from pypdf import PdfReader

from tests.test_browser import (  # noqa: F401 - fixtures are found by name
    _click_tab,
    _download,
    _open,
    _shot,
    browser,
    page,
    pytestmark,
    server,
)


def _text(data: bytes) -> str:
    return "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)


def test_township_sheet_and_poster_download_as_pdf(page, server):  # noqa: F811 - fixtures
    _open(page, server, "?township=" + quote("巴山镇"))
    _click_tab(page, "下载清单")
    page.get_by_role("button", name="下载巴山镇图表（PDF）").scroll_into_view_if_needed()
    _shot(page, "desktop_print_downloads")
    sheet = _download(page, "下载巴山镇图表（PDF）")
    assert sheet.startswith(b"%PDF")
    assert "城口县巴山镇安全风险点位图表" in _text(sheet)
    poster = _download(page, "下载全县总图（A3，PDF）")
    reader = PdfReader(io.BytesIO(poster))
    assert len(reader.pages) == 1
    assert "城口县安全风险点位总图" in _text(poster)
