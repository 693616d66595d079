"""Compatibility module: the importer now lives in the `riskmap.importing` package.

Every public name of the former ``riskmap/importers.py`` is importable from here; new code
imports from `riskmap.importing` (stages: read → map columns → parse coordinates →
validate → plan → commit).
"""

from riskmap.importing import *  # noqa: F403
from riskmap.importing import __all__  # noqa: F401
