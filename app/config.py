"""Settings, read from `TAUTAN_*` environment variables (the table in README.md)."""

from functools import lru_cache
from ipaddress import ip_network
from typing import Annotated, Literal
from urllib.parse import urlsplit

from limits import parse
from pydantic import NonNegativeInt, PositiveInt, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.core.client_ip import Network

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "placeholder", "dev"}
# 32 characters of `secrets.token_urlsafe` carry about 190 bits: out of reach of guessing,
# while anything a person types from memory is usually far shorter.
MIN_SECRET_LENGTH = 32
GENERATE_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
# The geo database in use when TAUTAN_GEOIP_DB is unset: DB-IP's free Country Lite, which
# `tautan serve` fetches there on first start (TAUTAN_GEO_DOWNLOAD).
DEFAULT_GEO_DB = "./geo/dbip-country-lite.mmdb"
REDIS_SCHEMES = ("redis", "rediss", "unix")


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    # The settings hold secrets (keys, database passwords): an error must not echo them
    # into a log. It still names the variable and what is wrong with it.
    model_config = SettingsConfigDict(
        env_prefix="TAUTAN_", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = "sqlite+aiosqlite:///./tautan.db"
    read_database_url: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    geoip_db: str | None = None  # unset: DEFAULT_GEO_DB (see geo_db_path)
    # With TAUTAN_GEOIP_DB unset, `tautan serve` fetches the free DB-IP Country Lite database
    # on first start; false: no outbound fetch, no geography until `tautan geo update`.
    geo_download: bool = True
    trusted_proxies: Annotated[list[Network], NoDecode] = [
        ip_network("127.0.0.1/32"),
        ip_network("::1/128"),
    ]
    ignore_ips: Annotated[list[Network], NoDecode] = []
    admin_key: str | None = None
    flush_interval_ms: int = 200
    flush_batch: int = 1000
    spool_dir: str = "./spool"  # the click log
    # Past this size the click log takes no more clicks (counted in tautan_clicks_dropped_total)
    # until the writers catch up: a long outage of the database cannot fill the disk.
    spool_max_mb: PositiveInt = 1024
    writers: NonNegativeInt = 1  # writer processes `tautan serve` starts (0: run elsewhere)
    link_cache_ttl_s: float = 30
    store_ip: Literal["none", "anonymized", "full"] = "anonymized"
    env: Literal["development", "production"] = "development"
    secret_key: str | None = None
    redis_url: str | None = None
    # redis://host:port/db: the click log is the Redis Stream `tautan:clicks` there (writers
    # on any machine); unset: the segment files of spool_dir alone.
    click_stream: str | None = None
    # http(s)://user:password@host:8123/database (a server) or chdb:///DIR (embedded):
    # clicks and their KPIs live in ClickHouse; unset: in the SQL database.
    clickhouse_url: str | None = None
    write_rate_limit: str = "600/minute"  # per API key, on every API write
    write_rate_limit_per_ip: str = "1200/minute"  # per client address (IPv6: per /64)
    # Failed authentication (a wrong, revoked or expired key; a bad dashboard session) per
    # client address, on every route that checks one: guessing keys stays slow.
    auth_failure_rate_limit: str = "30/minute"
    # Password attempts on a protected link, per client address and link (right or wrong).
    password_rate_limit: str = "10/minute"
    # Failed dashboard sign-ins per account, from any address (credential stuffing spreads
    # over many addresses; the per-address limit above holds the rest).
    sign_in_rate_limit: str = "10 per 15 minutes"
    # Reads of client reports (/reports/…: pages, charts, maps, CSVs) per client address:
    # whoever holds a report's link may read it, not make the server read without end.
    report_rate_limit: str = "120/minute"
    retention_days: PositiveInt | None = None  # unset: raw clicks are kept
    audit_retention_days: PositiveInt = 400  # audit entries older than this are purged
    # smtp(s)://user:password@host:port for invite and password-reset mail; unset: the
    # one-time links are shown to the owner (or printed by `tautan users`) instead.
    smtp_url: str | None = None
    smtp_from: str | None = None  # the sender; unset: tautan@ the host of base_url
    cors_origins: Annotated[list[str], NoDecode] = []
    import_max_bytes: int = 10 * 1024 * 1024  # CSV uploads to POST /api/links/import
    # Ask Chromium browsers for their model (Accept-CH); `critical` makes them ask again at
    # once with it (Critical-CH), so that even a first click names the phone.
    client_hints: Literal["off", "ask", "critical"] = "critical"

    def geo_db_path(self) -> str:
        """The geo database in use: TAUTAN_GEOIP_DB, else DEFAULT_GEO_DB (which may not be
        there yet: `tautan serve` fetches it on first start)."""
        return self.geoip_db or DEFAULT_GEO_DB

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, data: dict) -> dict:
        for name in ("trusted_proxies", "ignore_ips", "cors_origins"):
            if name in data:
                data[name] = _split(data[name])
        return data

    @field_validator(
        "write_rate_limit", "write_rate_limit_per_ip", "auth_failure_rate_limit",
        "password_rate_limit", "sign_in_rate_limit", "report_rate_limit",
    )  # fmt: skip
    @classmethod
    def _rate(cls, value: str) -> str:
        parse(value)  # e.g. "600/minute"; raises a clear ValueError otherwise
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if value and (
            urlsplit(value).scheme not in ("smtp", "smtps") or not urlsplit(value).hostname
        ):
            raise ValueError("must be smtp://[user:password@]host[:port] or smtps://…")
        return value or None

    @field_validator("click_stream")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in REDIS_SCHEMES:
            raise ValueError(
                f"must be a Redis URL ({', '.join(REDIS_SCHEMES)}), e.g. redis://127.0.0.1:6379/0"
            )
        return value

    @field_validator("clickhouse_url")
    @classmethod
    def _clickhouse_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https", "chdb"):
                raise ValueError(
                    "must be http(s)://user:password@host:8123/database or chdb:///DIR"
                )
            if parts.scheme == "chdb" and not (parts.netloc + parts.path).strip("/"):
                raise ValueError("chdb:///DIR names the folder of the embedded database")
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> "Settings":
        """In production, refuse secrets that can be guessed: the secret key signs dashboard
        sessions, and the admin key opens everything. Development takes anything."""
        if self.env != "production":
            return self
        problems = []
        if weakness := _weakness(self.secret_key):
            problems.append(f"TAUTAN_SECRET_KEY {weakness}")
        if self.admin_key and (weakness := _weakness(self.admin_key)):  # unset: one is printed
            problems.append(f"TAUTAN_ADMIN_KEY {weakness}")
        if problems:
            raise ValueError(
                f"{' and '.join(problems)}, and TAUTAN_ENV is production: set "
                f"{'it' if len(problems) == 1 else 'each'} to a random string of at least "
                f"{MIN_SECRET_LENGTH} characters, e.g. the output of `{GENERATE_SECRET}`."
            )
        return self


def _weakness(secret: str | None) -> str | None:
    """What makes `secret` guessable (never the secret itself, which must stay out of logs),
    or None when it is long enough."""
    if not secret:
        return "is missing"
    if secret.lower() in PLACEHOLDER_SECRETS:
        return "is a placeholder"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    return None


@lru_cache
def get_settings() -> Settings:
    return Settings()
