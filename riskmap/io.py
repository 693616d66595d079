"""The only module that opens files: catalog, layers, reference data, atomic writes.

Everything here reads or writes; everything it returns is handed to the pure modules.
Layer writes are atomic (temp file in the same directory, fsync, `os.replace`), keep the
previous version in ``layers/.history/<layer>/`` and hold a file lock (``filelock``) so two
imports cannot interleave.

Size (over ~800 lines, on purpose): this is the one module allowed to open files (style
guide §1), so every reader and writer of every file kind lives here, grouped by section
(layers and catalog, atomic writes, audited history, reference data, import inputs). Splitting
it would give several modules that open files and blur that rule; the history section is the
candidate to move out next (`riskmap.store.files` already hides it from callers).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import hashlib
import itertools
import json
import os
import re
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
    RiskmapError,
    StaleVersionError,
)
from riskmap.settings import STORAGE_CRS
from riskmap.townships import townships_from_frame

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
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
        gdf = _read_wkb_parquet(cached)
    except Exception:  # noqa: BLE001 - a broken cache is only a miss: read the GeoJSON
        return None
    return gdf.set_crs(STORAGE_CRS, allow_override=True)


def _read_wkb_parquet(path: Path) -> gpd.GeoDataFrame:
    """
    Read a GeoParquet file written by `_write_cache` (WKB geometry), CRS left unset.

    `geopandas.read_parquet` parses the stored PROJJSON CRS into a `pyproj.CRS` for every
    geometry array it builds (~4x the rest of the read for these small files), and the cache
    reader then sets EPSG:4326 anyway: reading the table with pyarrow and decoding the WKB
    column here gives the same frame (columns, dtypes, index) without that parse. Any other
    encoding (GeoArrow) goes through `geopandas.read_parquet`.
    """
    import pyarrow.parquet as pq  # noqa: PLC0415 - pyarrow is a pandas dependency here

    table = pq.read_table(path)
    geo = json.loads((table.schema.metadata or {}).get(b"geo", b"{}"))
    column = geo.get("primary_column")
    encoding = geo.get("columns", {}).get(column, {}).get("encoding", "")
    if not column or encoding.upper() != "WKB":
        return gpd.read_parquet(path)
    frame = table.to_pandas()
    frame[column] = gpd.GeoSeries.from_wkb(frame[column].to_numpy(), index=frame.index)
    return gpd.GeoDataFrame(frame, geometry=column)


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


def write_bytes_atomic(
    path: Path, data: bytes | Iterable[bytes], *, mode: int | None = None
) -> None:
    """
    Replace `path` with `data` atomically: temp file in the same folder, fsync, `os.replace`.

    A reader sees either the old or the new file, never a partial one, even if the writer is
    killed mid-write (the temp file ``.<name>.*.tmp`` may be left behind; it is never read).

    Parameters
    ----------
    path
        File to replace (its folder is created).
    data
        New content, or its chunks in order (a large report written as it is encoded,
        without holding the whole text and its bytes at once).
    mode
        Permission bits of the new file; default: those of the file replaced, or 0644.
        Secrets use 0600; the temp file has that mode before any byte is written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode(path) if mode is None else mode)
        with os.fdopen(fd, "wb") as fh:
            for chunk in (data,) if isinstance(data, (bytes, bytearray, memoryview)) else data:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_derived_file(path: Path, data: bytes) -> None:
    """
    Write a derived, disposable file (a tile copied for the app to serve) without fsync.

    For files that are rebuilt from a source of record whenever they are missing: the caller
    writes them into a temporary folder and publishes the folder with one rename (see
    `riskmap.basemap.install_basemap`), so no reader sees a half-written set. Files of record
    use `write_bytes_atomic`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as fh:
        fh.write(data)


def write_text_atomic(path: Path, text: str, *, mode: int | None = None) -> None:
    """
    Replace `path` with `text` (UTF-8, LF line ends) atomically, see `write_bytes_atomic`.

    A reader sees either the old or the new file, never a partial one, even if the writer is
    killed mid-write.
    """
    write_bytes_atomic(path, text.encode("utf-8"), mode=mode)


def update_json_state(
    path: Path,
    change: Callable[[dict[str, Any]], Any],
    *,
    lock_timeout_s: float = 5.0,
) -> Any:  # noqa: ANN401 - whatever `change` returns
    """
    Read-modify-write a small JSON state file under its lock, atomically.

    For counters several app processes must agree on (sign-in failures). The file is
    read under `layer_lock`, `change` edits the dict in place, and the result is written
    with `write_text_atomic` only when it changed: two processes never lose each other's
    update, and a killed writer leaves the old or the new file. A file that is not a JSON
    object (corrupt, hand-edited) is read as ``{}`` with a `UserWarning`.

    Parameters
    ----------
    path
        The state file (e.g. ``layers/.state/signin.json``); its folder is created.
    change
        Called with the current state (a dict, possibly empty); edits it in place and
        returns what the caller needs.
    lock_timeout_s
        How long to wait for another process.

    Returns
    -------
    result
        What `change` returned.

    Raises
    ------
    LockError
        When another process holds the lock for longer than `lock_timeout_s` seconds.
    OSError
        When the folder or file cannot be written (read-only data folder).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with layer_lock(path, timeout_s=lock_timeout_s):
        try:
            before = path.read_bytes()
        except FileNotFoundError:
            before = b""
        try:
            state = json.loads(before) if before else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            state = None
        if not isinstance(state, dict):
            warnings.warn(f"{path}: 状态文件已损坏，已重置 (corrupt state file reset)",
                          UserWarning, stacklevel=2)
            state = {}
        result = change(state)
        after = json.dumps(state, ensure_ascii=False, sort_keys=True, allow_nan=False).encode()
        if after != before:
            write_bytes_atomic(path, after, mode=0o600)
    return result


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


