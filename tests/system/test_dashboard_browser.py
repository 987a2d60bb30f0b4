"""The dashboard in a real headless Chromium, driven by Playwright: the UTM preview script
agrees with the server's merge, and a marketer's whole path, and an owner's with the
people they invite, work against a real `tautan serve` without a single CSP violation or
script error. People are made as an operator makes the first owner (`tautan users
create`, which prints a one-time link) and set their passwords in the browser."""

import os
import random
import subprocess
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import httpx2
import pytest

from app.core.tables import UTM_FIELDS
from app.core.urls import merge_utm
from tests.support.browser import REPORT_CSP, SHOP_HOST, chromium
from tests.support.server import TAUTAN

# The browser drives the pages; the database work under them is tested on both backends
# in tests/api.
pytestmark = pytest.mark.usefixtures("sqlite_only")


ROOT = Path(__file__).resolve().parents[2]
UTM_JS = ROOT / "app" / "dashboard" / "static" / "utm.js"
# Headless Chromium says "HeadlessChrome", which Tautan rightly counts as a bot: the
# marketer's browser here says what a person's Chrome says.
PERSON_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
VISITORS = [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 337.0.3.23.54 (iPhone15,3; iOS 17_5; en_US)", "https://l.instagram.com/"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", "https://t.co/abc"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", ""),
    ("WhatsApp/2.23.20.0 A", ""),
]  # fmt: skip


PASSWORD = "a browser's passphrase"
OWNER, EDITOR, VIEWER = "owner@shop.test", "editor@shop.test", "viewer@shop.test"


def users_create(database_url: str, base: str, email: str, role: str) -> str:
    """`tautan users create EMAIL --role ROLE` on the server's database, as its operator
    runs it (a process of its own: the browser holds this thread's event loop); the
    one-time link it prints on its last line."""
    env = {**os.environ, "TAUTAN_DATABASE_URL": database_url, "TAUTAN_BASE_URL": base}
    done = subprocess.run([TAUTAN, "users", "create", email, "--role", role],
                          env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    link = done.stdout.strip().splitlines()[-1]
    assert link.startswith(f"{base}/dashboard/set-password/"), done.stdout
    return link


def set_password(page: Any, link: str) -> None:
    """Open a one-time link and set PASSWORD through it: signed in, on the links page."""
    page.goto(link)
    fields = page.locator("input[type=password]").all()
    assert len(fields) == 2
    for field in fields:
        field.fill(PASSWORD)
    with page.expect_navigation():
        page.click("button:text('Set password and sign in')")
    assert page.url.endswith("/dashboard/overview"), page.inner_text("main")


def watched(context: Any, errors: list[str], refused: Collection[tuple[str, int]] = ()) -> Any:
    """A new page of `context` whose console errors, CSP violations and script errors go
    to `errors`. Chromium logs every 4xx document as an error: the (url, status) pairs in
    `refused` are answers the test expects."""
    context.add_init_script(REPORT_CSP)
    page = context.new_page()

    def expected(message: Any) -> bool:
        url = message.location.get("url")
        return any(url == u and f"status of {status}" in message.text for u, status in refused)

    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not expected(m) else None)  # fmt: skip
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


def saved_destination(url: str, utm: dict[str, str]) -> str:
    """The destination the server saves: its merge, fields in the model's order."""
    return merge_utm(url, {name: utm.get(name) for name in UTM_FIELDS})


UTM_CASES: list[tuple[str, dict[str, str]]] = [
    ("https://shop.example/", {"utm_source": "ig"}),
    ("https://shop.example", {"utm_campaign": "spring sale", "utm_source": "ig"}),
    ("https://shop.example/p?a=1&utm_source=old&b=2#frag", {"utm_source": "new", "utm_term": "t"}),
    ("https://shop.example/p?utm_source=1&utm_source=2&x", {"utm_source": "one"}),
    ("https://shop.example/p?utm%5Fsource=enc&utm_medium+=sp", {"utm_source": "s", "utm_medium": "m"}),
    ("https://shop.example/p?utm_source", {"utm_source": "bare key"}),
    ("https://shop.example/p?a=%zz&&b=%E2%82%AC&c=%ff", {"utm_content": "x"}),
    ("https://shop.example/p?", {"utm_medium": "email"}),
    ("https://shop.example/p#a?utm_source=inside-fragment", {"utm_source": "s"}),
    ("https://shop.example/p?q=1", {"utm_source": "", "utm_medium": ""}),
    ("https://shop.example/p", {"utm_campaign": "it's (50%) off! *now* ~ a+b=c&d #1 €"}),
    ("https://shop.example/p", {"utm_term": "日本語 ÿ emoji 🎉"}),
]  # fmt: skip
PIECES = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm%5Fterm",
          "utm_source+", "a", "b", "=", "&", "+", "%", "%41", "%E2%82%AC", "#", "?", "x y",
          "é", "🎉", "'", "(", "*", "~", "utm_Source"]  # fmt: skip


