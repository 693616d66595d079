"""Command line: ``riskmap map | summary | export | validate | import | undo | serve | db``.

Thin click commands over the library. Any `RiskmapError` becomes one clear line on stderr
and exit code 2 (no traceback); other exceptions are bugs and crash loudly.

Size (over ~800 lines): one thin command per function, grouped by section (lists and maps,
import, lifecycle, warnings, paper, database, history, editors); each imports its library
lazily so ``riskmap --help`` stays fast. The next step is a ``riskmap/cli/`` package with one
module per command group, keeping ``riskmap.cli:main`` as the entry point.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from riskmap.errors import RiskmapError
from riskmap.exporters.formats import FORMATS as EXPORT_FORMAT_IDS
from riskmap.settings import Settings
from riskmap.store import open_store

if TYPE_CHECKING:
    from riskmap.project import Project

EXIT_USAGE = 2


class RiskmapClickError(click.ClickException):
    """A `RiskmapError` shown as one line, exit code 2."""

    exit_code = EXIT_USAGE

    def show(self, file: Any = None) -> None:  # noqa: ANN401 - click's signature
        """Print ``错误：<message>`` to stderr."""
        click.echo(f"错误：{self.format_message()}", err=True, file=file)


class InputFile(click.Path):
    """An existing, readable file given on the command line; a missing one is one Chinese line.

    click's own check prints an English usage block ("Invalid value for 'FILE'…"); county
    staff get ``错误：找不到文件 …`` instead, with exit code 2 like every other input error.
    """

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:  # noqa: ANN401 - click's signature
        """Return the path, or raise `RiskmapClickError` naming it and what is wrong."""
        path = Path(value)
        if not path.exists():
            msg = f"找不到文件：{path}（请检查路径和文件名）"
            raise RiskmapClickError(msg)
        if path.is_dir():
            msg = f"{path} 是文件夹，应为一个文件"
            raise RiskmapClickError(msg)
        if not os.access(path, os.R_OK):
            msg = f"无法读取文件：{path}（没有读取权限）"
            raise RiskmapClickError(msg)
        return super().convert(value, param, ctx)


class RiskmapGroup(click.Group):
    """Group that turns `RiskmapError` from any command into `RiskmapClickError`."""

    def invoke(self, ctx: click.Context) -> Any:  # noqa: ANN401 - click's signature
        """Run the command, converting domain errors."""
        try:
            return super().invoke(ctx)
        except RiskmapError as exc:
            raise RiskmapClickError(str(exc)) from None


overwrite_opt = click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
pdf_out_opt = click.option(
    "--out",
    "out_text",
    required=True,
    help="Output .pdf, or a folder (existing, or with a trailing /).",
)
townships_opt = click.option(
    "--townships",
    "townships_path",
    type=InputFile(),
    help="Official township boundary file (乡镇界) replacing the approximate partition.",
)


def _settings(townships_path: Path | None) -> Settings:
    if townships_path is not None:
        return Settings.from_env(townships_path=townships_path)
    return Settings.from_env()


def _load(townships_path: Path | None) -> Project:
    from riskmap.project import load_project  # noqa: PLC0415 - keep `--help` fast

    return _warned(load_project, _settings(townships_path))


def _warned(fn: Any, *args: Any) -> Any:  # noqa: ANN401 - passes any call through
    """Call `fn`, showing each warning it raises as one plain ``警告:`` line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args)
    for w in caught:
        click.echo(f"警告: {w.message}", err=True)
    return result


def _mark_overdue(project: Project, layers: dict) -> dict:
    """Mark 逾期 features for the map (outlined), as of today."""
    from riskmap.lifecycle import lifecycle_spec  # noqa: PLC0415
    from riskmap.progress import with_overdue  # noqa: PLC0415

    return with_overdue(layers, lifecycle_spec(project.catalog))


