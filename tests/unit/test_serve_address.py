"""`tautan serve` checks that short links can reach the address it serves on."""

import pytest

from app.cli import short_link_problem


@pytest.mark.parametrize(
    ("base_url", "host", "port"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1", 8000),
        ("http://localhost:8011/", "127.0.0.1", 8011),
        ("http://[::1]:8000", "::1", 8000),
        ("http://127.0.0.1", "127.0.0.1", 80),
        ("https://go.example.com", "127.0.0.1", 8000),  # a proxy in front: it cannot tell
        ("https://go.example.com", "0.0.0.0", 8011),
        ("http://192.0.2.7:9000", "0.0.0.0", 8000),  # a port mapped by Docker, say
    ],
)
def test_serve_accepts_short_links_that_can_reach_it(base_url: str, host: str, port: int) -> None:
    assert short_link_problem(base_url, host, port) is None


@pytest.mark.parametrize(
    ("base_url", "host", "port", "fix"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1", 8011, "TAUTAN_BASE_URL=http://127.0.0.1:8011"),
        ("http://localhost:8000", "localhost", 8011, "TAUTAN_BASE_URL=http://localhost:8011"),
        ("https://127.0.0.1", "127.0.0.1", 8000, "TAUTAN_BASE_URL=http://127.0.0.1:8000"),
        ("http://[::1]:8000", "::1", 9000, "TAUTAN_BASE_URL=http://[::1]:9000"),
        ("http://127.0.0.1:8000", "0.0.0.0", 8000, "the origin they reach it at"),
        ("http://localhost:8000", "::", 8000, "the origin they reach it at"),
        ("http://127.0.0.1:8000", "192.0.2.7", 8011, "the origin they reach it at"),
        ("127.0.0.1:8000", "127.0.0.1", 8000, "not an http(s) URL"),
        ("ftp://go.example.com", "127.0.0.1", 8000, "not an http(s) URL"),
    ],
)
def test_serve_warns_when_short_links_cannot_reach_it(
    base_url: str, host: str, port: int, fix: str
) -> None:
    problem = short_link_problem(base_url, host, port)
    assert problem is not None and fix in problem and "TAUTAN_BASE_URL" in problem
