"""Device, OS, browser and in-app browser from a User-Agent string and client hints.

ua-parser (with user-agents' device heuristics) names the OS and browser; the reference
device database
(`reference.py`) names the device type, brand and model as the field's reference does.
Both cost a millisecond or so per new User-Agent; `guess_user_agent` costs next to nothing
and still reads the maker and model tokens of in-app browsers and the model hint.
"""

import re
from dataclasses import dataclass, replace
from functools import lru_cache

import ua_parser
from device_detector.parser.device.base import DEVICE_BRANDS
from user_agents.parsers import UserAgent, parse_browser, parse_device, parse_operating_system

from app.clicks.enrich import reference
from app.clicks.enrich.bots import bot_name
from app.clicks.enrich.known_bots import MAX_UA_LENGTH, known_bot
from app.clicks.enrich.literals import FirstMatch
from app.clicks.raw import HINT_HEADERS


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    device_type: str  # mobile | tablet | desktop | tv | console | wearable | bot | other
    os: str | None
    os_version: str | None
    browser: str | None
    browser_version: str | None
    device_brand: str | None
    device_model: str | None
    in_app: str | None


# In-app browsers reveal their app with a token of their own. First match wins: the
# Messenger and Threads tokens must win over the Facebook and Instagram ones.
_IN_APP = FirstMatch(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"FBAN/Messenger|FB_IAB/MESSENGER", "messenger"),
        (r"\bBarcelona \d", "threads"),
        (r"\bInstagram\b", "instagram"),
        (r"FBAN/|FBAV/|FB_IAB/|FBIOS", "facebook"),
        (r"musical_ly|BytedanceWebview|\bTikTok\b|\btrill_", "tiktok"),
        (r"\bLine/\d", "line"),
        (r"LinkedInApp", "linkedin"),
        (r"TwitterAndroid|Twitter for iP", "twitter"),
        (r"\bSnapchat/", "snapchat"),
        (r"\bPinterest/", "pinterest"),
        # Only inside a browser UA: a bare "WhatsApp/2.x" is the link-preview fetcher.
        (r"^Mozilla/.*\bWhatsApp/", "whatsapp"),
        (r"\bTelegram(?:-Android|-iOS)?/", "telegram"),
        (r"MicroMessenger", "wechat"),
        (r"KAKAOTALK", "kakaotalk"),
        (r"\bGSA/\d", "google"),
    )
)

# ua-parser knows nothing of these devices, or files them as phones or PCs.
_CONSOLE = re.compile(r"PlayStation|Xbox|Nintendo")
_TV = re.compile(
    r"SMART-?TV|SmartTV|Web0S|webOS|HbbTV|\bTV\b|Android TV|GoogleTV|BRAVIA|CrKey|"
    r"Chromecast|\bAFT[A-Z0-9]{1,4}\b|Roku|AppleTV|tvOS|NetCast|VIDAA"
)
_WEARABLE = re.compile(r"\bWatch\b|WatchOS|Wear ?OS")
# A word each of _TV's alternatives holds: Python's re tries every alternative at every
# place of a User-Agent (10 µs), these `in` tests take half a microsecond, and most
# User-Agents hold none of them.
_TV_WORDS = ("TV", "Web0S", "webOS", "BRAVIA", "CrKey", "Chromecast", "AFT", "Roku", "tvOS",
             "NetCast", "VIDAA")  # fmt: skip
_XBOX = re.compile(r"Xbox(?: One| Series [SX])?")

# Model codes that ua-parser leaves under a generic brand but that only one maker uses.
_BRAND_BY_MODEL: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^SM-[A-Z]\d"), "Samsung"),
    (re.compile(r"^V2\d{3}[A-Z]?$"), "vivo"),
    # Xiaomi, Redmi and POCO codes start with the launch year and month: 23021RAAEG.
    (re.compile(r"^M?2\d(?:0[1-9]|1[0-2])[0-9A-Z]{3,6}$"), "Xiaomi"),
    (re.compile(r"^POCO\b", re.IGNORECASE), "Xiaomi"),
)
_BRAND_NAMES = {"XiaoMi": "Xiaomi"}
# The reference's spelling of a maker's name, for makers in-app browsers name in lower case.
_REFERENCE_BRANDS = {name.lower(): name for name in DEVICE_BRANDS.values()}

