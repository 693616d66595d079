"""Township contract: turn any township polygon table into the one shape everyone uses (pure).

`riskmap.io.read_townships` opens the file (bundled approximate partition or the county's
official 乡镇界 file) and hands the raw GeoDataFrame to `townships_from_frame`, which matches
features to the code table, repairs geometries and brings everything to EPSG:4326.

The township contract (`TOWNSHIP_COLUMNS`), EPSG:4326, sorted by ``adcode``, RangeIndex:

``adcode``       9-digit 统计用区划代码 (str), e.g. ``"500229001"``
``adcode12``     12-digit form, ``adcode + "000"`` (str)
``name``         official name from the code table, e.g. ``"葛城街道"``
``level``        ``"街道"``, ``"镇"`` or ``"乡"``
``approximate``  True for the bundled 示意 partition, False for an official file (bool)
``also_covers``  comma-separated 9-digit codes of townships with no polygon of their own that
                 this polygon stands for (str, ``""`` if none); see `riskmap.join`
``geometry``     Polygon or MultiPolygon
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING

import numpy as np

import geopandas as gpd
import shapely

from riskmap.errors import CRSError, SchemaError
from riskmap.settings import STORAGE_CRS

if TYPE_CHECKING:
    import pandas as pd

TOWNSHIP_COLUMNS = ["adcode", "adcode12", "name", "level", "approximate", "also_covers", "geometry"]

#: Column names (compared case-insensitively) that hold a township code, in order of preference.
CODE_COLUMNS = (
    "adcode",
    "adcode12",
    "code",
    "code9",
    "code12",
    "xzqdm",
    "xzdm",
    "xzqhdm",
    "qhdm",
    "乡镇代码",
    "区划代码",
    "行政区代码",
    "行政区划代码",
    "代码",
)
#: Column names (compared case-insensitively) that hold a township name, in order of preference.
NAME_COLUMNS = (
    "name",
    "xzqmc",
    "xzmc",
    "xzqhmc",
    "qhmc",
    "乡镇名称",
    "乡镇",
    "名称",
    "行政区名称",
    "行政区划名称",
    "township",
)

#: Suffixes dropped before comparing names: "巴山镇人民政府" == "巴山镇" == "巴山".
_NAME_SUFFIXES = ("人民政府", "办事处", "街道", "镇", "乡")
#: Rough bounding box of China, (left, bottom, right, top) in degrees, to spot lon/lat data.
CHINA_BBOX = (73.0, 3.0, 136.0, 54.0)


def normalize_code(value: object) -> str | None:
    """
    Return the 9-digit township code in `value`, or None.

    Parameters
    ----------
    value
        A 9- or 12-digit code as text or number, with surrounding whitespace tolerated;
        full-width digits are accepted. A 12-digit code must end in ``"000"``.

    Returns
    -------
    code9
        The 9-digit code as text, or None if `value` is not such a code.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer()):
        text = str(int(value))
    else:
        text = str(value)
    text = re.sub(r"\s+", "", text.translate(_FULLWIDTH_DIGITS))
    if re.fullmatch(r"\d{9}", text):
        return text
    if re.fullmatch(r"\d{9}000", text):
        return text[:9]
    return None


_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def name_key(name: object) -> str:
    """
    Return the comparison key of a township name: whitespace and suffixes removed.

    Parameters
    ----------
    name
        A township name, e.g. ``" 巴山镇人民政府"``; anything else gives ``""``.

    Returns
    -------
    key
        ``"巴山"`` for ``"巴山镇"``, ``"巴山"`` or ``"巴山镇人民政府"``.
    """
    if not isinstance(name, str):
        return ""
    key = re.sub(r"\s+", "", name)
    changed = True
    while changed:
        changed = False
        for suffix in _NAME_SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                key = key[: -len(suffix)]
                changed = True
    return key


