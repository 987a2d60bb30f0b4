"""Client hints through the app: the redirect asks for them as configured, and a click
carries them to its row."""

import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.support.app import BASE_URL, PEER, create_link, make_key
from tests.support.clicks import REDUCED_ANDROID, clicks_of, with_writer


def test_a_click_carries_its_hints_to_the_row(client: TestClient, writer: dict[str, str]) -> None:
    create_link(client, writer, slug="hint")
    headers = {
        "User-Agent": REDUCED_ANDROID,
        "Sec-CH-UA": '"Chromium";v="131"',
        "Sec-CH-UA-Model": '"SM-A546E"',
        "Sec-CH-UA-Platform": '"Android"',
        "Sec-CH-UA-Platform-Version": '"14.0.0"',
        "Sec-CH-UA-Mobile": "?1",
    }
    assert client.get("/hint", headers=headers).status_code == 302
    [click] = clicks_of(client, 1)
    assert (click.device_brand, click.device_model, click.os_version) == (
        "Samsung",
        "Galaxy A54 5G",
        "14.0.0",
    )


@pytest.mark.parametrize("mode", ["off", "ask", "critical"])
def test_the_redirect_asks_for_client_hints_as_configured(
    settings: Settings, writer: dict[str, str], mode: str
) -> None:
    settings.client_hints = mode  # type: ignore[assignment]
    with with_writer(
        TestClient(create_app(settings), base_url=BASE_URL, follow_redirects=False, client=PEER)
    ) as client:
        key = make_key(client, "links:read", "links:write")
        create_link(client, key, slug="ch")
        chromium = {"User-Agent": REDUCED_ANDROID, "Sec-CH-UA": '"Chromium";v="131"'}
        first = client.get("/ch", headers=chromium)
        again = client.get("/ch", headers={**chromium, "Sec-CH-UA-Model": '""'})
        safari = client.get("/ch", headers={"User-Agent": "Mozilla/5.0 (iPhone) Safari/604.1"})
        assert {r.status_code for r in (first, again, safari)} == {302}
        accept = first.headers.get("accept-ch", "")
        critical = first.headers.get("critical-ch")
        if mode == "off":
            assert (accept, critical) == ("", None)
        else:
            assert "Sec-CH-UA-Model" in accept and "Sec-CH-UA-Platform-Version" in accept
            assert critical == ("Sec-CH-UA-Model" if mode == "critical" else None)
        # With Critical-CH, Chromium repeats the first request with its hints at once: the
        # repeat is the click, so a visit counts once. Browsers without hints always count.
        expected = 2 if mode == "critical" else 3
        assert len(clicks_of(client, expected)) == expected
        metrics = client.get("/metrics").text
        assert f"tautan_hint_restarts_total {3 - expected}.0" in metrics
