"""classify_referrer: Referer headers as browsers and apps send them, and some they should not."""

import pytest

from app.clicks.enrich.referrer import Referrer, classify_referrer


@pytest.mark.parametrize(
    ("referer", "domain", "source"),
    [
        # Social networks, through their link shims and short domains
        (
            "https://l.facebook.com/l.php?u=https%3A%2F%2Ftautan.test%2Fx",
            "facebook.com",
            "facebook",
        ),
        ("https://lm.facebook.com/", "facebook.com", "facebook"),
        ("https://m.facebook.com/", "facebook.com", "facebook"),
        ("https://www.facebook.com/", "facebook.com", "facebook"),
        ("https://fb.me/abc", "fb.me", "facebook"),
        (
            "https://l.instagram.com/?u=https%3A%2F%2Ftautan.test%2Fx&e=AT0",
            "instagram.com",
            "instagram",
        ),
        ("https://www.instagram.com/", "instagram.com", "instagram"),
        ("https://t.co/AbCdEf123", "t.co", "x"),
        ("https://x.com/", "x.com", "x"),
        ("https://mobile.twitter.com/", "twitter.com", "x"),
        ("https://www.linkedin.com/", "linkedin.com", "linkedin"),
        ("https://lnkd.in/gXyZ", "lnkd.in", "linkedin"),
        ("https://web.whatsapp.com/", "whatsapp.com", "whatsapp"),
        ("https://wa.me/6281234567890", "wa.me", "whatsapp"),
        ("https://t.me/somechannel", "t.me", "telegram"),
        ("https://web.telegram.org/", "telegram.org", "telegram"),
        ("https://www.tiktok.com/", "tiktok.com", "tiktok"),
        ("https://www.youtube.com/", "youtube.com", "youtube"),
        ("https://youtu.be/dQw4w9WgXcQ", "youtu.be", "youtube"),
        ("https://id.pinterest.com/", "pinterest.com", "pinterest"),
        ("https://www.pinterest.co.uk/", "pinterest.co.uk", "pinterest"),
        ("https://out.reddit.com/t3_abc", "reddit.com", "reddit"),
        ("https://www.threads.net/", "threads.net", "threads"),
        ("https://line.me/R/", "line.me", "line"),
        # Search engines
        ("https://www.google.com/", "google.com", "google"),
        ("https://www.google.co.id/", "google.co.id", "google"),
        ("https://news.google.com/", "google.com", "google"),
        ("https://www.bing.com/", "bing.com", "bing"),
        ("https://duckduckgo.com/", "duckduckgo.com", "duckduckgo"),
        ("https://search.yahoo.com/", "yahoo.com", "yahoo"),
        ("https://search.yahoo.co.jp/", "yahoo.co.jp", "yahoo"),
        # Webmail, though on a search engine's domain
        ("https://mail.google.com/", "google.com", "email"),
        ("https://outlook.live.com/", "live.com", "email"),
        ("https://outlook.office.com/", "office.com", "email"),
        ("https://mail.yahoo.com/", "yahoo.com", "email"),
        ("https://webmail.telkom.net.id/", "telkom.net.id", "email"),
        # Android apps name their package
        ("android-app://com.google.android.gm/", "com.google.android.gm", "email"),
        ("android-app://com.facebook.katana/", "com.facebook.katana", "facebook"),
        ("android-app://com.instagram.android/", "com.instagram.android", "instagram"),
        ("android-app://com.twitter.android/", "com.twitter.android", "x"),
        ("android-app://org.telegram.messenger/", "org.telegram.messenger", "telegram"),
        ("android-app://com.whatsapp/", "com.whatsapp", "whatsapp"),
        ("android-app://com.linkedin.android/", "com.linkedin.android", "linkedin"),
        (
            "android-app://com.google.android.googlequicksearchbox/https/www.google.com",
            "com.google.android.googlequicksearchbox",
            "google",
        ),
        ("android-app://com.zhiliaoapp.musically/", "com.zhiliaoapp.musically", "tiktok"),
        ("android-app://com.example.reader/", "com.example.reader", "other"),
        # Everything else: the registrable domain, "other"
        ("https://news.bbc.co.uk/news/articles/c1", "bbc.co.uk", "other"),
        ("https://www.kompas.com/tren/read/2024", "kompas.com", "other"),
        ("http://example.com:8080/path?q=1#top", "example.com", "other"),
        ("HTTPS://WWW.GOOGLE.COM./", "google.com", "google"),
        ("https://someone.github.io/post", "someone.github.io", "other"),
        ("https://localhost:3000/", "localhost", "other"),
        ("http://203.0.113.7/page", "203.0.113.7", "other"),
        ("http://[2001:db8::1]/page", "2001:db8::1", "other"),
        # Look-alikes are not the real thing
        ("https://facebook.com.evil.example/", "evil.example", "other"),
        ("https://notgoogle.com/", "notgoogle.com", "other"),
    ],
)
def test_classify_referrer(referer: str, domain: str, source: str) -> None:
    assert classify_referrer(referer) == Referrer(url=referer, domain=domain, source=source)


@pytest.mark.parametrize(
    ("in_app", "source"),
    [
        (None, "direct"),
        ("facebook", "facebook"),
        ("messenger", "facebook"),
        ("instagram", "instagram"),
        ("tiktok", "tiktok"),
        ("linkedin", "linkedin"),
        ("twitter", "x"),
        ("line", "line"),
        ("snapchat", "snapchat"),
        ("pinterest", "pinterest"),
        ("whatsapp", "whatsapp"),
        ("telegram", "telegram"),
        ("threads", "threads"),
        ("wechat", "other"),  # not a source of its own, yet not direct either
    ],
)
def test_no_referer_falls_back_on_the_in_app_browser(in_app: str | None, source: str) -> None:
    assert classify_referrer("", in_app) == Referrer(url=None, domain=None, source=source)
    assert classify_referrer("   ", in_app).source == source


def test_a_referer_beats_the_in_app_browser() -> None:
    assert classify_referrer("https://www.google.com/", "instagram").source == "google"


@pytest.mark.parametrize(
    "referer",
    [
        "not a url",
        "www.google.com",  # no scheme: not something a browser sends
        "javascript:alert(1)",
        "ftp://files.example.com/",
        "https://",
        "http://[::1",
        "https://exa mple.com/",
        "https://<script>/",
        "\x00\x01\x02",
    ],
)
def test_garbage_is_other_and_kept(referer: str) -> None:
    assert classify_referrer(referer) == Referrer(url=referer, domain=None, source="other")


def test_a_very_long_referer_is_cut_to_2048_characters() -> None:
    referer = "https://www.google.com/search?q=" + "a" * 10_000
    result = classify_referrer(referer)
    assert result.url == referer[:2048]
    assert (result.domain, result.source) == ("google.com", "google")


def test_a_very_long_garbage_referer_does_not_raise() -> None:
    result = classify_referrer("x" * 100_000)
    assert result == Referrer(url="x" * 2048, domain=None, source="other")
