"""Survey tables (CSV/XLSX bytes) → a checked import plan for one layer → the store.

Split by stage, each a function you can test alone (issue 9):

1. **read** — `riskmap.readers.read_table`: bytes → `RawTable` of text cells.
2. **map columns** — `riskmap.importing.columns.plan_columns` (catalog aliases).
3. **parse coordinates** — `riskmap.importing.locate.locate_rows` (`riskmap.coords`).
4. **validate** — `riskmap.importing.validate` (catalog rules, uid identity, 待补充).
5. **plan** — `riskmap.importing.plan.plan_table` (+ `identity`: conflicts, duplicates;
   `merge`: updates overlaid, readable uids) → `ImportPlan`, nothing written.
6. **commit** — `riskmap.importing.commit.commit_import` through `riskmap.store.Store`.

`plan_import` runs 1–5 on a file's bytes; `plan_attribute_update` runs 2–5 on records
(attribute-only updates such as a status sheet). Policy: ``docs/import.md``.
"""

from riskmap.importing.columns import (
    COMPUTED,
    COORD_ROLES,
    LONLAT_ROLE,
    column_aliases,
    guess_mapping,
    is_running_number,
    known_header,
    match_columns,
    normalise_header,
    split_lonlat,
)
from riskmap.importing.commit import commit_import, layer_fingerprint
from riskmap.importing.identity import (
    CONFLICT_MOVE_M,
    DUPLICATE_RADIUS_M,
    similar_names,
)
from riskmap.importing.merge import FieldChange, generated_uids
from riskmap.importing.plan import (
    STATUS_NEW,
    ImportPlan,
    plan_attribute_update,
    plan_import,
    plan_table,
)
from riskmap.importing.report import (
    LEVEL_LABELS,
    ImportReport,
    Message,
    RowReport,
    RowReports,
    report_frame,
    report_json_chunks,
    report_json_text,
    report_xlsx,
    safe_cell_text,
)
from riskmap.importing.validate import INCOMPLETE_FIELD, canonical_uid, uid_key

EXIT_NOTHING_WRITTEN = 3
"""Exit code of ``riskmap import`` when the file was read but no row is (or could be) written."""

__all__ = [
    "COMPUTED",
    "CONFLICT_MOVE_M",
    "COORD_ROLES",
    "DUPLICATE_RADIUS_M",
    "EXIT_NOTHING_WRITTEN",
    "INCOMPLETE_FIELD",
    "LEVEL_LABELS",
    "LONLAT_ROLE",
    "STATUS_NEW",
    "FieldChange",
    "ImportPlan",
    "ImportReport",
    "Message",
    "RowReport",
    "RowReports",
    "canonical_uid",
    "column_aliases",
    "commit_import",
    "generated_uids",
    "guess_mapping",
    "is_running_number",
    "known_header",
    "layer_fingerprint",
    "match_columns",
    "normalise_header",
    "plan_attribute_update",
    "plan_import",
    "plan_table",
    "report_frame",
    "report_json_chunks",
    "report_json_text",
    "report_xlsx",
    "safe_cell_text",
    "similar_names",
    "split_lonlat",
    "uid_key",
]
