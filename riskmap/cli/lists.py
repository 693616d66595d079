"""Lists and maps: ``riskmap map | summary | export | validate``."""

from __future__ import annotations

import json
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
from riskmap.cli import (  # the group, shared options and helpers
    _check_out,
    _load,
    _mark_overdue,
    _out_target,
    _settings,
    main,
    overwrite_opt,
    townships_opt,
)


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
