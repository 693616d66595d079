"""Running the office: ``riskmap editor … | serve | db … | history …``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from riskmap.cli import (  # the group, shared options and helpers
    RiskmapGroup,
    _shell_user,
    main,
    overwrite_opt,
)
from riskmap.errors import RiskmapError
from riskmap.settings import Settings


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
