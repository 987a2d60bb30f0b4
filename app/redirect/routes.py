"""The redirect: a pure ASGI handler for `GET|HEAD /{slug}`, kept off FastAPI's stack
because it is the one path where every microsecond counts (docs/design.md). It reads the link
cache, appends the raw click to the click log and answers; it never waits on a database write,
except for a person's click on a link with a max_clicks, which takes its slot first."""

import asyncio
import base64
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from urllib.parse import parse_qs, quote_from_bytes

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from app.clicks.enrich.known_bots import MAX_UA_LENGTH, preview_fetcher
from app.clicks.intake import ClientIntake
from app.clicks.raw import HINT_HEADERS, MAX_HINT_LENGTH, RawClick
from app.core.passwords import password_matches
from app.core.slugs import RESERVED_SLUGS
from app.metrics import Metrics
from app.redirect.cache import LinkCache, Target, link_key
from app.redirect.sites import Sites
from app.redirect.targeting import Destination, Places, Targeting, Visitor, sticky_key

log = logging.getLogger(__name__)
SLUG_PATH = re.compile(r"/([^/]+)")  # a path of one segment: a slug, unless the API's own
NO_CACHE = (b"cache-control", b"private, no-cache")
# A permanent redirect may be reused by the browser, but briefly (as Shlink does): cached
# for good, a visitor's next clicks would never be counted, nor a changed link followed.
PERMANENT_MAX_AGE = (b"cache-control", b"private, max-age=30")
# Parameters that steer tracking; they are never forwarded to the destination.
TRACKING_PARAMS = (b"qr", b"tautan_no_track")
QUERY_SAFE = "!$&'()*+,-./:;=?@_~%"
PAGES = {
    404: b"<!doctype html><title>Not found</title><h1>404</h1><p>This short link does not exist.</p>",
    410: b"<!doctype html><title>Gone</title><h1>410</h1><p>This short link is no longer active.</p>",
    503: b"<!doctype html><title>Unavailable</title><h1>503</h1><p>Please try again in a moment.</p>",
    405: b"<!doctype html><title>Method not allowed</title><h1>405</h1><p>Open the short link instead.</p>",
}
# A protected link's form: nothing of the link in it (the browser posts to the page's own
# address), no script, and a style allowed by its hash alone.
PASSWORD_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:24rem;margin:15vh auto;padding:0 1rem}"
    "input,button{font:inherit;padding:.5rem;margin:.25rem 0;width:100%;box-sizing:border-box}"
    ".error{color:#b00020}"
)
PASSWORD_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    '<meta name="robots" content="noindex"><title>Password required</title>'
    f"<style>{PASSWORD_STYLE}</style></head><body><main><h1>This link is protected</h1>"
    "<p>Enter its password to continue.</p>{message}"
    '<form method="post"><label for="password">Password</label>'
    '<input id="password" name="password" type="password" autocomplete="current-password" '
    'maxlength="128" required autofocus><button type="submit">Continue</button></form>'
    "</main></body></html>"
)
_style_hash = base64.b64encode(hashlib.sha256(PASSWORD_STYLE.encode()).digest()).decode()
PASSWORD_PAGE_HEADERS = (
    (b"content-security-policy",
     f"default-src 'none'; style-src 'sha256-{_style_hash}'; base-uri 'none'; "
     "frame-ancestors 'none'".encode()),
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
)  # fmt: skip
MAX_FORM_BYTES = 4096  # a password form's body: the field is at most 128 characters
PASSWORD_CHECKS = 2  # argon2 checks at once: each takes ~100 ms of a core and 64 MiB
RETRY_AFTER = (b"retry-after", b"5")
HINTS = tuple(name.encode() for name in HINT_HEADERS)
WANTED_HEADERS = frozenset(
    {
        b"user-agent",
        b"referer",
        b"accept-language",
        b"x-forwarded-for",
        b"x-real-ip",
        b"forwarded",
        b"sec-ch-ua",  # sent by every Chromium browser: it knows client hints
        *HINTS,
    }
)
# Every header a click keeps is cut here, at intake, so that no click log line or memo key
# holds more (the headers' total is capped by the dispatcher, MAX_HEADER_BYTES).
# The User-Agent: MAX_UA_LENGTH (512), past which the writer reads nothing of it anyway.
MAX_REFERER_LENGTH = 2048  # the referrer_url column's length (enrich/referrer.py's too)
MAX_LANGUAGE_LENGTH = 256  # only its first tag is read; a browser sends 20-100 characters
# X-Forwarded-For, X-Real-IP, Forwarded: room for 30 IPv4 hops, or a dozen IPv6 ones.
# Cut from the start: the hops that count are the last, appended by the proxies nearest us.
MAX_FORWARDING_LENGTH = 512
# What the redirect asks of Chromium browsers, by TAUTAN_CLIENT_HINTS. A browser sends the
# hints from its next request to the short domain on; with Critical-CH it repeats this very
# request at once with them (one more round trip, on its first visit only).
ACCEPT_CH = (b"accept-ch", b"Sec-CH-UA-Model, Sec-CH-UA-Platform-Version, Sec-CH-UA-Mobile")
CLIENT_HINT_HEADERS: dict[str, tuple[tuple[bytes, bytes], ...]] = {
    "off": (),
    "ask": (ACCEPT_CH,),
    "critical": (ACCEPT_CH, (b"critical-ch", b"Sec-CH-UA-Model")),
}


