"""The file store: today's ``layers/`` folder behind the `riskmap.store.Store` seam.

Layout (unchanged from the first version, so existing installations keep working)::

    layers/catalog.toml                the layer catalog
    layers/<layer>.geojson             one RFC 7946 file per layer (the file of record)
    layers/.history/<layer>/           previous versions + log.jsonl (audit)
    layers/records/<collection>.json   records: warnings, responses… (JSON array)
    layers/.history/records.<collection>/   their previous versions + log.jsonl
    layers/attachments/<sha256>.<ext>  evidence files, content-addressed
    layers/.cache/                     derived GeoParquet copies (speed only)

Every write goes through `riskmap.io.write_versioned`: lock, version check, backup, audit
entry, atomic replace.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from riskmap import io
from riskmap.errors import DataFileError
from riskmap.store import attachment_name, check_attachment_name

if TYPE_CHECKING:
    from pathlib import Path

    import geopandas as gpd

    from riskmap.catalog import Catalog, LayerSpec
    from riskmap.settings import Settings

RECORDS_DIR = "records"
ATTACHMENTS_DIR = "attachments"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        msg = f"记录集合名称无效 {name!r} (expected lower-case letters, digits, _)"
        raise ValueError(msg)
    return name


def _count_records(data: bytes) -> int | None:
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return len(value) if isinstance(value, list) else None


class FileStore:
    """
    Layers, records and attachments as files under `Settings.layers_dir` (see module doc).

    Parameters
    ----------
    settings
        Where the layers live; ``history_keep`` versions of each are kept.
    """

    kind = "files"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def stamp(self) -> str:
        """Return modification stamps of the catalog, layer files and boundaries."""
        st = self.settings
        paths = [st.catalog_path, st.township_polygons_path, st.county_path]
        paths += sorted(st.layers_dir.glob("*.geojson"))
        stamps = [f"{p}:{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in paths if p.exists()]
        return hashlib.sha256("|".join(stamps).encode()).hexdigest()

    # --- catalog and layers -------------------------------------------------------------

    def read_catalog(self) -> Catalog:
        """Return the layer catalog (`riskmap.io.read_catalog`)."""
        return io.read_catalog(self.settings)

    def read_layer(self, spec: LayerSpec) -> gpd.GeoDataFrame:
        """Return the layer as stored, EPSG:4326 (`riskmap.io.read_layer`)."""
        return io.read_layer(spec, self.settings)

    def layer_path(self, spec: LayerSpec) -> Path:
        """Return the layer's GeoJSON file (for messages and file-level tools only)."""
        return spec.path(self.settings.layers_dir)

    def layer_version(self, spec: LayerSpec) -> str:
        """SHA-256 of the layer file's bytes, ``""`` when it has no file yet."""
        return io.file_version(self.layer_path(spec))

    def write_layer(
        self,
        gdf: gpd.GeoDataFrame,
        spec: LayerSpec,
        *,
        user: str,
        action: str,
        source: str = "",
        counts: dict[str, Any] | None = None,
        expected_version: str | None = None,
        lock_timeout_s: float = 10.0,
    ) -> str:
        """Write the layer (`riskmap.io.write_layer`) and return its new version."""
        path = io.write_layer(
            gdf,
            spec,
            self.settings,
            user=user,
            action=action,
            source=source,
            counts=counts,
            expected_version=expected_version,
            lock_timeout_s=lock_timeout_s,
        )
        return io.file_version(path)

    def history(self, spec: LayerSpec) -> list[dict[str, Any]]:
        """Return the layer's audit log, oldest first (`riskmap.io.read_log`)."""
        return io.read_history(spec, self.settings)

    def undo(self, spec: LayerSpec, *, user: str) -> str:
        """Restore the version replaced by the last write (`riskmap.io.undo_last_write`)."""
        return io.file_version(io.undo_last_write(spec, self.settings, user=user))

    def backup_version(self, spec: LayerSpec, backup: str) -> str:
        """
        Return the version token of a kept previous version (an audit entry's ``backup``).

        ``""`` when it was pruned (only `Settings.history_keep` versions are kept).
        """
        if not backup or "/" in backup or backup.startswith("."):
            return ""
        return io.file_version(io.history_dir(spec, self.settings) / backup)

    def read_backup(self, spec: LayerSpec, backup: str) -> gpd.GeoDataFrame:
        """
        Return a kept previous version of the layer (an audit entry's ``backup``), EPSG:4326.

        Raises
        ------
        DataFileError
            When the name is not a backup of this layer or it was pruned.
        """
        path = io.history_dir(spec, self.settings) / backup
        if not backup or "/" in backup or backup.startswith(".") or not path.is_file():
            msg = f"{spec.name}: 历史版本 {backup!r} 不存在或已被清理 (backup not found)"
            raise DataFileError(msg)
        return io.read_layer_file(path)

    # --- records ------------------------------------------------------------------------

    def _records_path(self, collection: str) -> Path:
        return self.settings.layers_dir / RECORDS_DIR / f"{_check_name(collection)}.json"

    def _records_hdir(self, collection: str) -> Path:
        return self.settings.layers_dir / io.HISTORY_DIR / f"records.{_check_name(collection)}"

    def read_records(self, collection: str) -> list[dict[str, Any]]:
        """
        Return the records of a collection, ``[]`` when it has none.

        Raises
        ------
        DataFileError
            When the file is not a JSON array of objects (names the file).
        """
        path = self._records_path(collection)
        if not path.exists():
            return []
        try:
            value = json.loads(path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            msg = f"{path}: 记录文件格式错误 (malformed JSON): {exc}"
            raise DataFileError(msg) from None
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            msg = f"{path}: 记录文件应为 JSON 对象数组 (expected a JSON array of objects)"
            raise DataFileError(msg)
        return value

    def records_version(self, collection: str) -> str:
        """SHA-256 of the collection's file, ``""`` when it has none."""
        return io.file_version(self._records_path(collection))

    def write_records(
        self,
        collection: str,
        records: list[dict[str, Any]],
        *,
        user: str,
        action: str,
        source: str = "",
        counts: dict[str, Any] | None = None,
        expected_version: str | None = None,
        lock_timeout_s: float = 10.0,
    ) -> str:
        """Replace a collection's records atomically, audited and undoable."""
        data = json.dumps(records, ensure_ascii=False, allow_nan=False, indent=1).encode()
        return io.write_versioned(
            self._records_path(collection),
            data + b"\n",
            self._records_hdir(collection),
            entry={"user": user, "action": action, "source": source, **(counts or {})},
            keep=self.settings.history_keep,
            count_rows=_count_records,
            expected_version=expected_version,
            lock_timeout_s=lock_timeout_s,
        )

    def record_history(self, collection: str) -> list[dict[str, Any]]:
        """Return a collection's audit log, oldest first."""
        return io.read_log(self._records_hdir(collection))

    def undo_records(self, collection: str, *, user: str) -> str:
        """
        Restore the version of a collection replaced by its last write.

        Raises
        ------
        DataFileError
            When there is nothing to undo.
        """
        hdir = self._records_hdir(collection)
        last = io.last_undoable(io.read_log(hdir))
        if last is None:
            msg = f"{collection}: 没有可撤销的修改 (nothing to undo)"
            raise DataFileError(msg)
        backup = io.backup_file(hdir, last["backup"], sha256=last.get("sha256"))
        return io.write_versioned(
            self._records_path(collection),
            backup.read_bytes(),
            hdir,
            entry={"user": user, "action": "undo", "source": last.get("source", ""),
                   "undoes": last["backup"]},
            keep=self.settings.history_keep,
            count_rows=_count_records,
        )

    # --- attachments ----------------------------------------------------------------------

    def write_attachment(self, data: bytes, *, suffix: str) -> str:
        """
        Store bytes as ``layers/attachments/<sha256>.<suffix>`` (atomic) and return the name.

        The caller checks type and size first; the name is generated, never the user's.
        """
        name = attachment_name(data, suffix)
        path = self.settings.layers_dir / ATTACHMENTS_DIR / name
        if not path.exists():
            io.write_bytes_atomic(path, data, mode=0o644)
        return name

    def read_attachment(self, name: str) -> bytes:
        """
        Return an attachment's bytes.

        Raises
        ------
        DataFileError
            For a name that is not a generated attachment name, or a missing file.
        """
        check_attachment_name(name)
        path = self.settings.layers_dir / ATTACHMENTS_DIR / name
        try:
            return path.read_bytes()
        except FileNotFoundError:
            msg = f"{path}: 附件不存在 (attachment not found)"
            raise DataFileError(msg) from None
