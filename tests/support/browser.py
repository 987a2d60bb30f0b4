"""Debian's headless Chromium, driven by Playwright, for the system tests: a test that
asks for one is skipped where the machine has none."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium dials out at start, and this
# machine's closed network refuses it.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
# Where a short link leads in the browser tests; the browser resolves it to 127.0.0.1
# (links may not lead to a loopback name, which could be Tautan itself).
SHOP_HOST = "shop.example"
# Reported as a console error, so that a test's check sees it whatever Chromium logs.
REPORT_CSP = """
document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
"""


@contextmanager
def chromium(*args: str) -> Iterator[Any]:
    """A headless Chromium started with CHROMIUM_ARGS and `args`. Playwright's sync API
    holds an event loop running in this thread while it is open, so a test asks for it
    after its database fixtures."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *args])
        try:
            yield browser
        finally:
            browser.close()
