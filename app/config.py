"""Settings, read from `TAUTAN_*` environment variables (DESIGN §3)."""

from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated, Literal

from limits import parse
from pydantic import PositiveInt, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Network = IPv4Network | IPv6Network
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "placeholder", "dev"}


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TAUTAN_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./tautan.db"
    read_database_url: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    geoip_db: str | None = None
    trusted_proxies: Annotated[list[Network], NoDecode] = [
        ip_network("127.0.0.1/32"),
        ip_network("::1/128"),
    ]
    ignore_ips: Annotated[list[Network], NoDecode] = []
    admin_key: str | None = None
    flush_interval_ms: int = 200
    flush_batch: int = 1000
    spool_dir: str = "./spool"
    link_cache_ttl_s: float = 30
    store_ip: Literal["none", "anonymized", "full"] = "anonymized"
    env: Literal["development", "production"] = "development"
    secret_key: str | None = None
    redis_url: str | None = None
    write_rate_limit: str = "600/minute"  # per API key, on every API write
    write_rate_limit_per_ip: str = "1200/minute"  # per client address (IPv6: per /64)
    retention_days: PositiveInt | None = None  # unset: raw clicks are kept
    cors_origins: Annotated[list[str], NoDecode] = []
    import_max_bytes: int = 10 * 1024 * 1024  # CSV uploads to POST /api/links/import
    # Ask Chromium browsers for their model (Accept-CH); `critical` makes them ask again at
    # once with it (Critical-CH), so that even a first click names the phone.
    client_hints: Literal["off", "ask", "critical"] = "critical"

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, data: dict) -> dict:
        for name in ("trusted_proxies", "ignore_ips", "cors_origins"):
            if name in data:
                data[name] = _split(data[name])
        return data

    @field_validator("write_rate_limit", "write_rate_limit_per_ip")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse(value)  # e.g. "600/minute"; raises a clear ValueError otherwise
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> "Settings":
        if self.env == "production" and (self.secret_key or "").lower() in PLACEHOLDER_SECRETS:
            raise ValueError(
                "TAUTAN_SECRET_KEY is missing or a placeholder, and TAUTAN_ENV is production: "
                "set it to a long random string (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`)."
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
