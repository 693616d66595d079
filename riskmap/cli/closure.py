"""Following hazards to closure (清零).

``riskmap status | progress | targets | completeness | diff``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from riskmap.errors import RiskmapError
from riskmap.settings import Settings
from riskmap.store import open_store

if TYPE_CHECKING:
    from riskmap.project import Project
from riskmap.cli import (  # the group, shared options and helpers
    InputFile,
    _check_out,
    _load,
    _out_target,
    main,
    overwrite_opt,
    townships_opt,
)
from riskmap.cli.lists import data_flags


@main.command()
@click.argument("uid")
@click.option("--layer", "layer_id", required=True, help="Layer id, e.g. geohazard.")
@click.option("--to", "to_status", required=True, help="New status: 在册, 监测中, 治理中, 已销号.")
@click.option("--date", "cleared_date", help="销号日期 (yyyy-mm-dd), required for 已销号.")
@click.option(
    "--reason",
    default="",
    help="销号原因 for 已销号 (工程治理, 搬迁避让, 排危除险, 趋于稳定); the reason for 重新入册.",
)
@click.option("--note", default="", help="Free note kept in the audit log.")
@click.option(
    "--evidence",
    type=InputFile(),
    help="Photo or PDF proving the change (JPEG/PNG/PDF, checked by content, size-limited).",
)
@click.option("--user", default=lambda: os.environ.get("USER", ""), help="Recorded in history.")
def status(
    uid: str,
    layer_id: str,
    to_status: str,
    cleared_date: str | None,
    reason: str,
    note: str,
    evidence: Path | None,
    user: str,
) -> None:
    """Change a point's status (销号, 重新入册…): audited, undoable with `riskmap undo`."""
    from riskmap import io, lifecycle  # noqa: PLC0415
    from riskmap.auth import EditorSession  # noqa: PLC0415

    if not user.strip():
        msg = "请用 --user 指明操作人（记入审计日志）"
        raise RiskmapError(msg)
    store = open_store(Settings.from_env())
    catalog = store.read_catalog()
    layer = catalog.get(layer_id)
    spec = lifecycle.lifecycle_spec(catalog)
    version = store.layer_version(layer)
    change = lifecycle.plan_status_change(
        store.read_layer(layer),
        layer,
        spec,
        uid,
        to_status,
        cleared_date=cleared_date,
        reason=reason,
        note=note,
        base_version=version,
    )
    data = io.read_import_bytes(evidence, max_mb=spec.evidence_max_mb) if evidence else None
    lifecycle.commit_status_change(
        change,
        layer,
        store,
        EditorSession(user.strip(), "cli"),
        evidence=data,
        evidence_name=evidence.name if evidence else "",
        spec=spec,
    )
    extra = f"，{change.reason}" if change.reason else ""
    old = change.old or "（空）"
    click.echo(
        f"{layer.name} {change.uid}: {old} → {change.new}（{change.label}{extra}）"
        f"；可用 riskmap undo --layer {layer.id} 撤销"
    )


def _lifecycle_project(townships_path: Path | None) -> tuple[Project, Any]:
    from riskmap.lifecycle import lifecycle_spec  # noqa: PLC0415

    project = _load(townships_path)
    return project, lifecycle_spec(project.catalog)


def _as_of(text: str | None) -> Any:  # noqa: ANN401 - a datetime.date
    import datetime as dt  # noqa: PLC0415

    if not text:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        msg = f"--as-of {text!r}: 应为日期 yyyy-mm-dd"
        raise RiskmapError(msg) from None


