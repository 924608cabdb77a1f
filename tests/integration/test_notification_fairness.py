"""One org's notifications cannot hold up another's: an org has at most
MAX_CHANNELS_PER_ORG channels, and the dispatcher sends at most MAX_IN_FLIGHT_PER_ORG of an
org's deliveries at once. Regression: the dispatcher claimed the oldest due rows across all
orgs, so an org with many channels and a receiver that never answers filled every sending
slot, and every other org's approvals waited behind it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from policy_service.errors import FailedPrecondition
from policy_service.notifications import channels
from policy_service.notifications.dispatcher import MAX_IN_FLIGHT_PER_ORG, DispatchSettings, NotificationDispatcher
from policy_service.notifications.senders import Senders, SmtpSettings
from policy_service.storage.database import WriteGuard, create_engine, session_factory
from policy_service.storage.models import NotificationDelivery, Organization, utcnow
from policy_service.toolkits.egress import EgressPolicy
from tests.support.receivers import WebhookReceiver
from tests.support.servers import serve_asgi

CONFIG = channels.NotifyConfig(signing_key="k" * 32, email_enabled=False)
BODY = '{"type": "approval.pending"}'


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    hooks = WebhookReceiver()
    hooks.hold = {"/slow": asyncio.Event()}  # org A's receiver never answers during the test
    async with serve_asgi(hooks) as base:
        yield hooks, base
        hooks.hold["/slow"].set()


async def test_a_slow_org_with_many_channels_does_not_delay_another_org(
    database_url: str, receiver: tuple[WebhookReceiver, str]
) -> None:
    hooks, base = receiver
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    guard = WriteGuard(database_url.startswith("sqlite"))
    earlier = utcnow() - timedelta(minutes=1)
    async with sessions() as session, session.begin():
        slow, other = Organization(slug="slow-org", name="Slow"), Organization(slug="other-org", name="Other")
        session.add_all([slow, other])
        await session.flush()
        many = [
            (await channels.create(session, slow.id, f"hook-{i}", "webhook", f"{base}/slow", CONFIG))[0]
            for i in range(channels.MAX_CHANNELS_PER_ORG)
        ]
        with pytest.raises(FailedPrecondition):
            await channels.create(session, slow.id, "one-more", "webhook", f"{base}/slow", CONFIG)
        fast = (await channels.create(session, other.id, "hook", "webhook", f"{base}/fast", CONFIG))[0]
        for approval in range(6):  # 60 deliveries due before the other org's one
            for channel in many:
                session.add(
                    NotificationDelivery(
                        org_id=slow.id,
                        channel_id=channel.id,
                        approval_id=f"a{approval}",
                        event="pending",
                        payload_json=BODY,
                        next_attempt_at=earlier,
                    )
                )
        session.add(
            NotificationDelivery(
                org_id=other.id, channel_id=fast.id, approval_id="b", event="pending", payload_json=BODY
            )
        )
    settings = DispatchSettings("k" * 32, "http://gateway.test", SmtpSettings("127.0.0.1", 25, "g@x.test"))
    egress = EgressPolicy(allow_private=True)
    dispatcher = NotificationDispatcher(sessions, guard, settings, egress)
    async with httpx.AsyncClient(trust_env=False) as http:
        try:
            await dispatcher.round(Senders(egress, settings.smtp, 60.0, http))  # one claim, no polling
            delivered = await hooks.wait_for("/fast", 1)
            assert len(delivered) == 1  # while every request to the slow org's receiver is still open
            assert len(hooks.at("/slow")) <= MAX_IN_FLIGHT_PER_ORG
            async with sessions() as session:
                leased = await session.execute(
                    select(NotificationDelivery.id).where(
                        NotificationDelivery.org_id == slow.id, NotificationDelivery.lease_until.is_not(None)
                    )
                )
                assert len(leased.all()) == MAX_IN_FLIGHT_PER_ORG
        finally:
            await dispatcher.stop()
            await engine.dispose()