def _out_target(text: str, extensions: tuple[str, ...]) -> tuple[Path, bool]:
    """
    Resolve ``--out``: ``(path, is_folder)``.

    A folder is an existing directory, any text ending in ``/``, or a name without an
    extension that does not exist yet (every file riskmap writes has one, so ``--out lists``
    means the folder ``lists/``, never an extension-less file named ``lists``); a missing
    folder is created. A file name must end in one of `extensions` (``.zip`` for
    ``export --all``, ``.xlsx`` for ``--format xlsx``...): a ZIP named ``清单.xlsx`` would
    not open.

    Raises
    ------
    RiskmapError
        The folder cannot be created, or the file name has another extension.
    """
    path = Path(text)
    folder = text.endswith(("/", os.sep)) or path.is_dir()
    if not folder and not path.suffix and not path.exists():
        folder = True
    if folder:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"{text}: 无法创建输出文件夹 (cannot create folder): {exc.strerror or exc}"
            raise RiskmapError(msg) from None
        return path, True
    if path.suffix.lower() not in extensions:
        want = " 或 ".join(extensions)
        msg = (
            f"{text}: 输出文件的扩展名应为 {want}（写到文件夹请以 / 结尾，如 {path.stem}/）"
            f" (extension should be {'/'.join(extensions)})"
        )
        raise RiskmapError(msg)
    return path, False


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        msg = f"{out} 已存在；加 --overwrite 覆盖 (file exists; use --overwrite)"
        raise RiskmapError(msg)


@click.group(cls=RiskmapGroup)
@click.version_option(package_name="riskmap")
def main() -> None:
    """Riskmap — 城口县安全风险点位“一张图” (county risk points on one map)."""


@main.command("map")
@click.option(
    "--out",
    "out_text",
    required=True,
    help="Output .html file, or a folder (existing, or with a trailing /).",
)
@click.option("--layer", "layer_ids", multiple=True, help="Layer ids to show (default: all).")
@click.option("--include-cleared", is_flag=True, help="Also show cleared (已销号) points.")
@townships_opt
@overwrite_opt
def map_cmd(
    out_text: str,
    layer_ids: tuple[str, ...],
    include_cleared: bool,
    townships_path: Path | None,
    overwrite: bool,
) -> None:
    """Write the 一张图 as one self-contained HTML page (works offline, from disk)."""
    from riskmap import io  # noqa: PLC0415 - keep `--help` fast
    from riskmap.exporters import listed_layers  # noqa: PLC0415
    from riskmap.mapview import build_map, save_map  # noqa: PLC0415

    out, is_folder = _out_target(out_text, (".html", ".htm"))
    project = _load(townships_path)
    if is_folder:
        out = out / f"{project.settings.county_name}_一张图.html"
    _check_out(out, overwrite)
    for layer_id in layer_ids:
        project.catalog.get(layer_id)
    layers = listed_layers(project.layers, include_cleared=include_cleared)
    layers = _mark_overdue(project, layers)
    fmap = build_map(
        layers,
        project.gdf_townships,
        project.gdf_county,
        settings=project.settings,
        visible=layer_ids or None,
        demo=project.demo,
        inline_assets=True,
    )
    title = f"{project.settings.county_name}安全风险“一张图”"
    io.write_text_atomic(out, save_map(fmap, title=title))
    n = sum(len(layer.gdf) for layer in layers.values())
    click.echo(f"已写出 {out} ({n} 个要素, {out.stat().st_size / 1e6:.1f} MB)")


def data_flags(project: Project) -> dict[str, Any]:
    """
    Return the data notes every output carries: 示意边界 (approximate), 演示数据 (demo).

    Returns
    -------
    flags
        ``{"approximate": bool, "demo": bool, "notes": ["示意边界", "演示数据"] (those true)}``.
    """
    notes = [n for n, on in (("示意边界", project.approximate), ("演示数据", project.demo)) if on]
    return {"approximate": project.approximate, "demo": project.demo, "notes": notes}


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@townships_opt
def summary(fmt: str, townships_path: Path | None) -> None:
    """Per-township figures: 在册隐患 / 已销号 per layer, threatened people (在册隐患 only)."""
    from riskmap import outputcache  # noqa: PLC0415 - standard library only

    settings = _settings(townships_path)
    key = outputcache.output_key(settings, "summary", fmt)
    cached = outputcache.read_output(settings, f"summary-{fmt}", key)
    if cached is None:  # first run on these data (or they changed): compute and store
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from riskmap.project import load_project  # noqa: PLC0415 - keep `--help` fast

            project = load_project(settings)
        stderr = "".join(f"警告: {w.message}\n" for w in caught)
        cached = {"stdout": _summary_text(project, fmt), "stderr": stderr}
        outputcache.write_output(settings, f"summary-{fmt}", key, **cached)
    if cached["stderr"]:
        click.echo(cached["stderr"], err=True, nl=False)
    click.echo(cached["stdout"])


