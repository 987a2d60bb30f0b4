"""Stats benchmark: seeds realistic clicks through the app's own ClickWriter into fresh
databases, then times the dashboard set of KPI queries (app.stats.service, from rollups)
against the same set computed naively from raw clicks. See bench/README.md.

    .venv/bin/python -m bench.stats_bench --clicks 1000000 --links 200 \\
        --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test [--chdb]

With `--chdb`, the same clicks go once more into embedded ClickHouse (clicks and their KPI
views in chdb, links in a SQLite file), and the dashboard set is timed on it too.
`--copy-to 10000000` then copies the seeded clicks inside each database up to that many
(new ids and visitor ids, the same links and times; the SQL rollups and counters scaled
to match, ClickHouse's views fed by the copies), where the writer would take an hour; the
naive sets are skipped then (minutes each at that size).

It runs on uvloop, as `tautan serve` answers the API and `tautan writer` writes.
"""

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import accumulate, islice
from pathlib import Path
from typing import Any

import uvloop
from mmdb_writer import MMDBWriter
from netaddr import IPSet
from rich.console import Console
from rich.table import Table
from sqlalchemy import case, func, make_url, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import app.core.tables  # noqa: F401  (every table on Base.metadata)
from app import migrate
from app.clickhouse import schema
from app.clickhouse.client import ClickHouse, connect
from app.clicks.enrich.enricher import Enricher
from app.clicks.enrich.referrer import _classify_host
from app.clicks.log import SegmentSource
from app.clicks.raw import RawClick
from app.clicks.store.clickhouse import ClickHouseStore
from app.clicks.store.sql import CLICK_COLUMNS
from app.clicks.writer import ClickWriter
from app.config import Settings
from app.core.client_ip import parse_ip, stored_ip
from app.core.database import create_engine, create_sessionmaker
from app.core.principal import Principal
from app.core.tables import Click, Link, LinkTag, Workspace
from app.secret_key import SecretKey
from app.stats import service
from app.stats.periods import parse_range, parse_zone
from app.stats.repository import Match, Scope, StatsQuery, named
from bench.databases import postgres_database

console = Console(width=130)  # as wide when piped to a log file
DAYS, POOL, BOT_SHARE, QR_SHARE = 90, 50_000, 0.07, 0.04
BREAKDOWNS = ("country", "device_type", "browser", "referrer_source", "utm_campaign", "link")
LINK_COLUMNS = {"link": Link.slug, "utm_campaign": Link.utm_campaign}
# For one link with 100,000+ clicks, and for the workspace: at 1,000,000 clicks (SQL), at
# 10,000,000 (ClickHouse).
TARGET_LINK_MS = {"sqlite": 300.0, "postgresql": 150.0, "chdb": 100.0}
TARGET_WORKSPACE_MS = {"sqlite": 1000.0, "postgresql": 1000.0, "chdb": 300.0}
TARGET_CLICKS = {"sqlite": 1_000_000, "postgresql": 1_000_000, "chdb": 10_000_000}
TARGET_RATIO = 10.0

