import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
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


@pytest.mark.parametrize("secret", [None, "", "changeme", "CHANGEME", "secret"])
def test_production_refuses_a_missing_or_placeholder_secret(secret: str | None) -> None:
    with pytest.raises(ValidationError, match="TAUTAN_SECRET_KEY"):
        Settings(env="production", secret_key=secret)


STRONG = "k" * 32  # as long as production asks


@pytest.mark.parametrize(
    ("variables", "refused"),
    [
        ({"secret_key": "k" * 31}, "TAUTAN_SECRET_KEY is shorter than 32 characters"),
        ({"secret_key": STRONG, "admin_key": "hunter2"}, "TAUTAN_ADMIN_KEY is shorter than 32"),
        ({"secret_key": STRONG, "admin_key": "changeme"}, "TAUTAN_ADMIN_KEY is a placeholder"),
    ],
)
def test_production_refuses_a_short_secret_or_admin_key(
    variables: dict[str, str], refused: str
) -> None:
    with pytest.raises(ValidationError, match=refused) as error:
        Settings(env="production", **variables)
    assert "secrets.token_urlsafe(32)" in str(error.value)  # how to make a good one
    for value in variables.values():  # a refused key is not written to the log
        assert value not in str(error.value)


def test_production_takes_long_keys_and_development_takes_any() -> None:
    Settings(env="production", secret_key=STRONG, admin_key="a" * 32)
    Settings(env="production", secret_key=STRONG)  # no admin key: one is printed at start
    Settings(env="development", secret_key="x", admin_key="a")


def serve_in_production(database_url: str, tmp_path: Path, **variables: str) -> str:
    """`tautan serve` in production with these TAUTAN_* variables, expected to refuse to
    start: its output, on one line (the terminal wraps it)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("TAUTAN_SECRET_KEY", "TAUTAN_ADMIN_KEY")
    }
    env |= {"TAUTAN_ENV": "production", "TAUTAN_DATABASE_URL": database_url}
    env |= {f"TAUTAN_{name.upper()}": value for name, value in variables.items()}
    command = [str(Path(sys.executable).parent / "tautan"), "serve", "--port", "1"]
    result = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    return " ".join((result.stderr + result.stdout).split())


def test_serve_refuses_to_start_in_production_without_a_secret(
    database_url: str, tmp_path: Path
) -> None:
    assert "TAUTAN_SECRET_KEY is missing" in serve_in_production(database_url, tmp_path)


def test_serve_refuses_a_short_admin_key_in_production(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    output = serve_in_production(database_url, tmp_path, secret_key=STRONG, admin_key="hunter2")
    assert "TAUTAN_ADMIN_KEY is shorter than 32 characters" in output
    assert "secrets.token_urlsafe(32)" in output
    assert "hunter2" not in output
    # ...and `Bearer hunter2` opens nothing.
    assert client.get("/api/links", headers={"Authorization": "Bearer hunter2"}).status_code == 401
