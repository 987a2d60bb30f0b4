"""The analytics pages in a real headless Chromium, on a desktop and on a phone, against a
real `tautan serve` holding real clicks: the overview lands in the viewer's time zone,
shows its chart and map, and narrows to a breakdown row and back; the campaigns, one
campaign and a comparison show each campaign's clicks; an owner's client report opens in
a browser with no session and stops working once revoked. No page has a script error, a
CSP violation, an image without a text alternative or, on the phone, a page wider than
the screen. Every other page of the dashboard is looked over the same way, on both. Screenshots of
each page go to artifacts/dashboard-{viewport}-{page}.png."""

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.support.geo import JAKARTA, JAKARTA_V4, MUNICH, write_mmdb
from tests.support.server import KEY, UAS, serving
from tests.system.test_dashboard_browser import (
    OWNER,
    PERSON_UA,
    ROOT,
    VISITORS,
    set_password,
    users_create,
    watched,
)

# The browser drives the pages; the database work under them is tested on both backends
# in tests/api.
pytestmark = pytest.mark.usefixtures("sqlite_only")


ZONE = "Asia/Jakarta"  # the viewer's zone: not the pages' default (UTC)
IN_ZONE = re.compile(r"[?&]tz=Asia%2FJakarta(&|$)")
# What a person's Android phone says (not "HeadlessChrome", which Tautan counts as a bot).
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Mobile Safari/537.36"
)
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}, "user_agent": PERSON_UA},
    "mobile": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3,
               "is_mobile": True, "has_touch": True, "user_agent": PHONE_UA},
}  # fmt: skip
# The clicks made: "ramadan" gets VISITORS (three people on phones and WhatsApp's preview
# fetch), "launch" a desktop and a phone.
LAUNCH_VISITORS = [UAS[2], UAS[1]]
RAMADAN_CLICKS, LAUNCH_CLICKS = 3, 2
HUMAN_CLICKS, BOT_CLICKS, MOBILE_CLICKS = 5, 1, 4
REPORT = "Ramadan for Kopi Senja"
AXE = Axe()  # axe-core, the accessibility checker, run in the page


