"""/docs and /redoc in a real headless Chromium against a real `tautan serve`, with every
request to another origin refused, as on a box with no Internet: Swagger UI lists every
operation by its id and runs one, ReDoc shows them, and neither breaks its CSP."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.support.browser import REPORT_CSP, chromium
from tests.support.server import serving

# The server as a deployment is reached, by a name that is not loopback's (the browser
# resolves it to 127.0.0.1): pages that treat localhost apart are seen as users see them.
DOCS_HOST = "docs.example"
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[str]:
    """A server's origin as the browser reaches it. The pages read no database: one
    SQLite file serves, whatever backends the suite runs on."""
    with serving(f"sqlite+aiosqlite:///{tmp_path / 'docs.db'}", tmp_path) as (_, base):
        yield f"http://{DOCS_HOST}:{urlsplit(base).port}"


@pytest.fixture
def browser_page(origin: str) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A page whose requests to anything but `origin` are refused and recorded, and its
    console errors, CSP violations and script errors."""
    resolve = f"--host-resolver-rules=MAP {DOCS_HOST} 127.0.0.1"
    with chromium(resolve) as browser:
        context = browser.new_context()
        outside: list[str] = []
        errors: list[str] = []

        def only_this_server(route: Any) -> None:
            url = route.request.url
            if url.startswith(f"{origin}/"):
                route.continue_()
            else:
                outside.append(url)
                route.abort()

        context.route("**/*", only_this_server)
        context.add_init_script(REPORT_CSP)
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page, outside, errors


def operations(origin: str) -> list[tuple[str, str]]:
    """(tag, operation id) of every operation of the server's schema."""
    spec = httpx2.get(f"{origin.replace(DOCS_HOST, '127.0.0.1')}/openapi.json").json()
    return [
        (operation["tags"][0], operation["operationId"])
        for path in spec["paths"].values()
        for operation in path.values()
    ]


def test_swagger_ui_lists_and_runs_the_operations_offline(
    origin: str, browser_page: tuple[Any, list[str], list[str]]
) -> None:
    page, outside, errors = browser_page
    expected = sorted(
        f"operations-{tag}-{operation_id}" for tag, operation_id in operations(origin)
    )
    page.goto(f"{origin}/docs")
    page.wait_for_selector(".opblock", timeout=15_000)
    shown = page.eval_on_selector_all(".opblock", "blocks => blocks.map(b => b.id)")
    assert sorted(shown) == expected

    # "Try it out" on GET /healthz: the call leaves from the page, to this server.
    healthz = page.locator("#operations-ops-healthz")
    healthz.locator(".opblock-summary").click()
    healthz.locator("button.try-out__btn").click()
    healthz.locator("button.execute").click()
    status = healthz.locator(".live-responses-table .response .response-col_status")
    status.wait_for(timeout=15_000)
    assert status.inner_text().strip() == "200"
    body = healthz.locator(".live-responses-table .response-col_description pre").first
    assert '"status": "ok"' in body.inner_text()

    assert outside == [] and errors == []


def test_redoc_shows_the_operations_offline(
    origin: str, browser_page: tuple[Any, list[str], list[str]]
) -> None:
    page, outside, errors = browser_page
    page.goto(f"{origin}/redoc")
    page.wait_for_selector("[data-section-id^='tag/']", timeout=15_000)
    shown = page.eval_on_selector_all(
        "[data-section-id*='/operation/']", "sections => sections.map(s => s.dataset.sectionId)"
    )
    assert sorted(shown) == sorted(
        f"tag/{tag}/operation/{operation_id}" for tag, operation_id in operations(origin)
    )
    # ReDoc's sidebar always shows Redocly's logo from their CDN: the CSP stops it before it
    # leaves (Chromium reports the violation), and ReDoc leaves the image out.
    assert outside == []
    assert [e for e in errors if REDOC_LOGO not in e] == []
