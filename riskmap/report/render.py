"""HTML → PDF with WeasyPrint: page CSS, escaping, the CJK font check. Pure (returns bytes).

Why WeasyPrint: it lays out HTML/CSS tables across pages (repeating the header row of a long
list on every page), counts pages in CSS (``counter(page)`` / ``counter(pages)`` for the
``第 n 页 / 共 N 页`` footer), draws SVG images as vectors, and embeds any font through
HarfBuzz/fontTools subsetting, including the CFF-flavoured Noto Sans CJK of Debian's
``fonts-noto-cjk`` that ReportLab cannot embed and matplotlib's PDF backend cannot embed as
Type 42. It runs offline and headless; it needs Debian's Pango (``libpango-1.0-0``,
``libpangoft2-1.0-0``), loaded when the first PDF is made.

All data and user text goes into the HTML through `esc` (``html.escape``) and into CSS
strings through `css_string`, so a name like ``<b>`` or ``"}`` prints as itself.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass

from riskmap.errors import RiskmapError
from riskmap.report.maps import CJK_FONT


class ReportError(RiskmapError, RuntimeError):
    """A PDF cannot be made here (missing font or system library)."""


@dataclass(frozen=True)
class PageSize:
    """
    A paper size.

    Attributes
    ----------
    name
        ISO 216 name, e.g. ``"A4"``.
    width_mm, height_mm
        Portrait size in millimetres (ISO 216).
    """

    name: str
    width_mm: float
    height_mm: float

    def oriented(self, *, landscape: bool) -> tuple[float, float]:
        """``(width_mm, height_mm)`` in the wanted orientation."""
        if landscape:
            return self.height_mm, self.width_mm
        return self.width_mm, self.height_mm


SIZES = {
    "A2": PageSize("A2", 420.0, 594.0),
    "A3": PageSize("A3", 297.0, 420.0),
    "A4": PageSize("A4", 210.0, 297.0),
    "A5": PageSize("A5", 148.0, 210.0),
}
"""ISO 216 A sizes, portrait millimetres."""
MARGIN_MM = 14.0
"""Page margin on every side; the header and footer sit inside it."""


def page_size(name: str) -> PageSize:
    """
    Look up an ISO 216 size by name (``"A4"``, ``"a3"``…).

    Raises
    ------
    ReportError
        When the name is not one of `SIZES`.
    """
    key = name.strip().upper()
    if key not in SIZES:
        msg = f"纸张尺寸应为 {'、'.join(SIZES)} 之一 (paper size): {name!r}"
        raise ReportError(msg)
    return SIZES[key]


def esc(value: object) -> str:
    """HTML-escape any value's text; None and NaN print as an empty string."""
    if value is None or (isinstance(value, float) and value != value):  # noqa: PLR0124 - NaN
        return ""
    return html.escape(str(value), quote=True)


def css_string(text: str) -> str:
    r"""
    Quote `text` as a CSS string literal: every non-ASCII-alphanumeric character escaped.

    Returns
    -------
    literal
        E.g. ``'"\\5f20 \\4e09 "'`` for 张三; a quote or backslash cannot end the string.
    """
    parts = [ch if ch.isascii() and ch.isalnum() else f"\\{ord(ch):x} " for ch in text]
    return '"' + "".join(parts) + '"'


