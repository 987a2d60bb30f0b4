"""Devices as the reference device database (Matomo's Device Detector) names them: its
own published fixtures, its index, client hints, in-app tokens, and the writer's budget."""

import functools
import glob
import os
import random
from typing import Any

import pytest
import yaml
from device_detector import DeviceDetector, yaml_loader
from device_detector.parser import operating_system
from device_detector.parser.device import device as device_fragments

from app.clicks.enrich import reference
from app.clicks.enrich.enricher import FULL_ANSWERS_PER_BATCH, Enricher
from app.clicks.enrich.literals import required_literals
from app.clicks.enrich.useragent import guess_user_agent, parse_user_agent
from app.config import Settings
from tests.support.clicks import REDUCED_ANDROID

FIXTURES = os.path.join(os.path.dirname(yaml_loader.__file__), "tests", "fixtures", "upstream")
A54_HINTS = 'sec-ch-ua-model: "SM-A546E"\nsec-ch-ua-platform: "Android"\nsec-ch-ua-platform-version: "14.0.0"\nsec-ch-ua-mobile: ?1'
INSTAGRAM_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 Instagram "
    "312.0.0.32.112 Android (34/14; 450dpi; 1080x2340; samsung; SM-S918B; dm3q; qcom; en_US; "
    "548323757)"
)


def fixtures(step: int) -> list[dict[str, Any]]:
    """Every `step`-th device fixture of the reference (bots apart), in file order."""
    return _reference_fixtures()[::step]


@functools.cache
def _reference_fixtures() -> list[dict[str, Any]]:
    # Read once: parsing the reference's YAML takes seconds.
    cases: list[dict[str, Any]] = []
    for path in sorted(glob.glob(os.path.join(FIXTURES, "*.yml"))):
        if not path.endswith("bots.yml"):
            with open(path) as file:
                cases += yaml.load(file, Loader=yaml.CSafeLoader) or []
    return cases


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"SM-[AGJ]\d{3}", {"sm-a", "sm-g", "sm-j"}),
        (r"(?:iPhone|iPad)", {"iphone", "ipad"}),
        (r"Redmi Note (\d+)", {"redmi note "}),
        (r"TG ?(15|30)", {"tg15", "tg 15", "tg30", "tg 30"}),
        (r"(?:^|[^A-Z0-9_-])(?:Build/HUAWEI)", {"build/huawei"}),
        # A repeat there at least once: what comes before it, then one copy.
        (r"HT[0-9]{1,2}", {f"ht{n}" for n in range(10)}),
        (r"x(?:ab|cd)+y", {"xab", "xcd"}),
        # Non-ASCII letters that IGNORECASE matches to ASCII ones (ſ is s): no literal of them.
        ("ſony", {"ony"}),
        ("HT[ſ]{1,2}", {"ht"}),
        # Every recent phone says its Android version: the models are what filters.
        (r"Android 13[\d.]*;(?: [\w-]+;)? (?:S100|T20)", {" s100", " t20"}),
        (r".*", None),  # matches without any literal
        (r"(?:Infinix|X\d{3})", None),  # one alternative has no literal of 3 characters
        (r"\p{L}+", None),  # the `regex` module's syntax: always tried
    ],
)
def test_required_literals(pattern: str, expected: set[str] | None) -> None:
    found = required_literals(pattern)
    assert (set(found) if found is not None else None) == expected


def test_the_index_changes_no_answer_of_the_reference() -> None:
    """The package's answers with and without the indexes and the prefiltered regexes, on a
    spread of its fixtures."""
    indexed = yaml_loader.RegexLoader.regex_list
    plain = property(lambda parser: yaml_loader.regex_list(parser.fixture_files))
    prefiltered = [
        (module, name, value)
        for module in (operating_system, device_fragments)
        for name, value in vars(module).items()
        if isinstance(value, reference._Prefiltered)
    ]
    assert len(prefiltered) > 10

    def answer(case: dict[str, Any]) -> str:
        found = DeviceDetector(case["user_agent"], headers=case.get("headers"), check_cache=False)
        return repr(found.parse().all_details)

    cases = fixtures(step=97)
    assert len(cases) > 300
    try:
        yaml_loader.RegexLoader.regex_list = plain  # type: ignore[method-assign,assignment]
        for module, name, value in prefiltered:
            setattr(module, name, value.lazy_regex)
        expected = [answer(case) for case in cases]
    finally:
        yaml_loader.RegexLoader.regex_list = indexed  # type: ignore[method-assign]
        for module, name, value in prefiltered:
            setattr(module, name, value)
    assert [answer(case) for case in cases] == expected


def test_brand_model_and_type_agree_with_the_reference_fixtures() -> None:
    """Through parse_user_agent (what a click stores), on a fixed random sample."""
    sample = random.Random(11).sample(fixtures(step=1), 400)
    agree = {"brand": 0, "model": 0, "type": 0}
    counted = {"brand": 0, "model": 0, "type": 0}
    types = {"smartphone": "mobile", "phablet": "mobile", "feature phone": "mobile"}
    for case in sample:
        hints = "\n".join(
            f"{name.lower()}: {value}" for name, value in (case.get("headers") or {}).items()
        )
        info = parse_user_agent(case["user_agent"], hints)
        device = case.get("device") or {}
        expected_type = types.get(device.get("type"), device.get("type"))
        if expected_type in ("mobile", "tablet", "desktop", "tv", "console", "wearable"):
            counted["type"] += 1
            agree["type"] += info.device_type == expected_type
        for field, got in (("brand", info.device_brand), ("model", info.device_model)):
            if device.get(field):
                counted[field] += 1
                agree[field] += got == str(device[field])
    assert agree["brand"] / counted["brand"] >= 0.95
    assert agree["model"] / counted["model"] >= 0.90
    assert agree["type"] / counted["type"] >= 0.95