def slug_of(scope: Scope) -> str | None:
    """The slug when the redirect answers this request, else None (the API takes it). Any
    path of one segment but the API's own is a slug: one that no link can have (an emoji,
    a dot) gets the 404 page of every unknown slug, without a database read."""
    if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD", "POST"):
        return None
    match = SLUG_PATH.fullmatch(scope["path"])
    if match is None or match[1].lower() in RESERVED_SLUGS:
        return None
    return match[1]


def is_root(scope: Scope) -> bool:
    """`GET|HEAD /`: on a branded domain, the redirect's to answer."""
    return scope["type"] == "http" and scope["path"] == "/" and scope["method"] in ("GET", "HEAD")


def split_query(query: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """The query to forward (tracking parameters removed, unsafe bytes escaped so nothing
    can break out of the Location header) and the tracking parameters found."""
    flags: dict[bytes, bytes] = {}
    if any(name in query for name in TRACKING_PARAMS):
        kept = []
        for pair in query.split(b"&"):
            name, _, value = pair.partition(b"=")
            if name in TRACKING_PARAMS:
                flags[name] = value
            elif pair:
                kept.append(pair)
        query = b"&".join(kept)
    return quote_from_bytes(query, safe=QUERY_SAFE).encode(), flags


def location_of(to: Target | Destination, forward_query: bool, query: bytes) -> bytes:
    location = to.location
    if query and forward_query:
        location += ("&" if "?" in location else "?") + query.decode()
    return (location + to.fragment).encode()


def text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _wanted_headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers a click keeps or a rule reads, by name."""
    headers: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in WANTED_HEADERS:
            # A header on several lines is one comma-separated list (RFC 9110 §5.3):
            # proxies add their X-Forwarded-For hop as a line of its own.
            headers[name] = headers[name] + b", " + value if name in headers else value
    return headers


class RedirectHandler:
    def __init__(
        self,
        sites: Sites,
        cache: LinkCache,
        record: Callable[[RawClick], None],
        intake: ClientIntake,
        metrics: Metrics,
        password_attempt: Callable[[Request, int], Awaitable[int | None]],
        places: Places,
        client_hints: str = "off",
    ) -> None:
        self.sites = sites
        self.cache = cache
        self.record = record
        self.intake = intake
        self.metrics = metrics
        # Counts a password attempt of the request's client on a link: None while it may
        # make it, else the seconds until it may make another (RateLimiter.hit_password).
        self.password_attempt = password_attempt
        self.places = places
        self.password_checks = asyncio.Semaphore(PASSWORD_CHECKS)
        self.hint_headers = CLIENT_HINT_HEADERS[client_hints]
        self.critical_hints = client_hints == "critical"
        # A password form asks for the hints (not critically: Chromium would send its post
        # twice), so that the post which is the click carries them.
        self.form_hint_headers = CLIENT_HINT_HEADERS["ask" if client_hints != "off" else "off"]

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, host: bytes | None
    ) -> None:
        """`GET|HEAD /{slug}` on the site `host` (the request's Host header) names, and
        `POST /{slug}` with a protected link's password."""
        site = await self.sites.of(host)
        if site is None:  # a host that is neither the base host nor a branded domain
            return await _html(send, 404, PAGES[404])
        slug = scope["path"][1:]
        try:
            target = await self.cache.get(link_key(site.domain, slug))
        except Exception as exc:  # a link not cached, and the database down
            log.warning("link %r unknown: the database did not answer (%r)", slug, exc)
            return await _html(send, 503, PAGES[503], RETRY_AFTER)
        if target is None:
            if site.not_found_url:
                return await _redirect(send, 302, site.not_found_url, NO_CACHE)
            return await _html(send, 404, PAGES[404])
        method = scope["method"]
        if method == "POST" and target.password_hash is None:
            return await _html(send, 405, PAGES[405], (b"allow", b"GET, HEAD"))
        query, flags = split_query(scope["query_string"])
        tracked = method != "HEAD" and flags.get(b"tautan_no_track") != b"1"
        live = target.is_live(datetime.now(UTC))
        headers = _wanted_headers(scope)
        # The client as the log keeps it and its digest; None: its clicks are not recorded.
        client = self._client(scope, headers) if tracked or target.targeting else None
        route = None
        hint_headers = self.hint_headers if method != "POST" else ()
        if live and target.preview_page and method != "POST" and _is_preview_fetch(headers):
            # A capped or protected link's preview page does not carry the destination: it
            # takes no slot, and asks no password.
            response = _html(send, 200, target.preview_page)
            self.metrics.preview_pages += 1
        else:
            if live and target.password_hash is not None:
                refused = await self._password_refused(scope, receive, target)
                if refused is not None:
                    return await refused(send=send)
            if live and target.max_clicks is not None:
                # Whatever carries a capped link's destination takes a slot, whoever asks
                # (HEAD, untracked, a bot's User-Agent): none of those proves it is no person.
                live = await self._take_slot(target)
                if live is None and not target.fallback_url:
                    return await _html(send, 503, PAGES[503], RETRY_AFTER)
            if live:
                to: Target | Destination = target
                if target.targeting is not None:
                    to = self._route(headers, client, target, target.targeting) or target
                    route = to.route if isinstance(to, Destination) else None
                # After a form, the browser goes on with a GET (303): 307 and 308 would have
                # it post the password to the destination.
                code = 303 if method == "POST" else target.code
                location = location_of(to, target.forward_query, query)
                response = _redirect(send, code, location, _caching(target), *hint_headers)
            elif target.fallback_url:
                fallback = target.fallback_url.encode()
                response = _redirect(send, 302, fallback, NO_CACHE, *hint_headers)
            else:
                return await _html(send, 410, PAGES[410])
            self.metrics.redirects += 1
        if tracked:
            # Logged before the answer leaves: a visitor who got the redirect was counted,
            # whatever happens to this process next.
            self._record(scope, headers, client, target, flags, route)
        await response

    def _route(
        self,
        headers: dict[bytes, bytes],
        client: tuple[str, str] | None,
        target: Target,
        targeting: Targeting,
    ) -> Destination | None:
        """Where the link's rules and variants send this visitor (None: its own url)."""
        user_agent = text(headers.get(b"user-agent", b"")[:MAX_UA_LENGTH])
        address, visitor_key = client or ("", "")
        visitor = Visitor(user_agent, text(headers.get(b"accept-language", b"")), address,
                          self.places)  # fmt: skip
        return targeting.choose(visitor, sticky_key(target.link_id, visitor_key, user_agent))

    async def _password_refused(
        self, scope: Scope, receive: Receive, target: Target
    ) -> Callable[[Send], Awaitable[None]] | None:
        """None when the request gives the link's password; else the answer: the form (401),
        again with a word when the password given was wrong, or 429 past the attempts a
        client may make on a link."""
        if scope["method"] != "POST":
            return partial(_password_page, 401, "", *self.form_hint_headers)
        retry_after = await self.password_attempt(Request(scope), target.link_id)
        if retry_after is not None:
            message = f"Too many attempts: try again in {retry_after} seconds."
            return partial(
                _password_page, 429, message, (b"retry-after", str(retry_after).encode())
            )
        password = await _posted_password(receive)
        assert target.password_hash is not None
        async with self.password_checks:
            right = password is not None and await asyncio.to_thread(
                password_matches, target.password_hash, password
            )
        return None if right else partial(_password_page, 401, "Wrong password: try again.")

    async def root(self, send: Send, host: bytes | None) -> bool:
        """`GET|HEAD /` on a branded domain: to its root_url, else the 404 page. False (and
        nothing sent) on the base host or one Tautan does not serve: the app answers."""
        site = await self.sites.of(host)
        if site is None or not site.domain:
            return False
        if site.root_url:
            await _redirect(send, 302, site.root_url, NO_CACHE)
        else:
            await _html(send, 404, PAGES[404])
        return True

    def _client(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[str, str] | None:
        """The client's address as the log keeps it and its keyed digest (ClientIntake);
        None when its clicks are not recorded."""
        get = headers.get
        client = scope.get("client")
        return self.intake.client(
            client[0] if client else "",
            text(_last_hops(get(b"x-forwarded-for", b""))),
            text(_last_hops(get(b"x-real-ip", b""))),
            text(_last_hops(get(b"forwarded", b""))),
        )

    def _record(
        self,
        scope: Scope,
        headers: dict[bytes, bytes],
        client: tuple[str, str] | None,
        target: Target,
        flags: dict[bytes, bytes],
        route: str | None,
    ) -> None:
        if (
            self.critical_hints
            and scope["method"] != "POST"
            and b"sec-ch-ua" in headers
            and b"sec-ch-ua-model" not in headers
        ):
            # Chromium repeats this request at once with its hints (Critical-CH): that one
            # is the click. (A password's post is not repeated: it was not asked to be.)
            self.metrics.hint_restarts += 1
            return
        if client is None:  # TAUTAN_IGNORE_IPS
            return
        get = headers.get
        self.record(
            RawClick(
                link_id=target.link_id,
                workspace_id=target.workspace_id,
                ts=time.time(),
                ip=client[0],
                visitor_key=client[1],
                user_agent=text(get(b"user-agent", b"")[:MAX_UA_LENGTH]),
                referer=text(get(b"referer", b"")[:MAX_REFERER_LENGTH]),
                accept_language=text(get(b"accept-language", b"")[:MAX_LANGUAGE_LENGTH]),
                trigger="qr" if flags.get(b"qr") == b"1" else "link",
                client_hints=_client_hints(headers),
                route=route or "",
            )
        )

    async def _take_slot(self, target: Target) -> bool | None:
        """Whether one of the capped link's max_clicks slots was left (and is now taken);
        None when the database cannot count it."""
        try:
            return await self.cache.take_slot(target)
        except Exception as exc:  # whatever failed, serving an uncounted click could overshoot
            log.warning("link %s: max_clicks slot not taken: %r", target.link_id, exc)
            return None


def _caching(target: Target) -> tuple[bytes, bytes]:
    permanent = target.code in (301, 308)
    may_stop = target.starts_at or target.expires_at or target.max_clicks is not None
    return PERMANENT_MAX_AGE if permanent and not may_stop else NO_CACHE


def _last_hops(value: bytes) -> bytes:
    """A forwarding header cut to its last MAX_FORWARDING_LENGTH bytes, from a comma on: a
    hop cut in two could read as another address (nothing is left of a single hop longer
    than that, which is no address)."""
    if len(value) <= MAX_FORWARDING_LENGTH:
        return value
    return value[-MAX_FORWARDING_LENGTH - 1 :].partition(b",")[2]


def _client_hints(headers: dict[bytes, bytes]) -> str:
    """The hints as a click keeps them (`name: value` lines, as useragent.parse_client_hints
    reads them), each cut short."""
    return "\n".join(
        f"{name.decode()}: {headers[name][:MAX_HINT_LENGTH].decode('utf-8', 'replace')}"
        for name in HINTS
        if name in headers
    )


async def _redirect(send: Send, code: int, location: bytes, *extra: tuple[bytes, bytes]) -> None:
    headers = [(b"location", location), (b"content-length", b"0"), *extra]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _is_preview_fetch(headers: dict[bytes, bytes]) -> bool:
    # Cut as a click's is: preview_fetcher memoises by User-Agent.
    user_agent = headers.get(b"user-agent", b"")[:MAX_UA_LENGTH]
    return preview_fetcher(text(user_agent)) is not None


async def _posted_password(receive: Receive) -> str | None:
    """The `password` field of a posted form; None when there is none, or the body is over
    MAX_FORM_BYTES (no password is that long)."""
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return None
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            return None
        if not message.get("more_body"):
            break
    try:
        fields = parse_qs(body.decode("ascii", "replace"), max_num_fields=8)
    except ValueError:
        return None
    return (fields.get("password") or [None])[0]


async def _password_page(
    status: int, message: str, *extra: tuple[bytes, bytes], send: Send
) -> None:
    paragraph = f'<p class="error" role="alert">{message}</p>' if message else ""
    body = PASSWORD_PAGE.replace("{message}", paragraph).encode()
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *PASSWORD_PAGE_HEADERS,
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _html(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        NO_CACHE,
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
