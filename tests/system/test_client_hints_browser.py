"""A reduced-User-Agent Android Chrome, in a real headless Chromium, follows a short link
of a real `tautan serve`: Critical-CH makes it repeat the request with its model hint at
once, and the one click stored names the phone."""

import time
from typing import Any

import httpx2

from tests.support.server import KEY

REDUCED_UA = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
# What a Galaxy A54's Chrome tells a site that asks (Sec-CH-UA-Model and friends).
A54 = {
    "brands": [
        {"brand": "Chromium", "version": "131"},
        {"brand": "Google Chrome", "version": "131"},
    ],
    "fullVersion": "131.0.6778.135",
    "platform": "Android",
    "platformVersion": "14.0.0",
    "architecture": "",
    "model": "SM-A546E",
    "mobile": True,
}


def test_a_reduced_user_agent_click_is_named_by_its_model_hint(
    landing: str,  # noqa: F811
    tautan_server: str,  # noqa: F811
    browser: Any,  # noqa: F811 (after the database: it holds an event loop)
) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    created = httpx2.post(
        f"{tautan_server}/api/links", json={"url": f"{landing}/sale", "slug": "a54"}, headers=auth
    )
    assert created.status_code == 201, created.text
    context = browser.new_context(viewport={"width": 412, "height": 915}, is_mobile=True)
    page = context.new_page()
    page.context.new_cdp_session(page).send(
        "Network.setUserAgentOverride", {"userAgent": REDUCED_UA, "userAgentMetadata": A54}
    )
    page.goto(f"{tautan_server}/a54")
    assert page.url.startswith(f"{landing}/sale")
    context.close()

    deadline = time.monotonic() + 20
    while True:
        rows = httpx2.get(
            f"{tautan_server}/api/stats/breakdown/device_model",
            params={"link": "a54"},
            headers=auth,
        ).json()["rows"]
        if rows or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    # Two requests reached the server (Chromium repeated the first with its hints); one
    # click was stored, and it names the phone the hint named.
    assert [(r["value"], r["clicks"]) for r in rows] == [("Galaxy A54 5G", 1)]
    brand = httpx2.get(
        f"{tautan_server}/api/stats/breakdown/device_brand", params={"link": "a54"}, headers=auth
    ).json()["rows"]
    assert [r["value"] for r in brand] == ["Samsung"]
    metrics = httpx2.get(f"{tautan_server}/metrics").text
    assert "tautan_hint_restarts_total 1.0" in metrics