def test_a_reduced_user_agent_is_named_by_its_model_hint() -> None:
    assert parse_user_agent(REDUCED_ANDROID).device_model is None
    info = parse_user_agent(REDUCED_ANDROID, A54_HINTS)
    assert (info.device_brand, info.device_model) == ("Samsung", "Galaxy A54 5G")
    assert info.os_version == "14.0.0"  # "Android 10" in a reduced UA says nothing
    # Xiaomi and OPPO codes too.
    xiaomi = parse_user_agent(REDUCED_ANDROID, 'sec-ch-ua-model: "23021RAAEG"')
    assert (xiaomi.device_brand, xiaomi.device_model) == ("Xiaomi", "Redmi Note 12")


def test_in_app_tokens_name_the_phone_even_in_a_guess() -> None:
    quick = guess_user_agent(INSTAGRAM_ANDROID)
    assert (quick.device_brand, quick.device_model) == ("Samsung", "SM-S918B")
    full = parse_user_agent(INSTAGRAM_ANDROID)
    assert (full.device_brand, full.device_model) == ("Samsung", "Galaxy S23 Ultra")
    facebook = "Mozilla/5.0 (Linux; Android 13; wv) AppleWebKit/537.36 Chrome/120 [FB_IAB/FB4A;FBAV/443.0;FBDV/CPH2581;FBMF/OPPO;]"
    quick = guess_user_agent(facebook)
    assert (quick.device_brand, quick.device_model) == ("OPPO", "CPH2581")
    snapchat = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Snapchat/12.50.0.33 (like Safari/8616.2.9.10.9, panda)"
    assert guess_user_agent(snapchat).device_model is None  # no hardware token: no guess
    instagram_ios = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 334.0.4.32.98 (iPhone15,2; iOS 17_5; en_US; en; scale=3.00; 1179x2556; 612379432)"
    quick = guess_user_agent(instagram_ios)
    assert (quick.device_brand, quick.device_model, quick.in_app) == (
        "Apple",
        "iPhone15,2",
        "instagram",
    )
    assert parse_user_agent(instagram_ios).device_model == "iPhone 14 Pro"


def test_bots_are_named_from_the_lists() -> None:
    bot = Enricher(Settings()).device("monitoring360bot/1.1")
    assert (bot["is_bot"], bot["bot_name"], bot["device_type"]) == (True, "360 Monitoring", "bot")
    assert reference.bot_name(REDUCED_ANDROID) is None


def test_past_the_budget_new_user_agents_get_a_guess_until_the_next_batch() -> None:
    enricher = Enricher(Settings())
    enricher._budget_s, enricher._full_answers = 0, FULL_ANSWERS_PER_BATCH  # a batch's worth
    guess = enricher.device(REDUCED_ANDROID, A54_HINTS)
    assert (guess["device_brand"], guess["device_model"]) == ("Samsung", "SM-A546E")
    assert (guess["device_type"], guess["os"]) == ("mobile", None)
    assert enricher.device_fallbacks == 1
    enricher.start_batch(1000)
    full = enricher.device(REDUCED_ANDROID, A54_HINTS)
    assert full["device_model"] == "Galaxy A54 5G"
    assert enricher.device(REDUCED_ANDROID, A54_HINTS) is full  # memoised now
    assert enricher.device_fallbacks == 1


def _flood(count: int) -> list[str]:
    return [
        f"Mozilla/5.0 (Linux; Android 14; ZZ{n:05d} Build/{n}) Chrome/1.{n}" for n in range(count)
    ]


def test_a_flood_of_new_user_agents_costs_a_batch_at_most_its_budget() -> None:
    enricher = Enricher(Settings())
    flood = _flood(400)
    enricher.start_batch(1000)  # 0.1 s
    for ua in flood:
        enricher.device(ua)
    # Worked out in full until the budget ran out (each answer costs well under it).
    asked = len(flood) - enricher.device_fallbacks
    assert FULL_ANSWERS_PER_BATCH <= asked < len(flood)
    assert enricher._budget_s <= 0


def test_a_bigger_batch_has_a_bigger_budget() -> None:
    """The budget is per click: the same new User-Agents in a batch of 100,000 clicks (10 s)
    are all worked out in full, where a batch of 1,000 would have guessed most of them."""
    enricher = Enricher(Settings())
    enricher.start_batch(100_000)
    for ua in _flood(300):
        enricher.device(ua)
    assert enricher.device_fallbacks == 0


def test_the_memo_is_bounded_and_keyed_on_the_cut_user_agent() -> None:
    from app.clicks.enrich.enricher import DEVICES_KEPT

    enricher = Enricher(Settings())
    head = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) Chrome/126.0 Mobile Safari/537.36 "
    long_ua = head + "x" * 8192
    assert enricher.device(long_ua) is enricher.device(long_ua + "tail")
    for n in range(DEVICES_KEPT + 10):
        enricher._budget_s = 1.0
        enricher.device(f"ua {n}")
    assert len(enricher._devices) == DEVICES_KEPT
