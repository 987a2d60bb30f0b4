"""Rate limits: writes per key, per signed-in user and per client address; failed
authentication per client address; failed dashboard sign-ins per account."""

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from app.auth import revoke_key
from app.config import Settings
from app.core.tables import ApiKey
from app.dashboard.session import COOKIE
from app.main import create_app
from tests.support.app import BASE_URL, PEER, make_key, run_in_transaction, state_of
from tests.support.people import PASSWORD, make_user

REDIS = "redis://127.0.0.1:6379/15"


def app_client(settings: Settings, peer: tuple[str, int] = PEER, **changes: object) -> TestClient:
    limits = {"write_rate_limit": "3/minute", "write_rate_limit_per_ip": "5/minute"}
    app = create_app(settings.model_copy(update={**limits, **changes}))
    return TestClient(app, base_url=BASE_URL, follow_redirects=False, client=peer)


@pytest.fixture
def limited(settings: Settings) -> Iterator[TestClient]:
    with app_client(settings) as client:
        yield client


def create(client: TestClient, headers: dict, n: int, via: str | None = None) -> int:
    body = {"url": f"https://ok.example/{n}"}
    if via is not None:  # the client address, as a trusted proxy reports it
        headers = {**headers, "X-Forwarded-For": via}
    return client.post("/api/links", json=body, headers=headers).status_code


def test_writes_are_limited_per_key(limited: TestClient) -> None:
    key, other = make_key(limited, "links:write", "links:read"), make_key(limited, "links:write")
    assert [create(limited, key, n) for n in range(3)] == [201, 201, 201]
    refused = limited.post("/api/links", json={"url": "https://ok.example/x"}, headers=key)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert limited.get("/api/links", headers=key).status_code == 200  # reads are not limited
    assert len(limited.get("/api/links", headers=key).json()["links"]) == 3  # nothing written
    assert create(limited, other, 9) == 201  # another key has its own budget


@pytest.mark.xdist_group("redis")  # one Redis server for every worker: one at a time
def test_processes_share_the_limit_through_redis(settings: Settings) -> None:
    with app_client(settings, redis_url=REDIS) as one, app_client(settings, redis_url=REDIS) as two:
        assert one.portal is not None
        one.portal.call(state_of(one).rate_limiter.limiter.storage.reset)
        key = make_key(one, "links:write")
        assert [create(one, key, 1), create(two, key, 2), create(one, key, 3)] == [201] * 3
        assert create(two, key, 4) == 429