# In-app browsers that say which phone they run on, maker first:
# "Instagram 334.0 Android (34/14; 450dpi; 1080x2340; samsung; SM-S918B; dm3q; qcom; …)".
_INSTAGRAM_DEVICE = re.compile(r"Instagram [\d.]+ Android \([^;]*;[^;]*;[^;]*; ([^;]+); ([^;]+);")
_FACEBOOK_MAKER = re.compile(r"FBMF/([^;\]]+)")
_FACEBOOK_MODEL = re.compile(r"FBDV/([^;\]]+)")
# On iOS, Instagram, Snapchat and others name the hardware: "(iPhone15,2; iOS 17_5; …)".
_APPLE_HARDWARE = re.compile(r"\b((?:iPhone|iPad|iPod)\d+,\d+)")

# Six digits or more: a build number or a time, never part of a device's or an OS's name.
_LONG_NUMBER = re.compile(r"\d{6,}")

# Chrome's reduced UA says "Android 10; K" whatever the phone and Android release.
_REDUCED_ANDROID = re.compile(r"Android 10; K\)")

_APPLE_OS = ("iOS", "macOS")
_COARSE_TYPES = tuple(
    (re.compile(pattern), kind)
    for pattern, kind in (
        (r"iPad|Tablet", "tablet"),
        (r"iPhone|Android|Mobile", "mobile"),
        (r"Windows NT|Macintosh|X11", "desktop"),
    )
)


def parse_user_agent(ua: str, client_hints: str = "") -> UserAgentInfo:
    """What a User-Agent and its client hints (`client_hints` as a click keeps them: `name:
    value` lines) say of the device. Not memoised: the caller memoises, within a bound of
    its choosing, the answers it keeps."""
    ua = ua[:MAX_UA_LENGTH]
    info = _quick(ua)
    if info.device_type == "bot":
        return info
    hints = parse_client_hints(client_hints)
    if info.os_version is None and (version := _hint(hints, "sec-ch-ua-platform-version")):
        info = replace(info, os_version=version)  # a reduced UA's "Android 10" says nothing
    found = reference.detect(ua, hints)
    info = replace(info, device_type=found.device_type or info.device_type)
    if found.brand:
        # The reference's model name, else the model code the User-Agent gave.
        info = replace(
            info, device_brand=found.brand, device_model=found.model or info.device_model
        )
    return info


def device_and_os(ua: str) -> tuple[str, str | None]:
    """The device type and OS of a User-Agent (memoised): what a link's rules ask in the
    redirect. ua-parser's reading as `_quick` makes it, without what the redirect cannot
    afford for every new User-Agent (a fifth of its cost, ~30 µs): the crawler lists (a bot
    is one of the table of well-known ones) and the maker and model."""
    return _device_and_os(ua[:MAX_UA_LENGTH])


@lru_cache(maxsize=4096)
def _device_and_os(ua: str) -> tuple[str, str | None]:
    # In-app browsers put build numbers in their User-Agents (Instagram's "… 1179x2556;
    # 612379432)"), so that many are new while their device and OS are not: read once for
    # every build number.
    return _read_device_and_os(_LONG_NUMBER.sub("0", ua))


@lru_cache(maxsize=4096)
def _read_device_and_os(ua: str) -> tuple[str, str | None]:
    if known_bot(ua) is not None:
        return "bot", None
    parsed = _UserAgent(ua)
    brand, model = _brand_and_model(parsed.device.brand, parsed.device.model)
    return _device_type(ua, parsed, brand, model), _os_name(parsed)


def parse_client_hints(client_hints: str) -> dict[str, str]:
    hints = {}
    for line in client_hints.splitlines():
        name, _, value = line.partition(": ")
        if name in HINT_HEADERS:
            hints[name] = value
    return hints


def guess_user_agent(ua: str, client_hints: str = "") -> UserAgentInfo:
    """A guess at the device for next to no work (a few regexes): for User-Agents past the
    writer's budget, which a flood of random strings would otherwise turn into seconds of
    parsing. In-app browsers and model hints still name the phone."""
    ua = ua[:MAX_UA_LENGTH]
    brand, model = _in_app_device(ua) or (None, None)
    if model is None and (model := _hint(parse_client_hints(client_hints), "sec-ch-ua-model")):
        brand = _brand_of_code(model)
    kind = next((kind for pattern, kind in _COARSE_TYPES if pattern.search(ua)), "other")
    return UserAgentInfo(kind, None, None, None, None, brand, model, _in_app(ua))


def _hint(hints: dict[str, str], name: str) -> str | None:
    return hints.get(name, "").strip('"') or None


