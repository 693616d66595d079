"""Exception tree: one root, each subclass also inherits the matching builtin.

The CLI turns any `RiskmapError` into one clear line and exit code 2; `app.py` shows it
with `st.error`. Every other exception is a bug and is allowed to crash.
"""


class RiskmapError(Exception):
    """Base for all riskmap errors."""


class SchemaError(RiskmapError, ValueError):
    """Data breaks a column/geometry contract (layer declaration, reference data)."""


class CatalogError(RiskmapError, ValueError):
    """The layer catalog itself is malformed."""


class CRSError(RiskmapError, ValueError):
    """Missing, unknown or mismatched coordinate reference system."""


class LayerNotFoundError(RiskmapError, KeyError):
    """A layer id is not in the catalog."""

    def __str__(self) -> str:
        """Return the message without KeyError's repr quoting."""
        return str(self.args[0]) if self.args else ""


class TownshipNotFoundError(RiskmapError, KeyError):
    """A township name or code matches no township."""

    def __str__(self) -> str:
        """Return the message without KeyError's repr quoting."""
        return str(self.args[0]) if self.args else ""


class DataFileError(RiskmapError, OSError):
    """A data file is missing, unreadable or malformed (names the file)."""


class ImportFileError(RiskmapError, ValueError):
    """An uploaded/imported survey file cannot be read at all (names the file)."""


class LockError(RiskmapError, OSError):
    """Another process holds the write lock on a layer."""


class StaleVersionError(DataFileError):
    """The data changed since the user's preview; nothing was written (re-run the preview)."""
