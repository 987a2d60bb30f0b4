"""The analytics pages (overview, campaigns, a campaign, compare, a link's) and client
reports, over the app's own HTTP: the numbers they show, filters set by following a
breakdown row's link and taken off by a chip's, presets, the previous period, the chart,
map and CSV of each, and reports that show their own links' clicks and nothing else."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import func, select, update
from starlette.testclient import TestClient

from app.config import Settings
from app.core.tables import AuditEvent, Report
from app.main import create_app
from tests.api.dashboard.test_pages import IPHONE, bearer, kpi, signed_in_as, text
from tests.support.app import BASE_URL, PEER, create_link, link_reads, run_in_transaction
from tests.support.clicks import raw_click, seed_clicks
from tests.support.geo import JAKARTA, JAKARTA_V4, MUNICH, write_mmdb

MUNICH_V4 = "81.2.0.0/16"
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
RANGE = {"from": "2026-03-01", "to": "2026-03-31"}
DAY = datetime(2026, 3, 10, 9, tzinfo=UTC)


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """A City database that places 36.64.0.0/12 in Jakarta and 81.2.0.0/16 in Munich."""
    geo = write_mmdb(tmp_path / "city.mmdb", "GeoLite2-City",
                     {JAKARTA_V4: JAKARTA, MUNICH_V4: MUNICH})  # fmt: skip
    return settings.model_copy(update={"geoip_db": str(geo)})


@pytest.fixture
def client(client: TestClient) -> TestClient:
    client.headers["Origin"] = BASE_URL
    return client


@pytest.fixture
def owner(client: TestClient) -> str:
    return signed_in_as(client, "owner@tautan.test", "owner")


@pytest.fixture
def campaigns(client: TestClient, owner: str) -> dict[str, dict]:
    """Two campaigns: `ramadan` (two links: 3 clicks from Jakarta on iPhones via Instagram,
    1 from Munich on Android), `launch` (one link: 2 desktop clicks from Munich); and a
    link of no campaign with 1 click. A bot's click counts in none."""
    made = {
        "promo": create_link(client, bearer(owner), slug="promo", utm_campaign="ramadan",
                             utm_source="instagram"),
        "menu": create_link(client, bearer(owner), slug="menu", utm_campaign="ramadan",
                            utm_source="tiktok"),
        "go": create_link(client, bearer(owner), slug="go", utm_campaign="launch",
                          utm_source="newsletter"),
        "plain": create_link(client, bearer(owner), slug="plain"),
    }  # fmt: skip
    seed_clicks(client, [
        raw_click(made["promo"], DAY, ua=IPHONE, ip="36.66.1.1", referer="https://l.instagram.com/"),
        raw_click(made["promo"], DAY, ua=IPHONE, ip="36.66.1.2", referer="https://l.instagram.com/"),
        raw_click(made["menu"], DAY + timedelta(days=1), ua=IPHONE, ip="36.66.1.3"),
        raw_click(made["menu"], DAY + timedelta(days=2), ua=ANDROID, ip="81.2.1.1"),
        raw_click(made["go"], DAY, ip="81.2.1.2"),
        raw_click(made["go"], DAY + timedelta(hours=3), ip="81.2.1.2"),
        raw_click(made["plain"], DAY, ip="198.51.100.9"),
        raw_click(made["plain"], DAY, ua="facebookexternalhit/1.1"),
    ])  # fmt: skip
    return made


def row_link(html: str, table: str, value: str) -> str:
    """The href of the `value` row of the breakdown table of `table`."""
    section = html.split(f'id="breakdown-{table}"', 1)[1].split("</table>", 1)[0]
    found = re.search(rf'<a href="([^"]+)" title="Show only {re.escape(value)}">', section)
    assert found, f"no filter link on {value} in {table}"
    return found.group(1).replace("&amp;", "&")


def rows(html: str, table: str) -> dict[str, int]:
    section = html.split(f'id="breakdown-{table}"', 1)[1].split("</table>", 1)[0]
    cells = re.findall(
        r'<td class="value">(.*?)</td>.*?<td class="num"[^>]*>([\d,]+)</td>', section, re.S
    )
    return {re.sub(r"<[^>]+>", "", value): int(clicks.replace(",", "")) for value, clicks in cells}


