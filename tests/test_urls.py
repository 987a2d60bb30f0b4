import pytest

from app.links.urls import check_url, merge_utm

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
