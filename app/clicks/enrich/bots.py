"""Name the bot behind a User-Agent, or None for a person's browser."""

import re
from functools import cache, lru_cache

from crawlerdetect.crawlerdetect import get_compiled_exclusions_regex
from crawlerdetect.providers.crawlers import data as crawlerdetect_patterns
from crawleruseragents import CRAWLER_USER_AGENTS_DATA

from app.clicks.enrich import reference
from app.clicks.enrich.known_bots import MAX_UA_LENGTH, PREVIEW_FETCHERS, known_bot
from app.clicks.enrich.literals import LiteralIndex, required_literals

EMPTY = "(empty)"  # the name of a missing User-Agent

# App tokens in real browser UAs that the crawler list mistakes for its bot of the same
# name (WhatsApp's in-app browser appends "WhatsApp/2.24.13.80").
_HUMAN_APP_TOKENS = re.compile(r"WhatsApp/[\d.]+")


class CrawlerList:
    """A maintained list of crawler patterns, answering as one regex of them all would (the
    leftmost match), but trying only the patterns whose literals occur in the User-Agent:
    a User-Agent costs microseconds instead of the whole list."""

    def __init__(self, patterns: list[str], flags: int = 0) -> None:
        self.patterns, self.flags = patterns, flags
        self.index = LiteralIndex([required_literals(pattern) for pattern in patterns])

    def first_match(self, ua: str) -> str | None:
        """The text the leftmost match of any pattern matched, or None."""
        best: re.Match[str] | None = None
        for position in sorted(self.index.hits(ua)):
            found = self._compiled(position).search(ua)
            if found and (best is None or found.start() < best.start()):
                best = found
        return best[0] if best else None

    @cache  # noqa: B019 (the lists live as long as the process)
    def _compiled(self, position: int) -> re.Pattern[str]:
        return re.compile(self.patterns[position], self.flags)


# CrawlerDetect's list, matched after its exclusions (browser tokens) are taken out, as
# CrawlerDetect does; then crawler-user-agents'.
_CRAWLERDETECT = CrawlerList(crawlerdetect_patterns, re.IGNORECASE)
_CRAWLER_USER_AGENTS = CrawlerList([entry["pattern"] for entry in CRAWLER_USER_AGENTS_DATA])


def bot_name(ua: str) -> str | None:
    """The bot's canonical name, "(empty)" for a missing UA, None for a person."""
    return _bot_name(ua[:MAX_UA_LENGTH])


def is_preview_fetcher(name: str | None) -> bool:
    return name in PREVIEW_FETCHERS


@lru_cache(maxsize=4096)
def _bot_name(ua: str) -> str | None:
    ua = ua.strip()
    if not ua:
        return EMPTY
    if name := known_bot(ua):
        return name
    ua = _HUMAN_APP_TOKENS.sub("", ua)
    # The maintained lists, the reference device database's first: it names the bot.
    if name := reference.bot_name(ua):
        return name
    stripped = get_compiled_exclusions_regex().sub("", ua).strip()
    if stripped and (found := _CRAWLERDETECT.first_match(stripped)):
        return _name_of(found)
    if found := _CRAWLER_USER_AGENTS.first_match(ua):
        return _name_of(found)
    return None


def _name_of(matched: str | None) -> str:
    """A bot's name from the part of its User-Agent a crawler list matched: "Foobot/" and
    "(compatible; Foobot" both give "Foobot"."""
    return (matched or "").strip(" /;:(+-_") or "crawler"
