"""The only module that opens files: catalog, layers, reference data, atomic writes.

Everything here reads or writes; everything it returns is handed to the pure modules.
Layer writes are atomic (temp file in the same directory, fsync, `os.replace`), keep the
previous version in ``layers/.history/<layer>/`` and hold a file lock (``filelock``) so two
imports cannot interleave.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import hashlib
import json
import os
import tempfile
import tomllib
import warnings
from io import BytesIO
from typing import TYPE_CHECKING, Any

import pandas as pd
from filelock import FileLock, Timeout

import geopandas as gpd
import pyogrio.errors

from riskmap.catalog import Catalog, LayerSpec, catalog_from_dict
from riskmap.coords import datum_warning
from riskmap.errors import (
    CatalogError,
    CRSError,
    DataFileError,
    ImportFileError,
    LockError,
    StaleVersionError,
)
from riskmap.settings import STORAGE_CRS
from riskmap.townships import townships_from_frame

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from riskmap.settings import Settings

# --- layers and catalog -------------------------------------------------------------------

HISTORY_DIR = ".history"
"""Folder (inside the layers directory) holding previous versions of each layer."""


def read_catalog(settings: Settings) -> Catalog:
    """
    Read and check ``layers/catalog.toml``.

    Raises
    ------
    CatalogError
        When the file is missing, not TOML, or a declaration is malformed (names the file).
    """
    path = settings.catalog_path
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"{path}: 图层目录文件不存在 (layer catalog not found)"
        raise CatalogError(msg) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"{path}: 图层目录不是有效的 TOML: {exc}"
        raise CatalogError(msg) from None
    try:
        return catalog_from_dict(raw)
    except CatalogError as exc:
        msg = f"{path}: {exc}"
        raise CatalogError(msg) from None


def empty_layer(spec: LayerSpec) -> gpd.GeoDataFrame:
    """Return an empty GeoDataFrame with the layer's declared columns, EPSG:4326."""
    return gpd.GeoDataFrame(
        {k: pd.Series(dtype=object) for k in spec.fields}, geometry=[], crs=STORAGE_CRS
    )


CACHE_DIR = ".cache"
"""Folder (inside the layers directory) of derived GeoParquet copies of the layer files."""

_CACHE_FORMAT = "1"  # bump when the cached frame's construction changes


def _cache_key(data: bytes) -> str:
    """
    SHA-256 of a layer file's bytes and of everything that shapes the frame read from them.

    The library versions are part of the key: a newer pyogrio/GDAL/pandas could type a
    column differently, and the cache must give what a fresh read of the GeoJSON gives.
    """
    versions = (pyogrio.__version__, pyogrio.__gdal_version_string__, pd.__version__)
    tag = f"{_CACHE_FORMAT}|{'|'.join(versions)}|{gpd.__version__}"
    digest = hashlib.sha256(tag.encode())
    digest.update(data)
    return digest.hexdigest()


def _cache_path(path: Path, cache_dir: Path, key: str) -> Path:
    return cache_dir / f"{path.name}.{key}.parquet"


def _read_cache(path: Path, cache_dir: Path, key: str) -> gpd.GeoDataFrame | None:
    """Return the cached frame of this exact content, or None (missing, unreadable)."""
    cached = _cache_path(path, cache_dir, key)
    if not cached.exists():
        return None
    try:
        gdf = gpd.read_parquet(cached)
    except Exception:  # noqa: BLE001 - a broken cache is only a miss: read the GeoJSON
        return None
    return gdf.set_crs(STORAGE_CRS, allow_override=True)


def _write_cache(gdf: gpd.GeoDataFrame, path: Path, cache_dir: Path, key: str) -> None:
    """Write the derived cache atomically and drop older caches of the same file.

    Best effort: a read-only layers directory or a missing pyarrow only costs speed.
    """
    target = _cache_path(path, cache_dir, key)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=cache_dir)
        os.close(fd)
        try:
            gdf.to_parquet(tmp, index=None)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        for old in cache_dir.glob(f"{glob.escape(path.name)}.*.parquet"):
            if old != target:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
    except (OSError, ImportError, ValueError):
        return


