"""The background dispatcher: turns approval changes into deliveries and sends them.

It never runs on a call's or a decision's path. The approvals change hook only pokes it
(`poke()` sets an event); it also polls, so changes made through other replicas arrive.
Each round (1) records one delivery row per (channel, approval, event) — a unique key, so
replicas that notice the same change produce one row — then (2) claims due rows with a
lease (a conditional UPDATE: one replica wins each row; a crashed replica's lease runs out)
and sends them concurrently. A failed send is retried with exponential backoff until the
last attempt, and every outcome is kept for the admins' delivery log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.approvals import store
from policy_service.notifications import payloads
from policy_service.notifications.channels import signing_secret
from policy_service.notifications.senders import DeliveryFailed, Senders, SmtpSettings
from policy_service.storage.database import WriteGuard
from policy_service.storage.models import NotificationChannel, NotificationDelivery, utcnow
from policy_service.toolkits.egress import EgressPolicy

log = logging.getLogger(__name__)

_LEASE = timedelta(minutes=2)
_MAX_BACKOFF = timedelta(hours=1)
_BATCH = 50
# Sends in flight per org in one replica: an org whose receivers are slow (or that has many
# channels) holds at most these of the _BATCH slots, so other orgs' notifications still leave.
MAX_IN_FLIGHT_PER_ORG = 4


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    signing_key: str
    public_url: str
    smtp: SmtpSettings
    max_attempts: int = 8
    retry_base_seconds: float = 5.0
    timeout_seconds: float = 10.0
    poll_seconds: float = 2.0


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """Delay before the next try after `attempts` failed ones: base, 2×base, 4×base… ≤ 1 h."""
    return min(timedelta(seconds=base_seconds * 2 ** max(attempts - 1, 0)), _MAX_BACKOFF)


class NotificationDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        guard: WriteGuard,
        settings: DispatchSettings,
        egress: EgressPolicy,
    ) -> None:
        self._sessions = sessions
        self._guard = guard
        self._settings = settings
        self._egress = egress
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._since = utcnow() - timedelta(minutes=1)  # changes made while this replica was starting
        self._seen: dict[str, tuple[str, datetime]] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._org_sending: dict[str, int] = {}

    def poke(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="notification-dispatch")

    async def stop(self) -> None:
        for task in list(self._sending):
            task.cancel()  # its lease runs out and another round (or replica) sends it again
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
            senders = Senders(self._egress, self._settings.smtp, self._settings.timeout_seconds, http)
            while True:
                self._wake.clear()
                try:
                    await self.round(senders)
                except OSError as exc:  # the database is down: the health check says so, once a line
                    log.warning("notification round failed: %s", exc)
                except Exception:
                    log.exception("notification round failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.poll_seconds)

    async def round(self, senders: Senders) -> None:
        async with self._sessions() as session:
            if (await session.execute(select(func.count()).select_from(NotificationChannel))).scalar_one() == 0:
                self._since = utcnow() - timedelta(seconds=1)
                return
        await self._enqueue()
        room = _BATCH - len(self._sending)
        for delivery, channel in await self._claim(room) if room > 0 else []:
            # Each send is its own task: a slow receiver delays nobody else's notifications.
            org = delivery.org_id
            self._org_sending[org] = self._org_sending.get(org, 0) + 1
            task = asyncio.get_running_loop().create_task(self._deliver(senders, delivery, channel))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
            task.add_done_callback(functools.partial(self._sent, org))

    def _sent(self, org: str, _: asyncio.Task[None]) -> None:
        left = self._org_sending.pop(org, 0) - 1
        if left > 0:
            self._org_sending[org] = left

    async def _enqueue(self) -> None:
        async with self._sessions() as session:
            changed = await store.changed_since(session, None, self._since)
        fresh = []
        for record in changed:
            row = record.row
            self._since = max(self._since, row.updated_at - timedelta(milliseconds=1))
            if self._seen.get(row.id) == (row.status, row.updated_at):
                continue
            self._seen[row.id] = (row.status, row.updated_at)
            if payloads.event_for(row.status, row.decided_by) is not None:
                fresh.append(record)
        if len(self._seen) > 10_000:
            self._seen.clear()
        if not fresh:
            return
        orgs = {r.row.org_id for r in fresh}
        async with self._guard(), self._sessions() as session, session.begin():
            channels = (
                await session.execute(
                    select(NotificationChannel).where(
                        NotificationChannel.org_id.in_(orgs), NotificationChannel.disabled_at.is_(None)
                    )
                )
            ).scalars()
            by_org: dict[str, list[NotificationChannel]] = {}
            for channel in channels:
                by_org.setdefault(channel.org_id, []).append(channel)
            for record in fresh:
                event = payloads.event_for(record.row.status, record.row.decided_by) or ""
                body = json.dumps(payloads.event_body(event, record, self._settings.public_url))
                for channel in by_org.get(record.row.org_id, []):
                    try:
                        async with session.begin_nested():
                            session.add(
                                NotificationDelivery(
                                    org_id=channel.org_id,
                                    channel_id=channel.id,
                                    approval_id=record.row.id,
                                    event=event,
                                    payload_json=body,
                                )
                            )
                    except IntegrityError:
                        pass  # another replica (or an earlier round) recorded it

    async def _claim(self, limit: int) -> list[tuple[NotificationDelivery, NotificationChannel]]:
        now = utcnow()
        due = (
            NotificationDelivery.status == "queued",
            NotificationDelivery.next_attempt_at <= now,
            or_(NotificationDelivery.lease_until.is_(None), NotificationDelivery.lease_until < now),
        )
        # Each org's oldest due rows only, up to its free in-flight slots: one org's backlog
        # cannot fill the batch ahead of every other org's.
        busy = dict(self._org_sending)
        full = [org for org, n in busy.items() if n >= MAX_IN_FLIGHT_PER_ORG]
        rank = func.row_number().over(
            partition_by=NotificationDelivery.org_id, order_by=NotificationDelivery.next_attempt_at
        )
        live = NotificationChannel.disabled_at.is_(None)  # a disabled channel's rows wait, unranked
        ranked = (
            select(NotificationDelivery.id, rank.label("rank"))
            .join(NotificationChannel, NotificationChannel.id == NotificationDelivery.channel_id)
            .where(*due, live)
            .subquery()
        )
        claimed = []
        taken: dict[str, int] = {}
        async with self._guard(), self._sessions() as session, session.begin():
            candidates = (
                await session.execute(
                    select(NotificationDelivery, NotificationChannel)
                    .join(ranked, ranked.c.id == NotificationDelivery.id)
                    .join(NotificationChannel, NotificationChannel.id == NotificationDelivery.channel_id)
                    .where(ranked.c.rank <= MAX_IN_FLIGHT_PER_ORG, NotificationDelivery.org_id.not_in(full), live)
                    .order_by(NotificationDelivery.next_attempt_at)
                    .limit(limit)
                )
            ).all()
            for delivery, channel in candidates:
                org = delivery.org_id
                if busy.get(org, 0) + taken.get(org, 0) >= MAX_IN_FLIGHT_PER_ORG:
                    continue
                won = await session.execute(
                    update(NotificationDelivery)
                    .where(NotificationDelivery.id == delivery.id, *due)
                    .values(lease_until=now + _LEASE)
                    .returning(NotificationDelivery.id)
                )
                if won.scalar_one_or_none() is not None:
                    claimed.append((delivery, channel))
                    taken[org] = taken.get(org, 0) + 1
            session.expunge_all()
        return claimed

    async def _deliver(self, senders: Senders, delivery: NotificationDelivery, channel: NotificationChannel) -> None:
        try:
            await self._send_and_record(senders, delivery, channel)
        except Exception:
            log.exception("notification delivery %s failed unexpectedly", delivery.id)

    async def _send_and_record(
        self, senders: Senders, delivery: NotificationDelivery, channel: NotificationChannel
    ) -> None:
        secret = signing_secret(self._settings.signing_key, channel) if channel.kind != "email" else ""
        attempts = delivery.attempts + 1
        values: dict[str, object] = {"attempts": attempts, "lease_until": None}
        try:
            status = await senders.send(channel, secret, delivery.id, json.loads(delivery.payload_json))
            values |= {"status": "delivered", "delivered_at": utcnow(), "response_status": status, "last_error": ""}
        except DeliveryFailed as exc:
            values |= {"last_error": str(exc), "response_status": exc.status}
            if attempts >= self._settings.max_attempts:
                values["status"] = "failed"
            else:
                values["next_attempt_at"] = utcnow() + backoff(attempts, self._settings.retry_base_seconds)
            log.info("notification %s to %s failed (attempt %d): %s", delivery.event, channel.name, attempts, exc)
        async with self._guard(), self._sessions() as session, session.begin():
            await session.execute(
                update(NotificationDelivery).where(NotificationDelivery.id == delivery.id).values(**values)
            )
        if values.get("status") is None:
            self.poke_at(values["next_attempt_at"])  # type: ignore[arg-type]

    def poke_at(self, when: datetime) -> None:
        """Wake for a retry that falls before the next poll."""
        delay = (when - utcnow()).total_seconds()
        if delay < self._settings.poll_seconds:
            asyncio.get_running_loop().call_later(max(delay, 0.0), self._wake.set)
