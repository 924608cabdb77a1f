"""An org's notification channels: create (checked), list, delete, and the delivery log.

A webhook's signing secret is never stored. It is derived from the server's notify key
and a random per-channel salt, shown once at creation, and re-derived to sign each
delivery; rotating the key (or deleting and re-adding the channel) changes it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from policy_service.notifications.payloads import TEST_EVENT, test_body
from policy_service.storage.models import (
    NOTIFICATION_KINDS,
    NotificationChannel,
    NotificationDelivery,
    new_id,
    utcnow,
)

_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$")
_EMAIL = re.compile(r"^[^\s@,<>]+@[^\s@,<>]+\.[^\s@,<>]+$")
MAX_EMAIL_RECIPIENTS = 20
# Every channel gets a delivery per approval event: the cap bounds the sends one org's
# approvals cause (the dispatcher also caps each org's sends in flight).
MAX_CHANNELS_PER_ORG = 10


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """What channel creation needs to know about the server."""

    signing_key: str
    email_enabled: bool
    public_url: str = ""  # where a test notification's link points


def signing_secret(key: str, channel: NotificationChannel) -> str:
    digest = hmac.new(key.encode(), f"webhook:{channel.id}:{channel.secret_salt}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def shown_target(channel: NotificationChannel) -> str:
    """What admins see: a URL without its path and query (a Slack URL's path is its token)."""
    return shown_url(channel.kind, channel.target)


def shown_url(kind: str, target: str) -> str:
    """`target` as admins and the audit log see it: an email list as it is, a URL without its
    path and query (and without user info), which may be the secret that lets anyone post."""
    if kind == "email":
        return target
    try:
        parts = urlsplit(target)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "…"
    if "@" in parts.netloc or parts.path.strip("/") or parts.query or parts.fragment:
        return f"{parts.scheme}://{netloc}/…"
    return target


def recipients(target: str) -> list[str]:
    return [a.strip() for a in target.split(",") if a.strip()]


def check_target(kind: str, target: str) -> str:
    """The target, normalised; InvalidArgument says what is wrong with it."""
    target = target.strip()
    if kind == "email":
        addresses = recipients(target)
        if not addresses or len(addresses) > MAX_EMAIL_RECIPIENTS or not all(_EMAIL.match(a) for a in addresses):
            raise InvalidArgument(
                f"target must be 1–{MAX_EMAIL_RECIPIENTS} comma-separated email addresses", "BAD_TARGET"
            )
        return ", ".join(addresses)
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(target) > 2048:
        raise InvalidArgument("target must be an http(s) URL of at most 2048 characters", "BAD_TARGET")
    if parts.username or parts.password:
        raise InvalidArgument("put no credentials in the URL; receivers check the signature", "BAD_TARGET")
    return target


async def create(
    session: AsyncSession, org_id: str, name: str, kind: str, target: str, config: NotifyConfig
) -> tuple[NotificationChannel, str]:
    """The new channel and its signing secret ('' for email)."""
    if not _NAME.match(name):
        raise InvalidArgument("name: lowercase letters, digits, - and _, at most 63", "BAD_NAME")
    if kind not in NOTIFICATION_KINDS:
        raise InvalidArgument(f"kind must be one of {', '.join(NOTIFICATION_KINDS)}", "BAD_KIND")
    if kind == "email" and not config.email_enabled:
        raise FailedPrecondition("email channels need MONOMCP_SMTP_HOST on the policy service", "SMTP_NOT_CONFIGURED")
    if kind != "email" and not config.signing_key:
        raise FailedPrecondition(
            "webhooks need MONOMCP_NOTIFY_SIGNING_KEY (or JWT_SECRET) on the policy service", "NO_SIGNING_KEY"
        )
    existing = select(func.count()).select_from(NotificationChannel).where(NotificationChannel.org_id == org_id)
    if (await session.execute(existing)).scalar_one() >= MAX_CHANNELS_PER_ORG:
        limit = f"an org has at most {MAX_CHANNELS_PER_ORG} notification channels"
        raise FailedPrecondition(limit, "TOO_MANY_CHANNELS")
    channel = NotificationChannel(
        id=new_id(),
        org_id=org_id,
        name=name,
        kind=kind,
        target=check_target(kind, target),
        secret_salt=secrets.token_hex(16) if kind != "email" else "",
    )
    try:
        async with session.begin_nested():
            session.add(channel)
    except IntegrityError:
        raise AlreadyExists(f"a channel named {name!r} exists", "CHANNEL_EXISTS") from None
    return channel, signing_secret(config.signing_key, channel) if kind != "email" else ""


async def list_for_org(session: AsyncSession, org_id: str) -> list[NotificationChannel]:
    query = select(NotificationChannel).where(NotificationChannel.org_id == org_id)
    return list((await session.execute(query.order_by(NotificationChannel.name))).scalars())


async def find(session: AsyncSession, org_id: str, name_or_id: str) -> NotificationChannel:
    channel = (
        await session.execute(
            select(NotificationChannel).where(
                NotificationChannel.org_id == org_id,
                (NotificationChannel.name == name_or_id) | (NotificationChannel.id == name_or_id),
            )
        )
    ).scalar_one_or_none()
    if channel is None:
        raise NotFound("no such notification channel", "CHANNEL_NOT_FOUND")
    return channel


async def delete(session: AsyncSession, org_id: str, name_or_id: str) -> NotificationChannel:
    channel = await find(session, org_id, name_or_id)
    await session.delete(channel)
    return channel


async def set_disabled(session: AsyncSession, org_id: str, name_or_id: str, disabled: bool) -> NotificationChannel:
    """Switch a channel off (what is still queued for it is given up, not sent later in a
    burst) or back on (it hears of changes from then on)."""
    channel = await find(session, org_id, name_or_id)
    if disabled and channel.disabled_at is None:
        channel.disabled_at = utcnow()
        await session.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.channel_id == channel.id, NotificationDelivery.status == "queued")
            .values(status="failed", last_error="the channel was disabled", lease_until=None)
        )
    elif not disabled:
        channel.disabled_at = None
    return channel