def read_layer_file(path: Path, *, cache_dir: Path | None = None) -> gpd.GeoDataFrame:
    """
    Read one GeoJSON layer file as stored (no coercion, no join).

    Parameters
    ----------
    path
        RFC 7946 GeoJSON FeatureCollection, WGS84 lon/lat.
    cache_dir
        Folder of derived GeoParquet copies (`read_layer` passes ``layers/.cache``); None =
        no cache. A copy is named after the SHA-256 of the exact bytes read (plus the
        pyogrio/GDAL/pandas/geopandas versions), so it is used only for that content and can
        never go stale; it is written atomically after a GeoJSON read. The GeoJSON stays the
        file of record: deleting the cache changes nothing but speed.

    Returns
    -------
    gdf
        Features with their properties; dates stay ISO text; CRS EPSG:4326. The same frame
        (columns, dtypes, values) whether it came from the GeoJSON or the cache.

    Raises
    ------
    DataFileError
        When the file is unreadable or not a GeoJSON FeatureCollection (names the file).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        msg = f"{path}: 无法读取图层文件 (cannot read layer file): {exc.strerror or exc}"
        raise DataFileError(msg) from None
    if not data[:4096].lstrip().startswith(b"{"):
        msg = f"{path}: 不是 GeoJSON 文件 (expected a JSON object)"
        raise DataFileError(msg)
    key = _cache_key(data) if cache_dir is not None else ""
    if cache_dir is not None and (cached := _read_cache(path, cache_dir, key)) is not None:
        return cached
    try:
        # Parse the bytes that were hashed, so a concurrent rewrite cannot pair the cache
        # key of one version with the content of another.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gdf = gpd.read_file(BytesIO(data), engine="pyogrio", datetime_as_string=True)
    except Exception as exc:  # noqa: BLE001 - pyogrio/GDAL raise many types for bad files
        msg = f"{path}: GeoJSON 格式错误，无法读取 (malformed GeoJSON): {exc}"
        raise DataFileError(msg) from None
    for w in caught:
        if issubclass(w.category, RuntimeWarning) or "geometry" in str(w.message).lower():
            # GDAL warns, then silently gives such features a NULL geometry: data lost unseen
            msg = f"{path}: GeoJSON 内容有误 (GDAL: {w.message})"
            raise DataFileError(msg)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    _check_geometries(gdf, path)
    if gdf.crs is None:
        gdf = gdf.set_crs(STORAGE_CRS)  # RFC 7946: GeoJSON is WGS84 by definition
    if cache_dir is not None:
        _write_cache(gdf, path, cache_dir, key)
    return gdf


def _check_geometries(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """Refuse geometries GDAL read as NULL although the file has one, and NaN/inf coordinates."""
    import numpy as np  # noqa: PLC0415

    import shapely  # noqa: PLC0415

    geoms = gdf.geometry.to_numpy()
    missing = int(shapely.is_missing(geoms).sum())
    if missing:
        raw = path.read_bytes()
        declared = raw.count(b'"geometry":null') + raw.count(b'"geometry": null')
        if missing > declared:
            msg = f"{path}: {missing - declared} 个要素的几何无法解析 (unreadable geometry)"
            raise DataFileError(msg)
    if len(geoms) and not np.isfinite(shapely.get_coordinates(geoms)).all():
        msg = f"{path}: 要素坐标含 NaN 或无穷大 (non-finite coordinates)"
        raise DataFileError(msg)


def read_layer(spec: LayerSpec, settings: Settings) -> gpd.GeoDataFrame:
    """
    Read a declared layer; a declared layer with no file yet is empty.

    Uses the derived cache in ``layers/.cache`` (see `read_layer_file`).

    Returns
    -------
    gdf
        As `read_layer_file`, or `empty_layer` when the file does not exist.

    Raises
    ------
    DataFileError
        When the file exists but cannot be read.
    """
    path = spec.path(settings.layers_dir)
    if not path.exists():
        return empty_layer(spec)
    return read_layer_file(path, cache_dir=settings.layers_dir / CACHE_DIR)


SPARSE_COLUMNS_ATTR = "riskmap_sparse_columns"
"""``gdf.attrs`` key: columns written only on the features where they have a value.