def _summary_text(project: Project, fmt: str) -> str:
    """Return the text `summary` prints (without the final newline)."""
    from riskmap.aggregate import (  # noqa: PLC0415
        ACTIVE_LABEL,
        CLEARED_LABEL,
        THREAT_FIELDS,
        TOTAL_LABEL,
        county_totals,
        layer_figures,
        summarize_townships,
        summary_records,
    )

    df = summarize_townships(project.layers, project.gdf_townships, project.township_codes)
    totals = county_totals(project.layers)
    figures = layer_figures(project.layers)
    if fmt == "json":
        data = {
            "county": {
                "code": project.settings.county_adcode,
                "name": project.settings.county_name,
                "total": figures["all"],
                "layers": totals,
            },
            "flags": data_flags(project),
            "townships": summary_records(df, project.layers),
        }
        return json.dumps(data, ensure_ascii=False, allow_nan=False, indent=1)
    names: dict[str, str] = {"adcode": "代码", "name": "乡镇"}
    for lid, layer in project.layers.items():
        names[f"{lid}|active"] = f"{layer.spec.name}({ACTIVE_LABEL})"
        names[f"{lid}|cleared"] = f"{CLEARED_LABEL}"
        for f in layer.spec.sums:
            key = f"{lid}|active|{f}" if f in THREAT_FIELDS else f"{lid}|{f}"
            names[key] = layer.spec.header(f)
    table = df[list(names)]
    table.columns = list(names.values())
    types = {
        layer.spec.header(f): layer.spec.fields[f].type
        for layer in project.layers.values()
        for f in layer.spec.sums
        if f in layer.spec.fields
    }
    from riskmap.texttable import decimals_from_types, format_table  # noqa: PLC0415 - pandas

    lines = [format_table(table, decimals=decimals_from_types(list(table.columns), types))]
    unplaced = {t["name"]: t["outside"] for t in totals.values() if t["outside"]}
    if unplaced:
        items = "，".join(f"{name} {n}" for name, n in unplaced.items())
        lines.append(f"未落入任何乡镇（县界外或无坐标），未计入上表: {items}")
    line = "；".join(
        f"{t['name']} {ACTIVE_LABEL} {t['active']}、{CLEARED_LABEL} {t['cleared']}、"
        f"{TOTAL_LABEL} {t['total']}"
        for t in totals.values()
    )
    note = "（乡镇界线为示意边界）" if project.approximate else ""
    demo = "（演示数据）" if project.demo else ""
    lines.append(f"\n全县合计: {line}{note}{demo}")
    lines.append("威胁户数/人数/财产只计在册隐患（已销号的点位不再计入）。")
    return "\n".join(lines)


@main.command()
@click.option("--township", help="Township name or 9/12-digit code.")
@click.option("--all", "all_townships", is_flag=True, help="Every township (a ZIP of lists).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EXPORT_FORMAT_IDS),
    default=EXPORT_FORMAT_IDS[0],
    show_default=True,
    help="File format (riskmap.exporters.EXPORT_FORMATS).",
)
@click.option(
    "--out",
    "out_text",
    required=True,
    help="Output file, or a folder (existing, or written with a trailing /) for generated names.",
)
@click.option("--include-cleared", is_flag=True, help="Also list cleared (已销号) points.")
@click.option(
    "--public",
    is_flag=True,
    help="Public release (公开版): no personal names/phones, coarse point coordinates.",
)
@click.option(
    "--precision",
    type=float,
    default=0.01,
    show_default=True,
    help="With --public: snap points to this grid in degrees (0.01° ≈ 1 km); 0 = exact.",
)
@townships_opt
@overwrite_opt
def export(
    township: str | None,
    all_townships: bool,
    fmt: str,
    out_text: str,
    include_cleared: bool,
    public: bool,
    precision: float,
    townships_path: Path | None,
    overwrite: bool,
) -> None:
    """Write a township's risk list (风险点位清单), or all townships' lists as a ZIP."""
    from riskmap import exporters, io  # noqa: PLC0415 - keep `--help` fast

    if bool(township) == all_townships:
        msg = "请指定 --township 名称或代码，或 --all (give --township or --all)"
        raise RiskmapError(msg)
    if precision < 0:
        msg = f"--precision 应 ≥ 0（度）: {precision}"
        raise RiskmapError(msg)
    project = _load(townships_path)
    layers = project.layers
    suffix = ""
    if public:
        layers = exporters.public_layers(layers, precision_deg=precision or None)
        suffix = "_公开版"
    county = project.settings.county_name
    kw: dict[str, Any] = {
        "include_cleared": include_cleared,
        "approximate": project.approximate,
        "county_name": county,
    }
    ext = ".zip" if all_townships else f".{exporters.export_format(fmt).extension}"
    out, is_folder = _out_target(out_text, (ext,))
    if all_townships:
        if is_folder:
            out = out / exporters.zip_file_name(county, fmt, public=public)
        _check_out(out, overwrite)
        data = exporters.all_townships_zip(layers, project.township_codes, fmt=fmt, **kw)
    else:
        code, name = project.township(str(township))
        if is_folder:
            ext = exporters.export_format(fmt).extension
            out = out / exporters.township_file_name(code, name + suffix, ext)
        _check_out(out, overwrite)
        data = exporters.township_export(layers, code, name, fmt=fmt, **kw)
    io.write_bytes_atomic(out, data)
    click.echo(f"已写出 {out} ({len(data) / 1024:.0f} KB)")