class _UserAgent(UserAgent):
    """user-agents' reading of a User-Agent, parsed through ua-parser's current API (with
    its Rust accelerator, ua-parser-rs): user-agents calls the legacy API, which tries the
    regexes one by one in Python, twenty times slower."""

    def __init__(self, user_agent_string: str) -> None:
        found = ua_parser.parse(user_agent_string)
        agent, os, device = found.user_agent, found.os, found.device
        self.ua_string = user_agent_string
        self.os = parse_operating_system(
            *((os.family, os.major, os.minor, os.patch) if os else ("Other",))
        )
        self.browser = parse_browser(
            *((agent.family, agent.major, agent.minor, agent.patch) if agent else ("Other",))
        )
        self.device = parse_device(
            *((device.family, device.brand, device.model) if device else ("Other", None, None))
        )


@lru_cache(maxsize=4096)
def _quick(ua: str) -> UserAgentInfo:
    parsed = _UserAgent(ua)
    os = _os_name(parsed)
    browser = _known(parsed.browser.family)
    brand, model = _brand_and_model(parsed.device.brand, parsed.device.model)
    os_version = parsed.os.version_string or None
    browser_version = parsed.browser.version_string or None

    if browser == "Apple Mail" and os not in _APPLE_OS:
        # A bare "AppleWebKit/605" UA, as game consoles send, is not Apple's mail app.
        browser = browser_version = None
    if _REDUCED_ANDROID.search(ua):
        os_version = None
    if xbox := _XBOX.findall(ua):
        # "Xbox; Xbox One": the longest mention names the console.
        brand, model = "Microsoft", max(xbox, key=len)
    if in_app := _in_app_device(ua):
        brand, model = in_app

    if bot_name(ua) is not None:
        # A crawler's "Macintosh" or "Nexus 5X" is a disguise, not a device.
        return UserAgentInfo("bot", os, os_version, browser, browser_version, None, None, None)
    return UserAgentInfo(
        device_type=_device_type(ua, parsed, brand, model),
        os=os,
        os_version=os_version,
        browser=browser,
        browser_version=browser_version,
        device_brand=brand,
        device_model=model,
        in_app=_in_app(ua),
    )


def _os_name(parsed: UserAgent) -> str | None:
    os = _known(parsed.os.family)
    return "macOS" if os == "Mac OS X" else os


def _known(family: str | None) -> str | None:
    return None if family in (None, "", "Other", "Generic") else family


def _brand_and_model(brand: str | None, model: str | None) -> tuple[str | None, str | None]:
    if brand in (None, "Generic", "Spider"):
        # Placeholders such as "Smartphone" or "Desktop", not a model.
        return None, None
    if model in ("K", "Browser"):
        # "K": Chrome's reduced UA. "Browser": ua-parser reads "HuaweiBrowser" as a model.
        model = None
    if brand.startswith("Generic"):
        brand = _brand_of_code(model) if model else None
    return _BRAND_NAMES.get(brand or "", brand), model or None


def _brand_of_code(model: str) -> str | None:
    for pattern, maker in _BRAND_BY_MODEL:
        if pattern.search(model):
            return maker
    return None


def _in_app_device(ua: str) -> tuple[str | None, str] | None:
    """Maker and model from an in-app browser's own tokens."""
    if found := _INSTAGRAM_DEVICE.search(ua):
        maker, model = found[1].strip(), found[2].strip()
    elif found := _FACEBOOK_MODEL.search(ua):
        model = found[1].strip()
        maker_found = _FACEBOOK_MAKER.search(ua)
        maker = maker_found[1].strip() if maker_found else ""
    elif found := _APPLE_HARDWARE.search(ua):
        maker, model = "Apple", found[1]
    else:
        return None
    brand = _REFERENCE_BRANDS.get(maker.lower()) or _brand_of_code(model)
    return brand, model


def _device_type(ua: str, parsed: UserAgent, brand: str | None, model: str | None) -> str:
    if _CONSOLE.search(ua):
        return "console"
    if any(word in ua for word in _TV_WORDS) and _TV.search(ua):
        return "tv"
    galaxy_watch = brand == "Samsung" and (model or "").startswith("SM-R")
    if galaxy_watch or _WEARABLE.search(ua) or parsed.device.family == "Apple Watch":
        return "wearable"
    if parsed.is_tablet:
        return "tablet"
    if parsed.is_mobile:
        return "mobile"
    if parsed.is_pc:
        return "desktop"
    return "other"


def _in_app(ua: str) -> str | None:
    return _IN_APP(ua)