as_of_opt = click.option("--as-of", "as_of_text", help="Figures as of this day (default today).")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@as_of_opt
@townships_opt
def progress(fmt: str, as_of_text: str | None, townships_path: Path | None) -> None:
    """清零 progress by township: remaining, cleared, overdue, 销号率 and 整改率."""
    from riskmap import progress as prog  # noqa: PLC0415

    project, spec = _lifecycle_project(townships_path)
    as_of = _as_of(as_of_text)
    df = prog.progress_frame(project.layers, project.township_codes, spec, as_of=as_of)
    if fmt == "json":
        text = json.dumps(prog.progress_json(df), ensure_ascii=False, allow_nan=False, indent=1)
        click.echo(text)
        return
    names = {lid: layer.spec.name for lid, layer in project.layers.items()}
    shown = df[(df["total"] > 0) | (df["code"] == prog.COUNTY)]
    click.echo(prog.progress_table(shown, names).to_string(index=False))
    flags = data_flags(project)["notes"]
    note = f"（{'、'.join(flags)}）" if flags else ""
    click.echo(f"\n截至 {as_of.isoformat()}；没有点位的乡镇未列出{note}")


def _targets_and_completeness(
    project: Project, as_of: Any  # noqa: ANN401 - a datetime.date
) -> tuple[Any, Any, Any]:
    from riskmap import completeness, io, targets  # noqa: PLC0415

    declared = targets.targets_from_dict(io.read_targets_raw(project.settings), project.catalog)
    df = targets.measure_targets(declared, project.layers, project.township_codes, as_of=as_of)
    shares, missing = completeness.completeness_frame(
        project.layers, project.township_codes, as_of=as_of
    )
    return df, shares, missing


@main.command("targets")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "xlsx"]), default="table")
@click.option("--out", "out_text", help="Output .xlsx (with --format xlsx), or a folder.")
@as_of_opt
@townships_opt
@overwrite_opt
def targets_cmd(
    fmt: str,
    out_text: str | None,
    as_of_text: str | None,
    townships_path: Path | None,
    overwrite: bool,
) -> None:
    """考核: the plan's targets (layers/targets.toml), done / target with a traffic light."""
    from riskmap import completeness, io, targets  # noqa: PLC0415

    project = _load(townships_path)
    as_of = _as_of(as_of_text)
    df, shares, _ = _targets_and_completeness(project, as_of)
    if fmt == "json":
        click.echo(json.dumps(targets.targets_json(df), ensure_ascii=False, allow_nan=False,
                              indent=1))  # fmt: skip
        return
    notes = [f"截至 {as_of.isoformat()}", *data_flags(project)["notes"]]
    if fmt == "xlsx":
        if not out_text:
            msg = "--format xlsx 需要 --out 文件名或文件夹"
            raise RiskmapError(msg)
        out, is_folder = _out_target(out_text, (".xlsx",))
        county = project.settings.county_name
        if is_folder:
            out = out / f"{county}_考核表_{as_of.isoformat()}.xlsx"
        _check_out(out, overwrite)
        names = {lid: layer.spec.name for lid, layer in project.layers.items()}
        data = targets.targets_xlsx(
            df, title=f"{county}{as_of.year}年风险隐患考核表", notes=notes,
            completeness=completeness.completeness_table(shares, names),
        )  # fmt: skip
        io.write_bytes_atomic(out, data)
        click.echo(f"已写出 {out} ({len(data) / 1024:.0f} KB)")
        return
    county_rows = df[df["code"] == "county"]
    if county_rows.empty:
        where = project.settings.layers_dir / "targets.toml"
        click.echo(f"未声明考核目标（{where} 不存在或没有目标）")
    else:
        table = targets.targets_table(county_rows).drop(columns=["乡镇"])
        click.echo(table.to_string(index=False))
    click.echo(f"\n{'；'.join(notes)}。各乡镇明细: riskmap targets --format xlsx --out 文件夹/")


