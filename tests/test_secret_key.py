import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.secret_key import InstanceSecret
from tests.conftest import BASE_URL, PEER, in_app


def secret_of(settings: Settings) -> str:
    with TestClient(create_app(settings), base_url=BASE_URL, client=PEER) as client:
        return client.portal.call(client.app.api.state.secret_key.get)  # type: ignore[attr-defined, union-attr]


def test_development_generates_a_secret_once_and_keeps_it(settings: Settings) -> None:
    first = secret_of(settings)
    assert len(first) >= 48
    assert secret_of(settings) == first  # a restart (or another process) shares it


def test_a_configured_secret_is_used_and_never_stored(settings: Settings) -> None:
    configured = settings.model_copy(update={"secret_key": "k" * 40})
    with TestClient(create_app(configured), base_url=BASE_URL, client=PEER) as client:
        assert client.portal.call(client.app.api.state.secret_key.get) == "k" * 40  # type: ignore[attr-defined, union-attr]
        assert in_app(client, lambda s: s.scalar(select(InstanceSecret.value))) is None


@pytest.mark.parametrize("secret", [None, "", "changeme", "CHANGEME", "secret"])
def test_production_refuses_a_missing_or_placeholder_secret(secret: str | None) -> None:
    with pytest.raises(ValidationError, match="TAUTAN_SECRET_KEY"):
        Settings(env="production", secret_key=secret)


def test_serve_refuses_to_start_in_production_without_a_secret(
    database_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TAUTAN_SECRET_KEY"}
    env |= {"TAUTAN_ENV": "production", "TAUTAN_DATABASE_URL": database_url}
    command = [str(Path(sys.executable).parent / "tautan"), "serve", "--port", "1"]
    result = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "TAUTAN_SECRET_KEY is missing or a placeholder" in result.stderr + result.stdout