@main.command()
@click.argument("layer_id", required=False)
def validate(layer_id: str | None) -> None:
    """Check layer files against the catalog; exit 1 when any is invalid."""
    from riskmap.schema import layer_problems  # noqa: PLC0415 - keep `--help` fast

    store = open_store(Settings.from_env())
    catalog = store.read_catalog()
    specs = [catalog.get(layer_id)] if layer_id else list(catalog)
    bad = 0
    for spec in specs:
        gdf = store.read_layer(spec)
        problems = layer_problems(gdf, spec)
        state = "通过 (ok)" if not problems else f"{len(problems)} 处问题"
        click.echo(f"{spec.id} {spec.name}: {len(gdf)} 个要素, {state}")
        for problem in problems:
            click.echo(f"  - {problem}")
        bad += bool(problems)
    if bad:
        sys.exit(1)


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


@main.group()
def editor() -> None:
    """Local editors of the app (who may import/undo without an identity provider)."""


secrets_opt = click.option(
    "--secrets",
    "secrets_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="secrets.toml to edit (default: <root>/.streamlit/secrets.toml).",
)


@editor.command("add")
@click.argument("name")
@secrets_opt
@click.password_option(
    "--password",
    prompt="密码 (password)",
    confirmation_prompt="再次输入密码 (repeat)",
    help="Prompted twice, hidden (do not pass it on the command line).",
)
def editor_add(name: str, secrets_path: Path | None, password: str) -> None:
    """Add an editor NAME or change its password (salted scrypt hash, file mode 0600)."""
    from riskmap import auth, io  # noqa: PLC0415 - keep `--help` fast

    path = secrets_path or Settings.from_env().secrets_path
    user = auth.check_username(name)
    stored = auth.hash_password(password)
    old = io.read_secrets_text(path)
    new = auth.upsert_editor(old, user, stored)
    io.write_text_atomic(path, new, mode=0o600)
    click.echo(f"已设置编辑者 {user}（{path}，权限 0600）")


@editor.command("list")
@secrets_opt
def editor_list(secrets_path: Path | None) -> None:
    """List the local editors (names only) and whether OIDC sign-in is configured."""
    import tomllib  # noqa: PLC0415

    from riskmap import auth, io  # noqa: PLC0415 - keep `--help` fast

    path = secrets_path or Settings.from_env().secrets_path
    text = io.read_secrets_text(path)
    try:
        secrets = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{path}: 不是有效的 TOML: {exc}"
        raise RiskmapError(msg) from None
    editors = auth.editors_from_secrets(secrets)
    mode = auth.auth_mode(secrets)
    click.echo(f"{path}: 登录方式 {mode}")
    for user in editors:
        click.echo(f"  {user}")
    if not editors:
        click.echo("  （无本地编辑者）")


@editor.command("unlock")
@click.argument("name")
def editor_unlock(name: str) -> None:
    """Lift the sign-in pause of user NAME (after too many failed sign-ins)."""
    from riskmap import auth  # noqa: PLC0415

    guard = auth.SignInGuard.for_settings(Settings.from_env())
    had = guard.unlock(name)
    click.echo(f"已解除 {name} 的登录暂停" if had else f"{name} 没有登录失败记录")


