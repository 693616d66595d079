"""The only module that opens files: catalog, layers, reference data, atomic writes.

Everything here reads or writes; everything it returns is handed to the pure modules.
"""

from __future__ import annotations

# --- layers and catalog -------------------------------------------------------------------

# --- reference data (county outline, townships) -------------------------------------------