# fmt: off
# code:name:zone:weight:Accept-Language:cities. Each city gets a /16 of its own in the .mmdb.
GEO = """ID:Indonesia:Asia/Jakarta:400:id-ID,id;q=0.9,en-US;q=0.8:Jakarta|Surabaya|Bandung|Medan
MY:Malaysia:Asia/Kuala_Lumpur:60:ms-MY,ms;q=0.9,en;q=0.8:Kuala Lumpur|Johor Bahru|George Town
SG:Singapore:Asia/Singapore:50:en-SG,en;q=0.9:Singapore
US:United States:America/New_York:60:en-US,en;q=0.9:New York|Los Angeles|Chicago
AU:Australia:Australia/Sydney:25:en-AU,en;q=0.9:Sydney|Melbourne|Perth
GB:United Kingdom:Europe/London:25:en-GB,en;q=0.9:London|Manchester
PH:Philippines:Asia/Manila:30:en-PH,en;q=0.9:Manila|Cebu City
TH:Thailand:Asia/Bangkok:20:th-TH,th;q=0.9:Bangkok|Chiang Mai
IN:India:Asia/Kolkata:20:en-IN,en;q=0.9,hi;q=0.8:Mumbai|Delhi|Bengaluru
VN:Vietnam:Asia/Ho_Chi_Minh:15:vi-VN,vi;q=0.9:Ho Chi Minh City|Hanoi
JP:Japan:Asia/Tokyo:15:ja-JP,ja;q=0.9:Tokyo|Osaka
DE:Germany:Europe/Berlin:15:de-DE,de;q=0.9,en;q=0.8:Berlin|Munich|Hamburg
NL:Netherlands:Europe/Amsterdam:15:nl-NL,nl;q=0.9,en;q=0.8:Amsterdam|Rotterdam
SA:Saudi Arabia:Asia/Riyadh:15:ar-SA,ar;q=0.9:Riyadh|Jeddah
KR:South Korea:Asia/Seoul:10:ko-KR,ko;q=0.9:Seoul|Busan
FR:France:Europe/Paris:10:fr-FR,fr;q=0.9:Paris|Lyon
AE:United Arab Emirates:Asia/Dubai:10:en-US,en;q=0.9,ar;q=0.8:Dubai|Abu Dhabi
TW:Taiwan:Asia/Taipei:8:zh-TW,zh;q=0.9:Taipei
HK:Hong Kong:Asia/Hong_Kong:8:zh-HK,zh;q=0.9,en;q=0.8:Hong Kong
CA:Canada:America/Toronto:8:en-CA,en;q=0.9,fr;q=0.8:Toronto|Vancouver
BR:Brazil:America/Sao_Paulo:6:pt-BR,pt;q=0.9:Sao Paulo|Rio de Janeiro
CN:China:Asia/Shanghai:5:zh-CN,zh;q=0.9:Shanghai|Beijing
TR:Turkey:Europe/Istanbul:5:tr-TR,tr;q=0.9:Istanbul
MX:Mexico:America/Mexico_City:4:es-MX,es;q=0.9:Mexico City
EG:Egypt:Africa/Cairo:4:ar-EG,ar;q=0.9:Cairo
IT:Italy:Europe/Rome:4:it-IT,it;q=0.9:Rome|Milan
ES:Spain:Europe/Madrid:4:es-ES,es;q=0.9:Madrid|Barcelona
RU:Russia:Europe/Moscow:4:ru-RU,ru;q=0.9:Moscow
NG:Nigeria:Africa/Lagos:3:en-NG,en;q=0.9:Lagos
ZA:South Africa:Africa/Johannesburg:3:en-ZA,en;q=0.9:Johannesburg|Cape Town"""
REFERERS = {"": 30, "https://l.instagram.com/": 18, "https://l.facebook.com/": 10,
            "https://lm.facebook.com/": 5, "https://t.co/": 5, "https://www.google.com/": 8,
            "https://www.google.co.id/": 4, "android-app://com.google.android.gm/": 2,
            "android-app://org.telegram.messenger/": 2, "https://www.tiktok.com/": 4,
            "https://www.youtube.com/": 3, "https://www.linkedin.com/": 2,
            "https://mail.google.com/": 2, "https://www.bing.com/": 1,
            "https://shop.example.co.id/blog/promo": 4}
BOTS = {"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)": 30,
        "WhatsApp/2.23.20.0": 12, "WhatsApp/2.24.6.77 A": 10, "WhatsApp/2.2413.51 i": 6,
        "Twitterbot/1.0": 7, "TelegramBot (like TwitterBot)": 7, "curl/8.5.0": 1,
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)": 3,
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)": 3,
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)": 2,
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
        "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0": 5,
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)": 4,
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)": 2,
        "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)": 4,
        "python-requests/2.32.3": 1}
# A mostly-mobile audience arriving from Instagram and Facebook, as Tautan's users see it.
KINDS = {"iphone": 12, "iphone instagram": 9, "iphone facebook": 4, "iphone tiktok": 3,
         "android": 17, "android reduced": 4, "android samsung": 4, "android instagram": 13,
         "android facebook": 9, "android tiktok": 6, "ipad": 2, "windows chrome": 8,
         "windows edge": 2, "windows firefox": 1, "mac safari": 3, "mac chrome": 3}
SOURCES = ("instagram", "facebook", "tiktok", "whatsapp", "email", "google")
CAMPAIGNS = ("ramadan", "payday", "flash-sale", "launch", "harbolnas", "school", "news", "brand", "ugc", "retarget")
IN_APP_REFERERS = {"instagram": "https://l.instagram.com/", "facebook": "https://l.facebook.com/",
                   "tiktok": "https://www.tiktok.com/"}
IOS = ("15_8_2", "16_6_1", "16_7_10", "17_1_2", "17_4_1", "17_5_1", "17_6_1", "18_0_1", "18_1_1")
PHONES = (("samsung", "SM-S918B"), ("samsung", "SM-A546E"), ("samsung", "SM-A155F"),
          ("samsung", "SM-G991B"), ("Xiaomi", "23021RAAEG"), ("Xiaomi", "Redmi Note 12"),
          ("Xiaomi", "2201117TG"), ("vivo", "V2207"), ("vivo", "V2111"), ("OPPO", "CPH2387"),
          ("OPPO", "CPH2591"), ("realme", "RMX3686"), ("realme", "RMX3830"),
          ("Google", "Pixel 8"), ("INFINIX", "Infinix X6833B"))
