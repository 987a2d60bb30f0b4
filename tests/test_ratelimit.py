from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.conftest import BASE_URL, PEER, make_key

REDIS = "redis://127.0.0.1:6379/15"


def app_client(settings: Settings, **changes: object) -> TestClient:
    app = create_app(settings.model_copy(update={"write_rate_limit": "3/minute", **changes}))
    return TestClient(app, base_url=BASE_URL, follow_redirects=False, client=PEER)


@pytest.fixture
def limited(settings: Settings) -> Iterator[TestClient]:
    with app_client(settings) as client:
        yield client


def create(client: TestClient, headers: dict, n: int) -> int:
    body = {"url": f"https://ok.example/{n}"}
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


def test_processes_share_the_limit_through_redis(settings: Settings) -> None:
    with app_client(settings, redis_url=REDIS) as one, app_client(settings, redis_url=REDIS) as two:
        assert one.portal is not None
        one.portal.call(one.app.api.state.rate_limiter.limiter.storage.reset)  # type: ignore[attr-defined]
        key = make_key(one, "links:write")
        assert [create(one, key, 1), create(two, key, 2), create(one, key, 3)] == [201] * 3
        assert create(two, key, 4) == 429