def random_cases(count: int) -> list[tuple[str, dict[str, str]]]:
    rng = random.Random(6)
    cases = []
    for _ in range(count):
        query = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 8)))
        url = "https://shop.example/p" + ("?" if rng.random() < 0.8 else "") + query
        utm = {
            name: "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 3)))
            for name in rng.sample(PIECES[:5], rng.randint(0, 5))
        }
        cases.append((url, utm))
    return cases


def test_utm_preview_script_merges_as_the_server_does(browser: Any) -> None:
    page = browser.new_page()
    page.goto("about:blank")
    page.add_script_tag(path=str(UTM_JS))
    cases = UTM_CASES + random_cases(400)
    merged = page.evaluate("(cases) => cases.map(([url, utm]) => mergeUtm(url, utm))", cases)
    for (url, utm), preview in zip(cases, merged, strict=True):
        assert preview == saved_destination(url, utm), (url, utm)
    page.close()


def wait_for_clicks(page: Any, url: str, clicks: str) -> None:
    """Reload the link page until its Clicks card says `clicks` (the writer flushes every
    200 ms; 15 s is far more than it needs)."""
    deadline = time.monotonic() + 15
    while True:
        page.goto(url)
        shown = page.text_content("#kpi-clicks")
        if shown == clicks:
            return
        assert time.monotonic() < deadline, f"Clicks still shows {shown}, not {clicks}"
        time.sleep(0.2)


