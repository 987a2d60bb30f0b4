"""The `tautan` command line (DESIGN §4)."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, TypeVar

import typer
import uvicorn
from pydantic import ValidationError
from rich.bar import Bar
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from app import auth, migrate
from app.config import get_settings
from app.db import create_engine, create_sessionmaker
from app.errors import AppError
from app.links import service as links
from app.links.schemas import LinkCreate
from app.stats import service as stats_service
from app.stats.periods import parse_range, parse_zone

T = TypeVar("T")
app = typer.Typer(help="Tautan: UTM and click-tracking short links.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
links_app = typer.Typer(help="Links.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(links_app, name="links")
console = Console()


def in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction on the configured database."""

    async def run() -> T:
        engine = create_engine(get_settings().database_url)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except AppError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None


@app.command("migrate")
def migrate_command() -> None:
    """Apply every migration (alembic upgrade head)."""
    migrate.upgrade(get_settings().database_url)
    console.print("database is at the latest migration")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="processes sharing the database")] = 1,
    access_log: Annotated[bool, typer.Option(help="log every request (slow)")] = False,
) -> None:
    """Migrate to the latest schema, then serve the API and the redirects."""
    settings = get_settings()
    migrate.upgrade(settings.database_url)
    token = in_transaction(lambda s: auth.ensure_admin_key(s, settings.admin_key))
    if token:
        console.print("[bold]An admin API key was created. It is shown this once:[/bold]")
        print(token, flush=True)
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


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="what the key is for")],
    scopes: Annotated[str, typer.Option(help="comma-separated: " + ", ".join(auth.SCOPES))],
    workspace: Annotated[str, typer.Option(help="created if new")] = auth.DEFAULT_WORKSPACE,
) -> None:
    """Create an API key; its token is printed alone on the last line, once."""
    try:
        scope_list = auth.parse_scopes(scopes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scopes") from None
    key, token = in_transaction(
        lambda s: auth.create_key(s, name=name, scopes=scope_list, workspace=workspace)
    )
    console.print(
        f"key {key.id} '{name}' in workspace '{workspace}', scopes: {' '.join(scope_list)}"
    )
    print(token)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never their tokens)."""
    table = Table("id", "name", "workspace", "prefix", "scopes", "last used", "revoked")
    for key in in_transaction(auth.list_keys):
        table.add_row(
            str(key.id),
            key.name,
            str(key.workspace_id),
            key.prefix + "…",
            key.scopes,
            f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "-",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "-",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="the id from `keys list`")]) -> None:
    """Revoke an API key: it stops working at once."""
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
    workspace: Annotated[str, typer.Option(help="created if new")] = auth.DEFAULT_WORKSPACE,
) -> None:
    """Create a short link; prints its short URL."""
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
        principal = auth.Principal(key_id=0, workspace_id=owner.id, scopes=frozenset())
        link = await links.create_link(session, principal, data, ctx)
        return links.to_out(link, ctx).short_url

    print(in_transaction(create))


@app.command()
def stats(
    slug: Annotated[str, typer.Argument(help="the link's slug")],
    from_: Annotated[str | None, typer.Option("--from", help="date, inclusive")] = None,
    to: Annotated[str | None, typer.Option(help="date, inclusive")] = None,
    tz: Annotated[str, typer.Option(help="IANA time zone")] = "UTC",
) -> None:
    """A terminal summary of a link's KPIs (human clicks; the last 30 days by default)."""
    try:
        zone = parse_zone(tz)
        start, end = parse_range(from_, to, zone)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    query = stats_service.StatsQuery(start=start, end=end, tz=zone, links=(slug,))
    operator = auth.Principal(key_id=0, workspace_id=0, scopes=frozenset({"admin"}))

    async def gather(session: AsyncSession) -> tuple:
        await links.get_link(session, operator, slug)  # refuses an unknown slug
        return (
            await stats_service.summary(session, operator, query),
            await stats_service.timeseries(session, operator, query, "day"),
            {
                d: await stats_service.breakdown(session, operator, query, d, 5)
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