def test_writes_are_limited_per_client_address(limited: TestClient) -> None:
    keys = [make_key(limited, "links:write") for _ in range(3)]
    office, home = "198.51.100.7", "203.0.113.9"
    # Three keys from one address: 5 writes pass (3 on the first key), then the address is spent.
    codes = [create(limited, keys[n // 2], n, via=office) for n in range(5)]
    assert codes == [201] * 5
    assert create(limited, keys[2], 5, via=office) == 429
    assert create(limited, keys[2], 6, via=home) == 201  # another client has its own budget


def test_bad_keys_count_against_the_client_address(limited: TestClient) -> None:
    guesses = [
        limited.post(
            "/api/links",
            json={"url": "https://ok.example/"},
            headers={"Authorization": f"Bearer tk_guess{n}", "X-Forwarded-For": "198.51.100.8"},
        ).status_code
        for n in range(6)
    ]
    assert guesses == [401] * 5 + [429]


def test_ipv6_clients_are_counted_per_64(limited: TestClient) -> None:
    key = make_key(limited, "links:write")
    addresses = [f"2001:db8:1:2::{n}" for n in range(1, 6)]
    assert [create(limited, key, n, via=a) for n, a in enumerate(addresses[:3])] == [201] * 3
    other_key = make_key(limited, "links:write")
    assert create(limited, other_key, 3, via=addresses[3]) == 201
    assert create(limited, other_key, 4, via=addresses[4]) == 201
    assert create(limited, other_key, 5, via="2001:db8:1:2::99") == 429  # same /64
    assert create(limited, other_key, 6, via="2001:db8:1:3::1") == 201  # next /64


def test_ipv4_clients_of_a_dual_stack_socket_have_their_own_limits(settings: Settings) -> None:
    """`tautan serve --host ::` sees IPv4 peers, and a dual-stack proxy reports IPv4
    clients, as IPv4-mapped IPv6 (::ffff:a.b.c.d): they are not all one /64."""
    with app_client(settings, peer=("::ffff:127.0.0.1", 50000)) as client:
        keys = [make_key(client, "links:write") for _ in range(3)]
        office, home = "::ffff:198.51.100.7", "::ffff:203.0.113.9"
        assert [create(client, keys[n // 2], n, via=office) for n in range(5)] == [201] * 5
        assert create(client, keys[2], 5, via=office) == 429
        assert create(client, keys[2], 6, via=home) == 201


def test_an_untrusted_peer_cannot_pick_its_address(settings: Settings) -> None:
    with app_client(settings, peer=("198.51.100.50", 40000)) as client:
        keys = [make_key(client, "links:write") for _ in range(2)]
        spoofed = [create(client, keys[n % 2], n, via=f"203.0.113.{n}") for n in range(6)]
    assert spoofed == [201] * 5 + [429]  # X-Forwarded-For ignored: one address


def test_a_client_cannot_pick_its_address_past_a_proxy_that_adds_a_line(
    limited: TestClient,
) -> None:
    """The client sends its own X-Forwarded-For; the proxy adds the client's real address
    on a line of its own. Both lines make one list, whose last hop is the one to believe."""
    keys = [make_key(limited, "links:write") for _ in range(2)]
    codes = []
    for n in range(6):
        hops = [("Authorization", keys[n % 2]["Authorization"]),
                ("X-Forwarded-For", f"203.0.113.{n}"), ("X-Forwarded-For", "198.51.100.60")]  # fmt: skip
        response = limited.post("/api/links", json={"url": f"https://ok.example/{n}"}, headers=hops)
        codes.append(response.status_code)
    assert codes == [201] * 5 + [429]


def test_redirects_are_not_rate_limited(limited: TestClient) -> None:
    key = make_key(limited, "links:write", "links:read")
    slug = limited.post("/api/links", json={"url": "https://ok.example/"}, headers=key).json()
    codes = {limited.get(f"/{slug['slug']}").status_code for _ in range(50)}
    assert codes == {302}


# Failed authentication, per client address, on every route that checks a key or a session

REDIS_OF_THESE_TESTS = "redis://127.0.0.1:6379/11"
GUESSER, NEIGHBOUR = "198.51.100.20", "203.0.113.20"


def guarded(settings: Settings, **changes: object) -> TestClient:
    """The app with 3 failed authentications allowed per client address and minute (and
    writes enough not to get in the way)."""
    limits = {"auth_failure_rate_limit": "3/minute", "write_rate_limit_per_ip": "100/minute"}
    return app_client(settings, **{**limits, **changes})


def get(client: TestClient, path: str, headers: dict, via: str) -> int:
    return client.get(path, headers={**headers, "X-Forwarded-For": via}).status_code


def as_api_key(headers: dict) -> dict:
    return {"X-API-Key": headers["Authorization"].removeprefix("Bearer ")}


@pytest.mark.parametrize(
    "path", ["/api/links", "/api/stats/summary", "/api/links/export.csv", "/api/links/nope/qr"]
)
@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_wrong_keys_on_reads_are_limited_per_client_address(
    settings: Settings, path: str, header: str
) -> None:
    with guarded(settings) as client:
        right = make_key(client, "admin")
        wrong = {"Authorization": "Bearer tk_guess"}
        if header == "X-API-Key":
            right, wrong = as_api_key(right), as_api_key(wrong)
        assert [get(client, path, wrong, GUESSER) for _ in range(3)] == [401] * 3
        refused = client.get(path, headers={**wrong, "X-Forwarded-For": GUESSER})
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert "failed authentications" in refused.json()["error"]["message"]
        assert 0 < int(refused.headers["retry-after"]) <= 60
        # Refused before the key is checked: a right guess would tell nothing either.
        assert get(client, path, right, GUESSER) == 429
        # Other clients are not affected, and have a budget of their own.
        assert get(client, path, right, NEIGHBOUR) in {200, 404}
        assert get(client, path, wrong, NEIGHBOUR) == 401


def test_successful_authentication_does_not_count(settings: Settings) -> None:
    with guarded(settings) as client:
        reader, writer = make_key(client, "links:read"), make_key(client, "links:write")
        wrong = {"Authorization": "Bearer tk_guess"}
        assert {get(client, "/api/links", reader, GUESSER) for _ in range(10)} == {200}
        # A right key without the scope is authenticated: 403, not a failure.
        assert {get(client, "/api/links", writer, GUESSER) for _ in range(10)} == {403}
        assert {get(client, "/api/links", {}, GUESSER) for _ in range(10)} == {401}  # no key
        assert [get(client, "/api/links", wrong, GUESSER) for _ in range(4)] == [401] * 3 + [429]


def test_revoked_keys_count_as_failures(settings: Settings) -> None:
    """A revoked key gets the answer of a wrong one, and counts the same, so that the limit
    does not tell which keys exist."""
    with guarded(settings) as client:
        revoked = make_key(client, "links:read")
        token = revoked["Authorization"].removeprefix("Bearer ")
        key_id = run_in_transaction(
            client, lambda s: s.scalar(select(ApiKey.id).where(ApiKey.prefix == token[:10]))
        )
        run_in_transaction(client, lambda s: revoke_key(s, key_id))
        codes = [get(client, "/api/links", revoked, GUESSER) for _ in range(4)]
        assert codes == [401] * 3 + [429]


def test_wrong_keys_on_writes_are_limited_too(settings: Settings) -> None:
    with guarded(settings) as client:
        key = make_key(client, "links:write")
        guesses = [
            create(client, {"Authorization": f"Bearer tk_{n}"}, n, via=GUESSER) for n in range(4)
        ]
        assert guesses == [401] * 3 + [429]
        assert create(client, key, 9, via=GUESSER) == 429
        assert create(client, key, 9, via=NEIGHBOUR) == 201


def test_failed_authentication_of_ipv6_clients_is_counted_per_64(settings: Settings) -> None:
    with guarded(settings) as client:
        right, wrong = make_key(client, "links:read"), {"Authorization": "Bearer tk_guess"}
        hosts = [f"2001:db8:5:6::{n}" for n in range(1, 5)]
        assert [get(client, "/api/links", wrong, host) for host in hosts] == [401] * 3 + [429]
        assert get(client, "/api/links", right, "2001:db8:5:6::99") == 429  # same /64
        assert get(client, "/api/links", right, "2001:db8:5:7::1") == 200  # next /64


def sign_in(client: TestClient, email: str, via: str, password: str = PASSWORD) -> httpx.Response:
    headers = {"Origin": BASE_URL, "X-Forwarded-For": via}
    return client.post(
        "/dashboard/sign-in", data={"email": email, "password": password}, headers=headers
    )


def test_wrong_passwords_on_the_dashboard_sign_in_are_limited_per_client_address(
    settings: Settings,
) -> None:
    with guarded(settings) as client:
        make_user(client, "ana@tautan.test")
        # Each guess at another account (or none), so that no account's own limit counts.
        guesses = [sign_in(client, f"guess{n}@tautan.test", GUESSER) for n in range(2)]
        guesses.append(sign_in(client, "ana@tautan.test", GUESSER, password="not it at all"))
        assert [guess.status_code for guess in guesses] == [401] * 3
        refused = sign_in(client, "ana@tautan.test", GUESSER)  # the right password, too late
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert "set-cookie" not in refused.headers
        assert sign_in(client, "ana@tautan.test", NEIGHBOUR).status_code == 303


def test_failed_sign_ins_are_limited_per_account_from_any_address(settings: Settings) -> None:
    """Credential stuffing spreads its guesses over many addresses: past
    TAUTAN_SIGN_IN_RATE_LIMIT failures to one account, that account is refused from
    everywhere, the right password too, while other accounts stay open."""
    with guarded(settings, sign_in_rate_limit="3 per 15 minutes") as client:
        make_user(client, "ana@tautan.test")
        make_user(client, "budi@tautan.test")
        # One guess from each address (none reaches the per-address limit), the email
        # spelt differently each time: it is one account all the same.
        spellings = ["ana@tautan.test", "ANA@tautan.test", " Ana@Tautan.Test "]
        guesses = [
            sign_in(client, email, f"198.51.100.{n}", password=f"guess {n} of many")
            for n, email in enumerate(spellings, start=30)
        ]
        assert [guess.status_code for guess in guesses] == [401] * 3
        refused = sign_in(client, "ana@tautan.test", "203.0.113.40")  # right, from elsewhere
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 15 * 60
        assert "set-cookie" not in refused.headers
        assert "Too many failed sign-ins to this account" in refused.text
        assert sign_in(client, "ana@tautan.test", NEIGHBOUR).status_code == 429
        # Another account is open, from any address, the ones that guessed included.
        assert sign_in(client, "budi@tautan.test", "198.51.100.30").status_code == 303
        # The per-address limit holds beside it: guesses at many accounts from one address.
        wrong = [sign_in(client, f"guess{n}@tautan.test", GUESSER).status_code for n in range(4)]
        assert wrong == [401] * 3 + [429]
        assert sign_in(client, "budi@tautan.test", GUESSER).status_code == 429


def test_refused_dashboard_cookies_are_limited(settings: Settings) -> None:
    with guarded(settings) as client:
        make_user(client, "ana@tautan.test", "viewer")
        assert sign_in(client, "ana@tautan.test", NEIGHBOUR).status_code == 303
        good = client.cookies[COOKIE]

        def page(cookie: str, via: str) -> int:
            client.cookies.clear()
            client.cookies.set(COOKIE, cookie, domain="tautan.test", path="/dashboard")
            return client.get("/dashboard/links", headers={"X-Forwarded-For": via}).status_code

        assert [page(f"forged{n}", GUESSER) for n in range(4)] == [303] * 3 + [429]
        assert page(good, GUESSER) == 429  # a good session, from the address that guessed
        assert page(good, NEIGHBOUR) == 200


@pytest.mark.xdist_group("redis")  # one Redis server for every worker: one at a time
def test_processes_share_the_failure_limit_through_redis(settings: Settings) -> None:
    wrong = {"Authorization": "Bearer tk_guess"}
    with (
        guarded(settings, redis_url=REDIS_OF_THESE_TESTS) as one,
        guarded(settings, redis_url=REDIS_OF_THESE_TESTS) as two,
    ):
        storage = state_of(one).rate_limiter.limiter.storage
        assert one.portal is not None
        one.portal.call(storage.reset)
        try:
            codes = [get(c, "/api/links", wrong, GUESSER) for c in (one, two, one, two)]
            assert codes == [401] * 3 + [429]
        finally:
            one.portal.call(storage.reset)


def test_dashboard_forms_are_limited_per_account_as_keys_are(limited: TestClient) -> None:
    """A user's writes through the dashboard count against the user, as a key's through the
    API count against the key (3 a minute each here): each has a budget of its own."""
    make_user(limited, "ana@tautan.test")
    key = make_key(limited, "links:write", "links:read")
    assert sign_in(limited, "ana@tautan.test", "198.51.100.20").status_code == 303
    form = {"url": "https://ok.example/form"}
    posted = [
        limited.post("/dashboard/new", data=form, headers={"Origin": BASE_URL}).status_code
        for _ in range(3)
    ]
    assert posted == [303, 303, 303]
    refused = limited.post("/dashboard/new", data=form, headers={"Origin": BASE_URL})
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert "this account" in refused.text
    assert create(limited, key, 1, via="203.0.113.21") == 201  # the key's own budget
    assert len(limited.get("/api/links", headers=key).json()["links"]) == 4  # nothing more