CHROME = ("120.0.6099.230", "122.0.6261.119", "124.0.6367.179", "126.0.6478.71", "130.0.6723.86")


def agent(kind: str, r: random.Random) -> str:
    """One User-Agent of `kind`: a real template, its versions and models varied."""
    ios, a, (brand, model), c = r.choice(IOS), r.choice(["11", "12", "13", "14"]), r.choice(PHONES), r.choice(CHROME)
    safari, major, n = ".".join(ios.split("_")[:2]), c.split(".")[0], r.randint
    iphone = f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    wv = f"Mozilla/5.0 (Linux; Android {a}; {model} Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/{c} Mobile Safari/537.36"
    win, blink = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", f"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0"
    return {
        "iphone": f"{iphone} Version/{safari} Mobile/15E148 Safari/604.1",
        "iphone instagram": f"{iphone} Mobile/15E148 Instagram {n(320, 350)}.0.0.{n(10, 40)}.{n(80, 120)} (iPhone{n(12, 16)},{n(2, 5)}; iOS {ios}; en_US; en; scale=3.00; 1170x2532; 60{n(1000, 9999)})",
        "iphone facebook": f"{iphone} Mobile/15E148 [FBAN/FBIOS;FBAV/{n(440, 480)}.0.0.{n(20, 60)}.{n(100, 120)};FBBV/6{n(10000, 99999)};FBDV/iPhone{n(12, 16)},{n(2, 5)};FBMD/iPhone;FBSN/iOS;FBSV/{safari};FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
        "iphone tiktok": f"{iphone} Mobile/15E148 musical_ly_{n(32, 36)}.{n(0, 9)}.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/id Region/ID WKWebView/1 BytedanceWebview/d8a21c6",
        "android": f"Mozilla/5.0 (Linux; Android {a}; {model}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{c} Mobile Safari/537.36",
        "android reduced": f"Mozilla/5.0 (Linux; Android 10; K) {blink} Mobile Safari/537.36",
        "android samsung": f"Mozilla/5.0 (Linux; Android {a}; {model}) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/{n(23, 26)}.0 Chrome/{c} Mobile Safari/537.36",
        "android instagram": f"{wv} Instagram {n(320, 350)}.0.0.{n(10, 40)}.{n(80, 120)} Android ({int(a) + 19}/{a}; 420dpi; 1080x2340; {brand}; {model}; qcom; en_US; 60{n(1000, 9999)})",
        "android facebook": f"{wv} [FB_IAB/FB4A;FBAV/{n(440, 480)}.0.0.{n(20, 60)}.{n(100, 120)};]",
        "android tiktok": f"{wv} trill_{n(320, 360)}0 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly app_version/{n(32, 36)}.{n(0, 9)}.3 ByteLocale/id Region/ID BytedanceWebview/d8a21c6",
        "ipad": f"Mozilla/5.0 (iPad; CPU OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{safari} Mobile/15E148 Safari/604.1",
        "windows chrome": f"{win} {blink} Safari/537.36",
        "windows edge": f"{win} {blink} Safari/537.36 Edg/{major}.0.{n(2000, 2900)}.{n(40, 99)}",
        "windows firefox": f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{n(120, 132)}.0) Gecko/20100101 Firefox/{n(120, 132)}.0",
        "mac safari": f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{n(16, 18)}.{n(0, 6)} Safari/605.1.15",
        "mac chrome": f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {blink} Safari/537.36",
    }[kind]
# fmt: on


@dataclass(frozen=True, slots=True)
class Visitor:
    ip: str
    logged_ip: str  # what the redirect logs of it by default (TAUTAN_STORE_IP=anonymized): the /24
    ua: str
    language: str
    app: str | None  # the in-app browser: it decides the likely referer


