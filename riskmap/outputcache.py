"""Cached command output, keyed by everything it is computed from. Standard library only.

``riskmap summary`` spends ~2 s CPU on loading the project (geopandas, every layer read,
coerced and joined) to print a few hundred lines that only change when the data change.
This module lets a command store its printed text beside the layers' GeoParquet cache
(``layers/.cache``) under a key that covers every input, so an unchanged project prints from
the cache without importing pandas or geopandas (issue 15: summary ≤ 0.8 s).

The key (`output_key`) is a SHA-256 over:

* size and modification time (ns) of every file the project is loaded from: the catalog
  and every ``*.geojson`` in ``layers_dir`` (what `riskmap.store.files.FileStore.stamp`
  covers), every file in ``data_dir`` (county, township polygons and codes, sources) and the
  township polygons in use with their sidecar files (``--townships``, shapefile parts);
* the `Settings` (its repr: paths, CRSs, county, store URL …);
* size and modification time of every module of the ``riskmap`` package (a code change
  never serves output computed by the old code);
* today's date (UTC) and the command's own arguments.

A stale entry is never used: a different key is a miss, and the entry is overwritten.
Writes are atomic (temporary file + `os.replace`); a cache folder that cannot be written
(read-only installation) only means no cache. The database store is not cached: its
stamp needs a connection (`riskmap.store.postgis`), and it is shared by other writers.

This module opens files itself rather than through `riskmap.io`, which imports geopandas
at start-up: avoiding that import is the point.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from riskmap.settings import Settings

CACHE_DIR = ".cache"
"""Folder under ``layers_dir`` holding caches (shared with `riskmap.io`'s GeoParquet cache)."""
_FORMAT = "1"  # bump when the entry layout changes
_PACKAGE = Path(__file__).resolve().parent


def _stats(paths: Iterable[Path]) -> list[str]:
    """``"path:mtime_ns:size"`` of each existing path (missing ones: ``"path:-"``)."""
    out = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            out.append(f"{path}:-")
            continue
        out.append(f"{path}:{st.st_mtime_ns}:{st.st_size}")
    return out


def _files(folder: Path, pattern: str = "*") -> list[Path]:
    try:
        return sorted(p for p in folder.glob(pattern) if p.is_file())
    except OSError:
        return []


def output_key(settings: Settings, *args: str, today: dt.date | None = None) -> str:
    """
    Return the cache key of a command's output on this project (see the module docstring).

    Parameters
    ----------
    settings
        The settings the command runs with.
    *args
        The command's name and options, e.g. ``("summary", "json")``.
    today
        Date in the key; default today (UTC).

    Returns
    -------
    key
        64 hex digits.
    """
    inputs = [settings.catalog_path, *_files(settings.layers_dir, "*.geojson")]
    inputs += _files(settings.data_dir)
    polygons = settings.township_polygons_path
    inputs += [polygons, *_files(polygons.parent, f"{polygons.stem}.*")]
    code = _files(_PACKAGE, "**/*.py")
    day = (today or dt.datetime.now(dt.UTC).date()).isoformat()
    parts = [_FORMAT, repr(settings), day, *args, *_stats(inputs), *_stats(code)]
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _entry_path(settings: Settings, name: str) -> Path:
    return settings.layers_dir / CACHE_DIR / f"output.{name}.json"


def read_output(settings: Settings, name: str, key: str) -> dict[str, str] | None:
    """
    Return the cached ``{"stdout", "stderr"}`` texts of entry `name` if stored under `key`.

    Returns
    -------
    entry
        The texts, or None (no entry, another key, or an unreadable file).
    """
    if settings.database_url:
        return None
    try:
        data = json.loads(_entry_path(settings, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    stdout, stderr = data.get("stdout"), data.get("stderr")
    if not isinstance(stdout, str) or not isinstance(stderr, str):
        return None
    return {"stdout": stdout, "stderr": stderr}


def write_output(settings: Settings, name: str, key: str, *, stdout: str, stderr: str) -> None:
    """
    Store a command's output as entry `name` under `key` (atomic; errors ignored).

    Nothing is stored for a database store (see the module docstring).
    """
    if settings.database_url:
        return
    target = _entry_path(settings, name)
    text = json.dumps({"key": key, "stdout": stdout, "stderr": stderr}, ensure_ascii=False)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
        tmp = None
    except OSError:
        pass  # a read-only installation: no cache
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
