"""Coordinate cells → WGS84 lon/lat: parsing, axis/CRS detection, datum conversion. Pure.

Survey tables from county staff carry coordinates in many spellings and systems. This module
turns two text columns into WGS84 longitude/latitude arrays, vectorised with numpy where it
matters (plain decimals are parsed in one `pandas.to_numeric` call; only the other cells are
parsed one by one), and says what it did:

* **Spellings** (`parse_coordinate`): decimal degrees, decimal comma (``108,6640``),
  full-width digits/punctuation (NFKC), degrees-minutes-seconds in every common spelling
  (``108°39'50.4"``, with spaces, ``108度39分50.4秒``, primes ``′ ″`` with E/N/W/S, two
  apostrophes ``''``), thousands separators in projected values (``3,536,057.06``).
* **Axes**: a "latitude" of 108.6 is impossible in China, so lon/lat given the wrong way
  round are swapped (a warning names the row). Projected pairs are resolved by magnitude:
  the 7-digit value is the northing, the 6-digit (or zone-prefixed 8-digit) one the easting,
  whatever the header says (Chinese surveying calls the northing X).
* **Systems** (``crs``): ``wgs84`` (default) and ``cgcs2000`` (EPSG:4490, identical to WGS84
  at map scale) are taken as is; ``gcj02`` (AutoNavi/Tencent) and ``bd09`` (Baidu) are
  converted with prcoords' iterative inverses (error < 1 mm, far below the 0.5 m target);
  ``gk`` is CGCS2000 Gauss-Krüger, converted with pyproj. Values that are plainly projected
  (> 1000) are treated as Gauss-Krüger whatever was declared, with a warning.

Gauss-Krüger zones (CGCS2000): an 8-digit easting carries its zone number in front
(``36562780.81`` → 3° zone 36, EPSG:4524; zones 13–23 are 6° zones, EPSG:4491–4501). A 6-digit
easting has no zone: the 3° zone whose central meridian is nearest the county's longitude is
used (EPSG:4545, CM 108°E, for Chengkou).
"""

from __future__ import annotations

import math
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import prcoords
import pyarrow as pa
import pyarrow.compute as pc

from pyproj import Transformer

from riskmap.coordforms import (  # noqa: F401 - the registry, re-exported
    COORDINATE_FORMS,
    CRS_CHOICES,
    CoordinateForm,
    coordinate_form_labels,
)
from riskmap.errors import CRSError
from riskmap.settings import STORAGE_CRS

if TYPE_CHECKING:
    from collections.abc import Sequence


EXACT_DATUMS = ("China 2000", "World Geodetic System 1984")
"""Datums taken as WGS84 without a shift: CGCS2000 and WGS84 differ by centimetres (the
realisations agree at the epoch level), far below map scale."""


def datum_warning(crs: object, *, source: str) -> str | None:
    """
    Say, in Chinese, when turning `crs` into WGS84 is only approximate; None when it is exact.

    PROJ picks a "ballpark" operation (no datum shift at all) when it knows no published
    transformation, e.g. for Xian 1980 (EPSG:2381) or Beijing 1954 on a machine without the
    grids: the map is then off by tens to hundreds of metres without a word. A datum other
    than CGCS2000/WGS84 (`EXACT_DATUMS`) whose chosen operation is a ballpark one, or of
    unknown accuracy, gets a warning that says how to fix it.

    Parameters
    ----------
    crs
        Anything `pyproj.CRS.from_user_input` accepts; None gives None.
    source
        File name, for the message.

    Returns
    -------
    warning
        The message, or None.
    """
    from pyproj import CRS  # noqa: PLC0415 - only for boundary files

    if crs is None:
        return None
    src = CRS.from_user_input(crs)
    geodetic = src.geodetic_crs
    datum = geodetic.datum.name if geodetic is not None else ""
    if any(datum.startswith(d) for d in EXACT_DATUMS):
        return None
    op = Transformer.from_crs(src, STORAGE_CRS, always_xy=True)
    ballpark = "ballpark" in op.description.lower() or "unavailable" in op.description.lower()
    if not ballpark and op.accuracy is not None and op.accuracy >= 0:
        return None
    code = src.to_epsg()
    name = f"{src.name}" + (f"（EPSG:{code}）" if code else "")
    return (
        f"{source}: 坐标系 {name} 到 WGS84/CGCS2000 的换算是近似的——PROJ 只能选用"
        "“ballpark”操作（不做基准面转换，误差可达数十至上百米），界线和乡镇归属可能偏移。"
        "请向测绘部门索取 CGCS2000 坐标系的文件，或提供该坐标系到 CGCS2000 的转换参数"
        "（七参数/三参数，写入 .prj 或以 +towgs84 给出）后重新导出。"
    )


