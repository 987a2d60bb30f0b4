"""Destination URLs: what is accepted, and how a link's UTM fields are merged into them."""

import ipaddress
from urllib.parse import SplitResult, quote, unquote_plus, urlsplit, urlunsplit

import ada_url

from app.core.tables import UTM_FIELDS, Link
from app.core.tables.domain import MAX_HOST_LENGTH

MAX_URL_LENGTH = 4096
# Characters left as they are when a non-ASCII URL is percent-encoded.
URL_SAFE = "!#$%&'()*+,/:;=?@[]~-._"


def check_url(value: str) -> str:
    """An absolute http(s) URL with a host and no credentials, as ASCII (IDNA host,
    percent-encoded path), or ValueError saying what is wrong."""
    value = value.strip()
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"URL longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port  # .port raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        hint = "" if parts.scheme and parts.netloc else " — add https://?"
        raise ValueError(f"only http and https URLs are accepted{hint}")
    if not host:
        raise ValueError("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials (user:password@) are not allowed in the URL")
    # DEL too: uvicorn will not send it in a Location header, so every redirect would fail.
    if any(c.isspace() or ord(c) < 32 or c == "\x7f" for c in value):
        raise ValueError("the URL contains spaces or control characters")
    if not value.isascii():
        value = _as_ascii(value, parts)
    if not ada_url.check_url(value):
        raise ValueError("not a valid URL: a browser could not follow it")
    return value


def _as_ascii(value: str, parts: SplitResult) -> str:
    """`value` (split as `parts`) in ASCII: the host as browsers convert it (UTS-46, not
    Python's IDNA 2003 codec, which takes `faß.de` to another domain, `fass.de`), the rest
    percent-encoded."""
    try:
        host = ada_url.URL(value).host  # IPv6 in brackets, and any non-default port
    except ValueError:
        raise ValueError("the URL's host is not a valid domain name") from None
    # A browser's host ends at a `\`: what follows it is path, kept as written.
    _, backslash, after_host = parts.netloc.partition("\\")
    netloc = host + backslash + quote(after_host, safe=URL_SAFE + "\\")
    return urlunsplit((parts.scheme, netloc, *(quote(p, safe=URL_SAFE) for p in parts[2:])))


def browser_host(url: str) -> str | None:
    """The host a browser sent to `url` connects to, spelled one way however the URL spells
    it (case, IDNA, percent-escapes, a trailing dot, `127.1` or `0x7f000001`, `\\` for `/`,
    an IPv4-mapped IPv6 address); None when no browser could follow the URL."""
    try:
        host = ada_url.URL(url).hostname.rstrip(".")
    except ValueError:
        return None
    if host.startswith("["):
        address = ipaddress.IPv6Address(host[1:-1])
        return str(address.ipv4_mapped or address)
    return host


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):  # browsers keep these local
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def points_at(url: str, host: str) -> bool:
    """Whether a browser sent to `url` reaches `host` (a `browser_host`), on any port: on a
    loopback host every loopback name and address counts as the same machine."""
    target = browser_host(url)
    if target is None:
        return False
    return target == host or (is_loopback(host) and is_loopback(target))


def merge_utm(url: str, utm: dict[str, str | None]) -> str:
    """`url` with the given UTM parameters: one already in the URL is replaced where it
    stands, the others are appended; every other parameter is kept byte for byte."""
    wanted = {k: v for k, v in utm.items() if v}
    if not wanted:
        return url
    base, hash_, fragment = url.partition("#")
    path, _, query = base.partition("?")
    pairs, done = [], set()
    for pair in query.split("&") if query else []:
        key = unquote_plus(pair.partition("=")[0])
        if key in wanted:
            if key not in done:
                pairs.append(f"{key}={quote(wanted[key], safe='')}")
                done.add(key)
            continue
        pairs.append(pair)
    pairs += [f"{k}={quote(v, safe='')}" for k, v in wanted.items() if k not in done]
    return f"{path}?{'&'.join(pairs)}{hash_}{fragment}"


def destination(link: Link) -> str:
    return merge_utm(link.url, {f: getattr(link, f) for f in UTM_FIELDS})


def domain_host(text: str) -> str:
    """A branded domain's host as browsers send it (lower case, IDN in punycode, no
    trailing dot), or ValueError saying why `text` is not one: a domain name alone, no
    scheme, port, path or address."""
    text = text.strip()
    if not text or any(c in text for c in "/\\@:?#[]") or any(c.isspace() for c in text):
        raise ValueError("give a domain name alone, e.g. go.example.com (no scheme, port or path)")
    host = browser_host(f"http://{text}/")
    if host is None or len(host) > MAX_HOST_LENGTH:
        raise ValueError("not a valid domain name")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise ValueError("an address is not a domain name: give the name that points at it")
    if "." not in host or any(not label or len(label) > 63 for label in host.split(".")):
        raise ValueError("not a valid domain name")
    return host
