"""Database schema. One module so the whole data model reads in one place.

Constraints make bad states impossible: unique slugs per org, enum checks, and at most
one live (pending or approved) approval per binding, enforced by a partial unique index.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

PERMISSIONS = ("always_allow", "needs_approval", "blocked")
APPROVAL_STATUSES = ("pending", "approved", "denied", "expired", "consumed")
VISIBILITIES = ("public", "private")


def new_id() -> str:
    """`uuid.uuid4().hex`, built without the UUID object (two per tool call: ADR 0039)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


def utcnow() -> datetime:
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, so SQLite and Postgres behave alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stamp: datetime = value
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    # argon2id hash ('' = no password: the person cannot sign in with one).
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


# One account per email whatever its case (sign-in compares lower-cased): migration 0013.
Index("uq_users_lower_email", func.lower(User.email), unique=True)


class Role(Base):
    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    is_admin: Mapped[bool] = mapped_column(default=False)


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("org_id", "user_id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id"))


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public id, embedded in the key
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id"))
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The person the key belongs to (who created it), when there is one: self-approval is
    # checked per person across all of their keys and tokens.
    owner_user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, default=None
    )


class Toolkit(Base):
    __tablename__ = "toolkits"
    __table_args__ = (
        UniqueConstraint("org_id", "slug"),
        CheckConstraint(_in("visibility", VISIBILITIES), name="visibility"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[str] = mapped_column(String(16), default="private")
    backend_url: Mapped[str] = mapped_column(Text, default="")
    backend_headers_json: Mapped[str] = mapped_column(Text, default="{}")
    backend_timeout_seconds: Mapped[float] = mapped_column(Float, default=30.0)
    # Owner default given to newly synced tools that are not annotated read-only.
    new_tool_permission: Mapped[str] = mapped_column(String(16), default="needs_approval")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Tool(Base):
    __tablename__ = "tools"
    __table_args__ = (
        UniqueConstraint("toolkit_id", "kind", "name"),
        CheckConstraint(_in("default_permission", PERMISSIONS), name="default_permission"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    toolkit_id: Mapped[str] = mapped_column(ForeignKey("toolkits.id", ondelete="CASCADE"))
    # What the catalogue item is: "tool", "resource", "resource_template" or "prompt". Every kind
    # shares the permission machinery (owner default, org default, role override).
    kind: Mapped[str] = mapped_column(String(24), default="tool")
    # The tool name, resource URI, resource template URI template or prompt name.
    name: Mapped[str] = mapped_column(String(512))
    title: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    input_schema_json: Mapped[str] = mapped_column(Text, default='{"type":"object"}')
    output_schema_json: Mapped[str] = mapped_column(Text, default="")
    annotations_json: Mapped[str] = mapped_column(Text, default="")
    default_permission: Mapped[str] = mapped_column(String(16), default="always_allow")
    # The item's full MCP definition as the backend declared it (icons, _meta, arguments, ...).
    spec_json: Mapped[str] = mapped_column(Text, default="")


class OrgToolDefault(Base):
    """An org's own default for a tool, overriding the owner's default for that org's callers."""

    __tablename__ = "org_tool_defaults"
    __table_args__ = (
        UniqueConstraint("org_id", "tool_id"),
        CheckConstraint(_in("permission", PERMISSIONS), name="permission"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    tool_id: Mapped[str] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"), index=True)
    permission: Mapped[str] = mapped_column(String(16))


class RoleOverride(Base):
    __tablename__ = "role_overrides"
    __table_args__ = (
        UniqueConstraint("role_id", "tool_id"),
        CheckConstraint(_in("permission", PERMISSIONS), name="permission"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"))
    tool_id: Mapped[str] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"), index=True)
    permission: Mapped[str] = mapped_column(String(16))


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (
        CheckConstraint(_in("status", APPROVAL_STATUSES), name="status"),
        # One live approval per binding: re-calls find it instead of racing to insert another.
        Index(
            "uq_approvals_live_binding",
            "org_id",
            "principal_id",
            "toolkit_id",
            "tool",
            "arguments_sha256",
            unique=True,
            sqlite_where=text("status IN ('pending', 'approved')"),
            postgresql_where=text("status IN ('pending', 'approved')"),
        ),
        Index("ix_approvals_org_status_created", "org_id", "status", "created_at"),
        Index("ix_approvals_updated_at", "updated_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    principal_kind: Mapped[str] = mapped_column(String(16))
    principal_id: Mapped[str] = mapped_column(String(64))
    principal_display: Mapped[str] = mapped_column(String(320), default="")
    principal_role: Mapped[str] = mapped_column(String(63), default="")
    toolkit_id: Mapped[str] = mapped_column(ForeignKey("toolkits.id", ondelete="CASCADE"))
    tool: Mapped[str] = mapped_column(String(128))
    arguments_json: Mapped[str] = mapped_column(Text)
    # The exact canonical arguments that will run, shown to approvers only while the approval
    # is live; purged ('') once it is consumed, denied or expired (the audit keeps its redacted copy).
    arguments_exact: Mapped[str] = mapped_column(Text, default="")
    arguments_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    consumed_by_call_id: Mapped[str] = mapped_column(String(32), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The tool's approval policy when the request was made (ADR 0021), frozen so approvers
    # decide what they were shown: distinct approvers needed, and so far; the policy as JSON
    # ('' = today's default: one admin, this exact call); a window's condition and its end.
    required_approvals: Mapped[int] = mapped_column(Integer, default=1)
    approvals_count: Mapped[int] = mapped_column(Integer, default=0)
    policy_json: Mapped[str] = mapped_column(Text, default="")
    window_when: Mapped[str] = mapped_column(Text, default="")
    window_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuditRequestLog(Base):
    """One row per MCP request. Append-only: finished rows are never updated."""

    __tablename__ = "audit_request_logs"
    __table_args__ = (
        Index("ix_audit_org_created", "org_slug", "created_at"),
        Index("ix_audit_created", "created_at"),
        Index("ix_audit_status_created", "status", "created_at"),
        Index("ix_audit_approval", "approval_id"),
        # A call completes once: its completion is a second, append-only row naming it.
        Index(
            "uq_audit_completes",
            "completes",
            unique=True,
            sqlite_where=text("completes != ''"),
            postgresql_where=text("completes != ''"),
        ),
        # A seq is never reused after retention removed the newest rows (ADR 0022).
        {"sqlite_autoincrement": True},
    )
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(32), unique=True)
    source: Mapped[str] = mapped_column(String(16), default="mcp")
    org_slug: Mapped[str] = mapped_column(String(63), default="")
    toolkit_org_slug: Mapped[str] = mapped_column(String(63), default="")
    toolkit_slug: Mapped[str] = mapped_column(String(63), default="")
    tool: Mapped[str] = mapped_column(String(128), default="")
    method: Mapped[str] = mapped_column(String(64), default="")
    actor_type: Mapped[str] = mapped_column(String(16), default="")
    actor_id: Mapped[str] = mapped_column(String(64), default="")
    actor_display: Mapped[str] = mapped_column(String(320), default="")
    permission: Mapped[str] = mapped_column(String(16), default="")
    decision: Mapped[str] = mapped_column(String(24), default="")
    approval_id: Mapped[str] = mapped_column(String(32), default="")
    request_payload: Mapped[str] = mapped_column(Text, default="")
    response_payload: Mapped[str] = mapped_column(Text, default="")
    redacted_paths: Mapped[str] = mapped_column(Text, default="[]")
    status: Mapped[str] = mapped_column(String(24))
    error: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    client_address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    request_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # For a completion record: the call_id of the `started` row it finishes ('' otherwise).
    completes: Mapped[str] = mapped_column(String(32), default="")
    # The service identity that wrote the row (and alone may complete the call).
    service_id: Mapped[str] = mapped_column(String(32), default="")
    # The OpenTelemetry trace of the request that wrote the row ('' when tracing is off).
    trace_id: Mapped[str] = mapped_column(String(32), default="", server_default="")
    # The policy rule that decided the call (ADR 0021), e.g. "acme/seo publish_page when[0]";
    # '' when no condition took part. Hashed into digests only when set (older rows lack it).
    rule: Mapped[str] = mapped_column(String(200), default="")
    # The time of the call the row belongs to: created_at, except on a completion, which
    # copies its call's. The partition key on Postgres (ADR 0022), so a call and its
    # completion share a partition and retention drops them together. Derived, not hashed.
    call_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditDigest(Base):
    """A hash over the audit rows finished since the previous digest, chained to it."""

    __tablename__ = "audit_digests"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    first_seq: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    row_count: Mapped[int] = mapped_column(Integer)
    rows_sha256: Mapped[str] = mapped_column(String(64))
    # JSON list of [seq, content hash] so verify can name the exact row that changed.
    row_hashes: Mapped[str] = mapped_column(Text, default="[]")
    previous_digest: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # HMAC-SHA256 of `digest` under the audit signing key ('' when no key is configured).
    signature: Mapped[str] = mapped_column(String(64), default="")


class ServiceIdentity(Base):
    """An operator-issued credential of a MonoMCP component (e.g. the front) for the policy RPCs."""

    __tablename__ = "service_identities"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public id, embedded in the credential
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Space-separated scopes, e.g. "front".
    scopes: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ConsoleSession(Base):
    """A server-side console sign-in; the cookie carries only an opaque secret whose hash is here."""

    __tablename__ = "console_sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    # The principal the session acts as (resolved again on every use, so revocation applies).
    principal_kind: Mapped[str] = mapped_column(String(16))
    principal_id: Mapped[str] = mapped_column(String(64))
    org_slug: Mapped[str] = mapped_column(String(63), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RefreshToken(Base):
    """A rotating refresh token; `family_id` ties rotations together so reuse revokes them all."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_family", "family_id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OrgDomain(Base):
    """An org's claim on an enterprise custom domain: once verified, its Host header maps to
    the org. Several orgs may hold pending claims on one name; only one can be verified."""

    __tablename__ = "org_domains"
    __table_args__ = (
        UniqueConstraint("org_id", "domain"),
        Index(
            "uq_org_domains_verified_domain",
            "domain",
            unique=True,
            sqlite_where=text("verified_at IS NOT NULL"),
            postgresql_where=text("verified_at IS NOT NULL"),
        ),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    domain: Mapped[str] = mapped_column(String(253), index=True)
    verification_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A verified domain is proven again every so often (domains/recheck.py).
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


APPROVAL_TASK_STATUSES = ("live", "cancelled")


class ApprovalTask(Base):
    """A 2025-11-25 task opened by a task-augmented tools/call that waits for an approval.

    One row per request (ids never repeat); several tasks may wait on one approval, which
    still runs once. `result_json` keeps the exact result for the task's lifetime only: it is
    what the client asked to retrieve, so it is neither redacted nor truncated (the audit
    log keeps its redacted copy); expired rows are deleted."""

    __tablename__ = "approval_tasks"
    __table_args__ = (
        CheckConstraint(_in("status", APPROVAL_TASK_STATUSES), name="status"),
        Index("ix_approval_tasks_owner", "principal_id", "toolkit_id", "created_at"),
        Index("ix_approval_tasks_expires_at", "expires_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    approval_id: Mapped[str] = mapped_column(ForeignKey("approvals.id", ondelete="CASCADE"), index=True)
    principal_kind: Mapped[str] = mapped_column(String(16))
    principal_id: Mapped[str] = mapped_column(String(64))
    toolkit_id: Mapped[str] = mapped_column(ForeignKey("toolkits.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="live")
    result_status: Mapped[str] = mapped_column(String(16), default="")
    result_json: Mapped[str] = mapped_column(Text, default="")
    result_call_id: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PolicyVersion(Base):
    """One applied policy file of an org (ADR 0021): the version number, who applied it and
    the document whose conditions and approval policies are live. The newest row is live."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("org_id", "version"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    # The applied document as canonical JSON (conditions and approval policies are read from it).
    document_json: Mapped[str] = mapped_column(Text)
    # What the apply changed, as a JSON list of changes (also in the apply's audit row).
    changes_json: Mapped[str] = mapped_column(Text, default="[]")
    applied_by: Mapped[str] = mapped_column(String(320), default="")
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApprovalVote(Base):
    """One approver's yes on an n-of-m approval; the unique key keeps approvers distinct."""

    __tablename__ = "approval_votes"
    __table_args__ = (UniqueConstraint("approval_id", "voter_key"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    approval_id: Mapped[str] = mapped_column(ForeignKey("approvals.id", ondelete="CASCADE"))
    # The person ("person:<user id>") or the operator; never a bare credential.
    voter_key: Mapped[str] = mapped_column(String(100))
    voter_display: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


NOTIFICATION_KINDS = ("webhook", "slack", "email")
DELIVERY_STATUSES = ("queued", "delivered", "failed")


class NotificationChannel(Base):
    """Where an org's approvals are announced: a signed webhook, a Slack-compatible
    webhook or an email address. The webhook signing secret is never stored: it is
    derived from the server's key and `secret_salt` (see notifications/channels.py)."""

    __tablename__ = "notification_channels"
    __table_args__ = (
        UniqueConstraint("org_id", "name"),
        CheckConstraint(_in("kind", NOTIFICATION_KINDS), name="kind"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2048))  # URL, or email address(es)
    secret_salt: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set while an admin has the channel switched off: nothing is sent to it.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class NotificationDelivery(Base):
    """One event for one channel, and how its delivery went (the admins' delivery log).

    Unique per (channel, approval, event): every replica may notice the same approval
    change, and only one row, so one delivery, results."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("channel_id", "approval_id", "event"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        Index("ix_notification_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_notification_deliveries_org_id_created_at", "org_id", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    channel_id: Mapped[str] = mapped_column(ForeignKey("notification_channels.id", ondelete="CASCADE"))
    approval_id: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(32))
    payload_json: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A replica that claimed the row holds it until then (another takes over after a crash).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    response_status: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
