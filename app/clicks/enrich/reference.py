"""Device type, brand, model and bot name from the field's reference database: Matomo's
Device Detector, through the `device-detector` package, which carries its regex files.

The package tries its regexes one by one: thousands per User-Agent, ~6 ms once warm. Here
each of its regex lists gets an index of the literals its entries cannot match without
(`literals.py`), and a parser is handed only the entries whose literals occur in the
User-Agent (or in the model client hint), in their original order. First match wins as
before, so answers are the package's own; the test suite checks that on its fixtures.
The regexes the package keeps outside its lists (TV and tablet fragments, the processor
architecture) are searched only where their literals occur, too: some begin with `.*` after
an unanchored prefix and took ~40 µs each, a quarter of a new User-Agent's time.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from device_detector import DeviceDetector, yaml_loader
from device_detector.enums import DeviceType
from device_detector.lazy_regex import RegexLazy
from device_detector.parser import Bot, operating_system
from device_detector.parser.device import device as device_fragments
from device_detector.settings import BOUNDED_REGEX

from app.clicks.enrich.literals import MIN_LENGTH, LiteralIndex, required_literals

_BOUNDED_PREFIX = BOUNDED_REGEX.split("{}")[0]
_PLAIN = re.compile(r"[A-Za-z0-9 _-]+")  # a pattern that is its own one literal

# The reference's types, as Tautan's `device_type` names them.
_DEVICE_TYPES = {
    DeviceType.Smartphone: "mobile",
    DeviceType.Phablet: "mobile",
    DeviceType.FeaturePhone: "mobile",
    DeviceType.Tablet: "tablet",
    DeviceType.Desktop: "desktop",
    DeviceType.TV: "tv",
    DeviceType.Console: "console",
    DeviceType.Wearable: "wearable",
}


@dataclass(frozen=True, slots=True)
class ReferenceDevice:
    device_type: str | None  # None: the reference does not say
    brand: str | None
    model: str | None


def detect(user_agent: str, hints: Mapping[str, str] | None = None) -> ReferenceDevice:
    """What the reference database says of the device behind a User-Agent and its client
    hints (bots are `bot_name`'s business).

    The package's own steps for the device, without the client (browser) step, which the
    device needs only to call a desktop-looking TV browser a TV (2 of 7,385 fixtures), and
    without the normalising of the string for display: they were 45% of the time."""
    found = DeviceDetector(
        user_agent,
        headers=dict(hints) if hints else None,
        skip_bot_detection=True,
        check_cache=False,  # the caller memoises, within bounds of its own
    )
    if (found.user_agent or found.headers) and not (
        found.is_digit() or found.is_uuid() or found.is_gibberish()
    ):
        found.parse_os()
        found.parse_device()
        if found.os_name() == "Coolita OS":  # as the package's parse(): coocaa's TVs
            found.all_details.setdefault("device", {}).update(brand="coocaa", type=DeviceType.TV)
    kind = found.device_type()
    return ReferenceDevice(
        device_type=_DEVICE_TYPES.get(kind, "other") if kind else None,
        brand=found.device_brand() or None,
        model=found.device_model() or None,
    )


def bot_name(user_agent: str) -> str | None:
    """The reference's name for the bot behind a User-Agent, or None."""
    bot = Bot(user_agent, None).parse()
    return (bot.ua_data.get("name") or "bot") if bot.is_bot() else None


class _FirstMatchIndex:
    """The entries of one regex list that can match a text, in list order. An entry with a
    list of model regexes (a brand) comes with only those of its models that can match."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries
        self.ua = LiteralIndex([_literals(entry["regex"]) for entry in entries])
        self.model_of = [
            (i, j) for i, e in enumerate(entries) for j in range(len(e.get("models", ())))
        ]
        self.models = LiteralIndex(
            [_literals(entries[i]["models"][j]["regex"]) for i, j in self.model_of]
        )

    def candidates(self, user_agent: str, model_hint: str | None) -> list[dict[str, Any]]:
        positions = self.ua.hits(user_agent)
        models = self.models.hits(user_agent)
        if model_hint:
            # With a model hint, the device parser also tries each brand's regex and its
            # model regexes on the hint.
            positions |= self.ua.hits(model_hint)
            hinted = self.models.hits(model_hint)
            positions |= {self.model_of[flat][0] for flat in hinted}
            models |= hinted
        if not self.model_of:
            return [self.entries[i] for i in sorted(positions)]
        kept: dict[int, list[int]] = {}
        for flat in sorted(models):
            i, j = self.model_of[flat]
            kept.setdefault(i, []).append(j)
        found = []
        for i in sorted(positions):
            entry = self.entries[i]
            if "models" in entry:
                entry = {**entry, "models": [entry["models"][j] for j in kept.get(i, ())]}
            found.append(entry)
        return found


def _literals(lazy_regex: object) -> frozenset[str] | None:
    # The package's RegexLazy answers attribute reads from its compiled regex, compiling it
    # first; the pattern is read from the object itself, so nothing is compiled here.
    pattern: str = object.__getattribute__(lazy_regex, "pattern")
    # Most are `BOUNDED_REGEX` around the entry's own pattern: the wrapper holds no literal,
    # and parsing only what it wraps (a plain model code, often) takes a third of the time.
    if pattern.startswith(_BOUNDED_PREFIX) and pattern.endswith(")"):
        inner = pattern[len(_BOUNDED_PREFIX) : -1]
        if _PLAIN.fullmatch(inner):
            return frozenset({inner.lower()}) if len(inner) >= MIN_LENGTH else None
        return required_literals(inner)
    return required_literals(pattern)


class _Prefiltered:
    """One of the package's regexes, searched only in texts that hold one of its literals
    (any other use goes to the regex itself)."""

    def __init__(self, lazy_regex: RegexLazy, literals: frozenset[str]) -> None:
        self.lazy_regex, self.literals = lazy_regex, literals

    def search(self, text: str, *args: Any) -> Any:
        lowered = text.lower()
        if not any(literal in lowered for literal in self.literals):
            return None
        return self.lazy_regex.search(text, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lazy_regex, name)


def warm() -> None:
    """Load the reference's lists and build their indexes now (about a second) rather than
    at the first click, which would wait for it."""
    detect("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 Mobile Safari/537.36")
    bot_name("Googlebot/2.1")


@cache
def _index(fixture_files: tuple[str, ...]) -> _FirstMatchIndex:
    return _FirstMatchIndex(yaml_loader.regex_list(fixture_files))


def _candidate_regex_list(parser: Any) -> list[dict[str, Any]]:
    hints = parser.client_hints
    return _index(parser.fixture_files).candidates(parser.user_agent, hints and hints.model)


# Every parser of the package reads its regexes through this one property.
yaml_loader.RegexLoader.regex_list = property(_candidate_regex_list)  # type: ignore[assignment,method-assign]
# Module-level regexes are looked up at each use, so a prefiltered one replaces it there.
for _module in (operating_system, device_fragments):
    for _name, _value in list(vars(_module).items()):
        if isinstance(_value, RegexLazy) and (_found := _literals(_value)):
            setattr(_module, _name, _Prefiltered(_value, _found))
