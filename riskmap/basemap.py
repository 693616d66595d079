"""Offline basemap from a tile file (离线底图): MBTiles or PMTiles served by the app itself.

County offices often hold an offline tile package (a ``.mbtiles`` SQLite file from a tile
downloader, or a ``.pmtiles`` archive). ``RISKMAP_BASEMAP=path/to/tiles.mbtiles`` makes the map
use it with no tile server: at start-up `install_basemap` copies the tiles that cover the county
(plus a margin) into the Streamlit app's static folder, which Streamlit already serves at
``/app/static/`` (``server.enableStaticServing = true``, as for Leaflet in `riskmap.assets`), and
returns the URL template and zoom range for a Leaflet tile layer. Tiles above the highest zoom
that fits the tile budget are drawn over-zoomed (Leaflet ``maxNativeZoom``).

Why copy instead of a tile route: ``streamlit run app.py`` offers no way to add an HTTP route
(Streamlit's ``st.App`` ASGI mode can, but would change how the app is started); the county
extent at zoom ≤ 16 is a few tens of thousands of small files, extracted once per tile file
(a manifest records the source's size and modification time, so a restart reuses them).

CRS. Both formats are Web Mercator tile grids (EPSG:3857, XYZ; MBTiles rows are TMS, flipped
here). What the pictures are *drawn in* is not recorded in either format, so it must be declared
(``RISKMAP_BASEMAP_CRS``), never guessed (STYLE.md "Never guess a CRS"):

* ``wgs84`` / ``cgcs2000``: geographic coordinates of the data are shown as they are (the two
  datums differ by centimetres, far below map scale; GB/T 2000 CGCS2000 vs WGS84);
* ``gcj02`` (AutoNavi/Tencent "Mars" tiles, most tile downloaders' default source) is refused:
  the map shows data in WGS84, and this county's GCJ-02 offset (≈ 480 m, see data/SOURCES.md)
  would put every point on the wrong slope. The same rule as `riskmap.mapview`: never AutoNavi.

This module reads tile archives and writes static files itself (an I/O edge like `riskmap.io`):
tile archives are not layer data, and keeping their readers here keeps `io` free of SQLite and
PMTiles details.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import mmap
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from riskmap.errors import CRSError, DataFileError

BASEMAP_CRS = ("wgs84", "cgcs2000", "gcj02")
"""Values of ``RISKMAP_BASEMAP_CRS`` understood (gcj02 is understood, then refused)."""

ACCEPTED_CRS = frozenset({"wgs84", "cgcs2000"})
"""Basemap CRSs drawn under the WGS84 data without shifting."""

STATIC_URL_PREFIX = "/app/static/basemap"
"""URL under which Streamlit serves ``<app dir>/static/basemap`` (enableStaticServing)."""

MAX_TILES = 40_000
"""Default tile budget for `install_basemap`: ≈ the county (±0.05°) at zooms up to 16."""

MARGIN_DEG = 0.05
"""Margin added around the county extent before choosing tiles, degrees (≈ 5 km)."""

_FORMATS = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp"}
_PMTILES_TYPES = {2: "png", 3: "jpg", 4: "webp"}
_WEB_MERCATOR_MAX_LAT = 85.0511287798


@dataclass(frozen=True)
class TileArchive:
    """
    An opened offline tile file.

    Attributes
    ----------
    path
        The ``.mbtiles`` or ``.pmtiles`` file.
    kind
        ``"mbtiles"`` or ``"pmtiles"``.
    tile_format
        File extension of the raster tiles: ``"png"``, ``"jpg"`` or ``"webp"``.
    min_zoom, max_zoom
        Zoom levels present (from the file's metadata, or its tiles for MBTiles without them).
    bounds
        ``(left, bottom, right, top)`` in EPSG:4326 degrees covered by the tiles, or None
        when the file does not say.
    crs
        Declared CRS of the pictures: ``"wgs84"`` or ``"cgcs2000"``.
    attribution
        Text the file asks to be credited with (MBTiles ``attribution`` / PMTiles metadata),
        else ``"离线底图"`` and the file name.
    """

    path: Path
    kind: str
    tile_format: str
    min_zoom: int
    max_zoom: int
    bounds: tuple[float, float, float, float] | None
    crs: str
    attribution: str


@dataclass(frozen=True)
class BasemapLayer:
    """
    What a Leaflet tile layer needs to show an installed basemap.

    Attributes
    ----------
    url_template
        ``/app/static/basemap/<key>/{z}/{x}/{y}.png``: relative to the Streamlit server.
    min_zoom, max_native_zoom
        Lowest and highest zoom whose tiles were installed; above ``max_native_zoom`` Leaflet
        enlarges the last tiles.
    bounds
        ``(left, bottom, right, top)`` EPSG:4326 degrees of the installed tiles; Leaflet asks
        for nothing outside.
    attribution
        Chinese credit line for the map corner.
    tile_count
        Number of tile files installed.
    crs
        Declared CRS of the pictures (``"wgs84"`` or ``"cgcs2000"``).
    """

    url_template: str
    min_zoom: int
    max_native_zoom: int
    bounds: tuple[float, float, float, float]
    attribution: str
    tile_count: int
    crs: str


def check_basemap_crs(crs: str, path: Path) -> str:
    """
    Validate the declared CRS of a basemap file.

    Parameters
    ----------
    crs
        Value of ``RISKMAP_BASEMAP_CRS`` (case-insensitive; ``"CGCS2000"``, ``"wgs84"``...).
    path
        The tile file, named in messages.

    Returns
    -------
    crs
        ``"wgs84"`` or ``"cgcs2000"``.

    Raises
    ------
    CRSError
        Empty (not declared), unknown, or ``gcj02`` (shifted tiles cannot carry WGS84 data).
    """
    value = crs.strip().lower().replace("-", "").replace("_", "")
    if not value:
        msg = (
            f"离线底图 {path.name} 未声明坐标系：请设置 RISKMAP_BASEMAP_CRS=wgs84 或 cgcs2000"
            "（瓦片文件本身不记录坐标系，不能猜测）。"
        )
        raise CRSError(msg)
    if value == "gcj02":
        msg = (
            f"离线底图 {path.name} 为 GCJ-02（高德/腾讯偏移坐标），与本系统的 WGS84/CGCS2000 数据"
            "相差约 500 米，会把点位画错位置：请改用 WGS84 或 CGCS2000（如天地图）瓦片包。"
        )
        raise CRSError(msg)
    if value not in ACCEPTED_CRS:
        msg = (
            f"离线底图坐标系 RISKMAP_BASEMAP_CRS={crs!r} 无法识别：应为 wgs84 或 cgcs2000"
            "（GCJ-02 偏移底图不支持）。"
        )
        raise CRSError(msg)
    return value


def _parse_bounds(text: str | None) -> tuple[float, float, float, float] | None:
    """MBTiles ``"left,bottom,right,top"`` → tuple, or None when absent or malformed."""
    if not text:
        return None
    try:
        left, bottom, right, top = (float(v) for v in text.split(","))
    except ValueError:
        return None
    return (left, bottom, right, top)


def _open_mbtiles(path: Path, crs: str) -> TileArchive:
    """Read an MBTiles file's metadata (MBTiles 1.3: ``metadata`` and ``tiles`` tables)."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            meta = dict(con.execute("SELECT name, value FROM metadata").fetchall())
            zmin, zmax = con.execute(
                "SELECT MIN(zoom_level), MAX(zoom_level) FROM tiles"
            ).fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        msg = f"离线底图 {path.name} 不是有效的 MBTiles 文件（需含 metadata 和 tiles 表）：{exc}"
        raise DataFileError(msg) from exc
    fmt = _FORMATS.get(str(meta.get("format", "png")).lower())
    if fmt is None:
        msg = (
            f"离线底图 {path.name} 的瓦片格式为 {meta.get('format')!r}：只支持栅格瓦片"
            "（png、jpg、webp），不支持矢量瓦片。"
        )
        raise DataFileError(msg)
    if zmin is None:
        msg = f"离线底图 {path.name} 不含任何瓦片。"
        raise DataFileError(msg)
    return TileArchive(
        path=path,
        kind="mbtiles",
        tile_format=fmt,
        min_zoom=int(zmin),
        max_zoom=int(zmax),
        bounds=_parse_bounds(meta.get("bounds")),
        crs=crs,
        attribution=str(meta.get("attribution") or f"离线底图 {path.name}"),
    )


def _open_pmtiles(path: Path, crs: str) -> TileArchive:
    """Read a PMTiles v3 header and metadata with the ``pmtiles`` library."""
    try:
        from pmtiles.reader import Reader  # noqa: PLC0415 - optional extra `basemap`
    except ImportError as exc:
        msg = "读取 .pmtiles 离线底图需要可选组件：pip install riskmap[basemap]"
        raise DataFileError(msg) from exc
    try:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            reader = Reader(lambda offset, length: data[offset : offset + length])
            header = reader.header()
            metadata = reader.metadata()
    except Exception as exc:  # the library raises bare Exception subclasses on bad magic
        msg = f"离线底图 {path.name} 不是有效的 PMTiles（v3）文件：{exc}"
        raise DataFileError(msg) from exc
    fmt = _PMTILES_TYPES.get(getattr(header["tile_type"], "value", header["tile_type"]))
    if fmt is None:
        msg = f"离线底图 {path.name} 不是栅格瓦片（png、jpg、webp），不支持矢量瓦片。"
        raise DataFileError(msg)
    bounds = (
        header["min_lon_e7"] / 1e7,
        header["min_lat_e7"] / 1e7,
        header["max_lon_e7"] / 1e7,
        header["max_lat_e7"] / 1e7,
    )
    return TileArchive(
        path=path,
        kind="pmtiles",
        tile_format=fmt,
        min_zoom=int(header["min_zoom"]),
        max_zoom=int(header["max_zoom"]),
        bounds=bounds if bounds[0] < bounds[2] and bounds[1] < bounds[3] else None,
        crs=crs,
        attribution=str(metadata.get("attribution") or f"离线底图 {path.name}"),
    )


def open_basemap(path: Path, *, crs: str) -> TileArchive:
    """
    Open an offline tile file and check what it holds.

    Parameters
    ----------
    path
        ``.mbtiles`` (SQLite, MBTiles 1.x) or ``.pmtiles`` (PMTiles v3) raster tile file.
    crs
        Declared CRS of the pictures (``RISKMAP_BASEMAP_CRS``): ``wgs84`` or ``cgcs2000``.

    Returns
    -------
    archive
        The file's format, zoom range, bounds and credit.

    Raises
    ------
    DataFileError
        Missing file, unknown extension, not a valid archive, vector tiles, or no tiles;
        the Chinese message names the file.
    CRSError
        CRS not declared, unknown, or GCJ-02 (see `check_basemap_crs`).
    """
    path = Path(path)
    crs = check_basemap_crs(crs, path)
    if not path.is_file():
        msg = f"离线底图文件不存在：{path}（RISKMAP_BASEMAP）"
        raise DataFileError(msg)
    suffix = path.suffix.lower()
    if suffix == ".mbtiles":
        return _open_mbtiles(path, crs)
    if suffix == ".pmtiles":
        return _open_pmtiles(path, crs)
    msg = f"离线底图 {path.name} 的格式无法识别：应为 .mbtiles 或 .pmtiles 文件。"
    raise DataFileError(msg)


def tile_range(bbox: tuple[float, float, float, float], zoom: int) -> tuple[int, int, int, int]:
    """
    XYZ tile indices covering a bbox at one zoom (Web Mercator, EPSG:3857 tile grid).

    Parameters
    ----------
    bbox
        ``(left, bottom, right, top)`` in EPSG:4326 degrees.
    zoom
        Zoom level, 0–24.

    Returns
    -------
    x_min, y_min, x_max, y_max
        Inclusive tile column and row ranges (XYZ: row 0 at the north edge). Formula of the
        OSM "Slippy map tilenames" convention used by Leaflet.
    """
    n = 2**zoom

    def col(lon: float) -> int:
        return min(n - 1, max(0, math.floor((lon + 180.0) / 360.0 * n)))

    def row(lat: float) -> int:
        lat = max(-_WEB_MERCATOR_MAX_LAT, min(_WEB_MERCATOR_MAX_LAT, lat))
        r = math.radians(lat)
        return min(n - 1, max(0, math.floor((1.0 - math.asinh(math.tan(r)) / math.pi) / 2.0 * n)))

    left, bottom, right, top = bbox
    return col(left), row(top), col(right), row(bottom)


def _tiles_mbtiles(
    archive: TileArchive, zoom: int, ranges: tuple[int, int, int, int]
) -> Iterator[tuple[int, int, int, bytes]]:
    x_min, y_min, x_max, y_max = ranges
    flip = 2**zoom - 1  # MBTiles stores TMS rows (0 at the south edge)
    con = sqlite3.connect(f"file:{archive.path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT tile_column, tile_row, tile_data FROM tiles WHERE zoom_level = ? "
            "AND tile_column BETWEEN ? AND ? AND tile_row BETWEEN ? AND ?",
            (zoom, x_min, x_max, flip - y_max, flip - y_min),
        )
        for x, tms_row, data in rows:
            yield zoom, int(x), flip - int(tms_row), bytes(data)
    finally:
        con.close()


def _tiles_pmtiles(
    archive: TileArchive, zoom: int, ranges: tuple[int, int, int, int]
) -> Iterator[tuple[int, int, int, bytes]]:
    from pmtiles.reader import Reader  # noqa: PLC0415 - optional extra `basemap`
    from pmtiles.tile import Compression  # noqa: PLC0415

    x_min, y_min, x_max, y_max = ranges
    with archive.path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        reader = Reader(lambda offset, length: data[offset : offset + length])
        gzipped = reader.header()["tile_compression"] == Compression.GZIP
        for x in range(x_min, x_max + 1):
            for y in range(y_min, y_max + 1):
                tile = reader.get(zoom, x, y)
                if tile:
                    yield zoom, x, y, gzip.decompress(tile) if gzipped else bytes(tile)


def iter_tiles(
    archive: TileArchive, bbox: tuple[float, float, float, float], zoom: int
) -> Iterator[tuple[int, int, int, bytes]]:
    """
    Yield the tiles of one zoom level that cover `bbox` and exist in the file.

    Parameters
    ----------
    archive
        From `open_basemap`.
    bbox
        ``(left, bottom, right, top)`` in EPSG:4326 degrees.
    zoom
        Zoom level.

    Yields
    ------
    z, x, y, data
        XYZ address (row 0 north) and the tile's image bytes.
    """
    ranges = tile_range(bbox, zoom)
    if archive.kind == "mbtiles":
        yield from _tiles_mbtiles(archive, zoom, ranges)
    else:
        yield from _tiles_pmtiles(archive, zoom, ranges)


def _tile_budget_zoom(
    archive: TileArchive, bbox: tuple[float, float, float, float], max_tiles: int
) -> int:
    """Highest zoom such that every tile slot of `bbox` from min_zoom up to it fits `max_tiles`."""
    total, best = 0, archive.min_zoom
    for zoom in range(archive.min_zoom, archive.max_zoom + 1):
        x_min, y_min, x_max, y_max = tile_range(bbox, zoom)
        total += (x_max - x_min + 1) * (y_max - y_min + 1)
        if total > max_tiles:
            break
        best = zoom
    return best


def _install_key(archive: TileArchive, bbox: tuple[float, float, float, float], top: int) -> str:
    stat = archive.path.stat()
    ident = json.dumps(
        [str(archive.path.resolve()), stat.st_size, stat.st_mtime_ns, bbox, archive.min_zoom, top]
    )
    return hashlib.sha256(ident.encode("utf-8")).hexdigest()[:16]


def _extract(
    archive: TileArchive, want: tuple[float, float, float, float], top_zoom: int, dest: Path
) -> None:
    """Write the tiles of zooms ``min_zoom..top_zoom`` covering `want` and a manifest to `dest`."""
    from riskmap import io  # noqa: PLC0415 - io pulls in geopandas; tiles need none of it

    count = 0
    for zoom in range(archive.min_zoom, top_zoom + 1):
        for z, x, y, data in iter_tiles(archive, want, zoom):
            io.write_derived_file(dest / str(z) / str(x) / f"{y}.{archive.tile_format}", data)
            count += 1
    if count == 0:
        msg = (
            f"离线底图 {archive.path.name} 在本县范围内没有瓦片"
            f"（第 {archive.min_zoom}–{top_zoom} 级）：请换用覆盖本县的瓦片包。"
        )
        raise DataFileError(msg)
    manifest = {
        "source": str(archive.path.resolve()),
        "format": archive.tile_format,
        "min_zoom": archive.min_zoom,
        "max_native_zoom": top_zoom,
        "bounds": list(want),
        "tile_count": count,
        "crs": archive.crs,
        "attribution": archive.attribution,
    }
    io.write_derived_file(dest / "manifest.json", json.dumps(manifest, ensure_ascii=False).encode())


def install_basemap(
    archive: TileArchive,
    static_dir: Path,
    bbox: tuple[float, float, float, float],
    *,
    max_tiles: int = MAX_TILES,
    margin_deg: float = MARGIN_DEG,
    url_prefix: str = STATIC_URL_PREFIX,
) -> BasemapLayer:
    """
    Copy the tiles covering `bbox` into the static folder; return the Leaflet layer settings.

    The tiles go to ``static_dir/basemap/<key>/{z}/{x}/{y}.<ext>``; ``<key>`` hashes the file's
    path, size and modification time, the bbox and the zoom range, so a changed file gets a new
    folder and browsers never show stale cached tiles. The folder is written under a temporary
    name and renamed into place, with ``manifest.json`` inside: a second start (or a second
    process racing the first) reuses a complete folder and never sees a half-written one.
    Older folders of the same static dir are removed.

    Parameters
    ----------
    archive
        From `open_basemap`.
    static_dir
        The app's static folder, ``Path(app.py).parent / "static"``.
    bbox
        ``(left, bottom, right, top)`` EPSG:4326 degrees to cover, usually the county's
        extent; widened by `margin_deg` and cut to the file's own bounds.
    max_tiles
        Budget of tile *slots* (present or not) summed over zooms; zooms are added from the
        file's ``min_zoom`` up while the total fits. For this county (±0.05°) 40 000 slots
        reach zoom 16.
    margin_deg
        Degrees added on each side of `bbox`.
    url_prefix
        URL at which Streamlit serves ``static_dir/basemap``.

    Returns
    -------
    layer
        URL template, zoom range, bounds and credit for `riskmap.mapview`.

    Raises
    ------
    DataFileError
        No tile of the file covers `bbox` (the package is for another area).
    """
    left, bottom, right, top = bbox
    want = (left - margin_deg, bottom - margin_deg, right + margin_deg, top + margin_deg)
    if archive.bounds is not None:
        a_left, a_bottom, a_right, a_top = archive.bounds
        want = (
            max(want[0], a_left),
            max(want[1], a_bottom),
            min(want[2], a_right),
            min(want[3], a_top),
        )
        if want[0] >= want[2] or want[1] >= want[3]:
            msg = (
                f"离线底图 {archive.path.name} 的范围 {archive.bounds} 与本县范围 {bbox} 不相交："
                "请换用覆盖本县的瓦片包。"
            )
            raise DataFileError(msg)
    top_zoom = _tile_budget_zoom(archive, want, max_tiles)
    key = _install_key(archive, want, top_zoom)
    root = Path(static_dir) / "basemap"
    final = root / key
    manifest_path = final / "manifest.json"
    if not manifest_path.is_file():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            _extract(archive, want, top_zoom, tmp)
            # mkdtemp makes the folder 0700; the tiles are public static files by design
            os.chmod(tmp, 0o755)  # noqa: S103
            try:
                os.rename(tmp, final)
            except OSError:  # another process installed the same key first: keep theirs
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in root.iterdir():  # folders of older files or extents
            if old.name != key and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)
    manifest = json.loads(manifest_path.read_text("utf-8"))
    return BasemapLayer(
        url_template=f"{url_prefix.rstrip('/')}/{key}/{{z}}/{{x}}/{{y}}.{manifest['format']}",
        min_zoom=int(manifest["min_zoom"]),
        max_native_zoom=int(manifest["max_native_zoom"]),
        bounds=tuple(manifest["bounds"]),  # type: ignore[arg-type]
        attribution=str(manifest["attribution"]),
        tile_count=int(manifest["tile_count"]),
        crs=str(manifest["crs"]),
    )