@main.command()
@click.option("--port", default=8501, show_default=True)
@click.option("--address", default="localhost", show_default=True)
def serve(port: int, address: str) -> None:
    """Start the 一张图 web app (Streamlit) on the bundled data."""
    app = Path(__file__).resolve().parent.parent / "app.py"
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.port", str(port), "--server.address", address,
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    from riskmap.assets import install_static_assets  # noqa: PLC0415

    install_static_assets(app.parent / "static")  # before Streamlit looks for ./static
    click.echo(f"riskmap 一张图: http://{address}:{port}")
    # cwd = the project, so Streamlit finds .streamlit/config.toml and secrets.toml there;
    # exec (not a child process) so that stopping `riskmap serve` stops the server too.
    os.chdir(app.parent)
    os.execv(sys.executable, cmd)  # noqa: S606 - fixed argv, no shell


# --- warnings (预警—叫应—转移—反馈) -----------------------------------------------------------


def _shell_user() -> str:
    """Return the account running the CLI (the editor on the county server), or ``""``."""
    import getpass  # noqa: PLC0415

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no USER/LOGNAME and no passwd entry (containers)
        return ""


user_opt = click.option(
    "--user", default=_shell_user, help="Editor recorded in the audit log (default: login name)."
)


@main.group(cls=RiskmapGroup)
def warning() -> None:
    """Warnings: who is affected, the call list (叫应表), responses (反馈), closing."""


@warning.command("new")
@click.option("--level", required=True, help="预警级别: 红 | 橙 | 黄 | 蓝.")
@click.option("--type", "wtype", required=True, help="预警类型: 暴雨, 地灾气象风险, 森林火险…")
@click.option("--township", "townships", multiple=True, help="Township name or code (repeat).")
@click.option("--area", "area_path", type=click.Path(path_type=Path), help="GeoJSON/KML polygon.")
@click.option("--from", "valid_from", help="Valid from (2026-11-30 08:00, 北京时间); default now.")
@click.option("--to", "valid_to", help="Valid to; default 24 h after --from.")
@user_opt
def warning_new(
    level: str,
    wtype: str,
    townships: tuple[str, ...],
    area_path: Path | None,
    valid_from: str | None,
    valid_to: str | None,
    user: str,
) -> None:
    """Issue a warning for townships or a polygon; print its id on the last line."""
    from riskmap import alerts, io  # noqa: PLC0415 - keep `--help` fast
    from riskmap.project import load_project  # noqa: PLC0415

    if bool(townships) == (area_path is not None):
        msg = "请用 --township（可重复）或 --area 文件之一给出预警范围 (give --township or --area)"
        raise RiskmapError(msg)
    settings = Settings.from_env()
    project = load_project(settings)
    if area_path is not None:
        data = io.read_import_bytes(area_path, max_mb=settings.upload_max_mb)
        geometry = alerts.area_from_file(data, area_path.name)
        area = alerts.Area("file", geometry, source=area_path.name)
    else:
        area = alerts.area_from_townships(project, townships)
    record = alerts.new_warning(
        project,
        open_store(settings),
        level=level,
        kind=wtype,
        area=area,
        user=user,
        valid_from=valid_from,
        valid_to=valid_to,
    )
    totals = alerts.warning_totals(record)
    click.echo(
        f"已发布{record['level']}色{record['type']}预警，有效期 {record['valid_from']} 至 "
        f"{record['valid_to']}：点位 {totals['points']} 个，威胁 {totals['people']} 人 "
        f"{totals['households']} 户"
    )
    click.echo(record["id"])


@warning.command("calls")
@click.argument("warning_id")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "json"]), default="xlsx")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--public", is_flag=True, help="Public version: phones and names masked.")
@overwrite_opt
def warning_calls(warning_id: str, fmt: str, out: Path, public: bool, overwrite: bool) -> None:
    """Write the call list (叫应表) of a warning, grouped by township."""
    from riskmap import alerts, io  # noqa: PLC0415 - keep `--help` fast

    _check_out(out, overwrite)
    settings = Settings.from_env()
    store = open_store(settings)
    record = alerts.get_warning(store, warning_id)
    doc = alerts.call_list(record, alerts.duty_contacts(store), public=public)
    if fmt == "xlsx":
        data = alerts.call_list_xlsx(doc, county_name=settings.county_name)
    else:
        data = alerts.call_list_json(doc)
    io.write_bytes_atomic(out, data)
    click.echo(f"已写出 {out} ({len(data) / 1024:.0f} KB)")