CHINA_LON = (73.0, 136.0)
"""Longitude range of China (degrees); used to recognise swapped lon/lat."""
CHINA_LAT = (3.0, 54.0)
"""Latitude range of China (degrees)."""
PROJECTED_MIN = 1000.0
"""Absolute values above this cannot be degrees: the pair is taken as projected metres."""

ZONE3 = (25, 45)
"""CGCS2000 3° Gauss-Krüger zone numbers used in China (EPSG:4513–4533)."""
ZONE6 = (13, 23)
"""CGCS2000 6° Gauss-Krüger zone numbers used in China (EPSG:4491–4501)."""
DIGITS = {6: 1e5, 7: 1e6, 8: 1e7, 9: 1e8}
"""Smallest value with that many integer digits."""

LEVEL_WARNING = "warning"
LEVEL_ERROR = "error"
LEVEL_INFO = "info"

_PLAIN_RE = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_HEMI_RE = re.compile(r"^(东经|北纬|西经|南纬|[NSEW])|(东经|北纬|西经|南纬|[NSEW])$", re.IGNORECASE)
_DMS_REPLACE = (
    ("度", "°"),
    ("分", "'"),
    ("秒", '"'),
    ("º", "°"),  # masculine ordinal, often typed for a degree sign
    ("˚", "°"),
    ("′′", '"'),
    ("″", '"'),
    ("′", "'"),
    ("’’", '"'),
    ("’", "'"),
    ("‘", "'"),
    ("”", '"'),
    ("“", '"'),
    ("''", '"'),
)
_DMS_RE = re.compile(
    r"""^(?P<d>\d+(?:\.\d+)?)\s*(?:°|\s)\s*
        (?:(?P<m>\d+(?:\.\d+)?)\s*(?:'|\s)\s*
           (?:(?P<s>\d+(?:\.\d+)?)\s*"?)?)?$""",
    re.VERBOSE,
)
_DEG_ONLY_RE = re.compile(r"^(?P<d>\d+(?:\.\d+)?)\s*°$")
_ASCII_DMS_PATTERN = (
    r"^ *(?P<d>[0-9]+(?:\.[0-9]+)?) *° *(?P<m>[0-9]+(?:\.[0-9]+)?) *' *"
    r'(?:(?P<s>[0-9]+(?:\.[0-9]+)?) *"?)? *$'
)
"""The common DMS spelling (``108°39'50.4"``, ASCII digits and spaces; seconds optional),
parsed for a whole column at once; `parse_coordinate` gives the same value for these cells."""


def normalise_text(text: str) -> str:
    """NFKC-normalise a cell (full-width digits and punctuation → ASCII) and strip it."""
    return unicodedata.normalize("NFKC", text).strip()


def _plain_number(text: str) -> float | None:
    """Parse a decimal with an optional decimal comma or thousands separators."""
    t = text.strip()
    if t.count(",") == 1 and "." not in t:
        t = t.replace(",", ".")  # decimal comma: 108,6640
    elif "," in t and re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?", t):
        t = t.replace(",", "")  # thousands separators: 3,536,057.06
    if not _PLAIN_RE.match(t):
        return None
    value = float(t)
    return value if math.isfinite(value) else None


