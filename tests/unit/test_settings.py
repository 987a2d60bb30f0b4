"""Settings a production server refuses to start with, and the ones it takes."""

import re

import pytest
from pydantic import ValidationError

from app.clicks import retention
from app.config import Settings

STRONG = "k" * 32  # as long as production asks


@pytest.mark.parametrize("secret", [None, "", "changeme", "CHANGEME", "secret"])
def test_production_refuses_a_missing_or_placeholder_secret(secret: str | None) -> None:
    with pytest.raises(ValidationError, match="TAUTAN_SECRET_KEY"):
        Settings(env="production", secret_key=secret)


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


def test_a_retention_under_one_day_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1 day"):
        retention.cutoff(0)
    with pytest.raises(ValueError):
        Settings(retention_days=0)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("clickhouse://db:9000/x", "http(s)://user:password@host:8123/database or chdb:///DIR"),
        ("db.internal:8123", "http(s)://user:password@host:8123/database or chdb:///DIR"),
        ("chdb://", "names the folder"),
        ("chdb:///", "names the folder"),
    ],
)
def test_a_clickhouse_url_is_a_server_or_a_chdb_folder(url: str, refused: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(refused)):
        Settings(clickhouse_url=url)
    for good in ("https://tautan:pw@ch.internal:8443/tautan", "chdb:///var/lib/tautan/ch"):
        assert Settings(clickhouse_url=good).clickhouse_url == good