@warning.command("record")
@click.argument("warning_id")
@click.option("--uid", required=True, help="统一编号 of a point of the warning.")
@click.option("--called", is_flag=True, help="已叫应 (now).")
@click.option("--moved", type=click.IntRange(min=0), help="已转移 people.")
@click.option("--unreachable", is_flag=True, help="无法联系.")
@user_opt
def warning_record(
    warning_id: str, uid: str, called: bool, moved: int | None, unreachable: bool, user: str
) -> None:
    """Record a response (反馈) for one point of a warning."""
    from riskmap import alerts  # noqa: PLC0415

    store = open_store(Settings.from_env())
    state = alerts.record_response(
        store, warning_id, uid, user=user, called=called, moved=moved, unreachable=unreachable
    )
    what = "无法联系" if state["unreachable"] else ("已叫应" if state["called"] else "已登记")
    totals = alerts.warning_totals(alerts.get_warning(store, warning_id))
    click.echo(
        f"{uid}: {what}，已转移 {state['moved']} 人；叫应率 {totals['call_rate'] * 100:.0f}% "
        f"({totals['called']}/{totals['points']})，转移 {totals['moved']}/{totals['people']} 人"
    )


@warning.command("show")
@click.argument("warning_id")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def warning_show(warning_id: str, fmt: str) -> None:
    """Show a warning's points, people and progress (叫应率, 转移人数)."""
    from riskmap import alerts  # noqa: PLC0415

    record = alerts.get_warning(open_store(Settings.from_env()), warning_id)
    if fmt == "json":
        doc = alerts.show_json(record)
        click.echo(json.dumps(doc, ensure_ascii=False, allow_nan=False, indent=1))
        return
    totals = alerts.warning_totals(record)
    state = "已关闭" if record.get("status") == "closed" else "进行中"
    click.echo(
        f"{record['id']} {record['level']}色{record['type']}预警（{state}）"
        f" {record['valid_from']} 至 {record['valid_to']}"
    )
    table = alerts.per_township(record).rename(
        columns={
            "township_code": "代码",
            "township": "乡镇",
            "points": "点位",
            "people": "威胁人数",
            "households": "威胁户数",
            "called": "已叫应",
            "moved": "已转移",
            "unreachable": "无法联系",
        }
    )
    click.echo(table.to_string(index=False))
    click.echo(
        f"合计: 点位 {totals['points']}，威胁 {totals['people']} 人，已叫应 {totals['called']}"
        f"（叫应率 {totals['call_rate'] * 100:.0f}%），已转移 {totals['moved']} 人，"
        f"无法联系 {totals['unreachable']}"
    )


@warning.command("close")
@click.argument("warning_id")
@user_opt
def warning_close(warning_id: str, user: str) -> None:
    """Close a warning: its record is frozen."""
    from riskmap import alerts  # noqa: PLC0415

    record = alerts.close_warning(open_store(Settings.from_env()), warning_id, user=user)
    click.echo(f"预警 {record['id']} 已关闭（{record['closed_at']}），记录已冻结")


@warning.command("list")
def warning_list() -> None:
    """List warnings, newest first."""
    from riskmap import alerts  # noqa: PLC0415

    for record in alerts.list_warnings(open_store(Settings.from_env())):
        totals = alerts.warning_totals(record)
        state = "已关闭" if record.get("status") == "closed" else "进行中"
        click.echo(
            f"{record['id']}  {record['level']}色{record['type']}  {state}  "
            f"点位 {totals['points']}  叫应率 {totals['call_rate'] * 100:.0f}%"
        )


# --- db: the PostGIS store -----------------------------------------------------------------------

url_opt = click.option(
    "--url",
    default=lambda: os.environ.get("RISKMAP_DATABASE_URL", ""),
    help="postgresql://user:pass@host/db (default: RISKMAP_DATABASE_URL).",
)


def _db_url(url: str) -> str:
    if not url:
        msg = "未指定数据库：请设置 RISKMAP_DATABASE_URL 或使用 --url (no database URL)"
        raise RiskmapError(msg)
    return url


@main.group(cls=RiskmapGroup)
def db() -> None:
    """PostGIS store: create its schema, move the layers folder in and out."""