def resolve_township(value: object, codes: pd.DataFrame) -> str | None:
    """
    Return the 9-digit code of the township that `value` names, or None.

    Parameters
    ----------
    value
        A township name (suffix variants tolerated) or a 9- or 12-digit code.
    codes
        Code table with text columns ``adcode`` and ``name`` (see `riskmap.io.read_township_codes`).

    Returns
    -------
    code9
        The matching 9-digit code, or None when nothing or more than one township matches.
    """
    code = normalize_code(value)
    known = set(codes["adcode"])
    if code is not None:
        return code if code in known else None
    key = name_key(value)
    if not key:
        return None
    hits = codes.loc[codes["name"].map(name_key) == key, "adcode"].tolist()
    return hits[0] if len(hits) == 1 else None


def _find_column(columns: pd.Index, candidates: tuple[str, ...]) -> str | None:
    lower = {str(c).strip().lower(): c for c in columns}
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    return None


def ensure_wgs84(gdf: gpd.GeoDataFrame, *, source: str) -> gpd.GeoDataFrame:
    """
    Bring a township layer to EPSG:4326, refusing to guess a CRS except for lon/lat in China.

    CGCS2000 geographic (EPSG:4490) and WGS84 differ by a few centimetres, far below map
    scale, so EPSG:4490 goes through `to_crs`, which PROJ performs as a no-op. Gauss-Krüger
    (e.g. EPSG:4513-4554) and any other declared CRS are reprojected.

    Parameters
    ----------
    gdf
        Township polygons in any CRS, or with none.
    source
        File name used in messages.

    Returns
    -------
    gdf_wgs84
        A copy in EPSG:4326.

    Raises
    ------
    CRSError
        `gdf` has no CRS and its coordinates are not plainly lon/lat degrees inside China.

    Warns
    -----
    UserWarning
        `gdf` has no CRS but looks like lon/lat in China: EPSG:4490 is assumed.
    """
    if gdf.crs is None:
        left, bottom, right, top = gdf.total_bounds
        c_left, c_bottom, c_right, c_top = CHINA_BBOX
        if (
            np.isfinite([left, bottom, right, top]).all()
            and c_left <= left <= right <= c_right
            and c_bottom <= bottom <= top <= c_top
        ):
            msg = (
                f"{source}: no CRS declared; coordinates are lon/lat degrees inside China, "
                "so CGCS2000 (EPSG:4490) is assumed. Add a .prj to silence this warning."
            )
            warnings.warn(msg, UserWarning, stacklevel=2)
            gdf = gdf.set_crs("EPSG:4490")
        else:
            msg = (
                f"{source}: no CRS declared and the coordinates are not lon/lat degrees; "
                "add the .prj (e.g. CGCS2000 / 3-degree Gauss-Kruger CM 108E = EPSG:4545)."
            )
            raise CRSError(msg)
    return gdf.to_crs(STORAGE_CRS)


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry | None:
    """Repair `geom` with make_valid and keep only its polygonal parts (None if none)."""
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in {"Polygon", "MultiPolygon"}]
    polys = [q for p in parts for q in shapely.get_parts(p) if not q.is_empty]
    if not polys:
        return None
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def _match_features(
    gdf: gpd.GeoDataFrame,
    codes: pd.DataFrame,
    code_col: str | None,
    name_col: str | None,
    *,
    source: str,
) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Match each feature to a 9-digit code; return (matched parts, unmatched descriptions)."""
    matched: list[str] = []
    geoms: list[shapely.Geometry] = []
    approx: list[bool] = []
    also: list[str] = []
    unmatched: list[str] = []
    geometries = gdf.geometry.to_numpy()
    for pos, (idx, row) in enumerate(gdf.iterrows()):
        code = None
        label = ""
        if code_col is not None:
            code = resolve_township(row[code_col], codes)
            label = f"{code_col}={row[code_col]!r}"
        if code is None and name_col is not None:
            code = resolve_township(row[name_col], codes)
            label = (label + " " if label else "") + f"{name_col}={row[name_col]!r}"
        if code is None:
            unmatched.append(f"row {pos} ({label})")
            continue
        geom = geometries[pos]
        poly = None if geom is None or geom.is_empty else _polygonal(geom)
        if poly is None:
            msg = f"{source}: row {pos} (index {idx}, {label}) has no polygon geometry; skipped"
            warnings.warn(msg, UserWarning, stacklevel=2)
            continue
        matched.append(code)
        geoms.append(poly)
        approx.append(bool(row["approximate"]) if "approximate" in gdf.columns else False)
        cov = row["also_covers"] if "also_covers" in gdf.columns else ""
        also.append(cov.strip() if isinstance(cov, str) else "")

    parts = gpd.GeoDataFrame(
        {"adcode": matched, "approximate": approx, "also_covers": also},
        geometry=geoms,
        crs=STORAGE_CRS,
    )
    return parts, unmatched


def townships_from_frame(
    gdf_raw: gpd.GeoDataFrame, codes: pd.DataFrame, *, source: str
) -> gpd.GeoDataFrame:
    """
    Build the township contract from a raw township polygon table.

    Features are matched to `codes` by a code column (9 or 12 digits; names in
    `CODE_COLUMNS`) or, failing that, by a name column (`NAME_COLUMNS`, suffix variants such
    as 巴山 / 巴山镇 / 巴山镇人民政府 tolerated). Several features of one township are merged.
    Invalid geometries are repaired with `shapely.make_valid` (polygonal parts kept).

    Parameters
    ----------
    gdf_raw
        Polygons as read from the file, any CRS (see `ensure_wgs84`). Optional columns
        ``approximate`` (bool) and ``also_covers`` (str) are kept; otherwise False / ``""``.
    codes
        Township code table, text columns ``adcode``, ``adcode12``, ``name``, ``level``.
    source
        File name used in messages.

    Returns
    -------
    gdf_townships
        Columns `TOWNSHIP_COLUMNS`, EPSG:4326, sorted by ``adcode``, RangeIndex.

    Raises
    ------
    SchemaError
        No code or name column; features that match no township (all listed); townships of
        the code table with no polygon that no ``also_covers`` accounts for (all listed).
    CRSError
        No CRS and not lon/lat in China (see `ensure_wgs84`).

    Warns
    -----
    UserWarning
        For each feature with a null, empty or non-polygonal geometry (skipped).
    """
    gdf = ensure_wgs84(gdf_raw, source=source)
    code_col = _find_column(gdf.columns, CODE_COLUMNS)
    name_col = _find_column(gdf.columns, NAME_COLUMNS)
    if code_col is None and name_col is None:
        msg = (
            f"{source}: no township code column ({', '.join(CODE_COLUMNS)}) and no name "
            f"column ({', '.join(NAME_COLUMNS)}); columns are {list(gdf_raw.columns)}"
        )
        raise SchemaError(msg)

    parts, unmatched = _match_features(gdf, codes, code_col, name_col, source=source)
    problems = []
    if unmatched:
        problems.append(
            f"{len(unmatched)} feature(s) match no township of the code table: "
            + "; ".join(unmatched)
        )
    covered = set(parts["adcode"]) | {
        normalize_code(c) for a in parts["also_covers"] for c in a.split(",") if c.strip()
    }
    missing = codes.loc[~codes["adcode"].isin(covered)]
    if len(missing):
        problems.append(
            "townships with no polygon: "
            + ", ".join(f"{a} {n}" for a, n in zip(missing["adcode"], missing["name"], strict=True))
        )
    if problems:
        msg = f"{source}: " + " | ".join(problems)
        raise SchemaError(msg)

    rows = []
    for code, grp in parts.groupby("adcode", sort=True):
        geom = (
            grp.geometry.iloc[0]
            if len(grp) == 1
            else _polygonal(shapely.union_all(grp.geometry.to_numpy()))
        )
        covers = sorted({c.strip() for a in grp["also_covers"] for c in a.split(",") if c.strip()})
        rows.append(
            {
                "adcode": code,
                "approximate": bool(grp["approximate"].any()),
                "also_covers": ",".join(covers),
                "geometry": geom,
            }
        )
    info = codes.set_index("adcode")[["adcode12", "name", "level"]]
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=STORAGE_CRS)
    out = out.join(info, on="adcode")
    out = out[TOWNSHIP_COLUMNS].sort_values("adcode").reset_index(drop=True)
    return out.astype(
        {
            "adcode": str,
            "adcode12": str,
            "name": str,
            "level": str,
            "approximate": bool,
            "also_covers": str,
        }
    )
