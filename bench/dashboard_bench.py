"""Dashboard benchmark: seeds realistic clicks (stats_bench's, through the app's own
ClickWriter) into a fresh SQLite database, then times the analytics pages a person waits
for, through the app's HTTP (in this process): a client report of a campaign (the work of
a campaign's page: KPIs beside the period before, ten breakdowns), its chart, map and CSV,
and the campaigns list's numbers (a trend, a top source and a top device per campaign).
Each is compared with the cheapest read of the same scope measured in the same run, the
stats API's summary (these machines are shared: ratios hold, seconds do not).

    .venv/bin/python -m bench.dashboard_bench --clicks 200000 --links 200
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.testclient import TestClient

from app import auth, migrate
from app.config import Settings
from app.core.database import create_engine, create_sessionmaker
from app.core.principal import OWNER, Principal
from app.core.tables import Workspace
from app.dashboard import analytics, stats_pages
from app.main import create_app
from app.reports import service as reports
from app.stats import service
from bench.stats_bench import CAMPAIGNS, make_links, seed

console = Console()
CAMPAIGN = f"{CAMPAIGNS[0]}-2026"


async def prepare(url: str, tmp: Path, args: argparse.Namespace) -> tuple[int, str, str]:
    """The workspace with its links and clicks, a report of its first campaign, and a key
    that reads its stats."""
    engine = create_engine(url)
    workspace, link_ids, _ = await make_links(engine, args.links)
    rate = await seed(engine, url, tmp, args, workspace, link_ids, datetime.now(UTC))
    console.print(f"seeded {args.clicks:,} clicks ({rate:,.0f}/s)")
    owner = Principal(workspace, frozenset({OWNER}), actor="bench")
    async with create_sessionmaker(engine)() as session, session.begin():
        _, token = await reports.create_report(session, owner, "bench", campaign=CAMPAIGN)
        name = (await session.get(Workspace, workspace)).name  # type: ignore[union-attr]
        _, key = await auth.create_key(session, name="bench", scopes=["stats:read"], workspace=name)
    await engine.dispose()
    return workspace, token, key


def timed(runs: int, call: Callable[[], Any]) -> float:
    """The median seconds of `runs` calls, after one to warm up."""
    call()
    spent = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent)


def campaign_rows(client: TestClient, engine: AsyncEngine, workspace: int) -> None:
    """The campaigns page's numbers, as its route computes them."""

    async def rows() -> None:
        async with create_sessionmaker(engine)() as session:
            view = analytics.view_of("/dashboard/campaigns", {"range": "30d"}, "bench.test")
            principal = Principal(workspace, frozenset({"stats:read"}))
            await stats_pages.campaign_rows(service.reads_for(session, None), principal, view)

    assert client.portal is not None
    client.portal.call(rows)


def main(args: argparse.Namespace, tmp: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp / 'dashboard.db'}"
    migrate.upgrade(url)
    workspace, token, key = asyncio.run(prepare(url, tmp, args))
    settings = Settings(database_url=url, base_url="http://bench.test",
                        spool_dir=str(tmp / "spool"), writers=0)  # fmt: skip
    report = f"/reports/{token}"
    with TestClient(create_app(settings), base_url="http://bench.test") as client:
        api = {"Authorization": f"Bearer {key}"}

        def get(path: str, **params: str) -> Callable[[], Any]:
            def call() -> None:
                answer = client.get(path, params={"range": "30d", **params},
                                    headers=api if path.startswith("/api") else {})  # fmt: skip
                assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])

            return call

        # The API's default period is the last 30 days too.
        baseline = timed(args.runs, get("/api/stats/summary", utm_campaign=CAMPAIGN))
        engine = create_engine(url)
        rows = [
            ("report page (a campaign's KPIs, 10 tables)", get(report)),
            ("report page, filtered by a device type", get(report, device="mobile")),
            ("report chart.svg (and the period before)", get(f"{report}/chart.svg")),
            ("report map.svg", get(f"{report}/map.svg")),
            ("report export.csv", get(f"{report}/export.csv")),
            ("campaigns list numbers (a read a campaign, 2 for all)", lambda: campaign_rows(client, engine, workspace)),
        ]  # fmt: skip
        table = Table(
            title=f"Dashboard pages at {args.clicks:,} clicks, {args.links} links (SQLite)"
        )
        for column in ("what", "median ms", "÷ API summary"):
            table.add_column(column, justify="left" if column == "what" else "right")
        table.add_row("API summary of the campaign (baseline)", f"{baseline * 1000:.1f}", "1.0")
        for name, call in rows:
            spent = timed(args.runs, call)
            table.add_row(name, f"{spent * 1000:.1f}", f"{spent / baseline:.1f}")
        console.print(table)
        assert client.portal is not None
        client.portal.call(engine.dispose)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=200_000)
    parser.add_argument("--links", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (median)")
    parser.add_argument("--batch", type=int, default=5000, help="clicks per ClickWriter.write")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the click stream")
    parser.add_argument("--new-ua-share", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tautan-dashboard-bench-") as tmp:
        main(args, Path(tmp))


if __name__ == "__main__":
    cli()
