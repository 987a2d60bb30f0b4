"""The redirect under hostile input: odd paths and oversized or malformed headers get a
redirect or a 404, never a server error, and every click they leave is kept, its text
valid and cut to its column (PostgreSQL refuses an overlong value, and the writer would
then drop the click)."""

import json

import pytest
from sqlalchemy import String
from starlette.testclient import TestClient
from starlette.types import Message

from app.clicks.enrich.known_bots import MAX_UA_LENGTH, preview_fetcher
from app.clicks.raw import RawClick
from app.core.tables import Click
from app.main import MAX_HEADER_BYTES
from app.redirect import routes as redirect_routes
from app.redirect.routes import MAX_FORWARDING_LENGTH
from tests.support.app import BASE_URL, DESKTOP_UA, PEER, create_link, link_reads
from tests.support.clicks import click_writer, clicks_of

DESTINATION = "https://shop.example.com/sale"

HOSTILE_PATHS = [
    "/%00",
    "/h%00",
    "/%00h",
    "/%2e%2e",
    "/%2E%2E/%2E%2E/etc/passwd",
    "/h/%2e%2e",
    "/h/",
    "/H",  # slugs are case-sensitive
    "/ü",
    "/h%C3%BC",
    "/%FF%FE",
    "/h%20",
    "/h%0d%0a",
    "/" + "a" * 64,  # a well-formed slug that does not exist
    "/" + "a" * 65,
    "/" + "a" * 10_000,
]

# One header per request, sent as these exact bytes (invalid UTF-8, NUL and all).
LONG_REFERER = b"https://ref.example/" + b"p" * 10_000
HOSTILE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"user-agent", b"Mozilla/5.0 " + b"A" * 8192),
    (b"user-agent", b"facebookexternalhit/1.1 " + b"x" * 8000),
    (b"user-agent", b"Mozilla/5.0 (Linux; Android 14; " + b"M" * 500 + b" Build/UP1A) Chrome/126"),
    (b"user-agent", b"Mozilla/5.0 \xff\xfe (iPhone; CPU iPhone OS 17_5 like Mac OS X)"),
    (b"user-agent", b"Mozilla/5.0\x00 (Windows NT 10.0)"),
    (b"user-agent", b""),
    (b"x-forwarded-for", b"1.2.3.4, garbage, ::1"),
    (b"x-forwarded-for", b""),
    (b"x-forwarded-for", b", ".join(b"198.51.100.%d" % i for i in range(100))),
    (b"x-forwarded-for", b"203.0.113.9:99999, [::1, " + b"9" * 5000),
    (b"x-real-ip", b"not-an-address"),
    (b"forwarded", b"for="),
    (b"forwarded", b'for="[::1"'),
    (b"forwarded", b"for=unknown;proto=x"),
    (b"forwarded", b"for=" + b";" * 4000),
    (b"accept-language", b"*;q=abc"),
    (b"accept-language", b"a" * 4096),
    (b"accept-language", b"en-" * 1400),
    (b"accept-language", b"\xe4\xf6-DE,\xff;q=0.9"),
    (b"accept-language", b"e\x00n"),
    (b"referer", b"https://ref.example/\xff\xfe"),
    (b"referer", LONG_REFERER),
    (b"referer", b"https://" + b"a" * 300 + b".example/"),
    (b"referer", b"https://" + b".".join([b"b" * 60] * 40) + b".example/"),
    (b"referer", b"android-app://" + b"c" * 3000),
    (b"referer", b"http://[::1"),
    (b"referer", b"https://ref.example/\x00\x01\x7f"),
    (b"referer", b"javascript:alert(1)"),
]

TEXT_COLUMNS = {
    c.name: c.type.length for c in Click.__table__.columns if isinstance(c.type, String)
}


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_odd_paths_are_unknown_links(client: TestClient, writer: dict, path: str) -> None:
    create_link(client, writer, slug="h", url=DESTINATION)
    response = client.get(BASE_URL + path)
    assert response.status_code == 404
    assert client.head(BASE_URL + path).status_code == 404


# Paths of one segment that no slug can be (outside [A-Za-z0-9_-]{1,64}), as sent.
NOT_SLUGS = [
    "/%F0%9F%98%80",  # an emoji
    "/%C3%BC",
    "/a.b",
    "/%00",
    "/h%20",
    "/%FF%FE",
    "/" + "a" * 65,
    "/" + "a" * 10_000,
]


@pytest.mark.parametrize("path", NOT_SLUGS)
def test_a_path_no_slug_can_match_gets_the_unknown_slug_page(client: TestClient, path: str) -> None:
    """Answered as an unknown slug is, headers and body alike, without a database read; the
    API keeps its own JSON 404s."""
    for method in ("GET", "HEAD"):
        unknown = client.request(method, "/no-such-slug")
        with link_reads(client) as reads:
            answer = client.request(method, BASE_URL + path)
        assert reads == []
        assert answer.status_code == unknown.status_code == 404
        assert answer.headers == unknown.headers
        assert answer.content == unknown.content
    assert unknown.headers["content-type"] == "text/html; charset=utf-8"
    assert unknown.headers["cache-control"] == "private, no-cache"
    api = client.get(BASE_URL + "/api" + path)
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/json"