_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_LOG_FIELDS: dict[str, tuple[type, ...]] = {
    "time": (str,),
    "user": (str,),
    "action": (str,),
    "source": (str,),
    "rows_before": (int, type(None)),
    "rows_after": (int, type(None)),
    "backup": (str, type(None)),
    "undoes": (str,),
    "sha256": (str, type(None)),
    "written_sha256": (str,),
    **dict.fromkeys(("added", "updated", "rejected", "held"), (int, type(None))),  # counts
}
"""Known log fields and their JSON types; ``time`` and ``action`` are required."""
_LOG_REQUIRED = ("time", "action")
_LOG_SCALARS = (str, int, float, bool, type(None))
_LOG_OTHER = (*_LOG_SCALARS, dict, list)  # status changes record ``fields``, imports counts
_MAX_LOG_TEXT = 4096
_MAX_LOG_NESTED = 16384


def _plain_name(value: str) -> bool:
    """Return True for a plain file name: no folder part, not ``.``/``..``, no control char."""
    return (
        bool(value)
        and os.path.basename(value) == value
        and "\\" not in value
        and value not in {".", ".."}
        and value.isprintable()
    )


def _too_long(value: object) -> bool:
    if isinstance(value, str):
        return len(value) > _MAX_LOG_TEXT
    if isinstance(value, (dict, list)):
        return len(json.dumps(value, ensure_ascii=False)) > _MAX_LOG_NESTED
    return False