@db.command("init")
@url_opt
def db_init(url: str) -> None:
    """Create or upgrade the database schema (Alembic migrations); safe to re-run."""
    from riskmap.store.postgis import init_db  # noqa: PLC0415 - optional dependency

    revision = init_db(_db_url(url))
    click.echo(f"数据库已就绪 (schema revision {revision})")


@db.command("load-files")
@url_opt
@click.option("--from", "from_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Layers folder to load (default: the installation's layers/).")
@click.option("--user", default=_shell_user, help="Recorded in history (default: login name).")
@click.option("--replace", is_flag=True, help="Also load layers the database already has.")
def db_load_files(url: str, from_dir: Path | None, user: str, replace: bool) -> None:
    """Copy the layers folder (catalog, layers with history, records, attachments) into the db."""
    from riskmap.store.files import FileStore  # noqa: PLC0415
    from riskmap.store.postgis import PostgisStore, init_db, load_files  # noqa: PLC0415

    url = _db_url(url)
    init_db(url)
    base = Settings.from_env(database_url="")
    files = FileStore(base if from_dir is None else Settings.from_env(
        database_url="", layers_dir=from_dir))
    counts = load_files(PostgisStore(Settings.from_env(database_url=url)), files, user=user,
                        replace=replace, echo=click.echo)
    click.echo(
        f"已载入 {counts['layers']} 个图层（{counts['versions']} 个版本）、"
        f"{counts['records']} 个记录集合、{counts['attachments']} 个附件"
    )


@db.command("dump-files")
@url_opt
@click.option("--to", "to_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write (the layers/ layout).")
@overwrite_opt
def db_dump_files(url: str, to_dir: Path, overwrite: bool) -> None:
    """Write the database's current catalog, layers, records and attachments as files."""
    from riskmap.store.postgis import PostgisStore, dump_files  # noqa: PLC0415

    store = PostgisStore(Settings.from_env(database_url=_db_url(url)))
    written = dump_files(store, to_dir, overwrite=overwrite)
    click.echo(f"已写出 {len(written)} 个文件到 {to_dir}")


@main.group()
def history() -> None:
    """Change history of the layers and records (layers/.history)."""


@history.command("verify")
@click.option("--layer", "layer_id", help="Only this layer id (default: all, with records).")
def history_verify(layer_id: str | None) -> None:
    """Check the history chain: log lines, backups, SHA-256 of each, the current files.

    Exit 0 when nothing is wrong (notes may be shown), 1 when an error is found.
    """
    from riskmap import io  # noqa: PLC0415
    from riskmap.store.files import RECORDS_DIR  # noqa: PLC0415

    settings = Settings.from_env()
    if settings.database_url:
        msg = "history verify 只检查文件存储（layers/.history）；数据库存储由数据库保证一致性"
        raise RiskmapError(msg)
    catalog = io.read_catalog(settings)
    specs = [catalog.get(layer_id)] if layer_id else list(catalog.layers.values())
    targets = [(s.name, io.history_dir(s, settings), s.path(settings.layers_dir)) for s in specs]
    if not layer_id:
        root = settings.layers_dir / io.HISTORY_DIR
        for hdir in sorted(root.glob("records.*")):
            collection = hdir.name.removeprefix("records.")
            target = settings.layers_dir / RECORDS_DIR / f"{collection}.json"
            targets.append((f"记录 {collection}", hdir, target))
    errors = 0
    for label, hdir, target in targets:
        if not (hdir / "log.jsonl").exists():
            continue
        findings = io.verify_history(hdir, target, keep=settings.history_keep)
        entries, _ = io.check_log(hdir)
        if not findings:
            click.echo(f"{label}: 完好（{len(entries)} 条记录）")
        for level, message in findings:
            click.echo(f"{label}: [{level}] {message}")
            errors += level == "错误"
    if not any((hdir / "log.jsonl").exists() for _, hdir, _ in targets):
        click.echo("没有修改记录")
    if errors:
        click.echo(f"发现 {errors} 处错误")
        sys.exit(1)


# ----------------------------------------------------------------------------- on paper (PDF)