def parse_coordinate(text: object) -> float | None:
    """
    Parse one coordinate cell written in any common spelling.

    Parameters
    ----------
    text
        Cell content: decimal degrees or metres (``"108.664"``, ``"108,664"``,
        ``"３５３６０５７.０６"``), or degrees-minutes-seconds (``108°39'50.4"``,
        ``108° 39' 50.4"``, ``108度39分50.4秒``, ``108°39′50.4″E``, ``108°39'50.4''``); a
        hemisphere letter or 东经/北纬 may lead or trail, W/S/西经/南纬 make it negative.

    Returns
    -------
    value
        Degrees (or metres for projected values) as a finite float, or None when the cell
        is blank or not a coordinate. Minutes and seconds must be below 60.
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return None
    t = normalise_text(str(text))
    if not t:
        return None
    if (value := _plain_number(t)) is not None:
        return value
    sign = 1.0
    hemi = _HEMI_RE.findall(t)
    for lead, trail in hemi:
        h = (lead or trail).upper()
        if h in {"W", "S", "西经", "南纬"}:
            sign = -1.0
    t = _HEMI_RE.sub("", t).strip()
    if t.startswith("-"):
        sign, t = -sign, t[1:].strip()
    for old, new in _DMS_REPLACE:
        t = t.replace(old, new)
    t = t.replace(",", ".") if "." not in t and t.count(",") <= 3 else t  # noqa: PLR2004
    if (value := _plain_number(t)) is not None:
        return sign * value
    match = _DMS_RE.match(t) or _DEG_ONLY_RE.match(t)
    if not match:
        return None
    groups = match.groupdict()
    deg = float(groups["d"])
    minutes = float(groups.get("m") or 0.0)
    seconds = float(groups.get("s") or 0.0)
    if minutes >= 60 or seconds >= 60:  # noqa: PLR2004
        return None
    return sign * (deg + minutes / 60.0 + seconds / 3600.0)


def parse_coordinate_array(values: Sequence[object] | np.ndarray | pd.Series) -> np.ndarray:
    """
    Parse a column of coordinate cells, vectorised for plain decimals.

    Parameters
    ----------
    values
        Cells (text, numbers or None), length n.

    Returns
    -------
    parsed
        float64 array, shape (n,); NaN where the cell is blank or not a coordinate. Plain
        ASCII decimals are parsed in one vectorised call; every other cell (DMS, full-width,
        decimal comma) goes through `parse_coordinate`.
    """
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    series = series.reset_index(drop=True)
    cells = series.to_numpy(dtype=object)
    fast = np.full(len(cells), np.nan)
    rest = _parse_plain_decimals(cells, fast)
    if rest.size:  # numbers, None, anything else: as pandas reads them
        parsed = pd.to_numeric(pd.Series(cells[rest], dtype=object), errors="coerce")
        fast[rest] = parsed.to_numpy(dtype=float, na_value=np.nan)
    fast[~np.isfinite(fast)] = np.nan
    redo = np.flatnonzero(np.isnan(fast))
    if redo.size:
        fast[redo], parsed = _parse_ascii_dms(cells[redo])
        for i in redo[~parsed]:
            value = parse_coordinate(cells[i])
            if value is not None:
                fast[i] = value
    return fast


_PLAIN_DECIMAL = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
"""A plain ASCII decimal (no spaces, no separators): Arrow's cast reads it as `float` does."""