@main.command("completeness")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--township", help="Only this township (name or code); lists what is missing.")
@as_of_opt
@townships_opt
def completeness_cmd(
    fmt: str, township: str | None, as_of_text: str | None, townships_path: Path | None
) -> None:
    """一点一案一策: share of hazards with 责任人, 电话, 两卡, 预案, drill; what is missing."""
    from riskmap import completeness  # noqa: PLC0415

    project = _load(townships_path)
    as_of = _as_of(as_of_text)
    shares, missing = completeness.completeness_frame(
        project.layers, project.township_codes, as_of=as_of
    )
    if township:
        code, _ = project.township(township)
        shares = shares[shares["code"] == code]
        missing = missing[missing["code"] == code]
    if fmt == "json":
        data = {
            "shares": shares.astype(object).where(shares.notna(), None).to_dict("records"),
            "missing": missing.to_dict("records"),
        }
        click.echo(json.dumps(data, ensure_ascii=False, allow_nan=False, indent=1))
        return
    names = {lid: layer.spec.name for lid, layer in project.layers.items()}
    click.echo(completeness.completeness_table(shares, names).to_string(index=False))
    if len(missing):
        click.echo(f"\n缺项点位 {len(missing)} 个:")
        for r in missing.to_dict("records"):
            where = f"{r['township']} {names[r['layer']]} {r['uid']} {r['point']}"
            click.echo(f"  {where}: 缺 {r['missing']}")
    click.echo(f"\n截至 {as_of.isoformat()}；演练以 12 个月内为准；只计在册隐患（含待补充）")


@main.command("diff")
@click.option("--from", "ref_from", required=True,
              help="Earlier state: a date (yyyy-mm-dd, start of day, China time), an ISO "
                   "date-time or a version token (≥ 8 hex digits).")  # fmt: skip
@click.option("--to", "ref_to", help="Later state (same forms); default: now.")
@click.option("--layer", "layer_ids", multiple=True, help="Only these layers (default: all).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "xlsx"]), default="table")
@click.option("--label", default="", help="Name of the survey round, e.g. 汛前排查.")
@click.option("--out", "out_text", help="Output .xlsx (with --format xlsx), or a folder.")
@overwrite_opt
def diff_cmd(
    ref_from: str,
    ref_to: str | None,
    layer_ids: tuple[str, ...],
    fmt: str,
    label: str,
    out_text: str | None,
    overwrite: bool,
) -> None:
    """Survey-round diff: new, cleared, changed and moved points by township, from history."""
    from riskmap import diff, io  # noqa: PLC0415

    settings = Settings.from_env()
    store = open_store(settings)
    catalog = store.read_catalog()
    specs = [catalog.get(lid) for lid in layer_ids] if layer_ids else list(catalog)
    df, versions = diff.diff_store(
        store, specs, io.read_townships(settings), metric_crs=settings.metric_crs,
        ref_from=ref_from, ref_to=ref_to,
    )  # fmt: skip
    if fmt == "json":
        data = diff.diff_json(df, versions, label=label)
        click.echo(json.dumps(data, ensure_ascii=False, allow_nan=False, indent=1, default=str))
        return
    names = {spec.id: spec.name for spec in specs}
    table = diff.diff_table(df, names)
    span = f"{ref_from} → {ref_to or '现在'}"
    title = f"{settings.county_name}{label or '风险点位'}变化清单（{span}）"
    if fmt == "xlsx":
        if not out_text:
            msg = "--format xlsx 需要 --out 文件名或文件夹"
            raise RiskmapError(msg)
        out, is_folder = _out_target(out_text, (".xlsx",))
        if is_folder:
            out = out / f"{settings.county_name}_{label or '变化清单'}.xlsx"
        _check_out(out, overwrite)
        data = diff.diff_xlsx(table, title=title, notes=[span])
        io.write_bytes_atomic(out, data)
        click.echo(f"已写出 {out} ({len(table)} 行)")
        return
    click.echo(title)
    if not len(table):
        click.echo("没有变化。")
        return
    click.echo(table.to_string(index=False))
    counts = df.drop_duplicates(["layer", "uid", "kind"])["kind_label"].value_counts()
    click.echo("合计: " + "，".join(f"{k} {n}" for k, n in counts.items()))
