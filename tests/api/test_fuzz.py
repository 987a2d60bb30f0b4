"""Schemathesis fuzzes every operation of the app's own `/openapi.json` with an admin key,
on SQLite and PostgreSQL: no 5xx, no crash, every response as the schema declares it."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.python import asgi

from app import auth, migrate
from app.config import Settings
from app.core.database import create_engine, create_sessionmaker
from app.main import create_app
from tests.support.app import BASE_URL, DESKTOP_UA
from tests.support.clicks import write_log
from tests.support.databases import empty_database, run

ADMIN_TOKEN = "tk_fuzz_admin_0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
UAS = [
    DESKTOP_UA,
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
]


SLUGS = [f"fuzz-{n}" for n in range(3)]
EXAMPLES = 100  # per operation and backend


async def _admin_key(url: str) -> None:
    engine = create_engine(url)
    async with create_sessionmaker(engine)() as session, session.begin():
        await auth.create_key(session, name="fuzz", scopes=["admin"], token=ADMIN_TOKEN)
    await engine.dispose()


def _seed(client: asgi.ASGIClient, settings: Settings) -> None:
    """A few links with clicks, so that reads and stats meet real rows."""
    for n, (slug, campaign) in enumerate(zip(SLUGS, ["spring", "summer", "spring"], strict=True)):
        body = {
            "url": f"https://shop.example.com/p/{n}?ref=x",
            "slug": slug,
            "tags": ["fuzz", campaign],
            "utm_source": "instagram",
            "utm_campaign": campaign,
        }
        response = client.post("/api/links", json=body, headers=HEADERS)
        assert response.status_code == 201, response.text
        for ua in UAS:
            headers = {"User-Agent": ua, "Referer": "https://l.instagram.com/"}
            response = client.get(f"/{slug}", headers=headers, allow_redirects=False)
            assert response.status_code == 302
    today = datetime.now(UTC).date().isoformat()
    summary: dict = {}
    for _ in range(500):  # the writer flushes every 20 ms
        summary = client.get(
            "/api/stats/summary", params={"to": today, "include_bots": "true"}, headers=HEADERS
        ).json()
        if summary.get("clicks") == len(SLUGS) * len(UAS):
            return
        time.sleep(0.05)  # for the log's segment to be sealed
        write_log(settings)
    raise AssertionError(f"seeded clicks not written: {summary}")


@pytest.fixture(scope="module")
def fuzzed_app(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    tmp = tmp_path_factory.mktemp("fuzz")
    url = empty_database(backend, tmp, "fuzz")
    migrate.upgrade(url)
    run(_admin_key(url))
    settings = Settings(
        database_url=url,
        base_url=BASE_URL,
        spool_dir=str(tmp / "spool"),
        flush_interval_ms=20,
        # Every write counts against the key's limit; the fuzzer writes far more than a person.
        write_rate_limit="1000000/minute",
    )
    app = create_app(settings)
    with asgi.get_client(app) as client:  # starts the app's lifespan
        _seed(client, settings)
    yield app
    asgi.shutdown_lifespans()  # closes the engines


def _openapi() -> dict:
    """The schema as the app serves it; building the app opens no connection."""
    return create_app(Settings(database_url="sqlite+aiosqlite://", base_url=BASE_URL)).api.openapi()


# Every built-in check runs, except:
# - positive_data_acceptance: the schema cannot say which strings are IANA zones, dates,
#   cursors this API gave out or a CSV with a header row; those get a documented 4xx;
# - allow_header_conformance on fixed paths under /api/links/: `/api/links/{slug}` serves
#   them too (a link may be called `bulk`), so their Allow rightly names GET, PATCH, DELETE;
# - negative_data_rejection on GET: a query string carries only strings, so a "wrong type"
#   (`link=` for a list, `utm_medium=false`) reaches the app as a valid value;
# - ignored_auth: it sends its unauthenticated calls past the ASGI app, to a real host;
#   tests/api/test_isolation.py calls every route without a key, and with bad ones, instead.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            "ignored_auth": {"enabled": False},
        },
        "operations": [
            {
                "include-path-regex": "^/api/links/[^/{]+$",
                "checks": {"allow_header_conformance": {"enabled": False}},
            },
            {"include-method": "GET", "checks": {"negative_data_rejection": {"enabled": False}}},
        ],
    }
)
schema = schemathesis.openapi.from_dict(_openapi(), config=CONFIG)


@schema.hook
def flatmap_path_parameters(context: object, path_parameters: dict) -> st.SearchStrategy:
    """Half the slugs are seeded ones, so reads, changes and QR codes meet real links."""
    if not path_parameters or "slug" not in path_parameters:
        return st.just(path_parameters)
    seeded = st.sampled_from(SLUGS).map(lambda slug: {**path_parameters, "slug": slug})
    return st.one_of(st.just(path_parameters), seeded)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api(case: schemathesis.Case, fuzzed_app: object) -> None:
    """Positive and negative cases of every operation; new routes join by themselves."""
    case.call_and_validate(app=fuzzed_app, headers=HEADERS)
