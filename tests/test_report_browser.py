"""The print downloads in a real headless Chromium: the PDFs arrive and are the right ones.

Reads only: the session's read-only server and browser (``shared_server``, ``chromium``:
`tests/conftest.py`) and the helpers of `tests/browser_support.py`.
"""

from __future__ import annotations

import io
from urllib.parse import quote

import pytest
from pypdf import PdfReader

from tests.browser_support import (
    DESKTOP,
    click_tab,
    download,
    new_page,
    open_page,
    require_browser,
    shot,
)

pytestmark = pytest.mark.browser
require_browser()


def _text(data: bytes) -> str:
    return "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)


def test_township_sheet_and_poster_download_as_pdf(chromium, shared_server):
    page = new_page(chromium, DESKTOP)
    try:
        open_page(page, shared_server, "?township=" + quote("巴山镇"))
        click_tab(page, "下载清单")
        page.get_by_role("button", name="下载巴山镇图表（PDF）").scroll_into_view_if_needed()
        shot(page, "desktop_print_downloads")
        sheet = download(page, "下载巴山镇图表（PDF）")
        assert sheet.startswith(b"%PDF")
        assert "城口县巴山镇安全风险点位图表" in _text(sheet)
        poster = download(page, "下载全县总图（A3，PDF）")
        reader = PdfReader(io.BytesIO(poster))
        assert len(reader.pages) == 1
        assert "城口县安全风险点位总图" in _text(poster)
    finally:
        page.close()