def test_the_overview_shows_the_workspace_and_a_row_filters_the_whole_page(
    client: TestClient, campaigns: dict
) -> None:
    page = client.get("/dashboard/overview", params=RANGE)
    assert page.status_code == 200
    assert (kpi(page.text, "clicks"), kpi(page.text, "visitors"), kpi(page.text, "links")) == (
        7,
        6,
        4,
    )
    assert kpi(page.text, "bots") == 1
    assert rows(page.text, "utm_campaign") == {"ramadan": 4, "launch": 2, "(unknown)": 1}
    # Countries by name (the filter keeps the ISO code).
    assert rows(page.text, "country") == {"Germany": 3, "Indonesia": 3, "(unknown)": 1}
    assert "country=ID" in row_link(page.text, "country", "Indonesia")
    assert rows(page.text, "city") == {"Jakarta": 3, "Munich": 3, "(unknown)": 1}
    assert rows(page.text, "device_brand")["Apple"] == 3
    # No row of what stands for no one value filters.
    assert 'title="Show only (unknown)"' not in page.text

    # A click on Jakarta: the whole page shows Jakarta's clicks, and says so in a chip.
    jakarta = client.get(row_link(page.text, "city", "Jakarta"))
    assert kpi(jakarta.text, "clicks") == 3
    assert rows(jakarta.text, "device_brand") == {"Apple": 3}
    assert rows(jakarta.text, "link") == {"promo": 2, "menu": 1}
    assert "City: Jakarta" in text(jakarta.text)
    # Then on the campaign: both filters hold, and the URL says both.
    ramadan_url = row_link(jakarta.text, "utm_campaign", "ramadan")
    query = parse_qsl(urlsplit(ramadan_url).query)
    assert ("city", "Jakarta") in query and ("utm_campaign", "ramadan") in query
    both = client.get(ramadan_url)
    assert kpi(both.text, "clicks") == 3
    # The chip of the city takes that filter off, and only it.
    chip = re.search(r'<a href="([^"]+)" aria-label="Remove the filter City: Jakarta"', both.text)
    assert chip
    ramadan = client.get(chip.group(1).replace("&amp;", "&"))
    assert kpi(ramadan.text, "clicks") == 4
    assert "Campaign: ramadan" in text(ramadan.text) and "City: Jakarta" not in text(ramadan.text)


def test_a_page_reads_each_links_numbers_once_a_period(client: TestClient, campaigns: dict) -> None:
    """The overview's KPIs and its tables by link, campaign and source all add up each link's
    clicks: the page reads them once for its period and once for the period before."""
    with link_reads(client) as sent:
        page = client.get("/dashboard/overview", params=RANGE)
    assert page.status_code == 200
    assert rows(page.text, "utm_source")["instagram"] == 2
    per_link = [s for s in sent if "GROUP BY rollup_days.link_id" in s]
    assert len(per_link) == 2, per_link


def test_the_previous_period_is_shown_beside_and_presets_choose_the_range(
    client: TestClient, owner: str
) -> None:
    link = create_link(client, bearer(owner), slug="now")
    now = datetime.now(UTC)
    seed_clicks(client, [
        raw_click(link, now - timedelta(minutes=5), ip="198.51.100.1"),
        raw_click(link, now - timedelta(days=10), ip="198.51.100.2"),
        raw_click(link, now - timedelta(days=10), ip="198.51.100.3"),
    ])  # fmt: skip
    seven = client.get("/dashboard/overview", params={"range": "7d"})
    assert kpi(seven.text, "clicks") == 1
    # The two of ten days ago: the previous 7 days, as far into them as this week has gone.
    assert "vs previous 7 days, to the same time (2)" in text(seven.text)
    assert 'aria-current="page" class="current">7 days' in seven.text
    assert kpi(client.get("/dashboard/overview", params={"range": "today"}).text, "clicks") in (
        0,
        1,
    )
    assert kpi(client.get("/dashboard/overview").text, "clicks") == 3  # 30 days unless chosen
    # A bad zone or range is said, and the default shown.
    bad = client.get("/dashboard/overview", params={"tz": "Mars/Olympus"})
    assert "unknown time zone 'Mars/Olympus'" in text(bad.text)
    assert kpi(bad.text, "clicks") == 3
    huge = {"from": "0001-01-02", "to": "9000-01-01"}
    assert client.get("/dashboard/overview", params=huge).status_code == 200
    for part in ("chart.svg", "export.csv"):
        assert client.get(f"/dashboard/overview/{part}", params=huge).status_code == 422


