from sqlalchemy import select
from starlette.testclient import TestClient

from app.config import Settings
from app.core.tables import InstanceSecret
from app.main import create_app
from tests.support.app import BASE_URL, PEER, run_in_transaction, state_of


def secret_of(settings: Settings) -> str:
    with TestClient(create_app(settings), base_url=BASE_URL, client=PEER) as client:
        return client.portal.call(state_of(client).secret_key.get)


def test_development_generates_a_secret_once_and_keeps_it(settings: Settings) -> None:
    first = secret_of(settings)
    assert len(first) >= 48
    assert secret_of(settings) == first  # a restart (or another process) shares it


def test_a_configured_secret_is_used_and_never_stored(settings: Settings) -> None:
    configured = settings.model_copy(update={"secret_key": "k" * 40})
    with TestClient(create_app(configured), base_url=BASE_URL, client=PEER) as client:
        assert client.portal.call(state_of(client).secret_key.get) == "k" * 40
        assert run_in_transaction(client, lambda s: s.scalar(select(InstanceSecret.value))) is None