def get_with_raw_headers(
    client: TestClient, path: str, header: tuple[bytes, bytes]
) -> tuple[int, dict[bytes, bytes]]:
    """GET `path` with `header` as exactly these bytes (the test client would re-encode
    bytes that are not UTF-8)."""
    status, headers, _ = send_raw(client, "GET", path, [(b"host", b"tautan.test"), header])
    return status, headers


def test_hostile_headers_redirect_and_every_click_is_kept_fitted(
    client: TestClient, writer: dict
) -> None:
    create_link(client, writer, slug="h", url=DESTINATION)
    for header in HOSTILE_HEADERS:
        status, headers = get_with_raw_headers(client, "/h", header)
        assert (status, headers[b"location"]) == (302, DESTINATION.encode()), header[:80]

    rows = clicks_of(client, len(HOSTILE_HEADERS))
    assert len(rows) == len(HOSTILE_HEADERS)  # none refused by the database
    assert click_writer(client).stats.clicks_rejected == 0
    for row in rows:
        for column, length in TEXT_COLUMNS.items():
            value = getattr(row, column)
            if value is not None:
                assert len(value) <= length, (column, value[:80])
                assert "\x00" not in value, column

    def row(name: bytes, value: bytes) -> Click:
        return rows[HOSTILE_HEADERS.index((name, value))]

    assert row(b"referer", LONG_REFERER).referrer_url == LONG_REFERER[:2048].decode()
    assert row(b"referer", LONG_REFERER).referrer_domain == "ref.example"
    assert row(b"referer", b"https://ref.example/\xff\xfe").referrer_url == (
        "https://ref.example/\ufffd\ufffd"  # what is not UTF-8 is shown as replaced
    )
    assert row(b"referer", b"https://ref.example/\x00\x01\x7f").referrer_url == (
        "https://ref.example/\x01\x7f"
    )
    assert row(b"user-agent", b"facebookexternalhit/1.1 " + b"x" * 8000).bot_name == (
        "facebookexternalhit"
    )
    assert (
        row(b"user-agent", b"Mozilla/5.0 \xff\xfe (iPhone; CPU iPhone OS 17_5 like Mac OS X)").os
        == "iOS"
    )
    for language in (b"*;q=abc", b"a" * 4096, b"\xe4\xf6-DE,\xff;q=0.9", b"e\x00n"):
        assert row(b"accept-language", language).language is None
    assert row(b"accept-language", b"en-" * 1400).language == "en"
    # Unbelievable forwarding headers: the last address that could be checked is the client.
    assert row(b"x-forwarded-for", b"1.2.3.4, garbage, ::1").ip == "::"  # ::1, anonymised
    assert row(b"x-forwarded-for", b"").ip == "127.0.0.0"  # the peer, anonymised
    assert row(b"forwarded", b"for=unknown;proto=x").ip == "127.0.0.0"