Set by the importer (`riskmap.importing.plan_import`) for the columns an import brings that
the stored layer did not have (a survey's own columns, ``flags``, ``incomplete``): RFC 7946
properties are per feature, so a feature that never had such a column gets no null key.
"""


def geojson_text(gdf: gpd.GeoDataFrame, *, drop_columns: tuple[str, ...] = ()) -> str:
    """
    Serialise features as RFC 7946 GeoJSON text.

    WGS84 lon/lat (reprojected if needed), no ``crs`` member, Chinese not escaped, ``null``
    never ``NaN`` (``allow_nan=False`` guarantees a strict parser accepts it), no feature ids.
    Columns named in ``gdf.attrs[SPARSE_COLUMNS_ATTR]`` are left out of the properties of
    the features where they are null (other columns are written, ``null`` included).

    Parameters
    ----------
    gdf
        Features with a CRS.
    drop_columns
        Columns to leave out.

    Returns
    -------
    text
        A FeatureCollection, one feature per row, same order.
    """
    out = gdf.drop(columns=[c for c in drop_columns if c in gdf.columns])
    if out.crs is not None and not out.crs.equals(STORAGE_CRS):
        out = out.to_crs(STORAGE_CRS)
    for col in out.columns:
        if col == out.geometry.name:
            continue
        series = out[col]
        if pd.api.types.is_datetime64_any_dtype(series):
            out[col] = series.dt.strftime("%Y-%m-%d").astype(object).where(series.notna(), None)
        elif not pd.api.types.is_float_dtype(series):
            out[col] = series.astype(object).where(series.notna(), None)
    data = json.loads(out.to_json(na="null", drop_id=True))
    data.pop("crs", None)
    sparse = [c for c in gdf.attrs.get(SPARSE_COLUMNS_ATTR, ()) if c in out.columns]
    for feature in data["features"]:
        feature.pop("bbox", None)
        props = feature.get("properties") or {}
        for col in sparse:
            if props.get(col, 0) is None:
                del props[col]
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


@contextlib.contextmanager
def layer_lock(path: Path, *, timeout_s: float = 10.0) -> Iterator[None]:
    """
    Hold the write lock of one layer file (``.<name>.lock`` beside it).

    The lock is an OS lock (``filelock``/flock): it is released when the holder exits or is
    killed, so a crashed import never leaves the layer locked.

    Raises
    ------
    LockError
        When another process holds the lock for longer than `timeout_s` seconds.
    """
    lock = FileLock(str(path.with_name(f".{path.name}.lock")), timeout=timeout_s)
    try:
        with lock:
            yield
    except Timeout:
        msg = f"{path}: 另一个导入正在写入该图层，请稍后再试 (layer is locked by another import)"
        raise LockError(msg) from None


def _file_mode(path: Path) -> int:
    """Keep the mode of the file being replaced; new files get rw-r--r-- (mkstemp gives 0600)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o644


def _fsync_dir(folder: Path) -> None:
    """Flush the directory entry so the rename itself survives a power cut."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_bytes_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """
    Replace `path` with `data` atomically: temp file in the same folder, fsync, `os.replace`.

    A reader sees either the old or the new file, never a partial one, even if the writer is
    killed mid-write (the temp file ``.<name>.*.tmp`` may be left behind; it is never read).

    Parameters
    ----------
    path
        File to replace (its folder is created).
    data
        New content.
    mode
        Permission bits of the new file; default: those of the file replaced, or 0644.
        Secrets use 0600; the temp file has that mode before any byte is written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode(path) if mode is None else mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str, *, mode: int | None = None) -> None:
    """
    Replace `path` with `text` (UTF-8, LF line ends) atomically, see `write_bytes_atomic`.

    A reader sees either the old or the new file, never a partial one, even if the writer is
    killed mid-write.
    """
    write_bytes_atomic(path, text.encode("utf-8"), mode=mode)


def history_dir(spec: LayerSpec, settings: Settings) -> Path:
    """Folder of previous versions of a layer: ``layers/.history/<layer id>/``."""
    return settings.layers_dir / HISTORY_DIR / spec.id


def file_version(path: Path) -> str:
    """
    Version token of a stored file: SHA-256 of its bytes, ``""`` when it does not exist.

    Equal tokens mean identical content; used to refuse a write made against a stale preview.
    """
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return ""


