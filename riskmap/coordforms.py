"""The coordinate forms registry: declared once, read by the CLI, the app and `riskmap.coords`.

Kept free of heavy imports so that ``riskmap --help`` (which lists ``--crs`` choices) stays
fast. A new form is a new entry here plus its branch in `riskmap.coords.to_wgs84`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CoordinateForm:
    """
    One coordinate form a survey file may be declared in (the registry entry).

    Attributes
    ----------
    id
        Stable id: the CLI's ``--crs`` value and the app's selectbox key.
    label
        Chinese label users see.
    handling
        How `to_wgs84` turns it into WGS84 (English, for docs and ``--help``).
    """

    id: str
    label: str
    handling: str


COORDINATE_FORMS: tuple[CoordinateForm, ...] = (
    CoordinateForm(
        "wgs84",
        "WGS84 经纬度（GPS、天地图）",
        "degrees as stored; DMS, full-width and swapped columns recognised",
    ),
    CoordinateForm(
        "cgcs2000",
        "CGCS2000 经纬度",
        "degrees; CGCS2000 = WGS84 within centimetres (no datum shift applied)",
    ),
    CoordinateForm(
        "gk",
        "CGCS2000 高斯-克吕格投影（米）",
        "CGCS2000 3°/6° Gauss-Krüger metres; zone from the easting prefix or the county",
    ),
    CoordinateForm(
        "gcj02",
        "GCJ-02（高德、腾讯地图拾取）",
        "GCJ-02 degrees, inverted iteratively to WGS84 (< 0.5 m)",
    ),
    CoordinateForm(
        "bd09",
        "BD-09（百度地图拾取）",
        "BD-09 degrees, to GCJ-02 then inverted iteratively to WGS84",
    ),
)
"""Every coordinate form, in the order the CLI and the app offer them."""

CRS_CHOICES = tuple(f.id for f in COORDINATE_FORMS)
"""Ids of `COORDINATE_FORMS`: declared coordinate systems accepted by `to_wgs84`."""


def coordinate_form_labels() -> dict[str, str]:
    """``{id: Chinese label}`` of every coordinate form, in registry order."""
    return {f.id: f.label for f in COORDINATE_FORMS}