def world(r: random.Random, mmdb: Path) -> list[Visitor]:
    """Writes a GeoLite2-City-shaped database, and returns a pool of visitors living in it
    (3% outside it: no geography), each with a browser of its own."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City")
    places: list[tuple[str, str, str]] = []  # (/16 prefix, Accept-Language, weight)
    for octet, line in enumerate(GEO.splitlines(), start=31):  # 31-60: public, unreserved
        code, name, zone, weight, language, cities = line.split(":")
        for second, city in enumerate(cities.split("|")):
            record = {
                "country": {"iso_code": code, "names": {"en": name}},
                "subdivisions": [{"iso_code": "R", "names": {"en": f"{city} Region"}}],
                "city": {"names": {"en": city}},
                "location": {"latitude": octet - 30.5, "longitude": 90.5, "time_zone": zone},
            }
            writer.insert_network(IPSet([f"{octet}.{second}.0.0/16"]), record)
            places.append((f"{octet}.{second}", language, weight))
    writer.to_db_file(str(mmdb))
    agents = {kind: sorted({agent(kind, r) for _ in range(4 * w)}) for kind, w in KINDS.items()}
    homes = r.choices(places, weights=[int(p[2]) for p in places], k=POOL)
    kinds = r.choices(list(KINDS), weights=list(KINDS.values()), k=POOL)
    visitors = []
    for (prefix, language, _), kind in zip(homes, kinds, strict=True):
        if r.random() < 0.03:
            prefix = f"61.{r.randrange(256)}"  # not in the database
        ip = f"{prefix}.{r.randrange(256)}.{r.randrange(1, 255)}"
        app = next((name for name in IN_APP_REFERERS if name in kind), None)
        language = "" if r.random() < 0.08 else language
        logged_ip = stored_ip(parse_ip(ip), "anonymized") or ""
        visitors.append(Visitor(ip, logged_ip, r.choice(agents[kind]), language, app))
    console.print(
        f"{sum(map(len, agents.values()))} browser and {len(BOTS)} bot User-Agents, "
        f"{POOL:,} visitors, {len(places)} cities in {len(GEO.splitlines())} countries"
    )
    return visitors


def timestamps(r: random.Random, n: int, now: datetime) -> list[float]:
    """`n` sorted click times over the last DAYS UTC days up to now: busiest in the evening
    in Indonesia (UTC+7), more at weekends, and a little more as the campaigns grow."""
    first = datetime.combine(now.date() - timedelta(days=DAYS - 1), datetime.min.time(), UTC)
    local = [1, 1, 1, 1, 2, 3, 5, 6, 7, 7, 8, 9, 9, 8, 8, 8, 9, 10, 12, 14, 15, 13, 8, 3]
    hours = [first + timedelta(hours=i) for i in range(int((now - first) / timedelta(hours=1)))]
    weights = [
        local[(h.hour + 7) % 24] * (1.25 if h.weekday() >= 5 else 1) * (1 + i / (24 * DAYS))
        for i, h in enumerate(hours)
    ]
    picked = r.choices([h.timestamp() for h in hours], weights=weights, k=n)
    return sorted(min(start + r.random() * 3600, now.timestamp()) for start in picked)


async def make_links(engine: AsyncEngine, count: int) -> tuple[int, list[int], list[str]]:
    """A workspace with `count` links over 10 campaigns; returns its id, link ids, slugs."""
    async with create_sessionmaker(engine)() as session, session.begin():
        workspace = Workspace(name=f"bench-{os.getpid()}")
        session.add(workspace)
        await session.flush()
        links = [
            Link(
                workspace_id=workspace.id,
                slug=f"b{i:04d}",
                url=f"https://shop.example.co.id/p/{i}",
                utm_source=SOURCES[i % len(SOURCES)],
                utm_medium="social",
                utm_campaign=f"{CAMPAIGNS[i % len(CAMPAIGNS)]}-2026",
                tag_rows=[LinkTag(tag="promo"), LinkTag(tag=f"q{i % 4 + 1}")],
            )
            for i in range(count)
        ]
        session.add_all(links)
        await session.flush()
        return workspace.id, [link.id for link in links], [link.slug for link in links]


def raw_clicks(
    r: random.Random, visitors: list[Visitor], link_ids: list[int], workspace: int,
    times: list[float], new_ua_share: float,
) -> Iterator[RawClick]:  # fmt: skip
    """A click at each of `times`, as the redirect would log it: Zipf link popularity (s=1:
    the top link gets 1/H(n) of the clicks, 17% at 200 links), 7% bots and preview
    fetchers, in-app browsers that mostly say where they are, some QR scans, and
    `new_ua_share` of User-Agents never seen before."""
    popularity = [1 / rank for rank in range(1, len(link_ids) + 1)]
    bots, bot_weights = list(BOTS), list(accumulate(BOTS.values()))
    referers, referer_weights = list(REFERERS), list(accumulate(REFERERS.values()))
    for ts, link in zip(times, r.choices(link_ids, popularity, k=len(times)), strict=True):
        v, referer = r.choice(visitors), r.choices(referers, cum_weights=referer_weights)[0]
        ua, language = v.ua, v.language
        if r.random() < new_ua_share:
            # A User-Agent never seen before, as in-app browsers make them: their app
            # build number and screen differ from one phone to the next.
            ua += f" App/{r.randrange(10**9)}"
        if r.random() < BOT_SHARE:  # preview fetchers and crawlers send neither
            ua, referer, language = r.choices(bots, cum_weights=bot_weights)[0], "", ""
        elif v.app and r.random() < 0.7:  # in-app browsers mostly say where they are
            referer = IN_APP_REFERERS[v.app] if r.random() < 0.8 else ""
        trigger = "qr" if r.random() < QR_SHARE else "link"
        yield RawClick(link, workspace, ts, v.logged_ip, v.ip, ua, referer, language, trigger)


async def seed(
    engine: AsyncEngine, url: str, tmp: Path, args: argparse.Namespace, workspace: int,
    link_ids: list[int], now: datetime, clickhouse: ClickHouse | None = None,
) -> float:  # fmt: skip
    """Writes args.clicks clicks through the app's ClickWriter; returns its clicks/s."""
    r = random.Random(args.seed)  # the very same clicks in every database
    visitors = world(r, tmp / "GeoLite2-City.mmdb")
    times = timestamps(r, args.clicks, now)
    # Assembled as a writer process does (app/clicks/writers.py), its log in the temp dir.
    settings = Settings(database_url=url, geoip_db=str(tmp / "GeoLite2-City.mmdb"))
    sessionmaker = create_sessionmaker(engine)
    writer = ClickWriter(
        source=SegmentSource(str(tmp / f"spool-{engine.dialect.name}"), sessionmaker),
        sessionmaker=sessionmaker,
        enricher=Enricher(settings),
        secret_key=SecretKey(sessionmaker, "bench-" + "x" * 40),
        batch=args.batch,
        interval_s=0.2,
        clickhouse=ClickHouseStore(clickhouse) if clickhouse else None,
    )
    writer.enricher.warm()  # as a writer process does before its first batch
    clicks = raw_clicks(r, visitors, link_ids, workspace, times, args.new_ua_share)
    busy = 0.0
    tenth = (0, 0.0)  # clicks and busy seconds at the last progress line
    for offset in range(0, args.clicks, args.batch):
        batch = list(islice(clicks, args.batch))
        started = time.perf_counter()
        await writer.write(batch)  # enrichment, clicks, rollups and counters, as in production
        busy += time.perf_counter() - started
        done = offset + len(batch)
        if done * 10 // args.clicks != offset * 10 // args.clicks:
            # The rate of this tenth apart: a new process starts slower (the parsers compile
            # their regexes at first use), and the mean hides how fast it goes after that.
            recent = (done - tenth[0]) / max(busy - tenth[1], 1e-9)
            console.print(
                f"  {engine.dialect.name}: {done:,} clicks, {done / busy:,.0f}/s "
                f"(this tenth {recent:,.0f}/s)"
            )
            tenth = (done, busy)
    memo_report(writer.enricher)
    writer.enricher.geo.close()
    return args.clicks / busy