async def queue_test(
    session: AsyncSession, org_id: str, org_slug: str, name_or_id: str, sent_by: str, public_url: str
) -> tuple[NotificationDelivery, NotificationChannel]:
    """A `notification.test` delivery, sent by the dispatcher like any other."""
    channel = await find(session, org_id, name_or_id)
    if channel.disabled_at is not None:
        raise FailedPrecondition("the channel is disabled: enable it first", "CHANNEL_DISABLED")
    delivery = NotificationDelivery(
        id=new_id(),
        org_id=org_id,
        channel_id=channel.id,
        approval_id=new_id(),  # no approval: a fresh key, so every test is its own delivery
        event=TEST_EVENT,
        payload_json=json.dumps(test_body(org_slug, sent_by, public_url)),
        status="queued",
        attempts=0,
        next_attempt_at=utcnow(),
        created_at=utcnow(),
    )
    session.add(delivery)
    return delivery, channel


async def deliveries(
    session: AsyncSession, org_id: str, channel_name: str, limit: int
) -> list[tuple[NotificationDelivery, str]]:
    """The newest deliveries with their channel's name."""
    query = (
        select(NotificationDelivery, NotificationChannel.name)
        .join(NotificationChannel, NotificationChannel.id == NotificationDelivery.channel_id)
        .where(NotificationDelivery.org_id == org_id)
    )
    if channel_name:
        query = query.where(NotificationChannel.name == channel_name)
    rows = (await session.execute(query.order_by(NotificationDelivery.created_at.desc()).limit(limit))).all()
    return [(r[0], r[1]) for r in rows]


async def summaries(session: AsyncSession, org_id: str) -> tuple[str, ...]:
    """How the requester's result names where a request went: kind and name, never the target."""
    return tuple(f"{c.kind} {c.name}" for c in await list_for_org(session, org_id) if c.disabled_at is None)
