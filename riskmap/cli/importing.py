"""Survey import: ``riskmap import | undo``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from riskmap.cli import (  # the group, shared options and helpers
    InputFile,
    _warned,
    main,
)
from riskmap.errors import RiskmapError
from riskmap.settings import Settings
from riskmap.store import open_store


def _coordinate_form_help() -> str:
    from riskmap.coordforms import COORDINATE_FORMS  # noqa: PLC0415

    return "Coordinate form of the file: " + "; ".join(
        f"{f.id} = {f.handling}" for f in COORDINATE_FORMS
    )


def _crs_choices() -> list[str]:
    from riskmap.coordforms import CRS_CHOICES  # noqa: PLC0415 - the coordinate forms registry

    return list(CRS_CHOICES)


@main.command("import")
@click.argument("file", type=InputFile())
@click.option("--layer", "layer_id", required=True, help="Target layer id, e.g. geohazard.")
@click.option(
    "--crs",
    type=click.Choice(_crs_choices()),
    default="wgs84",
    show_default=True,
    help=_coordinate_form_help(),
)
@click.option("--sheet", help="Excel sheet name (default: the first).")
@click.option(
    "--map",
    "mapping_path",
    type=InputFile(),
    help="Column mapping file (JSON or TOML; optional [defaults] table).",
)
@click.option(
    "--set",
    "defaults_kv",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Default for blank cells of a field, e.g. --set hazard_type=滑坡 (each use is warned).",
)
@click.option("--dry-run", is_flag=True, help="Check and report only; write nothing.")
@click.option(
    "--strict",
    is_flag=True,
    help="Reject rows missing a required attribute (default: import them marked 待补充).",
)
@click.option(
    "--accept-conflicts",
    is_flag=True,
    help="Apply updates that move a point > 100 m or replace its name (default: held, 冲突).",
)
@click.option(
    "--add-duplicates",
    is_flag=True,
    help="Add rows without uid that look like an existing point (default: held, 疑似重复).",
)
@click.option(
    "--report-json", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here."
)
@click.option("--user", default=lambda: os.environ.get("USER", ""), help="Recorded in history.")
def import_cmd(
    file: Path,
    layer_id: str,
    crs: str,
    sheet: str | None,
    mapping_path: Path | None,
    defaults_kv: tuple[str, ...],
    dry_run: bool,
    strict: bool,
    accept_conflicts: bool,
    add_duplicates: bool,
    report_json: Path | None,
    user: str,
) -> None:
    """
    Import survey points from CSV/Excel into a layer (good rows in, others reported).

    Exit status: 0 when at least one row is written (with --dry-run: could be written);
    3 when the file was read but no row can be written (all rejected or held); 2 when the
    whole file is refused or an argument is wrong.
    """
    from riskmap import io  # noqa: PLC0415 - keep `--help` fast
    from riskmap.importing import (  # noqa: PLC0415
        EXIT_NOTHING_WRITTEN,
        commit_import,
        plan_import,
        report_frame,
        report_json_chunks,
    )

    settings = Settings.from_env()
    store = open_store(settings)
    catalog = store.read_catalog()
    spec = catalog.get(layer_id)
    data = io.read_import_bytes(file, max_mb=settings.upload_max_mb)
    mapping = io.read_mapping_file(mapping_path) if mapping_path else None
    defaults = io.read_defaults_file(mapping_path) if mapping_path else {}
    for item in defaults_kv:
        field, sep, value = item.partition("=")
        if not sep or field.strip() not in spec.fields:
            msg = f"--set {item!r}: 应为 字段=值，字段是 {spec.id} 图层的字段 key"
            raise RiskmapError(msg)
        defaults[field.strip()] = value.strip()
    gdf_townships = _warned(io.read_townships, settings)  # datum warnings shown (c27)
    plan = plan_import(
        data,
        file.name,
        spec,
        existing=store.read_layer(spec),
        gdf_townships=gdf_townships,
        gdf_county=io.read_county(settings),
        crs=crs,
        sheet=sheet,
        mapping=mapping,
        defaults=defaults or None,
        metric_crs=settings.metric_crs,
        county_name=settings.county_name,
        strict=strict,
        accept_conflicts=accept_conflicts,
        add_duplicates=add_duplicates,
    )
    report, can_commit = plan.report, plan.can_commit
    changes = {
        uid: [{"field": c.field, "label": c.label, "old": c.old, "new": c.new} for c in fields]
        for uid, fields in plan.changes.items()
    }
    if dry_run:
        plan = None  # the planned frames are not written: free them before reporting
    if report_json is not None:
        chunks = report_json_chunks(report, changes=changes)
        io.write_bytes_atomic(report_json, (c.encode("utf-8") for c in chunks))
    click.echo(f"文件: {file.name}  编码: {report.encoding or '-'}  图层: {spec.name}")
    for note in report.notes:
        click.echo(f"  · {note}")
    if report.file_error:
        error = report.file_error
        msg = error if error.startswith(file.name) else f"{file.name}: {error}"
        raise RiskmapError(msg)
    issues = report_frame(report, only_messages=True)
    if len(issues):
        from riskmap.texttable import format_table  # noqa: PLC0415 - pandas, lazily

        click.echo(format_table(issues))
    for uid, fields in changes.items():
        diff = "；".join(
            f"{f['label']}: {f['old'] or '（空）'} → {f['new'] or '（空）'}" for f in fields
        )
        click.echo(f"更新 {uid}: {diff}")
    c = report.counts
    click.echo(
        f"共 {c['rows']} 行: 新增 {c['added']}，更新 {c['updated']}，无变化 {c['unchanged']}，"
        f"拒收 {c['rejected']}，"
        f"冲突待确认 {c['conflicts']}，疑似重复 {c['duplicates']}，"
        f"待补充 {c['incomplete']}，警告 {c['warnings']}"
    )
    if c["conflicts"]:
        click.echo("有冲突的更新未应用：核对无误后加 --accept-conflicts 重新导入。")
    if c["duplicates"]:
        click.echo("疑似重复的行未新增：确属新点请加 --add-duplicates 重新导入。")
    if not can_commit:
        click.echo(_nothing_written(c))
        sys.exit(EXIT_NOTHING_WRITTEN)
    if dry_run:
        click.echo("试运行 (--dry-run)：未写入任何数据。")
        return
    commit_import(plan, spec, store, user=user)
    click.echo(
        f"已写入图层 {spec.name}（上一版本已保存，可用 riskmap undo --layer {spec.id} 撤销）"
    )


def _nothing_written(counts: dict[str, int]) -> str:
    """Say why an import wrote nothing (every row 无变化, or none importable)."""
    if counts["unchanged"] and counts["unchanged"] + counts["rejected"] == counts["rows"]:
        return "文件中的点位与图层已有记录一致（无变化），未写入。"
    return "没有可导入的行，未写入。"


@main.command()
@click.option("--layer", "layer_id", required=True, help="Layer whose last import to undo.")
@click.option("--user", default=lambda: os.environ.get("USER", ""), help="Recorded in history.")
def undo(layer_id: str, user: str) -> None:
    """Undo the last import (or undo) of a layer: restore the version it replaced."""
    from riskmap.importing.history import undo_description  # noqa: PLC0415

    settings = Settings.from_env()
    store = open_store(settings)
    spec = store.read_catalog().get(layer_id)
    what = undo_description(store.history(spec))
    store.undo(spec, user=user)
    click.echo(f"已恢复图层 {spec.name} 的上一版本" + (f"：{what}" if what else ""))
