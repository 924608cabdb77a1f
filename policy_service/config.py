"""Settings for every MonoMCP process, read once from the environment (and `.env`).

Passed explicitly to whatever needs them; nothing reads the environment globally.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///" + str(Path(".monomcp") / "monomcp.db")

DEFAULT_REDACT_KEYS = (
    "password,passwd,secret,token,api_key,apikey,authorization,cookie,set-cookie,"
    "access_token,refresh_token,client_secret,private_key,credential,credentials,session"
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(DEFAULT_SQLITE_URL, alias="DATABASE_URL")
    jwt_secret: str = Field("", alias="JWT_SECRET")
    jwt_issuer: str = Field("", alias="JWT_ISSUER")
    jwt_audience: str = Field("", alias="JWT_AUDIENCE")
    operator_token: str = Field("", alias="MONOMCP_OPERATOR_TOKEN")

    policy_listen: str = Field("127.0.0.1:50051", alias="MONOMCP_POLICY_LISTEN")
    policy_addr: str = Field("127.0.0.1:50051", alias="MONOMCP_POLICY_ADDR")
    front_listen: str = Field("127.0.0.1:8765", alias="MONOMCP_FRONT_LISTEN")
    public_url: str = Field("http://127.0.0.1:8765", alias="MONOMCP_PUBLIC_URL")
    allowed_hosts: str = Field("127.0.0.1:*,localhost:*,[::1]:*", alias="MONOMCP_ALLOWED_HOSTS")
    allowed_origins: str = Field(
        "http://127.0.0.1:*,http://localhost:*,http://[::1]:*", alias="MONOMCP_ALLOWED_ORIGINS"
    )

    max_body_bytes: int = Field(1_048_576, alias="MONOMCP_MAX_BODY_BYTES")
    backend_timeout_seconds: float = Field(30.0, alias="MONOMCP_BACKEND_TIMEOUT_SECONDS")
    policy_timeout_seconds: float = Field(5.0, alias="MONOMCP_POLICY_TIMEOUT_SECONDS")

    approval_pending_ttl_seconds: int = Field(86_400, alias="MONOMCP_APPROVAL_PENDING_TTL_SECONDS")
    approval_approved_ttl_seconds: int = Field(3_600, alias="MONOMCP_APPROVAL_APPROVED_TTL_SECONDS")
    # HMAC key for 2026-07-28 request_state; every front replica needs the same value.
    request_state_key: str = Field("", alias="MONOMCP_REQUEST_STATE_KEY")
    # How long a 2026-07-28 retry waits for a pending approval before asking again.
    approval_wait_seconds: float = Field(10.0, alias="MONOMCP_APPROVAL_WAIT_SECONDS")
    # How long tasks/result blocks waiting for an admin before telling the client to call again.
    task_result_wait_seconds: float = Field(300.0, alias="MONOMCP_TASK_RESULT_WAIT_SECONDS")

    audit_redact_keys: str = Field(DEFAULT_REDACT_KEYS, alias="MONOMCP_AUDIT_REDACT_KEYS")
    audit_max_payload_bytes: int = Field(65_536, alias="MONOMCP_AUDIT_MAX_PAYLOAD_BYTES")
    audit_abandon_after_seconds: int = Field(3_600, alias="MONOMCP_AUDIT_ABANDON_AFTER_SECONDS")
    audit_retention_days: int = Field(0, alias="MONOMCP_AUDIT_RETENTION_DAYS")
    audit_digest_interval_seconds: float = Field(60.0, alias="MONOMCP_AUDIT_DIGEST_INTERVAL_SECONDS")

    # The front's edge: header size and read deadlines (slowloris), per-key limits.
    max_header_bytes: int = Field(16_384, alias="MONOMCP_MAX_HEADER_BYTES")
    header_timeout_seconds: float = Field(10.0, alias="MONOMCP_HEADER_TIMEOUT_SECONDS")
    body_timeout_seconds: float = Field(30.0, alias="MONOMCP_BODY_TIMEOUT_SECONDS")
    # Token bucket per key (hash of the bearer); 0 turns the rate limit off.
    rate_limit_per_second: float = Field(2_000.0, alias="MONOMCP_RATE_LIMIT_PER_SECOND")
    rate_limit_burst: int = Field(4_000, alias="MONOMCP_RATE_LIMIT_BURST")
    # Requests one key may have in flight at once (long polls included); 0 = unlimited.
    max_concurrent_per_key: int = Field(256, alias="MONOMCP_MAX_CONCURRENT_PER_KEY")
    # Shared limits across front replicas; empty = in-process limits.
    redis_url: str = Field("", alias="MONOMCP_REDIS_URL")

    # How long identity and policy lookups may be served from memory (revocation bound).
    cache_ttl_seconds: float = Field(0.5, alias="MONOMCP_CACHE_TTL_SECONDS")

    @property
    def redact_keys(self) -> frozenset[str]:
        return frozenset(k.strip().lower() for k in self.audit_redact_keys.split(",") if k.strip())

    @property
    def allowed_host_list(self) -> list[str]:
        return [h.strip() for h in self.allowed_hosts.split(",") if h.strip()]

    @property
    def allowed_origin_list(self) -> list[str]:
        return [o.strip() for o in self.allowed_origins.split(",") if o.strip()]