def check_log_entry(entry: object) -> list[str]:
    """
    Check one parsed line of a history log against the log schema.

    Schema (written by `write_versioned`): ``time`` ISO 8601 text and ``action`` text
    (required); ``user``, ``source`` text; ``rows_before``/``rows_after`` integer or null;
    ``backup`` a plain file name or null; ``undoes`` a plain file name; ``sha256`` (of the
    backup) and ``written_sha256`` (of the new content) 64 lower-case hex digits; any other
    field a JSON scalar (counts such as ``added``) or a small JSON object/array (a status
    change's ``fields``: at most 16384 characters as JSON). Text fields are at most 4096
    characters.

    Parameters
    ----------
    entry
        What ``json.loads`` gave for the line.

    Returns
    -------
    problems
        Chinese descriptions, ``[]`` when the entry is valid.
    """
    if not isinstance(entry, dict):
        return ["不是 JSON 对象"]
    problems = [f"缺少字段 {k}" for k in _LOG_REQUIRED if k not in entry]
    for key, value in entry.items():
        types = _LOG_FIELDS.get(key, _LOG_OTHER)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            problems.append(f"字段 {key} 的类型无效 ({type(value).__name__})")
        elif _too_long(value):
            problems.append(f"字段 {key} 过长")
    if not problems:
        try:
            dt.datetime.fromisoformat(entry["time"])
        except ValueError:
            problems.append(f"时间 {entry['time'][:40]!r} 不是 ISO 8601")
        for key in ("backup", "undoes"):
            value = entry.get(key)
            if isinstance(value, str) and not _plain_name(value):
                problems.append(f"{key} {value[:80]!r} 不是历史文件夹中的文件名")
        for key in ("sha256", "written_sha256"):
            value = entry.get(key)
            if isinstance(value, str) and not _SHA256_RE.match(value):
                problems.append(f"{key} 不是 SHA-256 十六进制值")
    return problems