def memo_report(enricher: Enricher) -> None:
    """How often the writer's memos spared it the work."""
    console.print(
        f"  device memo: {len(enricher._devices):,} User-Agents kept; "
        f"{enricher.device_fallbacks:,} guessed past the batch's budget"
    )
    for name, info in (
        ("address -> stored IP and place", enricher.place.cache_info()),
        ("IP -> geo lookup", enricher.geo._lookup.cache_info()),
        ("referrer host -> domain and source", _classify_host.cache_info()),
    ):
        calls = info.hits + info.misses
        console.print(f"  memo {name}: {info.hits / max(calls, 1):.1%} hits of {calls:,} "
                      f"({info.currsize:,} kept, at most {info.maxsize:,})")  # fmt: skip


Step = tuple[str, Callable[[AsyncSession], Awaitable[Any]]]


def service_steps(principal: Principal, q: StatsQuery, clickhouse: ClickHouse | None) -> list[Step]:
    scope = Scope(principal, q)
    reads = partial(service.reads_for, clickhouse=clickhouse)
    steps: list[Step] = [
        ("summary", lambda s: service.summary(reads(s), scope)),
        ("timeseries day", lambda s: service.timeseries(reads(s), scope, "day")),
    ]
    for d in BREAKDOWNS:
        steps.append((f"top {d}", lambda s, d=d: service.breakdown(reads(s), scope, d, 10)))
    return steps