@main.command()
@click.option("--township", help="Township name or 9/12-digit code.")
@click.option(
    "--all",
    "all_townships",
    is_flag=True,
    help="Every township: a ZIP of one PDF per township plus the county map.",
)
@click.option(
    "--out",
    "out_text",
    required=True,
    help="Output .pdf (.zip with --all), or a folder (existing, or with a trailing /).",
)
@click.option("--size", type=click.Choice(["A4", "A3"], case_sensitive=False), default="A4")
@click.option("--include-cleared", is_flag=True, help="Also list cleared (已销号) points.")
@townships_opt
@overwrite_opt
def report(
    township: str | None,
    all_townships: bool,
    out_text: str,
    size: str,
    include_cleared: bool,
    townships_path: Path | None,
    overwrite: bool,
) -> None:
    """Write the printable township sheet (乡镇风险点位图表) as PDF, landscape."""
    from riskmap import exporters, io  # noqa: PLC0415 - keep `--help` fast
    from riskmap import report as paper  # noqa: PLC0415

    if bool(township) == all_townships:
        msg = "请指定 --township 名称或代码，或 --all (give --township or --all)"
        raise RiskmapError(msg)
    project = _load(townships_path)
    out, is_folder = _out_target(out_text, (".zip",) if all_townships else (".pdf",))
    kw: dict[str, Any] = {"size": size.upper(), "include_cleared": include_cleared}
    if all_townships:
        if is_folder:
            out = out / f"{project.settings.county_name}_风险点位图表_{size.upper()}.zip"
        _check_out(out, overwrite)
        data = paper.all_township_sheets_zip(project, **kw)
    else:
        code, name = project.township(str(township))
        if is_folder:
            out = out / exporters.township_file_name(code, name, "pdf")
        _check_out(out, overwrite)
        data = paper.township_sheet_pdf(project, code, **kw)
    io.write_bytes_atomic(out, data)
    click.echo(f"已写出 {out} ({len(data) / 1024:.0f} KB)")


@main.command()
@click.argument("uid")
@click.option("--layer", "layer_id", required=True, help="Layer id of the point, e.g. geohazard.")
@pdf_out_opt
@click.option("--size", type=click.Choice(["A4", "A5"], case_sensitive=False), default="A4")
@click.option("--public", is_flag=True, help="Public card (公开版): no phone numbers.")
@townships_opt
@overwrite_opt
def card(
    uid: str,
    layer_id: str,
    out_text: str,
    size: str,
    public: bool,
    townships_path: Path | None,
    overwrite: bool,
) -> None:
    """Write one risk point's card (明白卡, 一点一案一策) as a one-page PDF."""
    from riskmap import io  # noqa: PLC0415 - keep `--help` fast
    from riskmap import report as paper  # noqa: PLC0415

    project = _load(townships_path)
    data = paper.point_card_pdf(project, layer_id, uid, public=public, size=size.upper())
    out, is_folder = _out_target(out_text, (".pdf",))
    if is_folder:
        suffix = "_公开版" if public else ""
        out = out / f"{paper.card_file_name(uid)}{suffix}.pdf"
    _check_out(out, overwrite)
    io.write_bytes_atomic(out, data)
    click.echo(f"已写出 {out} ({len(data) / 1024:.0f} KB)")


@main.command()
@pdf_out_opt
@click.option("--size", type=click.Choice(["A3", "A2"], case_sensitive=False), default="A3")
@click.option("--include-cleared", is_flag=True, help="Also draw cleared (已销号) points.")
@townships_opt
@overwrite_opt
def poster(
    out_text: str,
    size: str,
    include_cleared: bool,
    townships_path: Path | None,
    overwrite: bool,
) -> None:
    """Write the county map (全县风险点位总图) as a one-page PDF poster."""
    from riskmap import io  # noqa: PLC0415 - keep `--help` fast
    from riskmap import report as paper  # noqa: PLC0415

    project = _load(townships_path)
    out, is_folder = _out_target(out_text, (".pdf",))
    if is_folder:
        out = out / f"{project.settings.county_name}_风险点位总图_{size.upper()}.pdf"
    _check_out(out, overwrite)
    data = paper.county_poster_pdf(project, size=size.upper(), include_cleared=include_cleared)
    io.write_bytes_atomic(out, data)
    click.echo(f"已写出 {out} ({len(data) / 1024:.0f} KB)")


# --- lifecycle (issue 11): status changes, 清零 progress, targets, diff ----------------------


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


if __name__ == "__main__":  # python -m riskmap.cli …, as the `riskmap` script
    main()