def send_raw(
    client: TestClient, method: str, path: str, headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[bytes, bytes], bytes]:
    """`method path` with exactly these headers, handed to the app as a server hands a
    request over; the status, headers and body of the answer."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": PEER, "server": ("tautan.test", 80),
    }  # fmt: skip
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    assert client.portal is not None
    client.portal.call(client.app, scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], dict(sent[0]["headers"]), body


def test_headers_over_the_limit_are_refused_before_anything_reads_them(
    client: TestClient, writer: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_link(client, writer, slug="h", url=DESTINATION)
    recorded: list[RawClick] = []
    monkeypatch.setattr(client.app.redirect, "record", recorded.append)  # type: ignore[attr-defined]
    host = (b"host", b"tautan.test")
    pad = MAX_HEADER_BYTES - len(b"hosttautan.test") - len(b"x-pad")
    at_limit = [host, (b"x-pad", b"p" * pad)]
    assert send_raw(client, "GET", "/h", at_limit)[0] == 302
    assert len(recorded) == 1

    over = [host, (b"x-pad", b"p" * (pad + 1))]
    # Names count as well as values: many small headers add up.
    many = [host, *((b"x-%05d" % i, b"v" * 9) for i in range(MAX_HEADER_BYTES // 16 + 1))]
    huge = [host, (b"user-agent", DESKTOP_UA.encode() + b"A" * 2_000_000)]
    for headers in (over, many, huge):
        for method, path in [
            ("GET", "/h"), ("HEAD", "/h"), ("GET", "/no-such-slug"), ("GET", "/api/links"),
            ("POST", "/api/links"), ("GET", "/dashboard"), ("GET", "/healthz"),
        ]:  # fmt: skip
            with link_reads(client) as reads:
                status, answer, body = send_raw(client, method, path, headers)
            assert status == 431, (method, path)
            assert reads == []
            assert answer[b"connection"] == b"close"
            assert answer[b"content-type"] == b"application/json"
            assert int(answer[b"content-length"]) == len(body) < 200
            assert json.loads(body)["error"]["code"] == "headers_too_large"
    assert len(recorded) == 1  # none of them is a click


def _hops(value: str) -> list[str]:
    return [hop.strip() for hop in value.split(",")]


def test_a_click_keeps_no_header_longer_than_its_cut(
    client: TestClient, writer: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut at intake, so that no click log line or memo key holds more; the
    forwarding headers keep their last whole hops, those the nearest proxies appended; the
    log keeps the address as the store may (anonymised here) and a digest of the whole."""
    create_link(client, writer, slug="h", url=DESTINATION)
    redirect = client.app.redirect  # type: ignore[attr-defined]
    recorded: list[RawClick] = []
    resolved: list[tuple[str, ...]] = []

    def record(click: RawClick) -> None:
        recorded.append(click)
        writer_record(click)

    def client_of(*headers: str) -> tuple[str, str] | None:
        resolved.append(headers)
        return intake_client(*headers)

    writer_record, intake_client = redirect.record, redirect.intake.client
    monkeypatch.setattr(redirect, "record", record)
    monkeypatch.setattr(redirect.intake, "client", client_of)
    agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) " + "U" * 5000
    referer = "https://ref.example/" + "r" * 5000
    language = "en-US,en;q=0.9," + "x" * 3000
    real_ip = "198.51.100.1, " * 100 + "198.51.100.2"
    forwarded = "for=192.0.2.1;proto=https, " * 100 + "for=192.0.2.60"
    headers = [
        (b"host", b"tautan.test"),
        (b"user-agent", agent.encode()),
        (b"referer", referer.encode()),
        (b"accept-language", language.encode()),
        # Two lines: what the client sent, then the hop the proxy (the peer) appended.
        (b"x-forwarded-for", b"10.9.8.7, " * 300 + b"10.9.8.7"),
        (b"x-forwarded-for", b"203.0.113.77"),
        (b"x-real-ip", real_ip.encode()),
        (b"forwarded", forwarded.encode()),
    ]
    assert send_raw(client, "GET", "/h", headers)[0] == 302
    [click] = recorded
    assert click.user_agent == agent[:MAX_UA_LENGTH]
    assert click.referer == referer[:2048]
    assert click.accept_language == language[:256]
    assert click.ip == "203.0.113.0" and len(click.visitor_key) == 32
    [(_, forwarded_for, x_real_ip, forwarded_header)] = resolved
    for value, last, whole in [
        (forwarded_for, "203.0.113.77", {"10.9.8.7", "203.0.113.77"}),
        (x_real_ip, "198.51.100.2", {"198.51.100.1", "198.51.100.2"}),
        (forwarded_header, "for=192.0.2.60", {"for=192.0.2.1;proto=https", "for=192.0.2.60"}),
    ]:
        assert MAX_FORWARDING_LENGTH - 30 < len(value) <= MAX_FORWARDING_LENGTH, value
        assert _hops(value)[-1] == last
        assert set(_hops(value)) == whole  # no hop cut in two
    [row] = clicks_of(client, 1)
    assert row.ip == "203.0.113.0"  # the client the proxy saw, anonymised
    assert row.language == "en"
    assert row.referrer_url == referer[:2048]
    assert row.os == "iOS"

    short = [(b"host", b"tautan.test"), (b"user-agent", DESKTOP_UA.encode()),
             (b"x-forwarded-for", b"203.0.113.5, 10.0.0.1"), (b"forwarded", b"for=192.0.2.9")]  # fmt: skip
    assert send_raw(client, "GET", "/h", short)[0] == 302
    assert resolved[1][1:] == ("203.0.113.5, 10.0.0.1", "", "for=192.0.2.9")
    assert (recorded[1].user_agent, recorded[1].ip) == (DESKTOP_UA, "10.0.0.0")


def test_a_preview_fetchers_user_agent_is_cut_before_it_is_memoised(
    client: TestClient, writer: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_link(client, writer, slug="og", url=DESTINATION, og_title="Sale")
    asked: list[str] = []

    def spy(ua: str) -> str | None:
        asked.append(ua)
        return preview_fetcher(ua)

    monkeypatch.setattr(redirect_routes, "preview_fetcher", spy)
    agent = b"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
    long_agent = (b"user-agent", agent + b" " + b"x" * 8000)
    status, _, body = send_raw(client, "GET", "/og", [(b"host", b"tautan.test"), long_agent])
    assert status == 200 and b"Sale" in body  # still known for what it is
    assert [len(ua) for ua in asked] == [MAX_UA_LENGTH]
