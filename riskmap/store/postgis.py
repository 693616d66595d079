"""The PostGIS store: layers, records, history and attachments in PostgreSQL + PostGIS.

Chosen with ``RISKMAP_DATABASE_URL=postgresql://user:pass@host/db`` (`Settings.database_url`,
`riskmap.store.open_store`); files stay the default. Same contract as the file store
(`riskmap.store.Store`): every write is one transaction that locks the object's head row
(``SELECT … FOR UPDATE``), checks the previewed version, adds a new version, appends an audit
entry and moves the head, so a client killed at any moment leaves the old or the new version
and the audit log agrees (PostgreSQL rolls back an unfinished transaction).

Schema (in the PostgreSQL schema ``riskmap``, created by Alembic, ``riskmap db init``):

``heads(kind, name, current_version, token)``
    One row per layer / records collection / the catalog: which version is current. Writers
    lock this row; ``token`` (a random UUID per version) is what `layer_version` returns.
``versions(kind, name, version_no, token, columns, records, content, n_rows)``
    Every kept version: a layer's ordered column names and dtypes, a collection's records
    (JSONB), the catalog's TOML text. The ``history_keep`` newest previous versions are kept.
``features(layer_id, version_no, fid, uid, township_code, props, geom)``
    The features of every kept layer version: ``props`` JSONB holds the properties exactly
    as the GeoJSON file would; ``geom`` is ``geometry(Geometry, 4326)`` with a GiST index;
    ``township_code`` and ``uid`` are real columns for joins and lookups.
``history(id, kind, name, time, user, action, source, rows_before, rows_after, backup, entry)``
    The audit log; ``backup`` names the version a write replaced (``v<no>``), so `undo` copies
    that version's rows into a new version (in SQL, nothing leaves the server).
``attachments(name, data)``
    Evidence files, content-addressed (``<sha256>.<ext>``).
``layer_<id>`` views
    One per catalog layer, created when the catalog is stored (`PostgisStore.write_catalog`):
    the current version with a typed column per catalog field (``int`` → ``bigint``,
    ``float`` → ``double precision``, ``bool`` → ``boolean``, ``date`` → ``date``, else
    ``text``) and ``geom``, so QGIS or SQL users see each layer as a typed table.

Why one features table with JSONB properties and typed views, not one table per layer: the
catalog is declarative (a new layer is a declaration, no code, `riskmap.catalog`), so a new
layer or field must not need a schema migration; one table gives one GiST index across all
layers and counties for province-wide queries; old versions live beside the current one, so
undo is a server-side copy; and the per-layer views still give the typed columns the catalog
declares. The properties are exactly those of the GeoJSON the file store would write
(`riskmap.io.geojson_text`), and `read_layer` rebuilds the frame with the columns and dtypes
the file store's reader gives, so both stores give the same frames and
``riskmap db dump-files`` gives back the same bytes.

Size (over ~800 lines): one class implementing the whole `Store` protocol, each method one
transaction whose SQL sits beside its version check; the schema tables and the GeoJSON
round-trip helpers it needs are kept with it so the store can be read as one unit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
import tomllib
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

import geopandas as gpd
import pyogrio
import shapely

from riskmap import io
from riskmap.catalog import Catalog, catalog_from_dict
from riskmap.errors import CatalogError, DataFileError, LockError, StaleVersionError
from riskmap.settings import STORAGE_CRS
from riskmap.store import ATTACHMENT_NAME, attachment_name, check_attachment_name

if TYPE_CHECKING:
    from riskmap.catalog import LayerSpec
    from riskmap.settings import Settings

SCHEMA = "riskmap"
"""PostgreSQL schema holding every table of the store (and Alembic's version table)."""

MIGRATIONS = Path(__file__).with_name("migrations")

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_DROP_COLUMNS = ("join_flag",)  # working columns never stored (as `riskmap.io.write_layer`)

_meta = sa.MetaData(schema=SCHEMA)
heads = sa.Table(
    "heads", _meta,
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("current_version", sa.Integer),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)
versions = sa.Table(
    "versions", _meta,
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("version_no", sa.Integer, primary_key=True),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("columns", JSONB),
    sa.Column("records", JSONB),
    sa.Column("content", sa.Text),
    sa.Column("n_rows", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)
features = sa.Table(
    "features", _meta,
    sa.Column("layer_id", sa.Text, primary_key=True),
    sa.Column("version_no", sa.Integer, primary_key=True),
    sa.Column("fid", sa.Integer, primary_key=True),
    sa.Column("uid", sa.Text),
    sa.Column("township_code", sa.Text),
    sa.Column("props", JSONB, nullable=False),
    sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False)),
)
history_t = sa.Table(
    "history", _meta,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("user", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("rows_before", sa.Integer),
    sa.Column("rows_after", sa.Integer),
    sa.Column("backup", sa.Text),
    sa.Column("entry", JSONB, nullable=False),
)
attachments = sa.Table(
    "attachments", _meta,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)

_SQL_TYPES = {"int": "bigint", "float": "double precision", "bool": "boolean"}

_engines: dict[str, sa.Engine] = {}
_engines_lock = threading.Lock()


def sqlalchemy_url(url: str) -> str:
    """
    Return `url` with the psycopg 3 driver: ``postgresql://…`` → ``postgresql+psycopg://…``.

    Raises
    ------
    DataFileError
        When `url` is not a ``postgresql://`` URL.
    """
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    msg = f"数据库地址无效 (RISKMAP_DATABASE_URL must start with postgresql://): {url[:30]}…"
    raise DataFileError(msg)


def engine_for(url: str) -> sa.Engine:
    """
    Return the process's SQLAlchemy engine (connection pool) for `url`, created once.

    One pool per URL and process: the app calls `open_store` on every rerun, and opening a
    PostgreSQL connection costs milliseconds, so connections are reused.
    """
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = sa.create_engine(
                sqlalchemy_url(url), pool_pre_ping=True, pool_size=5, max_overflow=5
            )
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every pooled connection of this process (tests; after a fork)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _alembic_config(connection: sa.Connection) -> Any:  # noqa: ANN401 - alembic Config
    from alembic.config import Config  # noqa: PLC0415 - only `db init` needs alembic

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def init_db(url: str) -> str:
    """
    Create or upgrade the store's schema (Alembic ``upgrade head``); return the revision.

    Idempotent: an up-to-date database is left as it is.

    Raises
    ------
    DataFileError
        When the database cannot be reached.
    """
    from alembic import command  # noqa: PLC0415
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    engine = engine_for(url)
    with _db_errors(), engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "head")
        ctx = MigrationContext.configure(conn, opts={"version_table_schema": SCHEMA})
        return ctx.get_current_revision() or ""