def test_campaigns_list_each_with_its_trend_top_source_and_device(
    client: TestClient, campaigns: dict
) -> None:
    page = client.get("/dashboard/campaigns", params=RANGE)
    table = text(page.text.split('<table class="links campaigns">', 1)[1].split("</table>", 1)[0])
    assert "ramadan 4 4" in table and "instagram mobile" in table
    assert "launch 2 1" in table and "newsletter desktop" in table
    assert table.index("ramadan") < table.index("launch")  # busiest first
    assert len(re.findall(r'<polyline points="[\d., ]+"', page.text)) == 2
    # A campaign's page: its links and sources only.
    one = client.get("/dashboard/campaign", params={"name": "ramadan", **RANGE})
    assert kpi(one.text, "clicks") == 4
    assert rows(one.text, "link") == {"promo": 2, "menu": 2}
    assert rows(one.text, "utm_source") == {"instagram": 2, "tiktok": 2}
    # A filter in the URL narrows the campaign, never leaves it.
    other = client.get(
        "/dashboard/campaign", params={"name": "ramadan", "utm_campaign": "launch", **RANGE}
    )
    assert kpi(other.text, "clicks") == 4


def test_compare_puts_two_campaigns_side_by_side(client: TestClient, campaigns: dict) -> None:
    page = text(
        client.get("/dashboard/compare", params={"a": "ramadan", "b": "launch", **RANGE}).text
    )
    assert "ramadan Clicks 4 Unique visitors 4 Links clicked 2" in page
    assert "launch Clicks 2 Unique visitors 1 Links clicked 1" in page
    for one in ({"a": "ramadan"}, {"b": "ramadan"}):  # one campaign: beside its period before
        periods = text(client.get("/dashboard/compare", params={**one, **RANGE}).text)
        assert "2026-03-01 to 2026-03-31 Clicks 4" in periods
        assert "previous 31 days Clicks 0" in periods


def test_each_page_has_its_chart_map_and_csv(client: TestClient, campaigns: dict) -> None:
    for path in ("/dashboard/overview", "/dashboard/campaign", "/dashboard/links/promo"):
        params = {"name": "ramadan", **RANGE} if path == "/dashboard/campaign" else RANGE
        svg = client.get(f"{path}/chart.svg", params=params)
        assert (
            svg.headers["content-type"] == "image/svg+xml"
            and b"Clicks, previous period" in svg.content
        )
        png = client.get(f"{path}/chart.png", params=params)
        assert png.content.startswith(b"\x89PNG")
        world = client.get(f"{path}/map.svg", params=params, headers={"Accept-Encoding": "gzip"})
        assert world.headers["content-encoding"] == "gzip"  # some 800 kB of outlines, else
        assert "script" not in world.headers["content-security-policy"].replace(
            "script-src 'none'", ""
        )
    # The map shades the countries clicked.
    world = client.get("/dashboard/overview/map.svg", params=RANGE).content
    assert re.search(rb'class="country [^"]*"|class="id ', world)
    # The CSV holds what the page shows, each table adding up to the clicks.
    export = client.get("/dashboard/overview/export.csv", params={**RANGE, "country": "ID"})
    assert export.headers["content-disposition"] == 'attachment; filename="overview.csv"'
    lines = list(csv.DictReader(io.StringIO(export.text)))
    assert lines[0]["clicks"] == "3"
    assert any(line["section"] == "filter" and line["value"] == "Country: ID" for line in lines)
    for section in ("Top links", "Devices", "Countries", "Cities"):
        assert sum(int(line["clicks"]) for line in lines if line["section"] == section) == 3, (
            section
        )
    assert sum(int(line["clicks"]) for line in lines if line["section"] == "per day") == 3
    # A bad range in a part's URL is a 422, not a default.
    assert (
        client.get("/dashboard/overview/chart.svg", params={"tz": "Mars/Olympus"}).status_code
        == 422
    )


