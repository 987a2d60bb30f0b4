import pytest

from app.core.urls import browser_host, check_url, merge_utm, points_at

CAMPAIGN = {"utm_source": "instagram", "utm_medium": "social", "utm_campaign": "launch"}


@pytest.mark.parametrize(
    ("url", "utm", "expected"),
    [
        ("https://shop.example/", {}, "https://shop.example/"),
        (
            "https://shop.example/",
            CAMPAIGN,
            "https://shop.example/?utm_source=instagram&utm_medium=social&utm_campaign=launch",
        ),
        (
            "https://shop.example/sale?color=red&utm_source=old&size=m",
            {"utm_source": "instagram", "utm_campaign": "launch"},
            "https://shop.example/sale?color=red&utm_source=instagram&size=m&utm_campaign=launch",
        ),
        (  # other parameters stay byte for byte, even odd encodings
            "https://shop.example/p?q=a%20b+c&empty=&flag",
            {"utm_source": "x"},
            "https://shop.example/p?q=a%20b+c&empty=&flag&utm_source=x",
        ),
        (  # the fragment stays last
            "https://shop.example/p?a=1#reviews",
            {"utm_medium": "email"},
            "https://shop.example/p?a=1&utm_medium=email#reviews",
        ),
        (  # duplicates of a replaced UTM are dropped
            "https://shop.example/?utm_source=a&utm_source=b",
            {"utm_source": "c"},
            "https://shop.example/?utm_source=c",
        ),
        (  # values are percent-encoded
            "https://shop.example/",
            {"utm_campaign": "Black Friday & more"},
            "https://shop.example/?utm_campaign=Black%20Friday%20%26%20more",
        ),
        (  # an empty field leaves the URL's own value
            "https://shop.example/?utm_term=shoes",
            {"utm_term": None, "utm_content": ""},
            "https://shop.example/?utm_term=shoes",
        ),
    ],
)
def test_merge_utm(url: str, utm: dict, expected: str) -> None:
    assert merge_utm(url, utm) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("javascript:alert(1)", "http and https"),
        ("data:text/html,hi", "http and https"),
        ("ftp://files.example/", "http and https"),
        ("https:///nohost", "no host"),
        ("https://user:pw@evil.example/", "credentials"),
        ("https://user@evil.example/", "credentials"),
        ("https://x.example/" + "a" * 4100, "longer than"),
        ("https://x.example/a b", "spaces"),
        ("https://x.example:99999/", "not a valid URL"),
        ("shop.example.com", "http and https"),
    ],
)
def test_check_url_refuses(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_url(url)


def test_check_url_makes_unicode_urls_ascii() -> None:
    assert check_url("https://bücher.example/straße?q=ä") == (
        "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%A4"
    )
    assert check_url("  https://ok.example/path  ") == "https://ok.example/path"
    # a browser's host ends at "\\": the rest is path, kept
    assert check_url("http://bücher.example\\a/ü") == "http://xn--bcher-kva.example\\a/%C3%BC"


def test_check_url_refuses_what_no_browser_could_follow() -> None:
    for url in (
        "http://999.1.1.1/",
        "http://1.2.3.4.5/",
        "http://shop.0x10/",
        "http://a<b.example/",
    ):
        with pytest.raises(ValueError, match="a browser could not follow it"):
            check_url(url)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("HTTP://TAUTAN.TEST./a", "tautan.test"),
        ("http://tautan.test:80/a", "tautan.test"),
        ("http://%74autan.test/a", "tautan.test"),  # browsers decode escapes in the host
        ("http://tautan.test\\.evil.example/a", "tautan.test"),  # "\" ends the host
        ("http://evil.example:80@tautan.test/a", "tautan.test"),
        ("http://tautan.test#@evil.example", "tautan.test"),
        ("http://ｔａｕｔａｎ。test/a", "tautan.test"),  # full-width letters and dot
        ("http://bücher.example/", "xn--bcher-kva.example"),
        ("http://XN--BCHER-KVA.example/", "xn--bcher-kva.example"),
        ("http://127.1:8000/a", "127.0.0.1"),
        ("http://2130706433/a", "127.0.0.1"),
        ("http://0x7f.0.0.1/a", "127.0.0.1"),
        ("http://0177.0.0.1/a", "127.0.0.1"),
        ("http://[::ffff:127.0.0.1]/a", "127.0.0.1"),
        ("http://[0:0:0:0:0:0:0:1]/a", "::1"),
        ("http://999.1.1.1/", None),
    ],
)
def test_browser_host_spells_a_host_one_way(url: str, host: str | None) -> None:
    assert browser_host(url) == host


@pytest.mark.parametrize(
    ("url", "own", "expected"),
    [
        ("https://tautan.test:8443/a", "tautan.test", True),  # any scheme, any port
        ("https://sub.tautan.test/a", "tautan.test", False),
        ("https://tautan.test.evil.example/a", "tautan.test", False),
        ("https://evil.example/tautan.test", "tautan.test", False),
        ("https://evil.example/?next=http://tautan.test/a", "tautan.test", False),
        ("http://localhost:8000/a", "127.0.0.1", True),  # every loopback spelling is one machine
        ("http://127.0.0.2/a", "127.0.0.1", True),
        ("http://[::1]:8000/a", "127.0.0.1", True),
        ("http://0.0.0.0:8000/a", "127.0.0.1", True),
        ("http://app.localhost/a", "localhost", True),
        ("http://10.0.0.1/a", "127.0.0.1", False),
        ("http://localhost/a", "tautan.test", False),
    ],
)
def test_points_at(url: str, own: str, expected: bool) -> None:
    assert points_at(url, own) is expected
