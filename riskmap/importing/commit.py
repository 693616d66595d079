"""Stage 6 of an import: commit a previewed plan through the store (audited, undoable).

`commit_import` is the only function of `riskmap.importing` that writes, and it writes only
through `riskmap.store.Store` (atomic, version-checked, previous version kept, audit log).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

import geopandas as gpd
import shapely

from riskmap.errors import ImportFileError, StaleVersionError
from riskmap.io import empty_layer

if TYPE_CHECKING:
    from riskmap.catalog import LayerSpec
    from riskmap.importing.plan import ImportPlan
    from riskmap.store import Store


def _check_status_changes(plan: ImportPlan, spec: LayerSpec, store: Store) -> None:
    """
    Refuse an import whose status changes break the catalog's lifecycle (issue 11).

    E.g. a status sheet setting 已销号 without 销号原因, or 已销号 → 治理中. Nothing is written.
    """
    from riskmap import lifecycle  # noqa: PLC0415 - the lifecycle rules, one definition

    catalog = store.read_catalog()
    if not plan.changes or not catalog.lifecycle:
        return
    problems = lifecycle.import_transition_problems(
        plan.changes, plan.gdf_result, spec.key, lifecycle.lifecycle_spec(catalog)
    )
    if problems:
        msg = f"{plan.filename}: 状态变更不符合规定，未写入：" + "；".join(problems)
        raise lifecycle.StatusChangeError(msg)


def layer_fingerprint(gdf: gpd.GeoDataFrame, key: str = "uid") -> str:
    """
    SHA-256 over a layer's keys and geometries (WKB), order-sensitive.

    Used to detect that a layer changed between preview and commit.
    """
    h = hashlib.sha256()
    keys = gdf[key].astype(object).where(gdf[key].notna(), "") if key in gdf.columns else []
    h.update("\x1f".join(map(str, keys)).encode("utf-8"))
    if len(gdf):
        wkb = shapely.to_wkb(np.asarray(gdf.geometry.to_numpy(), dtype=object))
        for item in wkb:
            h.update(item or b"\x00")
    return h.hexdigest()


def commit_import(plan: ImportPlan, spec: LayerSpec, store: Store, *, user: str) -> str:
    """
    Write a previewed import through the store: one audited, undoable transaction.

    Writes ``plan.gdf_result`` with `Store.write_layer` (``action=plan.action``: ``"import"``,
    or ``"update"`` for an attribute-only sheet;
    ``source=plan.filename``, ``counts={added, updated, rejected}``). When the layer has no
    data yet, an empty version is written first (``action="create"``) so the import can be
    undone with `Store.undo` like any other.

    Parameters
    ----------
    plan
        From `plan_import` for the same layer.
    spec
        The layer's declaration.
    store
        Where the layer lives (`riskmap.store.open_store`).
    user
        Recorded in the audit log.

    Returns
    -------
    version
        The layer's new version token.

    Raises
    ------
    ImportFileError
        When the plan has a file-level error or nothing to add or update.
    StaleVersionError
        When the layer changed since the plan was made (re-run the preview).
    LockError
        When another process is writing the layer.
    """
    if plan.layer_id != spec.id:
        msg = f"导入计划属于图层 {plan.layer_id}，不能写入图层 {spec.id}"
        raise ImportFileError(msg)
    if plan.report.file_error:
        msg = f"{plan.filename}: 文件无法导入: {plan.report.file_error}"
        raise ImportFileError(msg)
    if not plan.can_commit:
        msg = f"{plan.filename}: 没有可导入的行（{plan.counts['rejected']} 行有错误）"
        raise ImportFileError(msg)
    _check_status_changes(plan, spec, store)
    # The version read here must hold the features the plan was made against; the store
    # checks it again under its lock, so two imports previewed on the same version cannot
    # both land (the second is refused instead of silently overwriting).
    version = store.layer_version(spec)
    if layer_fingerprint(store.read_layer(spec), spec.key) != plan.existing_fingerprint:
        msg = f"{spec.name}: 预览之后图层已被修改（可能有其他导入），请重新预览后再导入"
        raise StaleVersionError(msg)
    if version == "":
        version = store.write_layer(
            empty_layer(spec), spec, user=user, action="create", source=plan.filename,
            expected_version=version,
        )  # fmt: skip
    return store.write_layer(
        plan.gdf_result,
        spec,
        user=user,
        action=plan.action,
        source=plan.filename,
        counts=plan.counts,
        expected_version=version,
    )