# Client reports


def make_report(client: TestClient, **fields: str) -> str:
    page = client.post("/dashboard/reports", data={"name": "For the client", **fields})
    assert page.status_code == 200, text(page.text)
    found = re.search(r'<code class="secret" id="report-url">([^<]+)</code>', page.text)
    assert found, text(page.text)
    return urlsplit(found.group(1)).path


def audit_count(client: TestClient) -> int:
    return run_in_transaction(
        client, lambda s: s.scalar(select(func.count()).select_from(AuditEvent))
    )


def test_a_report_shows_its_campaign_to_anyone_with_its_link_and_nothing_else(
    client: TestClient, campaigns: dict
) -> None:
    path = make_report(client, campaign="ramadan")
    client.cookies.clear()  # a client, not signed in
    page = client.get(path, params=RANGE)
    assert page.status_code == 200
    assert page.headers["x-robots-tag"] == "noindex, nofollow"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert kpi(page.text, "clicks") == 4
    assert rows(page.text, "link") == {"promo": 2, "menu": 2}
    assert "Overview" not in text(page.text) and "Sign out" not in page.text  # no workspace nav
    # Filters narrow it; none widens it.
    assert kpi(client.get(path, params={**RANGE, "city": "Jakarta"}).text, "clicks") == 3
    assert kpi(client.get(path, params={**RANGE, "utm_campaign": "launch"}).text, "clicks") == 4
    assert kpi(client.get(path, params={**RANGE, "link": "go"}).text, "clicks") == 0
    export = client.get(f"{path}/export.csv", params=RANGE).text
    assert "go" not in {line["value"] for line in csv.DictReader(io.StringIO(export))}


def test_a_report_of_links_shows_those_links_and_a_link_filter_cannot_leave_them(
    client: TestClient, campaigns: dict
) -> None:
    path = make_report(client, links="promo, go")
    client.cookies.clear()
    page = client.get(path, params=RANGE)
    assert kpi(page.text, "clicks") == 4
    assert rows(page.text, "link") == {"promo": 2, "go": 2}
    # Another link of the workspace named in the URL: the report as it is, and why.
    outside = client.get(path, params={**RANGE, "link": "plain"})
    assert kpi(outside.text, "clicks") == 4
    assert "names no link of this page. Showing it without filters." in text(outside.text)
    assert client.get(f"{path}/export.csv", params={**RANGE, "link": "plain"}).status_code == 422
    assert kpi(client.get(path, params={**RANGE, "link": "go"}).text, "clicks") == 2


def test_revoked_expired_and_unknown_reports_show_nothing(
    client: TestClient, campaigns: dict
) -> None:
    revoked, expired = make_report(client, campaign="ramadan"), make_report(client, links="go")
    listing = client.get("/dashboard/reports").text
    first = re.findall(r'action="(/dashboard/reports/\d+/revoke)"', listing)
    assert len(first) == 2
    before = audit_count(client)
    client.post(first[1])  # the older one: the campaign's
    assert audit_count(client) == before + 1
    run_in_transaction(client, lambda s: s.execute(
        update(Report).where(Report.utm_campaign.is_(None))
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))))  # fmt: skip
    client.cookies.clear()
    for path in (revoked, expired):
        for part in ("", "/chart.svg", "/map.svg", "/export.csv"):
            response = client.get(path + part, params=RANGE)
            assert response.status_code == 410, (path, part)
            assert response.headers["x-robots-tag"] == "noindex, nofollow"
            assert "4" not in text(response.text).replace("410", "")
    assert client.get("/reports/" + "x" * 43).status_code == 404


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"campaign": "ramadan", "name": ""}, "give the report a name"),
        ({"campaign": "ramadan", "links": "promo"}, "choose a campaign or a list of links"),
        ({}, "choose a campaign or a list of links"),
        ({"campaign": "nope"}, "no link of this workspace has utm_campaign 'nope'"),
        ({"links": "promo, ghost"}, "link 'ghost' not found"),
        ({"campaign": "ramadan", "expires_in_days": "soon"}, "a whole number of days"),
        ({"campaign": "ramadan", "expires_in_days": "0"}, "expiry: 1 to 3650 days"),
    ],
)
def test_a_bad_report_is_refused_and_nothing_is_written(
    client: TestClient, campaigns: dict, fields: dict, message: str
) -> None:
    before = audit_count(client)
    response = client.post("/dashboard/reports", data={"name": "Client", **fields})
    assert response.status_code in (404, 422)
    assert message in text(response.text)
    assert (
        run_in_transaction(client, lambda s: s.scalar(select(func.count()).select_from(Report)))
        == 0
    )
    assert audit_count(client) == before