def check_log(hdir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """
    Read ``<hdir>/log.jsonl`` and sort its lines into valid entries and problems.

    Returns
    -------
    entries
        Valid entries (`check_log_entry`), oldest first.
    problems
        One Chinese message per skipped line: ``"<log>:<line>: 历史记录行已损坏…"``.

    Raises
    ------
    DataFileError
        When the log exists but cannot be read at all (permissions, not UTF-8).
    """
    log = hdir / "log.jsonl"
    try:
        text = log.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        msg = f"{log}: 无法读取修改记录 (cannot read history log): {exc.strerror or exc}"
        raise DataFileError(msg) from None
    entries: list[dict[str, Any]] = []
    problems: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            why = ["不是有效的 JSON"]
        else:
            why = check_log_entry(entry)
        if why:
            detail = "；".join(why)
            problems.append(f"{log}:{lineno}: 历史记录行已损坏，已跳过（{detail}）(corrupt line)")
            continue
        entries.append(entry)
    return entries, problems


def read_log(hdir: Path) -> list[dict[str, Any]]:
    """
    Return the audit log ``<hdir>/log.jsonl``, oldest first; ``[]`` when there is none.

    Every line is checked against the log schema (`check_log_entry`): a line that is not
    JSON, has a field of the wrong type, or whose ``backup``/``undoes`` is not a plain file
    name is skipped with a `UserWarning` naming the line and what is wrong. A corrupt log
    never stops the app, and a backup reference can never point outside `hdir`
    (`backup_file` checks the file itself before it is read).

    Raises
    ------
    DataFileError
        When the log exists but cannot be read at all.
    """
    entries, problems = check_log(hdir)
    for problem in problems:
        warnings.warn(problem, UserWarning, stacklevel=2)
    return entries


def backup_file(hdir: Path, name: str, *, sha256: str | None = None) -> Path:
    """
    Return the path of a backup named in the log, after checking it may be read.

    Parameters
    ----------
    hdir
        The history folder.
    name
        The entry's ``backup``.
    sha256
        The entry's ``sha256`` (entries written before it was recorded have none).

    Returns
    -------
    path
        ``hdir / name``: a regular file (not a link) inside `hdir` whose content has
        `sha256`.

    Raises
    ------
    DataFileError
        When the name is not a plain file name, the file is missing (pruned), is a link or
        lies outside `hdir`, or its content differs from `sha256` (altered after the fact).
    """
    if not isinstance(name, str) or not _plain_name(name):
        msg = f"{hdir}: 历史记录中的备份文件名无效 {str(name)[:80]!r}，已拒绝"
        raise DataFileError(msg)
    path = hdir / name
    if path.is_symlink() or (path.exists() and path.resolve().parent != hdir.resolve()):
        msg = f"{path}: 备份文件是链接或不在历史文件夹中，已拒绝 (backup outside history folder)"
        raise DataFileError(msg)
    if not path.is_file():
        msg = f"{path}: 历史版本已被清理，无法撤销 (backup pruned)"
        raise DataFileError(msg)
    if sha256 is not None and file_version(path) != sha256:
        msg = (
            f"{path}: 备份文件的内容与修改记录中的 SHA-256 不符（可能被改动），未使用"
            " (backup hash mismatch)"
        )
        raise DataFileError(msg)
    return path


def verify_history(hdir: Path, target: Path, *, keep: int) -> list[tuple[str, str]]:
    """
    Check a history folder's chain: log lines, backups, hashes, and the current file.

    Checks, in log order:

    * every line passes the log schema (`check_log_entry`);
    * every backup of the newest `keep` entries exists, is a regular file inside `hdir`
      and has the entry's ``sha256`` (older backups are pruned by design: noted only);
    * each entry's ``written_sha256`` equals the ``sha256`` of the next entry's backup
      (the version the next write replaced is the one this write left);
    * the last ``written_sha256`` equals the current file (`target`).

    Entries written before hashes were recorded are checked for what they hold.

    Parameters
    ----------
    hdir
        History folder (``layers/.history/<layer>``).
    target
        The file whose history it is.
    keep
        `Settings.history_keep`: how many backups are kept.

    Returns
    -------
    findings
        ``(level, message)`` pairs in Chinese; level ``"错误"`` (the history cannot be
        trusted or undone as recorded) or ``"提示"`` (explained by a write interrupted
        between log and file, or the file edited outside riskmap). ``[]`` = all good.
    """
    entries, problems = check_log(hdir)
    findings: list[tuple[str, str]] = [("错误", p) for p in problems]
    with_backup = [e for e in entries if e.get("backup")]
    recent = {id(e) for e in with_backup[-keep:]} if keep > 0 else set()
    for number, entry in enumerate(entries, start=1):
        name = entry.get("backup")
        if not name:
            continue
        label = f"第 {number} 条（{entry['time']}，{entry['action']}）"
        try:
            backup_file(hdir, name, sha256=entry.get("sha256"))
        except DataFileError as exc:
            pruned = "已被清理" in str(exc)
            if pruned and id(entry) not in recent:
                continue  # older than the `keep` newest: removed by design
            findings.append(("错误", f"{label}: {exc}"))
    for number, (before, after) in enumerate(itertools.pairwise(entries), start=1):
        wrote, replaced = before.get("written_sha256"), after.get("sha256", "absent")
        if wrote is None or replaced == "absent":
            continue
        if wrote != replaced:
            findings.append((
                "提示",
                (f"第 {number} 条写入的版本不是第 {number + 1} 条替换的版本"
                "（写入被中断，或文件在 riskmap 之外被修改）"),
            ))
    last = entries[-1].get("written_sha256") if entries else None
    if last is not None and file_version(target) != last:
        findings.append((
            "提示",
            (f"{target.name}: 当前文件不是最后一条记录写入的版本"
            "（最后一次写入被中断，或文件在 riskmap 之外被修改）"),
        ))
    return findings


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
        Log fields (``user``, ``action``, ``source``, counts…, JSON scalars); ``time``,
        ``backup``, ``sha256`` (of the backup), ``written_sha256`` (of `data`) and
        ``rows_before``/``rows_after`` (when `count_rows` is given) are added; the last
        three can't be overridden by `entry`. See `check_log_entry` for the schema.
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
    DataFileError
        When the folder or a file cannot be written (read-only data folder, no permission,
        disk full): the message says so in Chinese and names the file; nothing is changed
        (a log entry or backup already written is taken back).
    """
    try:
        with layer_lock(path, timeout_s=lock_timeout_s):
            if expected_version is not None and file_version(path) != expected_version:
                msg = (
                    f"{path.name}: 预览之后数据已被修改（可能有其他编辑），请重新预览后再提交"
                    " (changed since your preview)"
                )
                raise StaleVersionError(msg)
            if precondition is not None:
                precondition()
            _write_logged(path, data, hdir, entry=entry, keep=keep, count_rows=count_rows)
    except RiskmapError:
        raise
    except OSError as exc:
        where = exc.filename or path
        msg = (
            f"{where}: 无法写入（数据目录只读或没有权限？{exc.strerror or exc}），未作任何修改"
            " (cannot write: read-only data folder?)"
        )
        raise DataFileError(msg) from None
    return hashlib.sha256(data).hexdigest()


def _write_logged(
    path: Path,
    data: bytes,
    hdir: Path,
    *,
    entry: dict[str, Any],
    keep: int,
    count_rows: Callable[[bytes], int | None] | None,
) -> None:
    """Write under the lock (body of `write_versioned`): backup, log entry, replace, prune.

    If the final replace fails, the log entry and the backup are taken back, so a refused
    write (read-only file system, disk full) leaves nothing behind.
    """
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)  # left by a killed writer; only lock holders write
    rows_before = None
    backup = None
    backup_sha256 = None
    hdir.mkdir(parents=True, exist_ok=True)
    if path.exists():
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        backup = f"{stamp}__{path.name}"
        old = path.read_bytes()
        backup_sha256 = hashlib.sha256(old).hexdigest()
        rows_before = count_rows(old) if count_rows else None
        write_bytes_atomic(hdir / backup, old)
    full = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "user": "",
        "action": "write",
        "source": "",
        "rows_before": rows_before,
        "rows_after": count_rows(data) if count_rows else None,
        **entry,
        "backup": backup,
        "sha256": backup_sha256,
        "written_sha256": hashlib.sha256(data).hexdigest(),
    }
    log = hdir / "log.jsonl"
    previous = log.read_bytes() if log.exists() else None  # bytes: a corrupt log still appends
    line = json.dumps(full, ensure_ascii=False).encode("utf-8") + b"\n"
    if previous and not previous.endswith(b"\n"):
        line = b"\n" + line  # a torn last line stays on its own line
    try:
        write_bytes_atomic(log, (previous or b"") + line)
        write_bytes_atomic(path, data)
    except BaseException:
        with contextlib.suppress(OSError):
            if previous is None:
                log.unlink(missing_ok=True)
            else:
                write_bytes_atomic(log, previous)
        with contextlib.suppress(OSError):
            if backup is not None:
                (hdir / backup).unlink(missing_ok=True)
        raise
    backups = sorted(hdir.glob(f"*__{path.name}"))
    for old_backup in backups[: max(0, len(backups) - keep)]:
        old_backup.unlink()


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

    The kept file is restored byte for byte (its SHA-256 checked against the log), so the
    layer is exactly what it was before that write: types, key order and absent properties
    included. The current version is itself kept in the history, so an undo can be undone.

    Raises
    ------
    DataFileError
        When there is nothing to undo.
    """
    last = last_undoable(read_history(spec, settings))
    if last is None:
        msg = f"{spec.name}: 没有可撤销的导入 (nothing to undo)"
        raise DataFileError(msg)
    hdir = history_dir(spec, settings)
    backup = backup_file(hdir, last["backup"], sha256=last.get("sha256"))
    read_layer_file(backup)  # a readable layer, or a clear error before anything is written
    path = spec.path(settings.layers_dir)
    write_versioned(  # the kept bytes as they were: no re-serialisation, no type drift
        path,
        backup.read_bytes(),
        hdir,
        entry={"user": user, "action": "undo", "source": last.get("source", ""),
               "undoes": last["backup"]},
        keep=settings.history_keep,
        count_rows=_count_features,
    )  # fmt: skip
    return path


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


def read_targets_raw(settings: Settings) -> dict[str, Any]:
    """
    Read ``layers/targets.toml`` (the plan's 考核 targets) as parsed TOML.

    Returns
    -------
    raw
        The parsed file; ``{}`` when there is none (no targets declared).

    Raises
    ------
    CatalogError
        When the file is not valid TOML (names the file).
    """
    path = settings.layers_dir / "targets.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"{path}: 考核目标文件不是有效的 TOML: {exc}"
        raise CatalogError(msg) from None
