from datetime import UTC, datetime, timedelta
from importlib.metadata import version

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.testclient import TestClient
from typer.testing import CliRunner

from app import auth
from app.cli import app
from tests.support.app import BASE_URL, create_link, make_key, run_in_transaction
from tests.support.cli import tautan
from tests.support.clicks import raw_click, seed_clicks


def test_version_prints_the_installed_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"tautan {version('tautan')}\n"


def test_links_create_prints_a_working_short_url(client: TestClient, database_url: str) -> None:
    result = tautan(
        database_url,
        "links",
        "create",
        "https://shop.example/p",
        "--slug",
        "cli",
        "--utm-source",
        "newsletter",
        "--tag",
        "mail",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{BASE_URL}/cli"
    assert client.get("/cli").headers["location"] == "https://shop.example/p?utm_source=newsletter"
    refused = tautan(database_url, "links", "create", "javascript:alert(1)")
    assert refused.returncode == 1 and "http and https" in refused.stdout
    taken = tautan(database_url, "links", "create", "https://shop.example/", "--slug", "cli")
    assert taken.returncode == 1 and "taken" in taken.stdout


def test_links_create_takes_a_utm_template(
    client: TestClient, writer: dict, database_url: str
) -> None:
    template = {"name": "mail", "utm_source": "newsletter", "utm_medium": "email"}
    assert (
        client.post(
            "/api/utm-templates", json=template, headers=make_key(client, "owner")
        ).status_code
        == 201
    )
    result = tautan(database_url, "links", "create", "https://shop.example/t", "--slug", "tpl",
                    "--utm-template", "mail", "--utm-medium", "sms")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        client.get("/tpl").headers["location"]
        == "https://shop.example/t?utm_source=newsletter&utm_medium=sms"
    )
    unknown = tautan(
        database_url, "links", "create", "https://shop.example/", "--utm-template", "x"
    )
    assert unknown.returncode == 1 and "no UTM template 'x'" in unknown.stdout


def test_stats_prints_a_summary(client: TestClient, writer: dict, database_url: str) -> None:
    link = create_link(client, writer, slug="st")
    day = datetime(2026, 3, 10, 12, tzinfo=UTC)
    seed_clicks(
        client,
        [raw_click(link, day, ip=f"203.0.113.{i}") for i in range(3)]
        + [raw_click(link, day + timedelta(days=1), ua="Twitterbot/1.0")],
    )
    result = tautan(database_url, "stats", "st", "--from", "2026-03-09", "--to", "2026-03-12")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "clicks 3" in out and "unique visitors 3" in out and "fetches 1" in out
    assert "2026-03-10" in out and "desktop" in out and "direct" in out
    assert tautan(database_url, "stats", "nope").returncode == 1


def test_keys_list_names_each_keys_workspace(client: TestClient, database_url: str) -> None:
    async def keys(session: AsyncSession) -> None:
        for name, workspace in [("agency", "client-c"), ("ops", "[ops]"), ("site", "default")]:
            await auth.create_key(session, name=name, scopes=["admin"], workspace=workspace)

    run_in_transaction(client, keys)
    result = tautan(database_url, "keys", "list")
    assert result.returncode == 0, result.stderr
    cells = [[cell.strip() for cell in line.split("│")[2:4]] for line in result.stdout.splitlines()
             if line.count("│") > 3]  # fmt: skip
    # The workspace as it was named (not its id; `[ops]` is not swallowed as markup).
    assert cells == [["agency", "client-c"], ["ops", "[ops]"], ["site", "default"]]