def test_pages_show_the_viewers_time_zone_from_its_cookie(
    client: TestClient, campaigns: dict
) -> None:
    """dashboard.js keeps the browser's zone in `tautan_tz`; a URL's own `tz` wins, and a
    zone that is none is ignored."""
    client.cookies.set("tautan_tz", "Asia/Jakarta", domain="tautan.test", path="/")
    page = client.get("/dashboard/overview", params=RANGE).text
    assert "<option selected>Asia/Jakarta</option>" in page
    assert "tz=Asia%2FJakarta" in page  # the chart, the map and every row's link keep it
    assert (
        "<option selected>UTC</option>"
        in client.get("/dashboard/overview", params={**RANGE, "tz": "UTC"}).text
    )
    client.cookies.set("tautan_tz", "Mars/Olympus", domain="tautan.test", path="/")
    page = client.get("/dashboard/overview", params=RANGE).text
    assert "<option selected>UTC</option>" in page and "Mars" not in page


def test_a_phone_gets_a_chart_drawn_for_it_and_a_map_needs_a_known_country(
    client: TestClient, owner: str
) -> None:
    link = create_link(client, bearer(owner), slug="nowhere")
    seed_clicks(client, [raw_click(link, DAY, ip="198.51.100.9")])  # a place no database knows
    page = client.get("/dashboard/overview", params=RANGE).text
    assert 'media="(max-width: 720px)"' in page and "size=phone" in page
    phone = client.get("/dashboard/overview/chart.svg", params={**RANGE, "size": "phone"}).text
    wide = client.get("/dashboard/overview/chart.svg", params=RANGE).text
    assert 'viewBox="0 0 420 340"' in phone and 'viewBox="0 0 960 320"' in wide
    assert "/map.svg" not in page and "No click in this period has a known country." in page


def test_a_report_never_shows_the_operators_instructions(
    client: TestClient, campaigns: dict, settings: Settings
) -> None:
    path = make_report(client, campaign="ramadan")
    Path(settings.geoip_db or "").unlink()  # the geo database is gone: places say how to get one
    signed_in = client.get("/dashboard/campaign", params={"name": "ramadan", **RANGE}).text
    client.cookies.clear()
    report = client.get(path, params=RANGE).text
    for instruction in ("tautan geo update", "TAUTAN_GEOIP_DB"):
        assert instruction in signed_in
        assert instruction not in report


def test_reading_reports_is_limited_per_client_address(
    client: TestClient, campaigns: dict, settings: Settings
) -> None:
    path = make_report(client, campaign="ramadan")
    limited = settings.model_copy(update={"report_rate_limit": "3/minute"})
    with TestClient(create_app(limited), base_url=BASE_URL, client=PEER) as reader:
        for part in ("", "/chart.svg", "/map.svg"):
            assert reader.get(path + part, params=RANGE).status_code == 200
        refused = reader.get(f"{path}/export.csv", params=RANGE)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "over 3 per 1 minute report reads for this client address" in text(refused.text)
        assert "ramadan" not in refused.text