def read_log(hdir: Path) -> list[dict[str, Any]]:
    """
    Return the audit log ``<hdir>/log.jsonl``, oldest first; ``[]`` when there is none.

    A line that is not a JSON object, or whose ``backup`` is not a plain file name, is
    skipped with a `UserWarning` naming the line: a corrupt log never stops the app, and a
    backup reference can never point outside `hdir`.
    """
    log = hdir / "log.jsonl"
    if not log.exists():
        return []
    entries: list[dict[str, Any]] = []
    for lineno, line in enumerate(log.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            entry = None
        backup = entry.get("backup") if isinstance(entry, dict) else None
        bad_backup = backup is not None and (
            not isinstance(backup, str)
            or os.path.basename(backup) != backup
            or backup in {".", ".."}
        )
        if not isinstance(entry, dict) or bad_backup:
            warnings.warn(
                f"{log}:{lineno}: 历史记录行已损坏，已跳过 (corrupt log line skipped)",
                UserWarning,
                stacklevel=2,
            )
            continue
        entries.append(entry)
    return entries


def read_history(spec: LayerSpec, settings: Settings) -> list[dict[str, Any]]:
    """
    Return the layer's change log, oldest first (see `read_log`).

    Each entry: ``time`` (ISO 8601, UTC), ``user``, ``action``, ``source`` (file name),
    ``rows_before``, ``rows_after``, ``added``, ``updated``, ``backup`` (file name of the
    version that was replaced, in `history_dir`, or None when there was none).
    """
    return read_log(history_dir(spec, settings))


def write_versioned(
    path: Path,
    data: bytes,
    hdir: Path,
    *,
    entry: dict[str, Any],
    keep: int,
    count_rows: Callable[[bytes], int | None] | None = None,
    precondition: Callable[[], None] | None = None,
    expected_version: str | None = None,
    lock_timeout_s: float = 10.0,
) -> str:
    """
    Replace `path` with `data` atomically, keeping the previous version and a log entry.

    Under the lock of `path`: `expected_version` and `precondition` are checked, stale temp
    files of a killed writer are removed, the current file is copied to `hdir`, the log
    entry is appended to ``hdir/log.jsonl``, then the new file replaces the old one
    (`write_bytes_atomic`). A writer killed at any moment leaves the old or the new version,
    never a partial file; the OS releases its lock. The log entry is written before the file
    so that no change is ever unlogged (a writer killed between the two leaves an entry whose
    backup equals the current file: undoing it changes nothing).

    Parameters
    ----------
    path, data
        File to replace and its new content.
    hdir
        History folder: backups ``<UTC stamp>__<file name>`` and ``log.jsonl``.
    entry
        Log fields (``user``, ``action``, ``source``, counts…); ``time``, ``backup``,
        ``rows_before``/``rows_after`` (when `count_rows` is given) are added.
    keep
        Previous versions kept (older backups are deleted).
    count_rows
        Counts the records of a version's bytes, for ``rows_before``/``rows_after``.
    precondition
        Called with the lock held, before anything is written; raise to refuse the write.
    expected_version
        `file_version` the caller previewed; a different current version raises.
    lock_timeout_s
        How long to wait for another writer.

    Returns
    -------
    version
        `file_version` of the new content.

    Raises
    ------
    StaleVersionError
        When `expected_version` differs from the current version.
    LockError
        When another process holds the lock for longer than `lock_timeout_s`.
    """
    with layer_lock(path, timeout_s=lock_timeout_s):
        if expected_version is not None and file_version(path) != expected_version:
            msg = (
                f"{path.name}: 预览之后数据已被修改（可能有其他编辑），请重新预览后再提交"
                " (changed since your preview)"
            )
            raise StaleVersionError(msg)
        if precondition is not None:
            precondition()
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)  # left by a killed writer; only lock holders write
        rows_before = None
        backup = None
        hdir.mkdir(parents=True, exist_ok=True)
        if path.exists():
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            backup = f"{stamp}__{path.name}"
            old = path.read_bytes()
            rows_before = count_rows(old) if count_rows else None
            write_bytes_atomic(hdir / backup, old)
        full = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "user": "",
            "action": "write",
            "source": "",
            "rows_before": rows_before,
            "rows_after": count_rows(data) if count_rows else None,
            "backup": backup,
            **entry,
        }
        log = hdir / "log.jsonl"
        previous = log.read_text(encoding="utf-8") if log.exists() else ""
        write_text_atomic(log, previous + json.dumps(full, ensure_ascii=False) + "\n")
        write_bytes_atomic(path, data)
        backups = sorted(hdir.glob(f"*__{path.name}"))
        for old_backup in backups[: max(0, len(backups) - keep)]:
            old_backup.unlink()
    return hashlib.sha256(data).hexdigest()


