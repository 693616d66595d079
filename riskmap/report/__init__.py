"""Printed documents (纸质文档) as PDF: township sheet, point card, county poster.

Pure: every function takes a loaded `riskmap.project.Project` and returns PDF (or ZIP) bytes;
the CLI writes them with `riskmap.io.write_bytes_atomic`, the app hands them to a download
button. Maps are drawn with matplotlib as SVG (`riskmap.report.maps`) and pages are laid out
and written by WeasyPrint (`riskmap.report.render`, which says why), offline and headless.

System needs (Debian): ``fonts-noto-cjk`` (the embedded Chinese font), ``libpango-1.0-0`` and
``libpangoft2-1.0-0`` (WeasyPrint's text layout). Tests also use ``poppler-utils``.
"""

from riskmap.report.card import FeatureNotFoundError, card_file_name, point_card_pdf
from riskmap.report.poster import county_poster_pdf
from riskmap.report.render import ReportError
from riskmap.report.sheet import all_township_sheets_zip, township_sheet_pdf

__all__ = [
    "FeatureNotFoundError",
    "ReportError",
    "all_township_sheets_zip",
    "card_file_name",
    "county_poster_pdf",
    "point_card_pdf",
    "township_sheet_pdf",
]
