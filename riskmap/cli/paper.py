"""Paper output: ``riskmap report | card | poster`` (PDF)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from riskmap.cli import (  # the group, shared options and helpers
    _check_out,
    _load,
    _out_target,
    main,
    overwrite_opt,
    pdf_out_opt,
    townships_opt,
)
from riskmap.errors import RiskmapError


def _write_file(out: Path, data: bytes) -> None:
    """Write a finished PDF/ZIP atomically (`riskmap.io.write_bytes_atomic`) and say where."""
    from riskmap import io  # noqa: PLC0415 - keep `--help` fast

    io.write_bytes_atomic(out, data)
    click.echo(f"已写出 {out} ({len(data) / 1024:.0f} KB)")


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
    from riskmap import exporters  # noqa: PLC0415 - keep `--help` fast
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
    _write_file(out, data)


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
    from riskmap import report as paper  # noqa: PLC0415 - keep `--help` fast

    project = _load(townships_path)
    data = paper.point_card_pdf(project, layer_id, uid, public=public, size=size.upper())
    out, is_folder = _out_target(out_text, (".pdf",))
    if is_folder:
        suffix = "_公开版" if public else ""
        out = out / f"{paper.card_file_name(uid)}{suffix}.pdf"
    _check_out(out, overwrite)
    _write_file(out, data)


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
    from riskmap import report as paper  # noqa: PLC0415 - keep `--help` fast

    project = _load(townships_path)
    out, is_folder = _out_target(out_text, (".pdf",))
    if is_folder:
        out = out / f"{project.settings.county_name}_风险点位总图_{size.upper()}.pdf"
    _check_out(out, overwrite)
    data = paper.county_poster_pdf(project, size=size.upper(), include_cleared=include_cleared)
    _write_file(out, data)


# --- lifecycle (issue 11): status changes, 清零 progress, targets, diff ----------------------