def naive_steps(dialect: str, principal: Principal, q: StatsQuery) -> list[Step]:
    """The same set the plain way: aggregates over raw `clicks` (joined to `links` for
    link attributes), as a dashboard without rollups would do it."""
    where = [Click.workspace_id == principal.workspace_id, Click.ts >= q.start, Click.ts < q.end]
    if q.links:
        where.append(Click.link_id.in_(select(Link.id).where(named(q.links))))
    for attribute, match in q.attributes:
        where.append(match.condition(getattr(Click, attribute)))
    humans = [*where, Click.is_bot.is_(False)]
    visitors = func.count(func.distinct(Click.visitor_id))
    if dialect == "sqlite":  # no zone database in SQLite: the range's offset (fixed in Jakarta)
        offset = q.tz.utcoffset(q.start.replace(tzinfo=None)) or timedelta()
        day = func.date(Click.ts, f"{int(offset.total_seconds()):+d} seconds")
    else:
        day = func.date(func.timezone(q.tz.key, Click.ts))

    async def summary(s: AsyncSession) -> Any:
        totals = select(func.count(), visitors, func.min(Click.ts), func.max(Click.ts))
        row = (await s.execute(totals.where(*humans))).one()
        bots = await s.scalar(select(func.sum(case((Click.is_bot, 1), else_=0))).where(*where))
        return (*row, bots)

    def grouped(column: Any, *, limit: int | None = 10, join: bool = False) -> Any:
        query = select(column, func.count(), visitors).where(*humans).group_by(column)
        if join:
            query = query.join(Link, Link.id == Click.link_id)
        return lambda s: s.execute(query.order_by(func.count().desc()).limit(limit))

    steps: list[Step] = [("summary", summary), ("timeseries day", grouped(day, limit=None))]
    for d in BREAKDOWNS:
        if d in LINK_COLUMNS:
            steps.append((f"top {d}", grouped(LINK_COLUMNS[d], join=True)))
        else:
            steps.append((f"top {d}", grouped(getattr(Click, d))))
    return steps


@dataclass
class Timing:
    totals: list[float] = field(default_factory=list)  # ms per whole set
    per_query: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    summary: Any = None

    @property
    def median(self) -> float:
        return statistics.median(self.totals)


async def time_set(read: async_sessionmaker[AsyncSession], steps: list[Step], runs: int) -> Timing:
    """Runs the steps in order, each in a read session of its own as an API request has;
    round 0 only warms the caches (as a live server's are) and is not counted."""
    timing = Timing()
    for round_ in range(runs + 1):
        set_started = time.perf_counter()
        for name, step in steps:
            started = time.perf_counter()
            async with read() as session:
                answer = await step(session)
            if round_:
                timing.per_query[name].append((time.perf_counter() - started) * 1000)
            timing.summary = answer if name == "summary" else timing.summary
        if round_:
            timing.totals.append((time.perf_counter() - set_started) * 1000)
    return timing


