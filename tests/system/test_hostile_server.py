"""A real `tautan serve` answers hostile requests, sent as raw bytes on a socket, without
falling over: no header injected, no path out of the service, every click kept fitted."""

import signal
import socket
from pathlib import Path

import httpx2
from sqlalchemy import select

from app.core.database import create_engine
from app.core.tables import Click
from tests.support.databases import run
from tests.support.server import KEY, serving

DESTINATION = "https://shop.example.com/sale"
LONG_REFERER = b"https://ref.example/" + b"p" * 10_000


def test_a_real_server_answers_hostile_requests_without_falling_over(
    database_url: str, tmp_path: Path
) -> None:
    with serving(database_url, tmp_path) as (process, base):
        port = int(base.rsplit(":", 1)[1])
        admin = {"Authorization": f"Bearer {KEY}"}
        link = {"url": DESTINATION, "slug": "h"}
        with httpx2.Client(base_url=base, timeout=30) as http:
            assert http.post("/api/links", json=link, headers=admin).status_code == 201
            assert http.get("/" + "a" * 10_000).status_code == 404
            big = {"User-Agent": "Mozilla/5.0 " + "A" * 8192, "Referer": LONG_REFERER.decode()}
            assert http.get("/h", headers=big).status_code == 302
            # 1 MB of headers: uvicorn's httptools parser sets no limit of its own, so the
            # redirect answers (a proxy in front is what caps header size).
            huge = {f"X-Pad-{i}": "z" * 8000 for i in range(128)}
            assert http.get("/h", headers=huge).status_code in (302, 400, 431)
        for request_line, expected in RAW_REQUESTS:
            status, head = _raw_answer(port, request_line + b"Host: tautan.test\r\n\r\n")
            assert status in expected, (request_line, head)
            # One header per line, and no Location but the stored destination's.
            locations = [h for h in head.lower().split(b"\r\n") if h.startswith(b"location:")]
            assert len(locations) <= 1, head
            assert all(h.startswith(b"location: " + DESTINATION.encode()) for h in locations)
        with httpx2.Client(base_url=base, timeout=30) as http:
            assert http.get("/h").status_code == 302  # still serving
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)  # drains the click queue
        process.wait(timeout=60)
    rows = run(_referrers(database_url))
    assert LONG_REFERER[:2048].decode() in rows
    assert "https://r.example/\ufffd" in rows


# Requests sent to the real server byte for byte, and what may answer them: uvicorn's HTTP
# parser refuses some itself (400), the app answers the rest.
RAW_REQUESTS = [
    (b"GET /h?a=%0d%0aLocation:%20https://evil.example HTTP/1.1\r\n", {b"302"}),
    # A bare CR or LF ends the request line early, or makes it unreadable.
    (b"GET /h?a=\r\nLocation: https://evil.example HTTP/1.1\r\n", {b"302", b"400"}),
    (b"GET /h?a=\rLocation: https://evil.example HTTP/1.1\r\n", {b"400"}),
    (
        b"GET /h HTTP/1.1\r\nUser-Agent: Mozilla/5.0 \xff\xfe\r\nReferer: https://r.example/\xff\r\n",
        {b"302"},
    ),
    (b"GET /h HTTP/1.1\r\nUser-Agent: a\x00b\r\n", {b"400"}),
    (b"GET /.. HTTP/1.1\r\n", {b"404"}),
    (b"GET /h/../h HTTP/1.1\r\n", {b"404"}),
    (b"GET //evil.example HTTP/1.1\r\n", {b"404"}),
    (b"GET /h%00 HTTP/1.1\r\n", {b"404"}),
]


async def _referrers(url: str) -> list[str | None]:
    engine = create_engine(url)
    async with engine.connect() as connection:
        rows = list(await connection.scalars(select(Click.referrer_url)))
    await engine.dispose()
    return rows


def _raw_answer(port: int, request: bytes) -> tuple[bytes, bytes]:
    """The status code and head of the answer to `request`, sent as these exact bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
    head = answer.partition(b"\r\n\r\n")[0]
    return head.split(b" ", 2)[1], head