def _count_features(data: bytes) -> int:
    return data.count(b'"type":"Feature"') + data.count(b'"type": "Feature"')


def write_layer(
    gdf: gpd.GeoDataFrame,
    spec: LayerSpec,
    settings: Settings,
    *,
    user: str = "",
    action: str = "write",
    source: str = "",
    counts: dict[str, Any] | None = None,
    drop_columns: tuple[str, ...] = ("join_flag",),
    precondition: Callable[[], None] | None = None,
    expected_version: str | None = None,
    lock_timeout_s: float = 10.0,
) -> Path:
    """
    Write a layer atomically, keeping the previous version and a log entry (`write_versioned`).

    Parameters
    ----------
    gdf
        Features to store (any CRS; stored as EPSG:4326).
    spec
        The layer's declaration.
    settings
        Where the layers live; `settings.history_keep` versions are kept.
    user, action, source, counts
        Recorded in the history log (who, ``import``/``undo``/``write``, file name, counts).
    drop_columns
        Working columns not stored.
    precondition, expected_version, lock_timeout_s
        See `write_versioned`.

    Returns
    -------
    path
        The layer file written.

    Raises
    ------
    StaleVersionError
        When the layer changed since `expected_version`.
    LockError
        When another process is writing the same layer for longer than `lock_timeout_s`.
    """
    path = spec.path(settings.layers_dir)
    text = geojson_text(gdf, drop_columns=drop_columns)
    write_versioned(
        path,
        text.encode("utf-8"),
        history_dir(spec, settings),
        entry={"user": user, "action": action, "source": source, **(counts or {})},
        keep=settings.history_keep,
        count_rows=_count_features,
        precondition=precondition,
        expected_version=expected_version,
        lock_timeout_s=lock_timeout_s,
    )
    return path


