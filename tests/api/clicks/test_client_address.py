"""The client's address as the app sees it behind a dual-stack socket: a local proxy is
trusted, and ignored IPv4 networks match their clients."""

import contextlib
from ipaddress import ip_network

from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.support.app import BASE_URL, DESKTOP_UA, create_link, make_key
from tests.support.clicks import clicks_of, with_writer


def test_a_local_proxy_on_a_dual_stack_socket_is_trusted(settings: Settings) -> None:
    with mapped_peer_client(settings, "::ffff:127.0.0.1") as client:
        create_link(client, make_key(client, "links:write"), slug="p")
        client.get("/p", headers={"X-Forwarded-For": "203.0.113.50", "User-Agent": DESKTOP_UA})
        assert [click.ip for click in clicks_of(client, 1)] == ["203.0.113.0"]


def test_ignored_ipv4_networks_match_clients_of_a_dual_stack_socket(settings: Settings) -> None:
    office = settings.model_copy(update={"ignore_ips": [ip_network("198.51.100.0/24")]})
    with mapped_peer_client(office, "::ffff:198.51.100.20") as client:
        create_link(client, make_key(client, "links:write"), slug="o")
        client.get("/o", headers={"User-Agent": DESKTOP_UA})
    with mapped_peer_client(office, "::ffff:192.0.2.20") as client:
        client.get("/o", headers={"User-Agent": DESKTOP_UA})
        assert [click.ip for click in clicks_of(client, 1)] == ["192.0.2.0"]  # IPv4, its /24


def mapped_peer_client(
    settings: Settings, peer: str
) -> contextlib.AbstractContextManager[TestClient]:
    """The app served on a dual-stack socket (`tautan serve --host ::`), reached from the
    IPv4 address `peer`, with its click writer."""
    return with_writer(
        TestClient(
            create_app(settings), base_url=BASE_URL, follow_redirects=False, client=(peer, 50000)
        )
    )
