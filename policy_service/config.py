"""Settings for every MonoMCP process, read once from the environment (and `.env`).

Passed explicitly to whatever needs them; nothing reads the environment globally.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///" + str(Path(".monomcp") / "monomcp.db")

# Secret words, matched against a key's words (see policy_service/audit/redaction_keys.py):
# `pwd` also redacts `db_pwd`, `api_key` also `X-Api-Key` and `apiKey`.
DEFAULT_REDACT_KEYS = (
    "password,passwd,pwd,pass,passphrase,secret,token,auth,authorization,api_key,apikey,access_key,"
    "private_key,secret_key,signing_key,client_secret,access_token,refresh_token,auth_token,id_token,"
    "cookie,set-cookie,credential,credentials,session,sessionid,bearer,jwt"
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # "production" refuses to start a process whose shared secrets are missing (instead of
    # inventing per-process ones that break across replicas); `monomcp dev` runs "development".
    env: str = Field("production", alias="MONOMCP_ENV")
    database_url: str = Field(DEFAULT_SQLITE_URL, alias="DATABASE_URL")
    jwt_secret: str = Field("", alias="JWT_SECRET")
    jwt_issuer: str = Field("", alias="JWT_ISSUER")
    jwt_audience: str = Field("", alias="JWT_AUDIENCE")
    operator_token: str = Field("", alias="MONOMCP_OPERATOR_TOKEN")

    # The front's service credential (`monomcp services create front --scope front`): the
    # policy service answers its hot-path RPCs only to service identities.
    service_token: str = Field("", alias="MONOMCP_SERVICE_TOKEN")
    # Optional TLS on the policy service's gRPC listener; with a client CA, mutual TLS.
    policy_tls_cert: str = Field("", alias="MONOMCP_POLICY_TLS_CERT")
    policy_tls_key: str = Field("", alias="MONOMCP_POLICY_TLS_KEY")
    policy_client_ca: str = Field("", alias="MONOMCP_POLICY_CLIENT_CA")
    # Client side of that TLS: the CA that signed the policy service's certificate, and the
    # client certificate and key to present when the listener requires mutual TLS.
    policy_ca: str = Field("", alias="MONOMCP_POLICY_CA")
    policy_client_cert: str = Field("", alias="MONOMCP_POLICY_CLIENT_CERT")
    policy_client_key: str = Field("", alias="MONOMCP_POLICY_CLIENT_KEY")

    policy_listen: str = Field("127.0.0.1:50051", alias="MONOMCP_POLICY_LISTEN")
    # Prometheus scrape listener of the policy service (HOST:PORT; empty = off).
    policy_metrics_listen: str = Field("", alias="MONOMCP_POLICY_METRICS_LISTEN")
    # When set, the front's /metrics asks for `Authorization: Bearer <this>`.
    metrics_token: str = Field("", alias="MONOMCP_METRICS_TOKEN")
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
    # Authorize/complete on one long-lived CallStream per policy address (docs/adr/0029).
    policy_stream: bool = Field(True, alias="MONOMCP_POLICY_STREAM")
    # Where toolkit backends may be reached (docs/adr/0007-backend-egress.md): host names,
    # `*.suffix` wildcards, IPs and CIDRs, comma-separated. Empty = any public address.
    backend_allow: str = Field("", alias="MONOMCP_BACKEND_ALLOW")
    # Also reach loopback, private and link-local backends (`monomcp dev`, tests).
    backend_allow_private: bool = Field(False, alias="MONOMCP_BACKEND_ALLOW_PRIVATE")

    approval_pending_ttl_seconds: int = Field(86_400, alias="MONOMCP_APPROVAL_PENDING_TTL_SECONDS")
    approval_approved_ttl_seconds: int = Field(3_600, alias="MONOMCP_APPROVAL_APPROVED_TTL_SECONDS")
    # HMAC key for 2026-07-28 request_state; every front replica needs the same value.
    request_state_key: str = Field("", alias="MONOMCP_REQUEST_STATE_KEY")
    # How long a 2026-07-28 retry waits for a pending approval before asking again.
    approval_wait_seconds: float = Field(10.0, alias="MONOMCP_APPROVAL_WAIT_SECONDS")
    # How long tasks/result blocks waiting for an admin before telling the client to call again.
    task_result_wait_seconds: float = Field(300.0, alias="MONOMCP_TASK_RESULT_WAIT_SECONDS")
    # How many approval waits (tasks/result, 2026-07-28 retries) one credential may hold at once per front.
    approval_waiters_per_credential: int = Field(8, alias="MONOMCP_APPROVAL_WAITERS_PER_CREDENTIAL")

    audit_redact_keys: str = Field(DEFAULT_REDACT_KEYS, alias="MONOMCP_AUDIT_REDACT_KEYS")
    audit_max_payload_bytes: int = Field(65_536, alias="MONOMCP_AUDIT_MAX_PAYLOAD_BYTES")
    audit_abandon_after_seconds: int = Field(3_600, alias="MONOMCP_AUDIT_ABANDON_AFTER_SECONDS")
    audit_retention_days: int = Field(0, alias="MONOMCP_AUDIT_RETENTION_DAYS")
    audit_digest_interval_seconds: float = Field(60.0, alias="MONOMCP_AUDIT_DIGEST_INTERVAL_SECONDS")
    # Rows younger than this wait for the next digest (their transaction may still be open).
    audit_digest_settle_seconds: float = Field(5.0, alias="MONOMCP_AUDIT_DIGEST_SETTLE_SECONDS")
    # HMAC key that signs every audit digest, so a database writer cannot forge the chain.
    audit_signing_key: str = Field("", alias="MONOMCP_AUDIT_SIGNING_KEY")
    # Keys that signed older digests (comma-separated), accepted by `audit verify` only before
    # the first digest the current key signed: a rotation keeps the chain verifiable.
    audit_previous_signing_keys: str = Field("", alias="MONOMCP_AUDIT_PREVIOUS_SIGNING_KEYS")

    # The front's edge: header size and read deadlines (slowloris), per-key limits.
    max_header_bytes: int = Field(16_384, alias="MONOMCP_MAX_HEADER_BYTES")
    header_timeout_seconds: float = Field(10.0, alias="MONOMCP_HEADER_TIMEOUT_SECONDS")
    body_timeout_seconds: float = Field(30.0, alias="MONOMCP_BODY_TIMEOUT_SECONDS")
    # Failed credentials per client address (a scanner inventing bearers): rate and burst
    # before that address gets 429 without a policy call.
    auth_failures_per_second: float = Field(5.0, alias="MONOMCP_AUTH_FAILURES_PER_SECOND")
    auth_failure_burst: int = Field(50, alias="MONOMCP_AUTH_FAILURE_BURST")
    # Token bucket per key (hash of the bearer); 0 turns the rate limit off.
    rate_limit_per_second: float = Field(100.0, alias="MONOMCP_RATE_LIMIT_PER_SECOND")
    rate_limit_burst: int = Field(200, alias="MONOMCP_RATE_LIMIT_BURST")
    # Requests one key may have in flight at once (long polls included); 0 = unlimited.
    max_concurrent_per_key: int = Field(64, alias="MONOMCP_MAX_CONCURRENT_PER_KEY")
    # The same limits per organization: every key and person of one org together, so a tenant
    # cannot multiply its share of the shared processes by minting keys; 0 turns each off.
    org_rate_limit_per_second: float = Field(1000.0, alias="MONOMCP_ORG_RATE_LIMIT_PER_SECOND")
    org_rate_limit_burst: int = Field(2000, alias="MONOMCP_ORG_RATE_LIMIT_BURST")
    max_concurrent_per_org: int = Field(512, alias="MONOMCP_MAX_CONCURRENT_PER_ORG")
    # Standing streams (GET, 2026-07-28 listen) one org's callers may hold open on one front.
    max_streams_per_org: int = Field(256, alias="MONOMCP_MAX_STREAMS_PER_ORG")
    # Bytes of backend answers one front process holds at once, across every tenant
    # (docs/adr/0050): a large answer waits up to the wait for room, then its call fails.
    # Answers of 1 MiB or less never wait. At least 1 MiB.
    answer_budget_bytes: int = Field(64 * 1_048_576, alias="MONOMCP_ANSWER_BUDGET_BYTES", ge=1_048_576)
    answer_budget_wait_seconds: float = Field(10.0, alias="MONOMCP_ANSWER_BUDGET_WAIT_SECONDS", ge=0.0)
    # Shared limits across front replicas; empty = in-process limits.
    redis_url: str = Field("", alias="MONOMCP_REDIS_URL")

    # People's sign-in (docs/people.md): JWT access tokens signed with JWT_SECRET, rotating
    # refresh tokens, and failed-sign-in limits counted from the audit log over a window.
    access_token_ttl_seconds: int = Field(900, alias="MONOMCP_ACCESS_TOKEN_TTL_SECONDS")
    refresh_token_ttl_seconds: int = Field(30 * 86_400, alias="MONOMCP_REFRESH_TOKEN_TTL_SECONDS")
    login_window_seconds: int = Field(900, alias="MONOMCP_LOGIN_WINDOW_SECONDS")
    login_max_failures_per_account: int = Field(10, alias="MONOMCP_LOGIN_MAX_FAILURES_PER_ACCOUNT")
    login_max_failures_per_address: int = Field(50, alias="MONOMCP_LOGIN_MAX_FAILURES_PER_ADDRESS")

    # How long identity and policy lookups may be served from memory (revocation bound).
    cache_ttl_seconds: float = Field(0.5, alias="MONOMCP_CACHE_TTL_SECONDS")

    # Custom domains (docs/adr/0018-identity-domains-and-oauth.md): the DNS servers that
    # verification asks (`host[:port]`, comma-separated; empty = the system's) and the port
    # of the HTTP token check.
    dns_nameservers: str = Field("", alias="MONOMCP_DNS_NAMESERVERS")
    domain_http_port: int = Field(80, alias="MONOMCP_DOMAIN_HTTP_PORT")
    # Verified domains are proven again every this many seconds (0: never), and lose their
    # verification once their proof has been missing at every check for the grace period.
    domain_recheck_seconds: float = Field(86_400, alias="MONOMCP_DOMAIN_RECHECK_SECONDS")
    domain_recheck_grace_seconds: float = Field(259_200, alias="MONOMCP_DOMAIN_RECHECK_GRACE_SECONDS")
    # How long the front trusts its copy of the verified-domain table (removal bound).
    domain_cache_seconds: float = Field(1.0, alias="MONOMCP_DOMAIN_CACHE_SECONDS")

    # Access tokens from an external identity provider (RS256/ES256, verified with its JWKS):
    # on when issuer and JWKS URL are set. `iss` must equal the issuer and `aud` contain the
    # audience (or, in OAuth resource-server mode, name one of this gateway's endpoints).
    oidc_issuer: str = Field("", alias="MONOMCP_OIDC_ISSUER")
    oidc_jwks_url: str = Field("", alias="MONOMCP_OIDC_JWKS_URL")
    oidc_audience: str = Field("", alias="MONOMCP_OIDC_AUDIENCE")
    oidc_algorithms: str = Field("RS256,ES256", alias="MONOMCP_OIDC_ALGORITHMS")
    # The claim naming the org slug (or one fixed org for every token of this provider) ...
    oidc_org_claim: str = Field("org", alias="MONOMCP_OIDC_ORG_CLAIM")
    oidc_org: str = Field("", alias="MONOMCP_OIDC_ORG")
    # ... and the claim naming the role (a string or a list such as `groups`), optionally
    # mapped `group=role,…` (first match wins), with a fallback role.
    oidc_role_claim: str = Field("role", alias="MONOMCP_OIDC_ROLE_CLAIM")
    oidc_role_map: str = Field("", alias="MONOMCP_OIDC_ROLE_MAP")
    oidc_default_role: str = Field("", alias="MONOMCP_OIDC_DEFAULT_ROLE")
    oidc_jwks_cache_seconds: float = Field(300.0, alias="MONOMCP_OIDC_JWKS_CACHE_SECONDS")
    # A token naming an unknown key id refetches the JWKS at most this often (rotation).
    oidc_jwks_min_refresh_seconds: float = Field(10.0, alias="MONOMCP_OIDC_JWKS_MIN_REFRESH_SECONDS")
    # Opt-in OAuth 2.1 resource-server mode (RFC 9728 metadata per endpoint, audience-bound
    # tokens). Off by default: static-bearer clients drop their header when they see metadata.
    oauth_resource_server: bool = Field(False, alias="MONOMCP_OAUTH_RESOURCE_SERVER")
    # Authorization servers to advertise (comma-separated issuer URLs; default the OIDC issuer).
    oauth_authorization_servers: str = Field("", alias="MONOMCP_OAUTH_AUTHORIZATION_SERVERS")
    oauth_scopes: str = Field("", alias="MONOMCP_OAUTH_SCOPES")
    # Console single sign-on against MONOMCP_OIDC_ISSUER (authorization code + PKCE): on when a
    # client id is set. The redirect URI to register is MONOMCP_PUBLIC_URL + /console/sso/callback.
    console_oidc_client_id: str = Field("", alias="MONOMCP_CONSOLE_OIDC_CLIENT_ID")
    console_oidc_client_secret: str = Field("", alias="MONOMCP_CONSOLE_OIDC_CLIENT_SECRET")
    console_oidc_scopes: str = Field("openid email profile", alias="MONOMCP_CONSOLE_OIDC_SCOPES")
    # Approval notifications (docs/notifications.md). Webhook signing secrets are derived
    # from this key (falls back to JWT_SECRET); changing it changes every channel's secret.
    notify_signing_key: str = Field("", alias="MONOMCP_NOTIFY_SIGNING_KEY")
    # Email channels send through this SMTP server (empty host = email channels refused).
    smtp_host: str = Field("", alias="MONOMCP_SMTP_HOST")
    smtp_port: int = Field(587, alias="MONOMCP_SMTP_PORT")
    smtp_from: str = Field("monomcp@localhost", alias="MONOMCP_SMTP_FROM")
    smtp_username: str = Field("", alias="MONOMCP_SMTP_USERNAME")
    smtp_password: str = Field("", alias="MONOMCP_SMTP_PASSWORD")
    smtp_starttls: bool = Field(True, alias="MONOMCP_SMTP_STARTTLS")
    # Deliveries retry with exponential backoff (first retry after this many seconds).
    notify_max_attempts: int = Field(8, alias="MONOMCP_NOTIFY_MAX_ATTEMPTS")
    notify_retry_base_seconds: float = Field(5.0, alias="MONOMCP_NOTIFY_RETRY_BASE_SECONDS")
    notify_timeout_seconds: float = Field(10.0, alias="MONOMCP_NOTIFY_TIMEOUT_SECONDS")
    # How often a replica looks for approval changes made through other replicas.
    notify_poll_seconds: float = Field(2.0, alias="MONOMCP_NOTIFY_POLL_SECONDS")

    def missing_front_secrets(self) -> list[str]:
        """One line per secret a production front needs and lacks, saying how to make it."""
        if self.env == "development":
            return []
        make = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        problems = []
        if len(self.request_state_key) < 16:
            problems.append(
                "MONOMCP_REQUEST_STATE_KEY is not set (≥16 chars, the same on every front replica): "
                f"make one with {make}"
            )
        if not self.service_token:
            problems.append(
                "MONOMCP_SERVICE_TOKEN is not set: create the front's service identity with "
                "`MONOMCP_TOKEN=$MONOMCP_OPERATOR_TOKEN monomcp services create front`"
            )
        return problems

    @property
    def redact_keys(self) -> frozenset[str]:
        return frozenset(k.strip().lower() for k in self.audit_redact_keys.split(",") if k.strip())

    @property
    def allowed_host_list(self) -> list[str]:
        return [h.strip() for h in self.allowed_hosts.split(",") if h.strip()]

    @property
    def allowed_origin_list(self) -> list[str]:
        return [o.strip() for o in self.allowed_origins.split(",") if o.strip()]