def _parse_plain_decimals(cells: np.ndarray, out: np.ndarray) -> np.ndarray:
    """
    Parse the plain-decimal text cells into `out` with one Arrow cast; return the others.

    Arrow's string → float64 cast is correctly rounded, as ``pandas.to_numeric`` and
    `float` are, so these cells get the value the per-cell path gives them.

    Returns
    -------
    rest
        Positions ``(k,)`` of the cells not parsed here (not text, or not a plain decimal).
    """
    try:
        text = pa.array(cells, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers or other objects among the cells
        return np.arange(len(cells))
    plain = pc.fill_null(pc.match_substring_regex(text, _PLAIN_DECIMAL), fill_value=False)
    where = np.flatnonzero(plain.to_numpy(zero_copy_only=False))
    try:
        parsed = pc.cast(text.filter(plain), pa.float64())
    except pa.ArrowInvalid:  # e.g. out of range: leave it to pandas
        return np.arange(len(cells))
    out[where] = parsed.to_numpy(zero_copy_only=False)
    rest = np.ones(len(cells), dtype=bool)
    rest[where] = False
    return np.flatnonzero(rest)


def _parse_ascii_dms(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Parse the cells written in the common DMS spelling in one regex pass over the column.

    Parameters
    ----------
    cells
        Object array ``(m,)`` of cells (text or anything else).

    Returns
    -------
    values, parsed
        Degrees ``(m,)`` (NaN where not parsed or where minutes/seconds are 60 or more, as
        `parse_coordinate` does) and a bool mask ``(m,)`` of the cells the pattern decided
        (the others still go through `parse_coordinate`).
    """
    m = len(cells)
    is_text = np.fromiter((isinstance(c, str) for c in cells), dtype=bool, count=m)
    parsed = np.zeros(m, dtype=bool)
    deg, minutes, seconds = (np.full(m, np.nan) for _ in range(3))
    if is_text.any():
        # RE2 over an Arrow column; the groups are ASCII decimals, which Arrow's cast parses
        # correctly rounded, as `float` does in `parse_coordinate`
        found = pc.extract_regex(pa.array(cells[is_text], pa.string()), _ASCII_DMS_PATTERN)
        text_pos = np.flatnonzero(is_text)
        parsed[text_pos] = found.is_valid().to_numpy(zero_copy_only=False)
        for out, name in ((deg, "d"), (minutes, "m"), (seconds, "s")):
            part = pc.if_else(pc.equal(found.field(name), ""), None, found.field(name))
            out[text_pos] = pc.cast(part, pa.float64()).to_numpy(zero_copy_only=False)
    seconds[parsed & np.isnan(seconds)] = 0.0  # d°m' without seconds
    with np.errstate(invalid="ignore"):
        values = deg + minutes / 60.0 + seconds / 3600.0
        values[(minutes >= 60) | (seconds >= 60)] = np.nan  # noqa: PLR2004
    values[~parsed] = np.nan
    return values, parsed


def gk_epsg_for_zone(zone: int) -> int | None:
    """
    EPSG code of a CGCS2000 Gauss-Krüger zone with the zone number in the easting.

    Returns
    -------
    epsg
        3° zones 25–45 → EPSG:4513–4533; 6° zones 13–23 → EPSG:4491–4501; None otherwise.
    """
    if ZONE3[0] <= zone <= ZONE3[1]:
        return 4488 + zone
    if ZONE6[0] <= zone <= ZONE6[1]:
        return 4478 + zone
    return None


def gk_epsg_for_lon(lon: float) -> tuple[int, int]:
    """
    CGCS2000 3° Gauss-Krüger CRS (no zone prefix) whose central meridian is nearest `lon`.

    Parameters
    ----------
    lon
        Longitude in degrees east, 73.5–136.5 (China).

    Returns
    -------
    epsg, central_meridian
        E.g. ``(4545, 108)`` for Chengkou (108.66°E): EPSG:4534 (CM 75°E) … EPSG:4554 (CM 135°E).

    Raises
    ------
    CRSError
        When `lon` is outside the range of those zones.
    """
    cm = round(lon / 3.0) * 3
    if not 75 <= cm <= 135:  # noqa: PLR2004
        msg = f"经度 {lon} 不在中国 3° 高斯-克吕格分带范围内 (CM 75°E–135°E)"
        raise CRSError(msg)
    return 4534 + (cm - 75) // 3, cm


@dataclass
class CoordResult:
    """
    Result of `to_wgs84`.

    Attributes
    ----------
    lon, lat
        WGS84 degrees, float64 arrays of shape (n,); NaN where the row is not located.
    messages
        ``{row position: [(level, column role, reason)]}``: level ``"error"`` (not located),
        ``"warning"`` (located, but check: swapped axes, projected values under a degree
        declaration) or ``"info"``; column role ``"lon"`` or ``"lat"`` (the first/second
        coordinate column) or ``""``. Reasons are Chinese.
    notes
        File-level notes on every conversion made, with row counts.
    kinds
        Per-row kind, object array (n,): ``"deg"``, ``"gk:<epsg>"``, or ``""`` (not located).
    """

    lon: np.ndarray
    lat: np.ndarray
    messages: dict[int, list[tuple[str, str, str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    kinds: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))

    def add(self, pos: int, level: str, role: str, reason: str) -> None:
        """Add a message for row position `pos`."""
        self.messages.setdefault(pos, []).append((level, role, reason))


def _classify_projected(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks (easting with zone, plain 6-digit easting, 7-digit northing) for values in metres."""
    with np.errstate(invalid="ignore"):
        zone = np.floor(v / 1e6)
        # 8 digits whose leading two are a CGCS2000 zone number (3° 25–45, 6° 13–23)
        has_zone = ((zone >= ZONE3[0]) & (zone <= ZONE3[1])) | (
            (zone >= ZONE6[0]) & (zone <= ZONE6[1])
        )
        zoned = (v >= DIGITS[8]) & (v < DIGITS[9]) & has_zone
        plain = (v >= DIGITS[6]) & (v < DIGITS[7])
        north = (v >= DIGITS[7]) & (v < DIGITS[8])
    return zoned, plain, north


def _gcj_bd_inverse(lon: np.ndarray, lat: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 / BD-09 → WGS84 with prcoords' iterative inverse; outside China unchanged."""
    inverse = prcoords.gcj_wgs_bored if crs == "gcj02" else prcoords.bd_wgs_bored
    out_lon, out_lat = lon.copy(), lat.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # prcoords warns on non-Chinese coordinates
        for i in np.flatnonzero(np.isfinite(lon) & np.isfinite(lat)):
            here = prcoords.Coords(float(lat[i]), float(lon[i]))
            if not prcoords.sanity_in_china_p(here):
                continue  # the offset only applies inside China
            wgs = inverse(here)
            out_lon[i], out_lat[i] = wgs.lon, wgs.lat
    return out_lon, out_lat


def to_wgs84(
    first: Sequence[object] | np.ndarray | pd.Series,
    second: Sequence[object] | np.ndarray | pd.Series,
    *,
    crs: str = "wgs84",
    county_lon: float = 108.66,
) -> CoordResult:
    """
    Turn two coordinate columns into WGS84 lon/lat, detecting spelling, axes and system.

    Parameters
    ----------
    first, second
        The two coordinate columns as read, length n: `first` is the column mapped as
        longitude / X, `second` the one mapped as latitude / Y. Cells may be text in any
        spelling `parse_coordinate` accepts, numbers or None.
    crs
        Declared system, one of `CRS_CHOICES`: ``"wgs84"`` (default), ``"cgcs2000"``,
        ``"gk"`` (CGCS2000 Gauss-Krüger metres), ``"gcj02"``, ``"bd09"``.
    county_lon
        Longitude (degrees) of the county, used to choose the Gauss-Krüger central meridian
        for eastings without a zone prefix (108.66 → CM 108°E, EPSG:4545).

    Returns
    -------
    result
        `CoordResult`: lon/lat arrays (n,) in EPSG:4326 degrees, NaN where not located, with
        per-row messages and file-level notes of every conversion.

    Raises
    ------
    CRSError
        When `crs` is not one of `CRS_CHOICES` (an argument error, not a content error).
    """
    if crs not in CRS_CHOICES:
        msg = f"未知坐标系 {crs!r}；可选: {', '.join(CRS_CHOICES)}"
        raise CRSError(msg)
    a = parse_coordinate_array(first)
    b = parse_coordinate_array(second)
    n = len(a)
    res = CoordResult(
        lon=np.full(n, np.nan), lat=np.full(n, np.nan), kinds=np.full(n, "", dtype=object)
    )
    first_raw = pd.Series(first, dtype=object).reset_index(drop=True).to_numpy(dtype=object)
    second_raw = pd.Series(second, dtype=object).reset_index(drop=True).to_numpy(dtype=object)

    def blank(cell: object) -> bool:
        return (
            cell is None or (isinstance(cell, float) and math.isnan(cell)) or not str(cell).strip()
        )

    for role, raw, parsed in (("lon", first_raw, a), ("lat", second_raw, b)):
        label = "经度/X" if role == "lon" else "纬度/Y"
        for i in np.flatnonzero(np.isnan(parsed)):
            if blank(raw[i]):
                res.add(int(i), LEVEL_ERROR, role, f"{label}为空，未落图")
            else:
                res.add(int(i), LEVEL_ERROR, role, f"无法识别的坐标值，未落图 ({label})")
    both = np.isfinite(a) & np.isfinite(b)
    abs_a, abs_b = np.abs(a), np.abs(b)
    deg = both & (abs_a <= 180) & (abs_b <= 180)  # noqa: PLR2004
    proj = both & (abs_a > PROJECTED_MIN) & (abs_b > PROJECTED_MIN)
    for i in np.flatnonzero(both & ~deg & ~proj):
        res.add(
            int(i), LEVEL_ERROR, "", "坐标不成对（一个像经纬度、一个像投影坐标）或超出范围，未落图"
        )

    # --- degrees -------------------------------------------------------------------------
    lon, lat = a.copy(), b.copy()
    in_lon = (b >= CHINA_LON[0]) & (b <= CHINA_LON[1])
    in_lat = (a >= CHINA_LAT[0]) & (a <= CHINA_LAT[1])
    swap = deg & ((in_lon & in_lat) | ((abs_b > 90) & (abs_a <= 90)))  # noqa: PLR2004
    lon[swap], lat[swap] = b[swap], a[swap]
    for i in np.flatnonzero(swap):
        res.add(
            int(i),
            LEVEL_WARNING,
            "lat",
            f"经纬度填反（纬度 {b[i]:g} 在中国不可能），已互换为 经度 {lon[i]:g}、纬度 {lat[i]:g}",
        )
    if swap.any():
        res.notes.append(f"{int(swap.sum())} 行经纬度填反，已按数值互换（各行有提示）")
    bad_deg = deg & ((np.abs(lat) > 90) | (np.abs(lon) > 180))  # noqa: PLR2004
    for i in np.flatnonzero(bad_deg):
        res.add(int(i), LEVEL_ERROR, "", "经纬度超出范围，未落图")
    deg_ok = deg & ~bad_deg
    if crs == "gk" and deg_ok.any():
        res.notes.append(
            f"声明为高斯-克吕格投影，但 {int(deg_ok.sum())} 行数值是经纬度（≤180），按经纬度处理"
        )
        for i in np.flatnonzero(deg_ok):
            res.add(
                int(i), LEVEL_WARNING, "", "声明为投影坐标，但数值是经纬度，按 WGS84 经纬度处理"
            )
    if crs in {"gcj02", "bd09"} and deg_ok.any():
        name = "GCJ-02（高德/腾讯）" if crs == "gcj02" else "BD-09（百度）"
        lon[deg_ok], lat[deg_ok] = _gcj_bd_inverse(lon[deg_ok], lat[deg_ok], crs)
        res.notes.append(
            f"{int(deg_ok.sum())} 行按 {name} 坐标换算为 WGS84（prcoords 迭代反算，误差 < 0.5 m）"
        )
    elif crs == "cgcs2000" and deg_ok.any():
        res.notes.append("CGCS2000 (EPSG:4490) 经纬度与 WGS84 在地图比例尺下相同，未作换算")
    res.lon[deg_ok], res.lat[deg_ok] = lon[deg_ok], lat[deg_ok]
    res.kinds[deg_ok] = "deg"

    # --- projected (Gauss-Krüger) -------------------------------------------------------------
    if proj.any():
        _projected(a, b, proj, res, crs=crs, county_lon=county_lon)
    return res


def _projected(
    a: np.ndarray, b: np.ndarray, proj: np.ndarray, res: CoordResult, *, crs: str, county_lon: float
) -> None:
    """Resolve easting/northing by magnitude, pick the zone, transform to WGS84 in place."""
    za, pa, na = _classify_projected(a)
    zb, pb, nb = _classify_projected(b)
    a_east = proj & (za | pa) & nb
    b_east = proj & (zb | pb) & na
    east = np.where(a_east, a, np.where(b_east, b, np.nan))
    north = np.where(a_east, b, np.where(b_east, a, np.nan))
    zoned = (a_east & za) | (b_east & zb)
    unresolved = proj & ~a_east & ~b_east
    for i in np.flatnonzero(unresolved):
        res.add(
            int(i),
            LEVEL_ERROR,
            "",
            "无法识别的投影坐标（应为 6 位或带带号的 8 位东坐标 + 7 位北坐标），未落图",
        )
    if crs != "gk":
        located = int((proj & ~unresolved).sum())
        if located:
            res.notes.append(
                f"声明为 {crs}，但 {located} 行数值是投影坐标（米），按 CGCS2000 高斯-克吕格处理"
            )
        for i in np.flatnonzero(proj & ~unresolved):
            res.add(
                int(i),
                LEVEL_WARNING,
                "",
                f"声明为 {crs} 经纬度，但数值是投影坐标（米），已按 CGCS2000 高斯-克吕格换算",
            )
    if a_east.any():
        res.notes.append(
            f"{int(a_east.sum())} 行: 经度/X 列取作东坐标 (easting)，纬度/Y 列取作北坐标"
        )
    if b_east.any():
        res.notes.append(
            f"{int(b_east.sum())} 行: 纬度/Y 列取作东坐标 (easting)，经度/X 列取作北坐标 "
            "(northing，测绘习惯 X 为北坐标)"
        )
    epsg = np.zeros(len(a), dtype=np.int64)
    zone_num = np.floor(np.where(zoned, east, 0) / 1e6).astype(np.int64)
    for z in np.unique(zone_num[zoned]):
        code = gk_epsg_for_zone(int(z))
        epsg[zoned & (zone_num == z)] = code or 0
    plain = (a_east | b_east) & ~zoned
    if plain.any():
        code, cm = gk_epsg_for_lon(county_lon)
        epsg[plain] = code
        res.notes.append(
            f"{int(plain.sum())} 行东坐标无带号，按县域中央经线 {cm}°E 取 EPSG:{code} "
            "(CGCS2000 3° 高斯-克吕格)"
        )
    for code in np.unique(epsg[epsg > 0]):
        sel = epsg == code
        tr = Transformer.from_crs(int(code), 4326, always_xy=True)
        x, y = tr.transform(east[sel], north[sel])
        res.lon[sel], res.lat[sel] = x, y
        res.kinds[sel] = f"gk:{int(code)}"
        if code in range(4513, 4534) or code in range(4491, 4502):
            res.notes.append(
                f"{int(sel.sum())} 行东坐标带号 → EPSG:{int(code)}，已换算为 WGS84 经纬度"
            )
        else:
            res.notes.append(f"{int(sel.sum())} 行按 EPSG:{int(code)} 换算为 WGS84 经纬度")
    bad = (epsg > 0) & ~(np.isfinite(res.lon) & np.isfinite(res.lat))
    for i in np.flatnonzero(bad):
        res.add(int(i), LEVEL_ERROR, "", "投影坐标换算失败，未落图")