def test_marketer_signs_in_creates_a_link_and_sees_its_click(
    tautan_server: str, database_url: str, landing: str, browser: Any
) -> None:
    base = tautan_server
    context = browser.new_context(user_agent=PERSON_UA, viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page = watched(context, errors)

    page.goto(f"{base}/dashboard")
    assert page.url == f"{base}/dashboard/sign-in"
    set_password(page, users_create(database_url, base, EDITOR, "editor"))
    with page.expect_navigation():
        page.click("button:text('Sign out')")
    assert page.url == f"{base}/dashboard/sign-in"
    page.fill("#email", EDITOR)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button:text('Sign in')")
    assert page.url == f"{base}/dashboard/overview"

    page.click("text=New link >> nth=-1")
    target = f"{landing}/spring?ref=post"
    page.fill("#url", target)
    page.fill("#slug", "spring")
    page.fill("#title", "Spring sale")
    page.fill("#tags", "launch, email")
    utm = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring sale"}
    preview = "#destination-preview"
    assert page.text_content(preview) == target  # as the URL was typed, before any UTM
    for name, value in utm.items():
        page.fill(f"#{name}", value)
    assert page.text_content(preview) == saved_destination(target, utm)
    with page.expect_navigation():
        page.click("button:text('Create link')")
    assert page.url == f"{base}/dashboard/links/spring", page.inner_text("main")
    destination = saved_destination(target, utm)
    assert page.text_content(".url") == f"→ {destination}"  # the server's own destination

    page.goto(f"{base}/spring")
    assert page.url == destination
    assert page.text_content("h1") == "Landing page"

    link_page = f"{base}/dashboard/links/spring"
    wait_for_clicks(page, link_page, "1")
    assert page.text_content("#kpi-visitors") == "1"

    with httpx2.Client(base_url=base) as visitor:
        for ua, referer in VISITORS:
            response = visitor.get("/spring", headers={"User-Agent": ua, "Referer": referer})
            assert response.status_code == 302
    wait_for_clicks(page, link_page, "4")
    assert page.text_content("#kpi-bots") == "1"
    assert "Shared on WhatsApp: 1 preview fetch" in page.text_content(".shared")
    for image in ("img.chart", "img.qr"):
        assert page.eval_on_selector(image, "img => img.complete && img.naturalWidth > 0"), image

    (ROOT / "artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "artifacts" / "dashboard.png"), full_page=True)
    page.goto(f"{base}/dashboard/links")
    assert "spring" in page.text_content("table.links")
    assert errors == []
    context.close()


BRAND = "go.tokoku.test"


def test_marketer_adds_a_domain_and_a_link_on_it_that_redirects_by_host(
    tautan_server: str, database_url: str, landing: str
) -> None:
    base = tautan_server
    port = base.rsplit(":", 1)[1]
    # The browser reaches the shop and the branded domain on this machine.
    rules = f"--host-resolver-rules=MAP {SHOP_HOST} 127.0.0.1, MAP {BRAND} 127.0.0.1"
    with chromium(rules) as browser:
        context = browser.new_context(user_agent=PERSON_UA)
        errors: list[str] = []
        page = watched(context, errors)
        set_password(page, users_create(database_url, base, OWNER, "owner"))

        page.click("nav >> text=Domains")
        page.fill("#host", BRAND.upper())
        page.fill("#root_url", f"{landing}/home")
        with page.expect_navigation():
            page.click("button:text('Add domain')")
        assert BRAND in page.text_content("table.links")

        page.goto(f"{base}/dashboard/new")
        page.select_option("#domain", BRAND)
        page.fill("#url", f"{landing}/on-brand")
        page.fill("#slug", "promo")
        with page.expect_navigation():
            page.click("button:text('Create link')")
        assert page.url == f"{base}/dashboard/links/promo?domain={BRAND}", page.inner_text("main")
        assert page.text_content(".short").strip() == f"http://{BRAND}/promo"

        # The same slug on the base host is another link.
        page.goto(f"{base}/dashboard/new")
        page.fill("#url", f"{landing}/on-base")
        page.fill("#slug", "promo")
        with page.expect_navigation():
            page.click("button:text('Create link')")
        assert page.url == f"{base}/dashboard/links/promo"

        page.goto(f"http://{BRAND}:{port}/promo")  # Host: the domain (its port ignored)
        assert page.url == f"{landing}/on-brand"
        page.goto(f"{base}/promo")
        assert page.url == f"{landing}/on-base"
        page.goto(f"http://{BRAND}:{port}/")
        assert page.url == f"{landing}/home"

        wait_for_clicks(page, f"{base}/dashboard/links/promo?domain={BRAND}", "1")
        for image in ("img.chart", "img.qr"):
            assert page.eval_on_selector(image, "img => img.complete && img.naturalWidth > 0")
        page.goto(f"{base}/dashboard/links")
        assert BRAND in page.text_content("table.links")
        assert errors == []
        context.close()


def test_marketer_makes_a_password_link_with_a_rule_and_a_visitor_gets_through(
    tautan_server: str, database_url: str, landing: str, browser: Any
) -> None:
    """The Targeting and Password fields of the form, then the password page as a visitor
    sees it: it holds no destination, refuses a wrong password, and lets the right one
    through to the rule's URL; the link page counts that click against the rule."""
    base = tautan_server
    errors: list[str] = []
    marketer = browser.new_context(user_agent=PERSON_UA, viewport={"width": 1280, "height": 900})
    page = watched(marketer, errors)
    set_password(page, users_create(database_url, base, EDITOR, "editor"))
    page.goto(f"{base}/dashboard/new")
    page.fill("#url", f"{landing}/everyone")
    page.fill("#slug", "vip")
    page.fill("#rule-0-name", "desktops")
    page.check("input[name='rule-0-device'][value='desktop']")
    page.fill("#rule-0-url", f"{landing}/desktop")
    page.fill("#password", "open sesame")
    with page.expect_navigation():
        page.click("button:text('Create link')")
    link_page = f"{base}/dashboard/links/vip"
    assert page.url == link_page, page.inner_text("main")
    assert "password" in page.text_content(".short")

    visitor = browser.new_context(user_agent=PERSON_UA)
    door = watched(visitor, errors, refused=[(f"{base}/vip", 401)])  # the password page
    response = door.goto(f"{base}/vip")
    assert response is not None and response.status == 401
    assert door.text_content("h1") == "This link is protected"
    assert SHOP_HOST not in door.content()  # neither the link's URL nor the rule's
    door.fill("#password", "guess")
    with door.expect_navigation():
        door.click("button:text('Continue')")
    assert "Wrong password" in door.text_content("[role=alert]")
    assert SHOP_HOST not in door.content()
    door.fill("#password", "open sesame")
    with door.expect_navigation():
        door.click("button:text('Continue')")
    assert door.url == f"{landing}/desktop"  # the rule's URL: a desktop browser
    assert door.text_content("h1") == "Landing page"

    wait_for_clicks(page, link_page, "1")
    route = page.locator("section.routes tr", has_text="desktops")
    assert route.locator("td.num").all_text_contents() == ["—", "1", "1", "100%"]
    (ROOT / "artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "artifacts" / "dashboard-routes.png"), full_page=True)
    assert errors == []
    visitor.close()
    marketer.close()


def test_owner_invites_an_editor_and_a_viewer_who_each_work_within_their_role(
    tautan_server: str, database_url: str, landing: str, browser: Any
) -> None:
    """The Members page's invite links, set in browsers of their own; the editor makes a
    link, the viewer only sees it, and the audit log names who made it."""
    base = tautan_server
    errors: list[str] = []
    owner = watched(browser.new_context(user_agent=PERSON_UA), errors)
    set_password(owner, users_create(database_url, base, OWNER, "owner"))
    invites = {}
    for email, role in [(EDITOR, "editor"), (VIEWER, "viewer")]:
        owner.click("nav >> text=Members")
        owner.fill("#email", email)
        owner.select_option("#role", role)
        with owner.expect_navigation():
            owner.click("button:text-is('Add')")
        assert email in owner.text_content("[role=status]")
        invites[email] = owner.text_content("#one-time-link").strip()
        row = owner.locator("table.members tr", has_text=email)
        assert row.locator("select[name=role]").input_value() == role
        assert "invited" in row.inner_text()
    owner.goto(f"{base}/dashboard/members")  # shown once: not on the page again
    assert owner.locator("#one-time-link").count() == 0

    editor = watched(browser.new_context(user_agent=PERSON_UA), errors)
    set_password(editor, invites[EDITOR])
    editor.click("nav >> text=New link")
    editor.fill("#url", f"{landing}/team")
    editor.fill("#slug", "team")
    with editor.expect_navigation():
        editor.click("button:text('Create link')")
    assert editor.url == f"{base}/dashboard/links/team", editor.inner_text("main")

    viewer = watched(
        browser.new_context(user_agent=PERSON_UA), errors, refused=[(f"{base}/dashboard/new", 403)]
    )
    set_password(viewer, invites[VIEWER])
    viewer.goto(f"{base}/dashboard/links")
    assert "team" in viewer.text_content("table.links")
    assert viewer.locator("nav >> text=New link").count() == 0
    assert viewer.locator("nav >> text=Members").count() == 0
    response = viewer.goto(f"{base}/dashboard/new")
    assert response is not None and response.status == 403
    assert "403" in viewer.text_content("h1")

    owner.click("nav >> text=Audit log")
    entry = owner.locator("table.audit tr", has_text="link.create")
    assert entry.count() == 1
    assert [entry.locator("td").nth(i).inner_text() for i in (1, 3)] == [EDITOR, "team"]
    owner.select_option("#action", "member")
    with owner.expect_navigation():
        owner.click("button:text('Filter')")
    assert owner.locator("table.audit tr", has_text="link.create").count() == 0
    added = owner.locator("table.audit tr", has_text="member.add").all()  # newest first
    assert [row.locator("td").nth(3).inner_text() for row in added] == [VIEWER, EDITOR, OWNER]

    stranger = watched(
        browser.new_context(user_agent=PERSON_UA), errors, refused=[(invites[EDITOR], 410)]
    )
    response = stranger.goto(invites[EDITOR])  # the editor's link, used already
    assert response is not None and response.status == 410
    assert stranger.text_content("h1") == "This link no longer works"
    assert stranger.locator("input[type=password]").count() == 0
    (ROOT / "artifacts").mkdir(exist_ok=True)
    owner.click("nav >> text=Members")
    owner.screenshot(path=str(ROOT / "artifacts" / "dashboard-members.png"), full_page=True)
    assert errors == []
