"""Status change, undo and round diff on both stores (files, PostGIS) behind the Store seam."""

from __future__ import annotations

import json
from pathlib import Path

from riskmap import diff, io, lifecycle
from riskmap.auth import EditorSession

ROOT = Path(__file__).resolve().parent.parent
EDITOR = EditorSession("张三", "local")


def test_status_change_undo_and_diff_on_every_store(store):
    layer = store.read_catalog().get("geohazard")
    bundled = io.read_layer_file(ROOT / "layers" / "geohazard.geojson")
    v0 = store.write_layer(bundled, layer, user="张三", action="import", source="bundled",
                           expected_version="")  # fmt: skip
    feats = json.loads((ROOT / "layers" / "geohazard.geojson").read_text("utf-8"))["features"]
    uid = next(f["properties"]["uid"] for f in feats if f["properties"]["status"] == "治理中")
    spec = lifecycle.lifecycle_spec(store.read_catalog())
    change = lifecycle.plan_status_change(
        store.read_layer(layer), layer, spec, uid, "已销号", cleared_date="2026-06-30",
        reason="搬迁避让", note="搬迁完成", base_version=v0,
    )  # fmt: skip
    v1 = lifecycle.commit_status_change(change, layer, store, EDITOR)
    entry = store.history(layer)[-1]
    assert (entry["action"], entry["uid"], entry["from"], entry["to"]) == (
        "status", uid, "治理中", "已销号",
    )  # fmt: skip
    df, used = diff.diff_store(store, [layer], io.read_townships(store.settings),
                               metric_crs=store.settings.metric_crs, ref_from=v0[:12],
                               ref_to=v1[:12])  # fmt: skip
    assert used["geohazard"]["from"] == v0
    assert set(df.loc[df["kind"] == "cleared", "uid"]) == {uid}
    assert set(df["uid"]) == {uid}
    lifecycle.undo_last_status(store, layer, EDITOR)
    assert store.read_layer(layer).set_index("uid").loc[uid, "status"] == "治理中"
