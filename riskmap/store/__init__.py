"""The store seam: where layers, their history and the office's records live.

Everything that *changes* data (import, undo, status changes, warnings and their responses,
evidence files) talks to a `Store`, never to paths. Reading reference data (county outline,
township codes and polygons) stays in `riskmap.io`: it is shipped with the installation, not
edited through the app.

Two implementations:

- `riskmap.store.files.FileStore` (default, the embedded choice for one office): one GeoJSON
  per layer in ``layers/``, previous versions and a JSON-lines audit log in
  ``layers/.history/<name>/``, records (warnings, responses) as JSON documents in
  ``layers/records/``, attachments (evidence photos/PDFs) in ``layers/attachments/``.
- `riskmap.store.postgis.PostgisStore`, chosen by ``RISKMAP_DATABASE_URL``
  (`Settings.database_url`): layers, versions, audit log, records and attachments in
  PostgreSQL + PostGIS, for several editors, app servers or counties on one database
  (``riskmap db init | load-files | dump-files``).

Every write is one transaction: it checks `expected_version` (the version the user previewed)
under the store's lock, keeps the previous version, appends an audit entry (who, when, what,
counts) and can be undone with `Store.undo`. A writer killed at any moment leaves the old or
the new version, never a partial one.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from riskmap.errors import DataFileError

if TYPE_CHECKING:
    import geopandas as gpd

    from riskmap.catalog import Catalog, LayerSpec
    from riskmap.settings import Settings

__all__ = ["ATTACHMENT_NAME", "Store", "attachment_name", "check_attachment_name", "open_store"]

ATTACHMENT_NAME = re.compile(r"^[0-9a-f]{64}\.[a-z0-9]{1,8}$")
"""An attachment's name: the SHA-256 of its bytes, a dot, a short lower-case suffix."""


def attachment_name(data: bytes, suffix: str) -> str:
    """
    Name under which every store keeps `data`: ``<sha256 hex>.<suffix>`` (same bytes, same name).

    Raises
    ------
    ValueError
        When `suffix` (``"jpg"``, ``".PDF"``…) is not 1-8 letters or digits.
    """
    name = f"{hashlib.sha256(data).hexdigest()}.{suffix.lower().lstrip('.')}"
    if not ATTACHMENT_NAME.match(name):
        msg = f"附件类型无效 {suffix!r} (bad attachment suffix)"
        raise ValueError(msg)
    return name


def check_attachment_name(name: str) -> str:
    """
    Return `name` when it is a generated attachment name (`ATTACHMENT_NAME`).

    Raises
    ------
    DataFileError
        For any other name (never a path a user could choose).
    """
    if not ATTACHMENT_NAME.match(name):
        msg = f"附件名称无效 {name!r} (not an attachment name)"
        raise DataFileError(msg)
    return name


@runtime_checkable
class Store(Protocol):
    """
    Where layers, records and attachments are kept, with versions, audit log and undo.

    Versions are opaque text tokens: equal tokens mean identical content. ``""`` is the
    version of something that does not exist yet.

    Audit entries (`history`, `record_history`) are dicts with at least ``time`` (ISO 8601,
    UTC), ``user``, ``action`` (``import``, ``undo``, ``status``, ``create``, ``write``…),
    ``source``, ``rows_before``, ``rows_after`` and ``backup`` (the replaced version's
    reference, or None); writers add their own counts (``added``, ``updated``…).
    """

    settings: Settings
    kind: str
    """``"files"`` or ``"postgis"``."""

    def stamp(self) -> str:
        """
        Return a cheap token that changes whenever the catalog, a layer or a boundary changes.

        For caches: the app reloads its project (catalog, layers, townships) when it changes.
        Records (warnings, responses) are not part of it: views read them from the store on
        each rerun, so a response recorded does not reload every layer. Not a content hash.
        """
        ...

    # --- catalog and layers -------------------------------------------------------------

    def read_catalog(self) -> Catalog:
        """Return the layer catalog. Raises `CatalogError` when it is malformed."""
        ...

    def read_layer(self, spec: LayerSpec) -> gpd.GeoDataFrame:
        """Return the layer as stored (no coercion, no join), EPSG:4326; empty when new."""
        ...

    def layer_version(self, spec: LayerSpec) -> str:
        """Return the version token of the layer as stored now (``""`` when it has none)."""
        ...

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
        """
        Replace the layer with `gdf` in one audited transaction; return the new version.

        Raises
        ------
        StaleVersionError
            When `expected_version` is given and the layer changed since (``预览之后已被修改``).
        LockError
            When another writer holds the layer for longer than `lock_timeout_s` seconds.
        """
        ...

    def history(self, spec: LayerSpec) -> list[dict[str, Any]]:
        """Return the layer's audit log, oldest first (corrupt entries skipped)."""
        ...

    def undo(self, spec: LayerSpec, *, user: str) -> str:
        """
        Restore the version replaced by the last write not yet undone; return the new version.

        Raises
        ------
        DataFileError
            When there is nothing to undo.
        """
        ...

    def backup_version(self, spec: LayerSpec, backup: str) -> str:
        """
        Return the version token of a kept previous version (an audit entry's ``backup``).

        ``""`` when it was pruned. Used by `riskmap.diff` (survey rounds).
        """
        ...

    def read_backup(self, spec: LayerSpec, backup: str) -> gpd.GeoDataFrame:
        """
        Return a kept previous version of the layer (an audit entry's ``backup``), EPSG:4326.

        Raises
        ------
        DataFileError
            When it is not a version of this layer or was pruned.
        """
        ...

    # --- records: warnings, responses, survey rounds… -----------------------------------

    def read_records(self, collection: str) -> list[dict[str, Any]]:
        """Return every record of a collection (JSON objects), ``[]`` when it has none."""
        ...

    def records_version(self, collection: str) -> str:
        """Return the version token of a collection (``""`` when it has none)."""
        ...

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
        """Replace a collection's records in one audited transaction (as `write_layer`)."""
        ...

    def record_history(self, collection: str) -> list[dict[str, Any]]:
        """Return a collection's audit log, oldest first."""
        ...

    def undo_records(self, collection: str, *, user: str) -> str:
        """Undo the last write of a collection (as `undo`)."""
        ...

    # --- attachments (evidence files) ----------------------------------------------------

    def write_attachment(self, data: bytes, *, suffix: str) -> str:
        """Store bytes under a generated name (``<sha256>.<suffix>``) and return that name."""
        ...

    def read_attachment(self, name: str) -> bytes:
        """Return an attachment's bytes. Raises `DataFileError` for an unknown name."""
        ...


def open_store(settings: Settings) -> Store:
    """
    Open the store the settings choose: PostGIS when `Settings.database_url` is set, else files.

    Returns
    -------
    store
        A `Store`; the file store needs no connection and opens instantly.
    """
    if getattr(settings, "database_url", ""):
        from riskmap.store.postgis import PostgisStore  # noqa: PLC0415 - optional dependency

        return PostgisStore(settings)
    from riskmap.store.files import FileStore  # noqa: PLC0415

    return FileStore(settings)
