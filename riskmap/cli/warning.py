"""Warnings (预警—叫应—转移—反馈).

``riskmap warning new | calls | record | show | close | list``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from riskmap.cli import (  # the group, shared options and helpers
    RiskmapGroup,
    _check_out,
    main,
    overwrite_opt,
    user_opt,
)
from riskmap.errors import RiskmapError
from riskmap.settings import Settings
from riskmap.store import open_store


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