def last_undoable(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """
    Return the log entry the next undo reverts, or None when there is nothing to undo.

    Undo entries carry ``undoes`` (the backup they restored); an entry already undone is
    skipped, so repeated undos walk back through the history.
    """
    undone = {e.get("undoes") for e in entries if e.get("action") == "undo"}
    candidates = [
        e
        for e in entries
        if e.get("action") != "undo" and e.get("backup") and e["backup"] not in undone
    ]
    return candidates[-1] if candidates else None


def undo_last_write(spec: LayerSpec, settings: Settings, *, user: str = "") -> Path:
    """
    Restore the version replaced by the last write (undo the last import).

    The current version is itself kept in the history, so an undo can be undone.

    Raises
    ------
    DataFileError
        When there is nothing to undo.
    """
    last = last_undoable(read_history(spec, settings))
    if last is None:
        msg = f"{spec.name}: 没有可撤销的导入 (nothing to undo)"
        raise DataFileError(msg)
    backup = history_dir(spec, settings) / last["backup"]
    if not backup.exists():
        msg = f"{backup}: 历史版本已被清理，无法撤销 (backup pruned)"
        raise DataFileError(msg)
    previous = read_layer_file(backup)
    return write_layer(
        previous,
        spec,
        settings,
        user=user,
        action="undo",
        source=last.get("source", ""),
        counts={"undoes": last["backup"]},
    )


def read_secrets_text(path: Path) -> str:
    """
    Read ``secrets.toml`` as text (``""`` when it does not exist yet).

    Raises
    ------
    DataFileError
        When it exists but cannot be read or is not UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: 无法读取 secrets 文件: {exc}"
        raise DataFileError(msg) from None


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
            gdf = gpd.read_file(path, engine="pyogrio", encoding=encoding)
        except UnicodeDecodeError as exc:
            last_error = exc
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            msg = f"{path}: 无法读取矢量数据 (cannot read vector data: {exc})"
            raise DataFileError(msg) from exc
        else:
            if not isinstance(gdf, gpd.GeoDataFrame):
                msg = (
                    f"{path}: 没有几何图形（只是表格）；请提供 GeoJSON、GeoPackage 或 "
                    "Shapefile 格式的乡镇界 (no geometry: give a GeoJSON/GPKG/SHP file)"
                )
                raise DataFileError(msg)
            return gdf
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
    datum = datum_warning(gdf.crs, source=path.name)
    if datum is not None:
        warnings.warn(datum, UserWarning, stacklevel=2)
    gdf = gdf.to_crs(STORAGE_CRS)
    gdf["adcode"] = gdf["adcode"].astype(str)
    out = gdf[["adcode", "name", "geometry"]].reset_index(drop=True)
    out.attrs["datum_warnings"] = [datum] if datum is not None else []
    return out


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
        A feature with a null geometry (skipped), a CRS assumed to be EPSG:4490, or a datum
        converted only approximately (`riskmap.coords.datum_warning`; the text is also in
        ``attrs["datum_warnings"]`` for the CLI and the app to show).
    """
    path = settings.township_polygons_path
    codes = read_township_codes(settings)
    gdf_raw = _read_reference_vector(path)
    datum = datum_warning(gdf_raw.crs, source=path.name)
    if datum is not None:
        warnings.warn(datum, UserWarning, stacklevel=2)
    gdf = townships_from_frame(gdf_raw, codes, source=str(path))
    gdf.attrs["township_names"] = dict(zip(codes["adcode"], codes["name"], strict=True))
    gdf.attrs["datum_warnings"] = [datum] if datum is not None else []
    return gdf


# --- import inputs (survey files, column mappings) ----------------------------------------


def read_import_bytes(path: Path, *, max_mb: float = 20.0) -> bytes:
    """
    Read a survey file to import as bytes (parsed by `riskmap.importing.plan_import`).

    Parameters
    ----------
    path
        CSV/TXT/XLSX/XLS file.
    max_mb
        Largest size accepted, in MiB (``settings.upload_max_mb``).

    Raises
    ------
    ImportFileError
        When the file is missing, unreadable or larger than `max_mb` (names the file).
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        msg = f"{path}: 无法读取导入文件 (cannot read): {exc.strerror or exc}"
        raise ImportFileError(msg) from None
    if size > max_mb * 2**20:
        msg = f"{path}: 文件 {size / 2**20:.1f} MiB，超过上限 {max_mb:g} MiB"
        raise ImportFileError(msg)
    try:
        return path.read_bytes()
    except OSError as exc:
        msg = f"{path}: 无法读取导入文件 (cannot read): {exc.strerror or exc}"
        raise ImportFileError(msg) from None


def read_mapping_file(path: Path) -> dict[str, str | None]:
    """
    Read a column mapping for `plan_import` from JSON or TOML.

    The file holds ``{source column: field key | label | "lon" | "lat" | "x" | "y" | ""}``
    (``""``/``null`` = keep the column as an extra property); in TOML, under a
    ``[mapping]`` table or at the top level. An optional ``[defaults]`` table is ignored
    here (see `read_defaults_file`).

    Raises
    ------
    ImportFileError
        When the file is missing, not JSON/TOML, or not a table of text values.
    """
    raw = _read_mapping_doc(path)
    table = raw.get("mapping", raw)
    if not isinstance(table, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str))
        for k, v in table.items()
        if k != "defaults"
    ):
        msg = f"{path}: 列映射应为「源列名 = 字段」的表 (a table of text values)"
        raise ImportFileError(msg)
    return {k: (v or None) for k, v in table.items() if k != "defaults"}


def read_defaults_file(path: Path) -> dict[str, str]:
    """Return the ``defaults`` table of a mapping file (``{field key: value}``), or ``{}``."""
    raw = _read_mapping_doc(path)
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        msg = f"{path}: defaults 应为「字段 = 默认值」的表"
        raise ImportFileError(msg)
    return {str(k): str(v) for k, v in defaults.items()}


def _read_mapping_doc(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: 无法读取列映射文件: {exc}"
        raise ImportFileError(msg) from None
    try:
        raw = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        msg = f"{path}: 列映射文件不是有效的 JSON/TOML: {exc}"
        raise ImportFileError(msg) from None
    if not isinstance(raw, dict):
        msg = f"{path}: 列映射应为 JSON 对象或 TOML 表"
        raise ImportFileError(msg)
    return raw
