"""bot_name and is_preview_fetcher against real crawler, preview and browser UAs."""

import pytest

from app.clicks.enrich.bots import bot_name, is_preview_fetcher

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
ANDROID_WV = (
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36"
)

BOTS = [
    (
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "facebookexternalhit",
    ),
    ("facebookexternalhit/1.1;line-poker/1.0", "facebookexternalhit"),
    (
        "Mozilla/5.0 (compatible; Facebot/1.0; +https://developers.facebook.com/docs/sharing/webmasters/crawler)",
        "Facebot",
    ),
    (
        "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
        "meta-externalagent",
    ),
    # Apple Messages' preview names three bots; none of them is the one fetching.
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
        "iMessage",
    ),
    ("Twitterbot/1.0", "Twitterbot"),
    (
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "LinkedInBot",
    ),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "Slackbot"),
    ("Slackbot 1.0 (+https://api.slack.com/robots)", "Slackbot"),
    ("WhatsApp/2.23.20.0", "WhatsApp"),
    ("WhatsApp/2.2329.7 i", "WhatsApp"),
    ("TelegramBot (like TwitterBot)", "TelegramBot"),
    ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "Discordbot"),
    (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com",
        "SkypeUriPreview",
    ),
    (
        "Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)",
        "Pinterestbot",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.11; rv:49.0) Gecko/20100101 Firefox/49.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)",
        "redditbot",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/113.0.0.0 Safari/537.36 (compatible; Snap URL Preview Service; bot; snapchat; https://developers.snap.com/robots)",
        "Snapchat",
    ),
    ("Viber/21.4.0.2 CFNetwork/1494.0.7 Darwin/23.4.0", "Viber"),
    ("http.rb/5.1.1 (Mastodon/4.2.8; +https://mastodon.social/)", "Mastodon"),
    ("Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)", "Embedly"),
    ("Iframely/1.3.1 (+https://iframely.com/docs/about)", "Iframely"),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
        "Applebot",
    ),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot"),
    (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.126 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Googlebot",
    ),
    (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.126 Mobile Safari/537.36 (compatible; Google-InspectionTool/1.0;)",
        "Google-InspectionTool",
    ),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bingbot"),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
        "bingbot",
    ),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "YandexBot"),
    (
        "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
        "Baiduspider",
    ),
    ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", "DuckDuckBot"),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
        "GPTBot",
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot",
        "ChatGPT-User",
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
        "ClaudeBot",
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)",
        "PerplexityBot",
    ),
    (
        "Mozilla/5.0 (compatible; Amazonbot/0.1; +https://developer.amazon.com/support/amazonbot)",
        "Amazonbot",
    ),
    (
        "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
        "Bytespider",
    ),
    (
        "Mozilla/5.0 (Linux; Android 7.0;) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
        "PetalBot",
    ),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "AhrefsBot"),
    ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", "SemrushBot"),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36",
        "HeadlessChrome",
    ),
    ("python-requests/2.31.0", "python-requests"),
    ("curl/8.5.0", "curl"),
    ("Wget/1.21.4", "Wget"),
    ("Go-http-client/1.1", "Go-http-client"),
    ("Go-http-client/2.0", "Go-http-client"),
    # Not in our table: named by the crawler list's match, trailing "/" trimmed.
    ("Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)", "MJ12 Bot"),
    ("okhttp/4.12.0", "okhttp"),
    ("axios/1.6.8", "axios"),
    ("Apache-HttpClient/4.5.14 (Java/17.0.10)", "Apache-HttpClient"),
    ("", "(empty)"),
    ("   ", "(empty)"),
]

HUMANS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-A536E) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.68",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36",
    "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15",
    # In-app browsers carry app names that bot lists also hold: still people.
    f"{IPHONE} Instagram 337.0.3.23.54 (iPhone14,5; iOS 17_5_1; en_US; en; scale=3.00; 1170x2532; 614390436; IABMV/1)",
    f"{IPHONE} [FBAN/FBIOS;FBAV/470.0.0.39.106;FBBV/613587297;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/615372463]",
    f"Mozilla/5.0 (Linux; Android 13; 22101316G Build/TP1A.220624.014; wv) {ANDROID_WV} [FB_IAB/FB4A;FBAV/470.0.0.43.108;]",
    f"{IPHONE} musical_ly_34.6.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en Region/US ByteFullLocale/en RevealType/Dialog isDarkMode/0 WKWebView/1 BytedanceWebview/d8a21c6 FalconTag/",
    f"{IPHONE} Safari Line/14.9.0",
    f"{IPHONE} [LinkedInApp]/9.29.8963",
    f"{IPHONE} Twitter for iPhone/10.48",
    f"{IPHONE} Snapchat/13.0.0.41 (like Safari/8618.2.12.10.5, panda)",
    f"{IPHONE} [Pinterest/iOS]",
    f"Mozilla/5.0 (Linux; Android 13; SM-A135F Build/TP1A.220624.014; wv) {ANDROID_WV} Telegram-Android/10.14.5 (Samsung SM-A135F; Android 13; SDK 33; AVERAGE)",
    # The crawler list holds "WhatsApp"; this is WhatsApp's in-app browser, not its fetcher.
    f"Mozilla/5.0 (Linux; Android 12; M2101K6G Build/SKQ1.210908.001; wv) {ANDROID_WV} WhatsApp/2.24.13.80",
    f"{IPHONE} MicroMessenger/8.0.49(0x18003133) NetType/WIFI Language/zh_CN",
    f"{IPHONE} GSA/323.0.647062479 Mobile/15E148 Safari/604.1",
]


@pytest.mark.parametrize(("ua", "expected"), BOTS)
def test_bot_name(ua: str, expected: str) -> None:
    assert bot_name(ua) == expected


@pytest.mark.parametrize("ua", HUMANS)
def test_a_person_is_no_bot(ua: str) -> None:
    assert bot_name(ua) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("facebookexternalhit", True),
        ("Facebot", True),
        ("iMessage", True),
        ("Twitterbot", True),
        ("LinkedInBot", True),
        ("Slackbot", True),
        ("WhatsApp", True),
        ("TelegramBot", True),
        ("Discordbot", True),
        ("SkypeUriPreview", True),
        ("Pinterestbot", True),
        ("redditbot", True),
        ("Snapchat", True),
        ("Viber", True),
        ("Mastodon", True),
        ("Embedly", True),
        ("Iframely", True),
        ("Googlebot", False),
        ("GPTBot", False),
        ("curl", False),
        ("(empty)", False),
        (None, False),
    ],
)
def test_is_preview_fetcher(name: str | None, expected: bool) -> None:
    assert is_preview_fetcher(name) is expected


def test_every_preview_ua_above_is_a_preview_fetcher() -> None:
    previews = {"Twitterbot/1.0", "WhatsApp/2.23.20.0", "TelegramBot (like TwitterBot)"}
    assert all(is_preview_fetcher(bot_name(ua)) for ua in previews)


def test_an_8_kb_user_agent_is_handled() -> None:
    human = HUMANS[0] + " " + "a" * 8192
    assert bot_name(human) is None
    # Only the first 1024 characters are read: a marker past them is not seen.
    assert bot_name("Mozilla/5.0 " + "a" * 8192 + " Googlebot/2.1") is None
    assert bot_name("Googlebot/2.1 " + "a" * 8192) == "Googlebot"
