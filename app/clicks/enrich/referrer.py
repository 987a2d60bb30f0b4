"""Where a click came from, by its Referer header (or, without one, its in-app browser)."""

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

MAX_URL_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class Referrer:
    url: str | None
    domain: str | None
    source: str


# The list ships inside the package and is read once; nothing is fetched.
_psl = PublicSuffixList()

# Matched against the host and then each parent domain, most specific first, so that
# mail.google.com is email before google.com is google.
_SOURCE_BY_DOMAIN = {
    "mail.google.com": "email",
    "inbox.google.com": "email",
    "outlook.live.com": "email",
    "outlook.office.com": "email",
    "outlook.office365.com": "email",
    "outlook.cloud.microsoft": "email",
    "mail.yahoo.com": "email",
    "mail.yandex.ru": "email",
    "mail.yandex.com": "email",
    "e.mail.ru": "email",
    "mail.aol.com": "email",
    "mail.proton.me": "email",
    "mail.zoho.com": "email",
    "fastmail.com": "email",
    "facebook.com": "facebook",
    "fb.me": "facebook",
    "fb.com": "facebook",
    "messenger.com": "facebook",
    "instagram.com": "instagram",
    "t.co": "x",
    "x.com": "x",
    "twitter.com": "x",
    "linkedin.com": "linkedin",
    "lnkd.in": "linkedin",
    "whatsapp.com": "whatsapp",
    "wa.me": "whatsapp",
    "t.me": "telegram",
    "telegram.me": "telegram",
    "telegram.org": "telegram",
    "tiktok.com": "tiktok",
    "youtube.com": "youtube",
    "youtu.be": "youtube",
    "pin.it": "pinterest",
    "reddit.com": "reddit",
    "redd.it": "reddit",
    "snapchat.com": "snapchat",
    "threads.net": "threads",
    "threads.com": "threads",
    "line.me": "line",
    "line.naver.jp": "line",
    "bing.com": "bing",
    "duckduckgo.com": "duckduckgo",
}

# Brands with a site under many country suffixes: google.co.id, yahoo.co.jp, pinterest.fr.
_SOURCE_BY_NAME = {"google": "google", "yahoo": "yahoo", "pinterest": "pinterest"}

# Webmail on a provider's own subdomain: mail.example.net, webmail.example.co.id.
_WEBMAIL_LABELS = ("mail", "webmail")

# Android apps send "android-app://<package>" as the Referer.
_SOURCE_BY_PACKAGE = {
    "com.google.android.gm": "email",
    "com.microsoft.office.outlook": "email",
    "com.yahoo.mobile.client.android.mail": "email",
    "com.samsung.android.email.provider": "email",
    "com.facebook.katana": "facebook",
    "com.facebook.lite": "facebook",
    "com.facebook.orca": "facebook",
    "com.instagram.android": "instagram",
    "com.instagram.barcelona": "threads",
    "com.twitter.android": "x",
    "com.x.android": "x",
    "com.linkedin.android": "linkedin",
    "com.whatsapp": "whatsapp",
    "com.whatsapp.w4b": "whatsapp",
    "org.telegram.messenger": "telegram",
    "org.thunderdog.challegram": "telegram",
    "com.zhiliaoapp.musically": "tiktok",
    "com.ss.android.ugc.trill": "tiktok",
    "com.google.android.youtube": "youtube",
    "com.pinterest": "pinterest",
    "com.reddit.frontpage": "reddit",
    "com.snapchat.android": "snapchat",
    "jp.naver.line.android": "line",
    "com.google.android.googlequicksearchbox": "google",
    "com.microsoft.bing": "bing",
    "com.duckduckgo.mobile.android": "duckduckgo",
}

# In-app browsers often send no Referer; the app they live in is still the source.
_SOURCE_BY_IN_APP = {
    "facebook": "facebook",
    "messenger": "facebook",
    "instagram": "instagram",
    "threads": "threads",
    "tiktok": "tiktok",
    "linkedin": "linkedin",
    "twitter": "x",
    "line": "line",
    "snapchat": "snapchat",
    "pinterest": "pinterest",
    "whatsapp": "whatsapp",
    "telegram": "telegram",
    "google": "google",
}

# What a hostname may hold; anything else (spaces, quotes, "@") makes the Referer garbage.
_HOST = re.compile(r"^[\w-]+(?:\.[\w-]+)*$")


def classify_referrer(referer: str, in_app: str | None = None) -> Referrer:
    referer = referer.strip()
    if not referer:
        source = "direct" if in_app is None else _SOURCE_BY_IN_APP.get(in_app, "other")
        return Referrer(url=None, domain=None, source=source)

    url = referer[:MAX_URL_LENGTH]
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:  # e.g. an unclosed "[" of an IPv6 literal
        return Referrer(url=url, domain=None, source="other")

    if parts.scheme == "android-app" and _HOST.match(host):
        return Referrer(url=url, domain=host, source=_SOURCE_BY_PACKAGE.get(host, "other"))
    if parts.scheme not in ("http", "https"):
        return Referrer(url=url, domain=None, source="other")
    domain, source = _classify_host(host)
    return Referrer(url=url, domain=domain, source=source)


@lru_cache(maxsize=4096)
def _classify_host(host: str) -> tuple[str | None, str]:
    """(registrable domain, source) of a web host; memoised, as the hosts repeat."""
    if _is_ip(host):
        return host, "other"
    if not _HOST.match(host):
        return None, "other"
    domain = _psl.privatesuffix(host) or host.removeprefix("www.")
    return domain, _source(host, domain)


def _source(host: str, domain: str) -> str:
    labels = host.split(".")
    for start in range(len(labels) - domain.count(".")):
        if source := _SOURCE_BY_DOMAIN.get(".".join(labels[start:])):
            return source
    if labels[0] in _WEBMAIL_LABELS and host != domain:
        return "email"
    return _SOURCE_BY_NAME.get(domain.split(".", 1)[0], "other")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