async def bench(
    name: str, url: str, tmp: Path, args: argparse.Namespace, now: datetime,
    clickhouse: ClickHouse | None = None,
) -> dict:  # fmt: skip
    await asyncio.to_thread(migrate.upgrade, url)  # Alembic runs an event loop of its own
    if clickhouse:
        await schema.upgrade(clickhouse)
    engine = create_engine(url)
    try:
        workspace, link_ids, slugs = await make_links(engine, args.links)
        rate = await seed(engine, url, tmp, args, workspace, link_ids, now, clickhouse)
        console.print(f"[bold]{name}: the writer stored {rate:,.0f} clicks/s[/]")
        copied = args.copy_to > args.clicks
        if copied and clickhouse:
            await multiply(clickhouse, -(-args.copy_to // args.clicks))
        elif copied:
            await multiply_sql(engine, -(-args.copy_to // args.clicks))
        if clickhouse:
            await merge_parts(clickhouse)
        if args.seed_only:
            return {"name": name, "rate": rate, "rows": [], "top": slugs[0]}
        if name == "postgresql":  # what autovacuum does to a live server after a bulk load
            async with engine.connect() as connection:
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(text("VACUUM ANALYZE"))
        read = create_sessionmaker(engine, deferred=True)
        principal = Principal(key_id=0, workspace_id=workspace, scopes=frozenset({"stats:read"}))
        first, rows = (now.date() - timedelta(days=DAYS - 1)).isoformat(), []
        for tz, attributes, label in (
            ("UTC", (), ""),
            ("Asia/Jakarta", (), " tz=Asia/Jakarta"),
            ("UTC", (("country", Match(("ID",))),), " country=ID (raw fallback)"),
        ):
            zone = parse_zone(tz)
            start, end = parse_range(first, datetime.now(zone).date().isoformat(), zone)
            for scope, links in (("link", (("", slugs[0]),)), ("workspace", ())):
                q = StatsQuery(start=start, end=end, tz=zone, links=links, attributes=attributes)
                console.print(f"  timing {name} {scope}{label}")
                fast = await time_set(read, service_steps(principal, q, clickhouse), args.runs)
                if clickhouse or copied:  # ClickHouse is the engine a naive set would use
                    rows.append((scope + label, fast.summary["clicks"], fast, None))
                    continue
                naive = await time_set(read, naive_steps(name, principal, q), args.runs)
                clicks = fast.summary["clicks"]
                if clicks != naive.summary[0]:
                    console.print(
                        f"[bold red]!!! MISMATCH {name} {scope}{label}: the service counts "
                        f"{clicks:,} clicks, raw clicks {naive.summary[0]:,} !!![/]"
                    )
                rows.append((scope + label, clicks, fast, naive))
        return {"name": name, "rate": rate, "rows": rows, "top": slugs[0]}
    finally:
        await engine.dispose()


async def multiply_sql(engine: AsyncEngine, times: int) -> None:
    """The clicks copied in the SQL database until there are `times` as many, with the
    rollups and the links' counters scaled to match (each copy counts as its original)."""
    started = time.perf_counter()
    columns = ", ".join(f'"{c}"' for c in CLICK_COLUMNS)
    # New visitor ids of the same length: the copy's number in place of two hex digits.
    copies = columns.replace('"visitor_id"', "substr(:tag || visitor_id, 1, 32)")
    async with engine.begin() as connection:
        last = await connection.scalar(select(func.max(Click.id)))
        for copy in range(1, times):
            await connection.execute(
                text(
                    f"INSERT INTO clicks ({columns}) SELECT {copies} FROM clicks WHERE id <= :last"
                ),
                {"tag": f"{copy:02x}", "last": last},
            )
        for table in ("rollup_hours", "rollup_days"):
            await connection.execute(
                text(f"UPDATE {table} SET clicks = clicks * :n, visitors = visitors * :n"),
                {"n": times},
            )
        await connection.execute(
            text("UPDATE links SET clicks = clicks * :n, unique_visitors = unique_visitors * :n, "
                 "bot_clicks = bot_clicks * :n"), {"n": times},
        )  # fmt: skip
        count = await connection.scalar(select(func.count()).select_from(Click))
    console.print(
        f"  {engine.dialect.name}: copied to {count:,} clicks in {time.perf_counter() - started:,.0f} s"
    )


async def multiply(clickhouse: ClickHouse, times: int) -> None:
    """The clicks copied inside ClickHouse until there are `times` as many."""
    started = time.perf_counter()
    original = 1 << 40  # above every id the writer gives (batch id << 24, + place)
    columns = [name for (name,) in await clickhouse.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'clicks' ORDER BY position"
    )]  # fmt: skip
    copied = {
        "id": "id + {copy:UInt64} * {original:UInt64}",
        "visitor_id": "concat(visitor_id, {tag:String})",
    }
    select = ", ".join(copied.get(name, name) for name in columns)
    for copy in range(1, times):
        await clickhouse.execute(
            f"INSERT INTO clicks ({', '.join(columns)}) SELECT {select} FROM clicks "
            "WHERE id < {original:UInt64}",
            copy=copy, original=original, tag=f"~{copy}",
        )  # fmt: skip
    [(count,)] = await clickhouse.query("SELECT count() FROM clicks")
    console.print(f"  chdb: copied to {count:,} clicks in {time.perf_counter() - started:,.0f} s")


async def merge_parts(clickhouse: ClickHouse) -> None:
    """Merge each table's parts, as a live server's background merges do within minutes
    of a burst of inserts (each insert is a part of its own at first)."""
    count = "SELECT count() FROM system.parts WHERE database = currentDatabase() AND active"
    [(before,)] = await clickhouse.query(count)
    started = time.perf_counter()
    for table in ("clicks", "rollup_hours", "rollup_days"):
        await clickhouse.execute(f"OPTIMIZE TABLE {table} FINAL")
    [(after,)] = await clickhouse.query(count)
    console.print(
        f"  chdb: {before:,} parts merged into {after:,} in {time.perf_counter() - started:,.0f} s"
    )


def revision() -> str:
    """The code measured, read at the start: the commit, and whether app/ or migrations/
    had uncommitted changes (another checkout may be editing them)."""

    def git(*args: str) -> str:
        root = str(Path(__file__).resolve().parent.parent)
        done = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True)
        return done.stdout.strip()

    dirty = (
        " + uncommitted app changes" if git("status", "--porcelain", "app", "migrations") else ""
    )
    return (git("rev-parse", "--short", "HEAD") or "unknown") + dirty


def report(results: list[dict], args: argparse.Namespace) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())  # other work on the machine skews it
    console.print(
        f"app at {args.revision}; {args.clicks:,} clicks, {args.links} links; load {load}"
    )
    table = Table(title=f"Dashboard set (summary, daily series, 6 top-10), median of {args.runs}")
    for column in ("database", "scope", "clicks in scope", "rollup ms", "naive ms", "naive/rollup"):
        table.add_column(column, justify="left" if column in ("database", "scope") else "right")
    targets = Table("database", "target", "measured", "result", title="Targets")
    verdict = {True: "[green]PASS[/]", False: "[red]FAIL[/]"}
    for result in results:
        db = result["name"]
        seeded = max(args.clicks, args.copy_to)
        small = f" (at {seeded:,} clicks)" if seeded < TARGET_CLICKS[db] else ""
        for scope, clicks, fast, naive in result["rows"]:
            ms = fast.median
            ratio = naive.median / ms if naive else None
            slow = f"{naive.median:,.1f}" if naive else "—"
            times = f"{ratio:,.1f}×" if ratio else "—"
            table.add_row(db, scope, f"{clicks:,}", f"{ms:,.1f}", slow, times)
            if scope == "link":
                limit, few = TARGET_LINK_MS[db], f" (link has {clicks:,})" if clicks < 100_000 else ""  # fmt: skip
                targets.add_row(db, f"one link, 100,000+ clicks: ≤ {limit:.0f} ms", f"{ms:,.1f} ms", verdict[ms <= limit] + few)  # fmt: skip
            elif scope == "workspace":
                limit = TARGET_WORKSPACE_MS[db]
                targets.add_row(db, f"workspace, {TARGET_CLICKS[db]:,} clicks: ≤ {limit:.0f} ms", f"{ms:,.1f} ms", verdict[ms <= limit] + small)  # fmt: skip
            if scope in ("link", "workspace") and ratio:
                targets.add_row(db, f"{scope}: ≥ {TARGET_RATIO:.0f}× faster than naive", f"{ratio:,.1f}×", verdict[ratio >= TARGET_RATIO] + small)  # fmt: skip
    console.print(table)
    for result in results:
        per = Table(title=f"{result['name']}: median ms per query, UTC (link = {result['top']})")
        for column in ("query", "link rollup", "link naive", "workspace rollup", "workspace naive"):
            per.add_column(column, justify="left" if column == "query" else "right")
        (_, _, link, link_naive), (_, _, ws, ws_naive) = result["rows"][:2]
        for query in link.per_query:
            cells = (
                f"{statistics.median(t.per_query[query]):,.1f}" if t else "—"
                for t in (link, link_naive, ws, ws_naive)
            )
            per.add_row(query, *cells)
        console.print(per)
    for result in results:
        console.print(f"{result['name']}: the writer stored {result['rate']:,.0f} clicks/s")
    console.print(targets)


async def main(args: argparse.Namespace, tmp: Path) -> None:
    now = datetime.now(UTC)  # one "now", so that every database gets the very same clicks
    results, created, name = [], False, f"tautan_bench_{os.getpid()}"
    try:
        if not args.postgres_only:
            url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
            results.append(await bench("sqlite", url, tmp, args, now))
        if args.postgres and not args.sqlite_only:
            if make_url(args.postgres).host not in ("127.0.0.1", "localhost", "::1"):
                raise SystemExit("--postgres: a local server only (the run creates a database)")
            url = await postgres_database(args.postgres, name, create=True)
            created = True
            results.append(await bench("postgresql", url, tmp, args, now))
        if args.chdb:
            clickhouse = connect(f"chdb://{tmp / 'chdb'}")
            try:
                url = f"sqlite+aiosqlite:///{tmp / 'links-for-chdb.db'}"
                results.append(await bench("chdb", url, tmp, args, now, clickhouse))
            finally:
                await clickhouse.close()
        if not args.seed_only:
            report(results, args)
    finally:
        if created and args.keep:
            console.print(f"kept PostgreSQL database {name}")
        elif created:
            await postgres_database(args.postgres, name, create=False)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--links", type=int, default=200)
    parser.add_argument("--postgres", help="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sqlite-only", action="store_true", help="ignore --postgres")
    parser.add_argument("--postgres-only", action="store_true", help="skip SQLite")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each set (median)")
    parser.add_argument("--batch", type=int, default=5000, help="clicks per ClickWriter.write")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the click stream")
    parser.add_argument("--keep", action="store_true", help="keep the databases, to EXPLAIN")
    parser.add_argument("--seed-only", action="store_true", help="measure the writer only")
    parser.add_argument("--chdb", action="store_true", help="also with embedded ClickHouse")
    parser.add_argument(
        "--copy-to", type=int, default=0, help="copy the seeded clicks up to this many"
    )
    parser.add_argument(
        "--new-ua-share", type=float, default=0.05,
        help="share of clicks whose User-Agent the writer has never seen (default 0.05)",
    )  # fmt: skip
    args = parser.parse_args()
    args.revision = revision()
    tmp = Path(tempfile.mkdtemp(prefix="tautan-bench-"))
    try:
        uvloop.run(main(args, tmp))
    except KeyboardInterrupt:
        console.print("interrupted")
    finally:
        if args.keep:
            console.print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    cli()
