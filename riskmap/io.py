"""The only module that opens files: catalog, layers, reference data, atomic writes.

Everything here reads or writes; everything it returns is handed to the pure modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

import geopandas as gpd
import pyogrio.errors

from riskmap.errors import CRSError, DataFileError
from riskmap.townships import townships_from_frame

if TYPE_CHECKING:
    from pathlib import Path

    from riskmap.settings import Settings

# --- layers and catalog -------------------------------------------------------------------

# --- reference data (county outline, townships) -------------------------------------------

_DBF_ENCODINGS = ("utf-8", "gb18030")  # gb18030 is a superset of GBK and GB2312


def _read_reference_vector(path: Path) -> gpd.GeoDataFrame:
    """
    Read a vector file with pyogrio, detecting the encoding of a Shapefile with no ``.cpg``.

    Parameters
    ----------
    path
        GeoJSON, GeoPackage or Shapefile.

    Returns
    -------
    gdf
        As read, in the file's declared CRS (or none).

    Raises
    ------
    DataFileError
        The file is missing or cannot be read (names the file).
    """
    if not path.exists():
        msg = f"{path}: file not found"
        raise DataFileError(msg)
    encodings: tuple[str | None, ...] = (None,)
    if path.suffix.lower() == ".shp" and not path.with_suffix(".cpg").exists():
        # No .cpg: GDAL would assume ISO-8859-1 and garble Chinese names. Try UTF-8, then GBK.
        encodings = _DBF_ENCODINGS
    last_error: Exception | None = None
    for encoding in encodings:
        try:
            return gpd.read_file(path, engine="pyogrio", encoding=encoding)
        except UnicodeDecodeError as exc:
            last_error = exc
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            msg = f"{path}: cannot read vector data ({exc})"
            raise DataFileError(msg) from exc
    msg = f"{path}: text fields are neither UTF-8 nor GBK/GB18030 ({last_error})"
    raise DataFileError(msg)


def read_county(settings: Settings) -> gpd.GeoDataFrame:
    """
    Read the county outline.

    Parameters
    ----------
    settings
        Uses ``settings.county_path`` (WGS84 GeoJSON written by ``scripts/build_reference.py``).

    Returns
    -------
    gdf_county
        One row: ``adcode`` (6-digit str), ``name``, ``geometry`` (MultiPolygon); EPSG:4326.

    Raises
    ------
    DataFileError
        The file is missing, unreadable or does not hold exactly one feature.
    CRSError
        The file declares no CRS.
    """
    path = settings.county_path
    gdf = _read_reference_vector(path)
    if len(gdf) != 1:
        msg = f"{path}: expected 1 county feature, found {len(gdf)}"
        raise DataFileError(msg)
    if gdf.crs is None:
        msg = f"{path}: no CRS"
        raise CRSError(msg)
    gdf = gdf.to_crs("EPSG:4326")
    gdf["adcode"] = gdf["adcode"].astype(str)
    return gdf[["adcode", "name", "geometry"]].reset_index(drop=True)


def read_township_codes(settings: Settings) -> pd.DataFrame:
    """
    Read the township code table with every column as text.

    Parameters
    ----------
    settings
        Uses ``settings.township_codes_path`` (``data/townships.csv``).

    Returns
    -------
    codes
        25 rows: ``adcode`` (9 digits), ``adcode12`` (12 digits), ``name``, ``level``,
        ``seat_lon``, ``seat_lat`` (WGS84 degrees as text; NaN where there is no seat).

    Raises
    ------
    DataFileError
        The file is missing or lacks ``adcode``/``name``.
    """
    path = settings.township_codes_path
    if not path.exists():
        msg = f"{path}: file not found"
        raise DataFileError(msg)
    codes = pd.read_csv(path, dtype=str, encoding="utf-8")
    if missing := {"adcode", "name"} - set(codes.columns):
        msg = f"{path}: missing columns {sorted(missing)}"
        raise DataFileError(msg)
    codes["adcode"] = codes["adcode"].str.strip()
    if "adcode12" not in codes.columns:
        codes["adcode12"] = codes["adcode"] + "000"
    if "level" not in codes.columns:
        codes["level"] = codes["name"].str.extract(r"(街道|镇|乡)$", expand=False).fillna("")
    return codes


def read_townships(settings: Settings) -> gpd.GeoDataFrame:
    """
    Read township polygons as the township contract (see `riskmap.townships`).

    ``settings.township_polygons_path`` is the bundled approximate partition or the county's
    official 乡镇界 file: GeoJSON, GeoPackage or Shapefile (a ``.dbf`` without ``.cpg`` is
    decoded as UTF-8, else GBK/GB18030), in CGCS2000/WGS84 geographic or CGCS2000
    Gauss-Krüger. EPSG:4490 is taken as EPSG:4326 (a no-op `to_crs`: the two differ by
    centimetres).

    Parameters
    ----------
    settings
        Uses ``township_polygons_path`` and ``township_codes_path``.

    Returns
    -------
    gdf_townships
        Columns ``adcode``, ``adcode12``, ``name``, ``level``, ``approximate``,
        ``also_covers``, ``geometry``; EPSG:4326; sorted by ``adcode``; RangeIndex.
        ``attrs["township_names"]`` maps every 9-digit code of the code table to its name,
        so that `riskmap.join` can name townships listed in ``also_covers``.

    Raises
    ------
    DataFileError
        A file is missing or unreadable.
    CRSError
        The polygon file declares no CRS and is not lon/lat in China.
    SchemaError
        Features that match no township, or townships left without a polygon (all listed).

    Warns
    -----
    UserWarning
        A feature with a null geometry (skipped), or a CRS assumed to be EPSG:4490.
    """
    path = settings.township_polygons_path
    codes = read_township_codes(settings)
    gdf_raw = _read_reference_vector(path)
    gdf = townships_from_frame(gdf_raw, codes, source=str(path))
    gdf.attrs["township_names"] = dict(zip(codes["adcode"], codes["name"], strict=True))
    return gdf