@pytest.fixture
def tautan_server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A server whose geo database places 36.64.0.0/12 in Jakarta and 81.2.0.0/16 in Munich."""
    geo = write_mmdb(tmp_path / "city.mmdb", "GeoLite2-City",
                     {JAKARTA_V4: JAKARTA, "81.2.0.0/16": MUNICH})  # fmt: skip
    with serving(database_url, tmp_path, env={"TAUTAN_GEOIP_DB": str(geo)}) as (_, base):
        yield base


def make_links_and_clicks(base: str, landing: str) -> None:
    """Two links through the API, one per campaign, and their clicks over HTTP; back once
    the writer has stored them all."""
    with httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}) as api:
        for slug, utm in [("ramadan", {"utm_campaign": "ramadan", "utm_source": "instagram"}),
                          ("launch", {"utm_campaign": "launch"})]:  # fmt: skip
            made = api.post("/api/links", json={"url": f"{landing}/{slug}", "slug": slug, **utm})
            assert made.status_code == 201, made.text
        with httpx2.Client(base_url=base) as visitor:
            # Ramadan's visitors in Jakarta, launch's in Munich (through the proxy on
            # loopback that the server trusts).
            clicks = [
                ("/ramadan", ua, referer, f"36.66.1.{n}")
                for n, (ua, referer) in enumerate(VISITORS)
            ]
            clicks += [("/launch", ua, "", f"81.2.1.{n}") for n, ua in enumerate(LAUNCH_VISITORS)]
            for path, ua, referer, address in clicks:
                headers = {"User-Agent": ua, "Referer": referer, "X-Forwarded-For": address}
                answer = visitor.get(path, headers=headers)
                assert answer.status_code == 302, answer.text
        deadline = time.monotonic() + 15  # the writer flushes every 200 ms
        while True:
            summary = api.get("/api/stats/summary").json()
            if (summary["clicks"], summary["bot_clicks"]) == (HUMAN_CLICKS, BOT_CLICKS):
                return
            assert time.monotonic() < deadline, f"stored so far: {summary}"
            time.sleep(0.1)


def owner_with_clicks(
    browser: Any, device: dict, base: str, database_url: str, landing: str, errors: list[str]
) -> Any:
    """The owner's page, signed in, once the links and their clicks are made. They are made
    while the owner sets a password (the browser holds this thread), in a browser whose zone
    is the pages' own, so that no reload races set_password's check of where it lands."""
    with ThreadPoolExecutor(1) as pool:
        made = pool.submit(make_links_and_clicks, base, landing)
        page = watched(browser.new_context(timezone_id="UTC", **device), errors)
        set_password(page, users_create(database_url, base, OWNER, "owner"))
        made.result()
    return page


def in_viewers_zone(page: Any, url: str, *, first: bool = False) -> None:
    """Open `url` (no `tz` in it): the page shows the browser's zone. The first page a
    browser opens asks for itself again in it; later ones are drawn in it at once, from
    the cookie dashboard.js keeps."""
    assert "tz=" not in url
    page.goto(url)
    if first:
        page.wait_for_url(IN_ZONE)  # and its load: images included
    assert page.input_value("select[data-viewer-zone]") == ZONE


def kpi(page: Any) -> str:
    return page.text_content("#kpi-clicks")


def looked_over(page: Any, errors: list[str], viewport: str, name: str | None) -> None:
    """What every page must be: no error so far, every image loaded and described, no
    serious or critical finding of axe-core (contrast, names, labels, structure), no
    sideways scrolling on the phone; its screenshot saved as `name`."""
    assert errors == [], (page.url, errors)
    images = page.eval_on_selector_all(
        "img", "imgs => imgs.map(i => [i.src, i.complete && i.naturalWidth > 0, i.alt.trim()])"
    )
    for src, loaded, alt in images:
        assert loaded and alt, (page.url, src, loaded, alt)
    if viewport == "mobile":
        wide = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert wide[0] <= wide[1] + 1, (page.url, "scrollWidth, innerWidth", wide)
    found = AXE.run(page).response["violations"]
    grave = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes'][:3]]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]
    assert grave == [], (page.url, grave)
    if name:
        shot = ROOT / "artifacts" / f"dashboard-{viewport}-{name}.png"
        page.screenshot(path=str(shot), full_page=True, scale="css")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_owner_reads_the_analytics_pages_and_shares_a_report(
    viewport: str, tautan_server: str, database_url: str, landing: str, browser: Any
) -> None:
    base = tautan_server
    (ROOT / "artifacts").mkdir(exist_ok=True)
    device = VIEWPORTS[viewport]
    errors: list[str] = []

    # The owner's browser in the viewer's zone takes the session of the one that signed in.
    setup = owner_with_clicks(browser, device, base, database_url, landing, errors).context
    context = browser.new_context(timezone_id=ZONE, storage_state=setup.storage_state(), **device)
    setup.close()
    page = watched(context, errors)

    # The overview, in the viewer's zone, with every click of the workspace.
    in_viewers_zone(page, f"{base}/dashboard/overview", first=True)
    assert page.url.startswith(f"{base}/dashboard/overview?")
    assert page.input_value("select[data-viewer-zone]") == ZONE
    assert kpi(page) == str(HUMAN_CLICKS)
    assert page.text_content("#kpi-bots") == str(BOT_CLICKS)
    assert page.text_content("#kpi-links") == "2"
    for image in ("img.chart:not(.map)", "img.map"):
        assert page.eval_on_selector(image, "i => i.complete && i.naturalWidth > 0"), image
    countries = page.locator("#breakdown-country td.value").all_inner_texts()
    assert countries == ["Indonesia", "Germany"], countries
    looked_over(page, errors, viewport, "overview")

    # A row of the Devices table narrows the page to it; its chip's × widens it again.
    mobile = page.locator("#breakdown-device_type tr", has=page.locator("a:text-is('mobile')"))
    shown = mobile.locator("td.num").inner_text()
    assert shown == str(MOBILE_CLICKS)
    with page.expect_navigation():
        mobile.locator("a").click()
    assert "device=mobile" in page.url and IN_ZONE.search(page.url), page.url
    chips = [" ".join(chip.split()) for chip in page.locator(".chip").all_text_contents()]
    assert chips == ["Device: mobile ×"]
    assert kpi(page) == shown
    looked_over(page, errors, viewport, None)
    with page.expect_navigation():
        page.click("a[aria-label='Remove the filter Device: mobile']")
    assert "device=" not in page.url and IN_ZONE.search(page.url), page.url
    assert page.locator(".chip").count() == 0
    assert kpi(page) == str(HUMAN_CLICKS)

    # The campaigns, each with its trend; one campaign's page.
    with page.expect_navigation():
        page.click("header nav >> text=Campaigns")
    assert page.url == f"{base}/dashboard/campaigns"
    assert page.input_value("select[data-viewer-zone]") == ZONE  # no second load needed
    for name, clicks in [("ramadan", RAMADAN_CLICKS), ("launch", LAUNCH_CLICKS)]:
        row = page.locator("table.campaigns tbody tr", has=page.locator(f"a:text-is('{name}')"))
        assert row.locator("td.num").first.inner_text() == str(clicks), name
        assert row.locator("svg.spark polyline").get_attribute("points"), name
    looked_over(page, errors, viewport, "campaigns")
    with page.expect_navigation():
        page.click("table.campaigns a:text-is('ramadan')")
    assert page.url.startswith(f"{base}/dashboard/campaign?name=ramadan&")
    assert IN_ZONE.search(page.url), page.url
    assert kpi(page) == str(RAMADAN_CLICKS)
    looked_over(page, errors, viewport, "campaign")

    # The two campaigns side by side.
    in_viewers_zone(page, f"{base}/dashboard/compare?a=ramadan&b=launch")
    sides = page.locator("section.side")
    assert sides.locator("h2").all_inner_texts() == ["ramadan", "launch"]
    clicks = [side.locator("dd").first.inner_text() for side in sides.all()]
    assert clicks == [str(RAMADAN_CLICKS), str(LAUNCH_CLICKS)]
    looked_over(page, errors, viewport, "compare")

    # A report of one campaign, its link shown once.
    page.click("header nav >> text=Reports")
    page.wait_for_url(f"{base}/dashboard/reports")
    page.fill("#report-name", REPORT)
    page.select_option("#report-campaign", "ramadan")
    with page.expect_navigation():
        page.click("button:text('Create report')")
    report_url = page.text_content("#report-url").strip()
    assert report_url.startswith(f"{base}/reports/"), page.inner_text("main")
    looked_over(page, errors, viewport, "reports")

    # Opened in a browser with no session: that campaign's clicks, nothing of the workspace.
    client = browser.new_context(timezone_id=ZONE, **device)
    public = watched(client, errors, refused=[(report_url, 410)])
    in_viewers_zone(public, report_url, first=True)
    assert public.text_content("h1") == REPORT
    assert kpi(public) == str(RAMADAN_CLICKS)
    assert public.get_by_text("Sign out").count() == 0
    assert public.locator("header nav").count() == 0
    looked_over(public, errors, viewport, "report")

    # Revoked: the link stops working at once.
    row = page.locator("table.owned tr", has_text=REPORT)
    with page.expect_navigation():
        row.locator("button:text('Revoke')").click()
    assert page.url == f"{base}/dashboard/reports"
    assert row.locator("td").nth(4).inner_text() == "revoked"
    assert row.locator("button").count() == 0
    looked_over(page, errors, viewport, None)
    answer = public.goto(report_url)
    assert answer is not None and answer.status == 410, public.inner_text("main")
    assert REPORT not in public.content()
    looked_over(public, errors, viewport, None)
    client.close()
    context.close()


OTHER_PAGES = [
    ("links", "/dashboard/links"), ("new-link", "/dashboard/new"),
    ("link", "/dashboard/links/ramadan"), ("edit-link", "/dashboard/links/ramadan/edit"),
    ("domains", "/dashboard/domains"), ("members", "/dashboard/members"),
    ("keys", "/dashboard/keys"), ("audit", "/dashboard/audit"),
]  # fmt: skip
SIGNED_OUT_PAGES = [
    ("sign-in", "/dashboard/sign-in"),
    ("forgot-password", "/dashboard/forgot-password"),
]


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_every_other_page_reads_well_on_a_desktop_and_a_phone(
    viewport: str, tautan_server: str, database_url: str, landing: str, browser: Any
) -> None:
    base = tautan_server
    (ROOT / "artifacts").mkdir(exist_ok=True)
    device = VIEWPORTS[viewport]
    errors: list[str] = []
    signed_out = watched(browser.new_context(**device), errors)
    for name, path in SIGNED_OUT_PAGES:
        signed_out.goto(base + path)
        looked_over(signed_out, errors, viewport, name)
    page = owner_with_clicks(browser, device, base, database_url, landing, errors)
    for name, path in OTHER_PAGES:
        answer = page.goto(base + path)
        assert answer is not None and answer.status == 200, (path, answer and answer.status)
        looked_over(page, errors, viewport, name)