def svg_img(svg: str, *, width_mm: float, height_mm: float, alt: str) -> str:
    """Wrap `svg` in an ``<img>`` as a data URI (WeasyPrint draws it as vectors)."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return (
        f'<img class="map" alt="{esc(alt)}" style="width:{width_mm:.1f}mm;height:{height_mm:.1f}mm"'
        f' src="data:image/svg+xml;base64,{data}">'
    )


def check_cjk_font() -> None:
    """
    Make sure the CJK font is installed, so no page prints boxes (豆腐块) instead of Chinese.

    Raises
    ------
    ReportError
        When fontconfig/matplotlib finds no ``Noto Sans CJK SC`` (Debian ``fonts-noto-cjk``).
    """
    from matplotlib import font_manager  # noqa: PLC0415 - matplotlib is slow to import

    try:
        font_manager.findfont(
            font_manager.FontProperties(family=CJK_FONT), fallback_to_default=False
        )
    except ValueError:
        msg = (
            f"缺少中文字体 {CJK_FONT}，PDF 会出现方框；请安装 Debian 软件包 fonts-noto-cjk "
            "(missing CJK font: apt-get install fonts-noto-cjk)"
        )
        raise ReportError(msg) from None


BASE_CSS = """
@page {{
  size: {width}mm {height}mm;
  margin: {margin}mm {margin}mm {margin}mm {margin}mm;
  @top-left {{ content: {title}; font-size: 9pt; font-weight: bold; }}
  @top-right {{ content: {right}; font-size: 8pt; color: #444; }}
  @bottom-left {{ content: {left_foot}; font-size: 7pt; color: #555; }}
  @bottom-right {{ content: "第 " counter(page) " 页 / 共 " counter(pages) " 页"; font-size: 8pt; }}
}}
html {{ font-family: "{font}", sans-serif; font-size: {base_pt}pt; color: #111; }}
h1 {{ font-size: 15pt; margin: 0 0 2mm 0; }}
h2 {{ font-size: 11pt; margin: 4mm 0 1.5mm 0; break-after: avoid; }}
p.notes {{ font-size: 8pt; color: #444; margin: 1mm 0; }}
.notes span {{ margin-right: 4mm; }}
.warn {{ color: #b00; font-weight: bold; }}
table {{ border-collapse: collapse; width: 100%; }}
table.list {{ table-layout: fixed; }}
th, td {{ border: 0.4pt solid #777; padding: 0.6mm 0.8mm; vertical-align: top;
  overflow-wrap: anywhere; }}
th {{ background: #ddebf7; font-weight: bold; }}
thead {{ display: table-header-group; }}
tr {{ break-inside: avoid; }}
td.num {{ text-align: right; white-space: nowrap; }}
td.key {{ white-space: nowrap; }}
tr.total td {{ background: #f2f2f2; font-weight: bold; }}
img.map {{ display: block; }}
.sign {{ margin-top: 8mm; font-size: 10pt; break-inside: avoid; }}
.sign span {{ display: inline-block; margin-right: 14mm; }}
.box {{ border: 0.8pt solid #333; padding: 2mm; margin: 1.5mm 0; min-height: 10mm; }}
.blank {{ display: inline-block; border-bottom: 0.6pt solid #333; min-width: 40mm; }}
.page-break {{ break-before: page; }}
table.kv th {{ width: 28mm; text-align: left; background: #f2f2f2; }}
"""


def document(
    body: str,
    *,
    title: str,
    right: str,
    left_foot: str,
    size: PageSize,
    landscape: bool,
    base_pt: float = 8.0,
    extra_css: str = "",
    margin_mm: float = MARGIN_MM,
) -> str:
    """
    Wrap `body` (already escaped HTML) in a page with header, footer and page numbers.

    Parameters
    ----------
    body
        HTML of the content.
    title
        Running header, top left (plain text; quoted here).
    right
        Running header, top right (e.g. the dates).
    left_foot
        Footer, bottom left (notes such as 示意边界 / 演示数据).
    size, landscape
        Paper size and orientation.
    base_pt
        Body font size in points.
    extra_css
        More CSS rules (trusted: written by this package, never from data).
    margin_mm
        Page margin on every side, millimetres.

    Returns
    -------
    html
        A complete HTML document for `pdf_from_html`.
    """
    width, height = size.oriented(landscape=landscape)
    css = BASE_CSS.format(
        width=width,
        height=height,
        margin=margin_mm,
        title=css_string(title),
        right=css_string(right),
        left_foot=css_string(left_foot),
        font=CJK_FONT,
        base_pt=base_pt,
    )
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{css}{extra_css}</style></head>"
        f"<body>{body}</body></html>"
    )


def pdf_from_html(doc: str, *, title: str) -> bytes:
    """
    Lay out and write `doc` as PDF, offline (no URL is fetched: images are data URIs).

    Parameters
    ----------
    doc
        A complete HTML document (`document`).
    title
        PDF document title (metadata).

    Returns
    -------
    pdf
        The PDF file, fonts embedded as subsets.

    Raises
    ------
    ReportError
        When the CJK font or Debian's Pango libraries are missing.
    """
    check_cjk_font()
    try:
        import weasyprint  # noqa: PLC0415 - loads Pango; only when a PDF is made
        from weasyprint.urls import URLFetcher  # noqa: PLC0415
    except OSError as exc:
        msg = (
            "无法生成 PDF：缺少 Pango 库，请安装 Debian 软件包 libpango-1.0-0 libpangoft2-1.0-0 "
            f"(WeasyPrint needs Pango): {exc}"
        )
        raise ReportError(msg) from None

    # Only data: URIs (the maps) are read; any other URL in the HTML is refused, not fetched.
    fetcher = URLFetcher(allowed_protocols={"data"})
    document_ = weasyprint.HTML(string=doc, url_fetcher=fetcher).render()
    document_.metadata.title = title
    document_.metadata.authors = ["riskmap"]
    return document_.write_pdf()