@contextmanager
def _db_errors(name: str = "") -> Iterator[None]:
    """Turn connection, missing-schema and lock-timeout errors into riskmap errors."""
    import psycopg  # noqa: PLC0415

    try:
        yield
    except sa.exc.DBAPIError as exc:
        orig = exc.orig
        where = f"{name}: " if name else ""
        if isinstance(orig, psycopg.errors.LockNotAvailable):
            msg = f"{where}另一个导入正在写入该图层，请稍后再试 (layer is locked by another import)"
            raise LockError(msg) from None
        if isinstance(orig, (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName)):
            msg = f"{where}数据库尚未初始化，请先运行 riskmap db init (schema missing: {orig})"
            raise DataFileError(msg) from None
        if isinstance(orig, psycopg.OperationalError) or exc.connection_invalidated:
            msg = f"{where}无法连接数据库 (cannot reach the database): {orig}"
            raise DataFileError(msg) from None
        raise


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        msg = f"记录集合名称无效 {name!r} (expected lower-case letters, digits, _)"
        raise ValueError(msg)
    return name


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# --- frames <-> rows ---------------------------------------------------------------------------


def canonical_layer(gdf: gpd.GeoDataFrame) -> tuple[str, list[list[str]], int]:
    """
    Return what the file store would store for `gdf`, and the columns it reads back.

    Parameters
    ----------
    gdf
        Features in any CRS (stored as EPSG:4326); ``join_flag`` is dropped.

    Returns
    -------
    text
        The RFC 7946 GeoJSON text the file store writes (`riskmap.io.geojson_text`).
    columns
        ``[[name, dtype], …]``: the columns and dtypes `riskmap.io.read_layer_file` gives
        for that text (pyogrio, dates as text; attributes only, so geometry is not parsed),
        then ``["geometry", "geometry"]``.
    n_rows
        Number of features.
    """
    text = io.geojson_text(gdf, drop_columns=_DROP_COLUMNS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        frame = pyogrio.read_dataframe(BytesIO(text.encode("utf-8")), read_geometry=False,
                                       datetime_as_string=True)
    columns = [[str(c), str(frame[c].dtype)] for c in frame.columns if c != "geometry"]
    return text, [*columns, ["geometry", "geometry"]], len(frame)


def _column(values: list[Any], dtype: str) -> pd.Series:
    """Build one column with the dtype the file store's reader gave it."""
    if dtype.startswith("float"):
        return pd.Series([np.nan if v is None else v for v in values], dtype=dtype)
    if dtype == "object":
        return pd.Series(values, dtype=object)
    try:
        return pd.Series(values, dtype=dtype)
    except (TypeError, ValueError):
        return pd.Series(values, dtype=object)


def frame_from_rows(
    columns: list[list[str]], props: list[dict[str, Any]], wkb: list[bytes | None]
) -> gpd.GeoDataFrame:
    """
    Rebuild a layer frame from stored rows.

    Parameters
    ----------
    columns
        ``[[name, dtype], …]`` of the version (the geometry column included, dtype
        ``"geometry"``), in order.
    props, wkb
        Each feature's properties and geometry (WKB, None for none), in ``fid`` order.

    Returns
    -------
    gdf
        EPSG:4326; the same columns, dtypes and values as the file store reads.
    """
    geoms = shapely.from_wkb(np.asarray(wkb, dtype=object))
    data: dict[str, Any] = {}
    geom_name = "geometry"
    for name, dtype in columns:
        if dtype == "geometry":
            geom_name = name
            data[name] = gpd.GeoSeries(geoms, crs=STORAGE_CRS)
        else:
            data[name] = _column([p.get(name) for p in props], dtype)
    if geom_name not in data:
        data[geom_name] = gpd.GeoSeries(geoms, crs=STORAGE_CRS)
    return gpd.GeoDataFrame(data, geometry=geom_name, crs=STORAGE_CRS)


def _insert_features(
    conn: sa.Connection, layer_id: str, version_no: int, key: str, text: str
) -> None:
    """
    Insert a version's features from its GeoJSON text, exploded by the server.

    One statement: PostgreSQL parses the FeatureCollection (``jsonb``), PostGIS the
    geometries (``ST_GeomFromGeoJSON``); nothing loops over features in Python. Numbers
    keep their exact decimal text in ``jsonb``, so coordinates come back as the same doubles.
    """
    doc = sa.bindparam("doc", text, type_=sa.Text)
    elements = sa.func.jsonb_array_elements(sa.cast(doc, JSONB)["features"]) \
        .table_valued(sa.column("value", JSONB), with_ordinality="ord").render_derived(name="e")
    feat = elements.c.value
    props = sa.func.coalesce(feat["properties"], sa.cast(sa.literal("{}"), JSONB))
    geom = sa.case(
        (sa.func.jsonb_typeof(feat["geometry"]) == "object",
         sa.func.ST_SetSRID(sa.func.ST_GeomFromGeoJSON(feat["geometry"]), 4326)),
        else_=None,
    )
    select = sa.select(
        sa.literal(layer_id), sa.literal(version_no), sa.cast(elements.c.ord - 1, sa.Integer),
        props[key].astext, props["township_code"].astext, props, geom,
    ).select_from(elements)
    conn.execute(features.insert().from_select(
        ["layer_id", "version_no", "fid", "uid", "township_code", "props", "geom"], select,
    ))


# --- the store -------------------------------------------------------------------------------


class PostgisStore:
    """
    Layers, records and attachments in a PostGIS database (see module doc).

    Parameters
    ----------
    settings
        ``database_url`` chooses the database; ``history_keep`` previous versions of each
        layer and collection are kept; the boundaries (county, townships) stay files.
    """

    kind = "postgis"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = engine_for(settings.database_url)

    # --- helpers -----------------------------------------------------------------------------

    def _head(self, conn: sa.Connection, kind: str, name: str) -> Any:  # noqa: ANN401 - Row
        return conn.execute(
            sa.select(heads.c.current_version, heads.c.token)
            .where(heads.c.kind == kind, heads.c.name == name)
        ).one_or_none()

    def _history(self, kind: str, name: str) -> list[dict[str, Any]]:
        with _db_errors(name), self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(history_t.c.entry)
                .where(history_t.c.kind == kind, history_t.c.name == name)
                .order_by(history_t.c.id)
            ).scalars().all()
        return [dict(r) for r in rows]

    def _commit(
        self,
        kind: str,
        name: str,
        *,
        label: str,
        entry: dict[str, Any],
        expected_version: str | None,
        lock_timeout_s: float,
        fill: Callable[[sa.Connection, int, int | None], tuple[dict[str, Any], int | None]]
        | None = None,
        undo: bool = False,
    ) -> str:
        """
        Add a version of one object in one transaction; return its token.

        Under the head row's lock: check `expected_version`, (for an undo: find the version
        to restore), call ``fill(conn, new_no, current_no)`` which stores the content and
        returns the ``versions`` row values and the row count, append the audit entry, move
        the head, prune versions beyond ``history_keep``.
        """
        token = uuid.uuid4().hex
        with _db_errors(label), self.engine.begin() as conn:
            ms = max(1, int(lock_timeout_s * 1000))
            conn.execute(sa.select(sa.func.set_config("lock_timeout", f"{ms}ms", sa.true())))
            conn.execute(
                pg_insert(heads)
                .values(kind=kind, name=name, current_version=None, token="")
                .on_conflict_do_nothing()
            )
            head = conn.execute(
                sa.select(heads.c.current_version, heads.c.token)
                .where(heads.c.kind == kind, heads.c.name == name)
                .with_for_update()
            ).one()
            if expected_version is not None and head.token != expected_version:
                msg = (
                    f"{label}: 预览之后数据已被修改（可能有其他编辑），请重新预览后再提交"
                    " (changed since your preview)"
                )
                raise StaleVersionError(msg)
            current = head.current_version
            if undo:
                entries = [
                    dict(e) for e in conn.execute(
                        sa.select(history_t.c.entry)
                        .where(history_t.c.kind == kind, history_t.c.name == name)
                        .order_by(history_t.c.id)
                    ).scalars()
                ]
                last = io.last_undoable(entries)
                if last is None:
                    msg = f"{label}: 没有可撤销的修改 (nothing to undo)"
                    raise DataFileError(msg)
                restore = int(str(last["backup"]).removeprefix("v"))
                exists = conn.execute(
                    sa.select(versions.c.version_no).where(
                        versions.c.kind == kind, versions.c.name == name,
                        versions.c.version_no == restore,
                    )
                ).one_or_none()
                if exists is None:
                    msg = f"{label}: 历史版本 {last['backup']} 已被清理，无法撤销 (backup pruned)"
                    raise DataFileError(msg)
                entry = {**entry, "source": last.get("source", ""), "undoes": last["backup"]}
                fill = self._restorer(kind, name, restore)
            rows_before = None
            if current is not None:
                rows_before = conn.execute(
                    sa.select(versions.c.n_rows).where(
                        versions.c.kind == kind, versions.c.name == name,
                        versions.c.version_no == current,
                    )
                ).scalar_one_or_none()
            new_no = (conn.execute(
                sa.select(sa.func.max(versions.c.version_no))
                .where(versions.c.kind == kind, versions.c.name == name)
            ).scalar_one_or_none() or 0) + 1
            conn.execute(sa.insert(versions).values(
                kind=kind, name=name, version_no=new_no, token=token, created_at=sa.func.now(),
            ))
            assert fill is not None  # noqa: S101 - set above for every path
            values, n_rows = fill(conn, new_no, current)
            conn.execute(
                sa.update(versions)
                .where(versions.c.kind == kind, versions.c.name == name,
                       versions.c.version_no == new_no)
                .values(n_rows=n_rows, **values)
            )
            backup = None if current is None else f"v{current}"
            full = {
                "time": _now(), "user": "", "action": "write", "source": "",
                "rows_before": rows_before, "rows_after": n_rows, "backup": backup, **entry,
            }
            conn.execute(sa.insert(history_t).values(
                kind=kind, name=name, time=dt.datetime.fromisoformat(full["time"]),
                user=str(full["user"]), action=str(full["action"]),
                source=str(full["source"]), rows_before=rows_before, rows_after=n_rows,
                backup=backup, entry=full,
            ))
            conn.execute(
                sa.update(heads).where(heads.c.kind == kind, heads.c.name == name)
                .values(current_version=new_no, token=token, updated_at=sa.func.now())
            )
            self._prune(conn, kind, name, new_no)
        return token

    def _prune(self, conn: sa.Connection, kind: str, name: str, current: int) -> None:
        keep = max(0, int(self.settings.history_keep))
        old = conn.execute(
            sa.select(versions.c.version_no)
            .where(versions.c.kind == kind, versions.c.name == name,
                   versions.c.version_no != current)
            .order_by(versions.c.version_no.desc())
            .offset(keep)
        ).scalars().all()
        if not old:
            return
        if kind == "layer":
            conn.execute(sa.delete(features).where(
                features.c.layer_id == name, features.c.version_no.in_(old)))
        conn.execute(sa.delete(versions).where(
            versions.c.kind == kind, versions.c.name == name, versions.c.version_no.in_(old)))

    def _restorer(
        self, kind: str, name: str, restore: int
    ) -> Callable[[sa.Connection, int, int | None], tuple[dict[str, Any], int | None]]:
        """Content filler of an undo: copy version `restore` into the new version, in SQL."""

        def fill(conn: sa.Connection, new_no: int, _current: int | None) -> tuple[dict, int | None]:
            old = conn.execute(
                sa.select(versions.c.columns, versions.c.records, versions.c.content,
                          versions.c.n_rows)
                .where(versions.c.kind == kind, versions.c.name == name,
                       versions.c.version_no == restore)
            ).one()
            if kind == "layer":
                cols = [features.c[c] for c in ("fid", "uid", "township_code", "props", "geom")]
                conn.execute(features.insert().from_select(
                    ["layer_id", "version_no", "fid", "uid", "township_code", "props", "geom"],
                    sa.select(sa.literal(name), sa.literal(new_no), *cols).where(
                        features.c.layer_id == name, features.c.version_no == restore),
                ))
            return {"columns": old.columns, "records": old.records, "content": old.content}, \
                old.n_rows

        return fill

    # --- stamp, catalog --------------------------------------------------------------------

    def stamp(self) -> str:
        """
        Return a token that changes with any layer or catalog write, or a boundary file change.

        Every layer or catalog write gives its head row a new random token in its
        transaction; the stamp hashes those tokens (one small query on ``heads``, a row per
        layer, whatever the length of the history). Record writes (warnings, responses) are
        left out, as the protocol says.
        """
        with _db_errors(), self.engine.connect() as conn:
            tokens = conn.execute(
                sa.select(heads.c.kind, heads.c.name, heads.c.token)
                .where(heads.c.kind.in_(("layer", "catalog")))
                .order_by(heads.c.kind, heads.c.name)
            ).all()
        st = self.settings
        parts = [f"{kind}/{name}:{token}" for kind, name, token in tokens]
        paths = [st.township_polygons_path, st.county_path]
        if not any(kind == "catalog" and token for kind, _name, token in tokens):
            paths.append(st.catalog_path)  # no catalog in the database yet: the file is used
        parts += [f"{p}:{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in paths if p.exists()]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def _catalog_text(self) -> str | None:
        with _db_errors(), self.engine.connect() as conn:
            return conn.execute(
                sa.select(versions.c.content)
                .join(heads, sa.and_(heads.c.kind == versions.c.kind,
                                     heads.c.name == versions.c.name,
                                     heads.c.current_version == versions.c.version_no))
                .where(heads.c.kind == "catalog", heads.c.name == "catalog")
            ).scalar_one_or_none()

    def read_catalog(self) -> Catalog:
        """
        Return the catalog stored in the database, or ``layers/catalog.toml`` before one is.

        Raises
        ------
        CatalogError
            When the stored TOML or a declaration is malformed.
        """
        text = self._catalog_text()
        if text is None:
            return io.read_catalog(self.settings)
        where = f"{self.settings.database_url.split('@')[-1]} catalog"
        try:
            return catalog_from_dict(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            msg = f"{where}: 图层目录不是有效的 TOML: {exc}"
            raise CatalogError(msg) from None
        except CatalogError as exc:
            msg = f"{where}: {exc}"
            raise CatalogError(msg) from None

    def catalog_text(self) -> str | None:
        """Return the stored catalog's TOML text, or None when none is stored."""
        return self._catalog_text()

    def write_catalog(self, text: str, *, user: str, source: str = "") -> str:
        """
        Store the catalog (TOML text, checked first) and rebuild the typed ``layer_<id>`` views.

        Raises
        ------
        CatalogError
            When `text` is not a valid catalog; nothing is written.
        """
        try:
            catalog = catalog_from_dict(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            msg = f"{source or 'catalog'}: 图层目录不是有效的 TOML: {exc}"
            raise CatalogError(msg) from None

        def fill(conn: sa.Connection, _new: int, _cur: int | None) -> tuple[dict, int]:
            _create_views(conn, catalog)
            return {"content": text}, len(catalog)

        return self._commit(
            "catalog", "catalog", label="catalog.toml",
            entry={"user": user, "action": "catalog", "source": source},
            expected_version=None, lock_timeout_s=10.0, fill=fill,
        )

    # --- layers --------------------------------------------------------------------------

    def read_layer(self, spec: LayerSpec) -> gpd.GeoDataFrame:
        """Return the layer's current version, EPSG:4326; `io.empty_layer` when it has none."""
        engine = self.engine.execution_options(isolation_level="REPEATABLE READ")
        with _db_errors(spec.file), engine.connect() as conn:
            head = conn.execute(
                sa.select(versions.c.version_no, versions.c.columns)
                .join(heads, sa.and_(heads.c.kind == versions.c.kind,
                                     heads.c.name == versions.c.name,
                                     heads.c.current_version == versions.c.version_no))
                .where(heads.c.kind == "layer", heads.c.name == spec.id)
            ).one_or_none()
            if head is None:
                return io.empty_layer(spec)
            rows = conn.execute(
                sa.select(sa.cast(features.c.props, sa.Text),
                          sa.func.ST_AsBinary(features.c.geom))
                .where(features.c.layer_id == spec.id,
                       features.c.version_no == head.version_no)
                .order_by(features.c.fid)
            ).all()
        # one JSON parse for all properties (C scanner), not one per row
        props = json.loads("[" + ",".join(r[0] for r in rows) + "]")
        return frame_from_rows(head.columns, props, [r[1] for r in rows])

    def layer_version(self, spec: LayerSpec) -> str:
        """Return the token of the layer's current version, ``""`` when it has none."""
        with _db_errors(spec.file), self.engine.connect() as conn:
            head = self._head(conn, "layer", spec.id)
        return "" if head is None else head.token

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
        Replace the layer with `gdf` in one transaction (see `Store.write_layer`).

        The properties stored are those the file store would write (`canonical_layer`).

        Raises
        ------
        StaleVersionError
            When the layer changed since `expected_version`.
        LockError
            When another writer holds the layer for longer than `lock_timeout_s` seconds.
        """
        text, columns, n_rows = canonical_layer(gdf)

        def fill(conn: sa.Connection, new_no: int, _cur: int | None) -> tuple[dict, int]:
            _insert_features(conn, spec.id, new_no, spec.key, text)
            return {"columns": columns}, n_rows

        return self._commit(
            "layer", spec.id, label=spec.file,
            entry={"user": user, "action": action, "source": source, **(counts or {})},
            expected_version=expected_version, lock_timeout_s=lock_timeout_s, fill=fill,
        )

    def history(self, spec: LayerSpec) -> list[dict[str, Any]]:
        """Return the layer's audit log, oldest first."""
        return self._history("layer", spec.id)

    def undo(self, spec: LayerSpec, *, user: str) -> str:
        """
        Restore the version replaced by the last write not yet undone; return the new token.

        Raises
        ------
        DataFileError
            When there is nothing to undo, or that version was pruned.
        """
        return self._commit(
            "layer", spec.id, label=spec.name, entry={"user": user, "action": "undo"},
            expected_version=None, lock_timeout_s=10.0, undo=True,
        )

    def _backup_no(self, backup: str) -> int | None:
        text = str(backup or "")
        digits = text.removeprefix("v")
        return int(digits) if text.startswith("v") and digits.isdigit() else None

    def backup_version(self, spec: LayerSpec, backup: str) -> str:
        """
        Return the token of a kept previous version (an audit entry's ``backup``, ``v<no>``).

        ``""`` when it was pruned (only `Settings.history_keep` versions are kept).
        """
        no = self._backup_no(backup)
        if no is None:
            return ""
        with _db_errors(spec.file), self.engine.connect() as conn:
            token = conn.execute(
                sa.select(versions.c.token).where(
                    versions.c.kind == "layer", versions.c.name == spec.id,
                    versions.c.version_no == no,
                )
            ).scalar_one_or_none()
        return token or ""

    def read_backup(self, spec: LayerSpec, backup: str) -> gpd.GeoDataFrame:
        """
        Return a kept previous version of the layer (an audit entry's ``backup``), EPSG:4326.

        Raises
        ------
        DataFileError
            When the name is not a version of this layer or it was pruned.
        """
        no = self._backup_no(backup)
        with _db_errors(spec.file), self.engine.connect() as conn:
            head = None if no is None else conn.execute(
                sa.select(versions.c.version_no, versions.c.columns).where(
                    versions.c.kind == "layer", versions.c.name == spec.id,
                    versions.c.version_no == no,
                )
            ).one_or_none()
            if head is None:
                msg = f"{spec.name}: 历史版本 {backup!r} 不存在或已被清理 (backup not found)"
                raise DataFileError(msg)
            rows = conn.execute(
                sa.select(sa.cast(features.c.props, sa.Text),
                          sa.func.ST_AsBinary(features.c.geom))
                .where(features.c.layer_id == spec.id, features.c.version_no == no)
                .order_by(features.c.fid)
            ).all()
        props = json.loads("[" + ",".join(r[0] for r in rows) + "]")
        return frame_from_rows(head.columns, props, [r[1] for r in rows])

    # --- records ------------------------------------------------------------------------

    def read_records(self, collection: str) -> list[dict[str, Any]]:
        """Return the records of a collection, ``[]`` when it has none."""
        _check_name(collection)
        with _db_errors(collection), self.engine.connect() as conn:
            value = conn.execute(
                sa.select(versions.c.records)
                .join(heads, sa.and_(heads.c.kind == versions.c.kind,
                                     heads.c.name == versions.c.name,
                                     heads.c.current_version == versions.c.version_no))
                .where(heads.c.kind == "records", heads.c.name == collection)
            ).scalar_one_or_none()
        return list(value or [])

    def records_version(self, collection: str) -> str:
        """Return the token of the collection's current version, ``""`` when it has none."""
        _check_name(collection)
        with _db_errors(collection), self.engine.connect() as conn:
            head = self._head(conn, "records", collection)
        return "" if head is None else head.token

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
        """
        Replace a collection's records in one transaction (as `write_layer`).

        Raises
        ------
        ValueError
            When `records` is not a list of JSON objects (NaN refused), or the name is invalid.
        StaleVersionError, LockError
            As `write_layer`.
        """
        _check_name(collection)
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            msg = f"{collection}: 记录应为 JSON 对象列表 (expected a list of objects)"
            raise ValueError(msg)
        value = json.loads(json.dumps(records, ensure_ascii=False, allow_nan=False))

        def fill(_conn: sa.Connection, _new: int, _cur: int | None) -> tuple[dict, int]:
            return {"records": value}, len(value)

        return self._commit(
            "records", collection, label=collection,
            entry={"user": user, "action": action, "source": source, **(counts or {})},
            expected_version=expected_version, lock_timeout_s=lock_timeout_s, fill=fill,
        )

    def record_history(self, collection: str) -> list[dict[str, Any]]:
        """Return a collection's audit log, oldest first."""
        return self._history("records", _check_name(collection))

    def undo_records(self, collection: str, *, user: str) -> str:
        """
        Undo the last write of a collection.

        Raises
        ------
        DataFileError
            When there is nothing to undo.
        """
        return self._commit(
            "records", _check_name(collection), label=collection,
            entry={"user": user, "action": "undo"},
            expected_version=None, lock_timeout_s=10.0, undo=True,
        )

    def collections(self) -> list[str]:
        """Return the names of the records collections that have a version, sorted."""
        with _db_errors(), self.engine.connect() as conn:
            return list(conn.execute(
                sa.select(heads.c.name)
                .where(heads.c.kind == "records", heads.c.current_version.is_not(None))
                .order_by(heads.c.name)
            ).scalars())

    # --- attachments ----------------------------------------------------------------------

    def attachment_names(self) -> list[str]:
        """Return the names of every stored attachment, sorted."""
        with _db_errors(), self.engine.connect() as conn:
            return list(conn.execute(
                sa.select(attachments.c.name).order_by(attachments.c.name)
            ).scalars())

    def write_attachment(self, data: bytes, *, suffix: str) -> str:
        """Store bytes as ``<sha256>.<suffix>`` (once; same bytes, same name) and return it."""
        name = attachment_name(data, suffix)
        with _db_errors(name), self.engine.begin() as conn:
            conn.execute(
                pg_insert(attachments)
                .values(name=name, data=data, size=len(data), created_at=sa.func.now())
                .on_conflict_do_nothing()
            )
        return name

    def read_attachment(self, name: str) -> bytes:
        """
        Return an attachment's bytes.

        Raises
        ------
        DataFileError
            For a name that is not a generated attachment name, or an unknown one.
        """
        check_attachment_name(name)
        with _db_errors(name), self.engine.connect() as conn:
            data = conn.execute(
                sa.select(attachments.c.data).where(attachments.c.name == name)
            ).scalar_one_or_none()
        if data is None:
            msg = f"{name}: 附件不存在 (attachment not found)"
            raise DataFileError(msg)
        return bytes(data)


def _create_views(conn: sa.Connection, catalog: Catalog) -> None:
    """(Re)create one typed view ``riskmap.layer_<id>`` per catalog layer (current version)."""
    prep = conn.dialect.identifier_preparer
    existing = conn.execute(
        sa.text("SELECT table_name FROM information_schema.views WHERE table_schema = :s"),
        {"s": SCHEMA},
    ).scalars().all()
    for view in existing:
        if view.startswith("layer_"):
            conn.execute(sa.text(f"DROP VIEW {SCHEMA}.{prep.quote(view)}"))
    for spec in catalog:
        cols = []
        for key, field in spec.fields.items():
            if key in {"fid", "uid", "township_code", "geom"}:
                continue
            lit = "'" + key.replace("'", "''") + "'"
            raw = f"f.props->>{lit}"
            kind = f"jsonb_typeof(f.props->{lit})"
            if field.type in {"int", "float"}:
                sql_type = _SQL_TYPES[field.type]
                expr = f"CASE WHEN {kind} = 'number' THEN ({raw})::numeric::{sql_type} END"
            elif field.type == "bool":
                expr = f"CASE WHEN {kind} = 'boolean' THEN ({raw})::boolean END"
            elif field.type == "date":
                expr = f"{SCHEMA}.try_date({raw})"
            else:
                expr = raw
            cols.append(f"{expr} AS {prep.quote(key)}")
        view = prep.quote(f"layer_{spec.id}")
        select_cols = ", ".join(["f.fid", "f.uid", "f.township_code", *cols, "f.geom"])
        conn.execute(sa.text(
            f"CREATE VIEW {SCHEMA}.{view} AS SELECT {select_cols} "  # noqa: S608 - quoted ids
            f"FROM {SCHEMA}.features f JOIN {SCHEMA}.heads h ON h.kind = 'layer' "
            "AND h.name = f.layer_id AND h.current_version = f.version_no "
            "WHERE f.layer_id = '" + spec.id.replace("'", "''") + "'"
        ))


# --- moving between the file store and the database ---------------------------------------------


def _file_versions(files: Any, spec: LayerSpec) -> list[tuple[dict[str, Any], gpd.GeoDataFrame]]:  # noqa: ANN401 - FileStore
    """
    Return ``(log entry, content after it)`` for the file store's history of one layer.

    The backup of entry *i + 1* is the content entry *i* wrote; the last entry wrote the
    current file. Entries whose content was pruned are left out (the oldest ones); a layer
    with no log gives one pseudo entry for its current file.
    """
    hdir = io.history_dir(spec, files.settings)
    path = files.layer_path(spec)
    log = files.history(spec)
    out: list[tuple[dict[str, Any], gpd.GeoDataFrame]] = []
    for i, entry in enumerate(log):
        if i + 1 < len(log):
            nxt = log[i + 1].get("backup")
            content = hdir / nxt if nxt else None
        else:
            content = path
        if content is not None and content.exists():
            out.append((entry, io.read_layer_file(content)))
    if not out:
        out.append(({"user": "", "action": "load", "source": spec.file},
                    io.read_layer_file(path)))
    return out


def load_files(
    store: PostgisStore,
    files: Any,  # noqa: ANN401 - FileStore (import cycle-free)
    *,
    user: str,
    replace: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, int]:
    """
    Copy a file store (catalog, layers with their history, records, attachments) into `store`.

    Each layer's kept history is replayed in order, with the original time, user, action,
    source and counts, so `history` and `undo` carry on in the database; a file-store undo
    entry is mapped to the database version it restored.

    Parameters
    ----------
    store
        The database store (schema initialised, `init_db`).
    files
        A `riskmap.store.files.FileStore`.
    user
        Recorded for the catalog and for entries with no user.
    replace
        Write layers and collections that the database already has (as new versions);
        default: leave those as they are.
    echo
        Progress lines (Chinese).

    Returns
    -------
    counts
        ``{"layers", "versions", "records", "attachments"}`` written.
    """
    settings = files.settings
    counts = {"layers": 0, "versions": 0, "records": 0, "attachments": 0}
    text = settings.catalog_path.read_text(encoding="utf-8")
    if store.catalog_text() != text:
        store.write_catalog(text, user=user, source=str(settings.catalog_path))
        echo(f"图层目录已载入 ({settings.catalog_path})")
    catalog = io.read_catalog(settings)
    for spec in catalog:
        if not files.layer_path(spec).exists():
            continue
        if store.layer_version(spec) and not replace:
            echo(f"{spec.name}: 数据库中已有，跳过 (use --replace)")
            continue
        refs: dict[str, str] = {}
        for entry, gdf in _file_versions(files, spec):
            extra = {k: v for k, v in entry.items()
                     if k not in {"user", "action", "source", "backup", "rows_before",
                                  "rows_after"}}
            if "undoes" in extra:
                extra["undoes"] = refs.get(str(extra["undoes"]), extra["undoes"])
            store.write_layer(gdf, spec, user=str(entry.get("user") or user),
                              action=str(entry.get("action") or "load"),
                              source=str(entry.get("source") or ""), counts=extra)
            if entry.get("backup"):
                refs[str(entry["backup"])] = store.history(spec)[-1]["backup"]
            counts["versions"] += 1
        counts["layers"] += 1
        echo(f"{spec.name}: 已载入 {len(store.read_layer(spec))} 个要素")
    records_dir = settings.layers_dir / "records"
    for path in sorted(records_dir.glob("*.json")):
        name = path.stem
        if not _NAME.match(name) or (store.records_version(name) and not replace):
            continue
        store.write_records(name, files.read_records(name), user=user, action="load",
                            source=path.name)
        counts["records"] += 1
    attach_dir = settings.layers_dir / "attachments"
    for path in sorted(attach_dir.glob("*")):
        if ATTACHMENT_NAME.match(path.name):
            data = path.read_bytes()
            name = store.write_attachment(data, suffix=path.suffix)
            if name != path.name:
                msg = f"{path}: 附件内容与名称不符 (sha256 mismatch)"
                raise DataFileError(msg)
            counts["attachments"] += 1
    return counts


def dump_files(store: PostgisStore, folder: Path, *, overwrite: bool = False) -> list[Path]:
    """
    Write the database's current catalog, layers, records and attachments as a layers folder.

    The layout is the file store's (`riskmap.store.files`); each layer is written as the
    file store writes it (`riskmap.io.geojson_text`), so for layers loaded from files the
    bytes are those of the input. History is not written (it stays in the database).

    Raises
    ------
    DataFileError
        When a file exists and `overwrite` is false (nothing is written then).
    """
    catalog = store.read_catalog()
    outputs: dict[Path, bytes] = {}
    text = store.catalog_text()
    if text is not None:
        outputs[folder / "catalog.toml"] = text.encode("utf-8")
    for spec in catalog:
        if store.layer_version(spec):
            outputs[spec.path(folder)] = io.geojson_text(store.read_layer(spec)).encode("utf-8")
    for name in store.collections():
        data = json.dumps(store.read_records(name), ensure_ascii=False, allow_nan=False,
                          indent=1).encode()
        outputs[folder / "records" / f"{name}.json"] = data + b"\n"
    for name in store.attachment_names():
        outputs[folder / "attachments" / name] = store.read_attachment(name)
    clash = [p for p in outputs if p.exists()]
    if clash and not overwrite:
        msg = f"{clash[0]}: 文件已存在，未写入任何文件 (exists; use --overwrite)"
        raise DataFileError(msg)
    for path, data in outputs.items():
        io.write_bytes_atomic(path, data)
    return list(outputs)
