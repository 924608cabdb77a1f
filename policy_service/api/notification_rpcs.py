"""Admin RPCs for approval notifications: channels and the delivery log."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from policy_service._generated.monomcp.policy.v1 import admin_pb2
from policy_service.api import validation
from policy_service.api.admin_base import AdminBase
from policy_service.api.convert import ts
from policy_service.api.errors import translated
from policy_service.notifications import channels
from policy_service.notifications.channels import NotifyConfig
from policy_service.notifications.payloads import TEST_EVENT
from policy_service.permissions.admin_access import admin_org
from policy_service.storage.models import NotificationChannel, NotificationDelivery


def _channel(row: NotificationChannel, org_slug: str) -> admin_pb2.NotificationChannel:
    return admin_pb2.NotificationChannel(
        id=row.id,
        org_slug=org_slug,
        name=row.name,
        kind=row.kind,
        target=channels.shown_target(row),
        created_at=ts(row.created_at),
        disabled=row.disabled_at is not None,
    )


def _delivery(row: NotificationDelivery, channel_name: str) -> admin_pb2.NotificationDelivery:
    return admin_pb2.NotificationDelivery(
        id=row.id,
        channel_name=channel_name,
        approval_id="" if row.event == TEST_EVENT else row.approval_id,  # a test's key names no approval
        event=row.event,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        response_status=row.response_status,
        created_at=ts(row.created_at),
        next_attempt_at=ts(row.next_attempt_at) if row.status == "queued" else None,
        delivered_at=ts(row.delivered_at),
    )


class NotificationRpcs(AdminBase):
    notify_config: NotifyConfig = NotifyConfig("", False)  # set by the server from its settings
    notify_poke: Callable[[], None] = staticmethod(lambda: None)  # wakes the dispatcher

    @translated
    async def CreateNotificationChannel(
        self, request: admin_pb2.CreateNotificationChannelRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.CreateNotificationChannelResponse:
        principal = await self._principal(context)
        validation.text(request.name, "name", 63)
        validation.text(request.kind, "kind", 16)
        validation.text(request.target, "target", 2048)
        async with self._tx() as session:
            org = await admin_org(session, principal, request.org_slug)
            row, secret = await channels.create(
                session, org.id, request.name, request.kind, request.target, self.notify_config
            )
            shown = _channel(row, org.slug)
        return admin_pb2.CreateNotificationChannelResponse(channel=shown, signing_secret=secret)

    @translated
    async def ListNotificationChannels(
        self, request: admin_pb2.ListNotificationChannelsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListNotificationChannelsResponse:
        principal = await self._principal(context)
        async with self._sessions() as session:
            org = await admin_org(session, principal, request.org_slug)
            rows = await channels.list_for_org(session, org.id)
            return admin_pb2.ListNotificationChannelsResponse(channels=[_channel(r, org.slug) for r in rows])

    @translated
    async def DeleteNotificationChannel(
        self, request: admin_pb2.DeleteNotificationChannelRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.NotificationChannel:
        principal = await self._principal(context)
        validation.text(request.name, "name", 63)
        async with self._tx() as session:
            org = await admin_org(session, principal, request.org_slug)
            row = await channels.delete(session, org.id, request.name)
            return _channel(row, org.slug)

    @translated
    async def ListNotificationDeliveries(
        self, request: admin_pb2.ListNotificationDeliveriesRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListNotificationDeliveriesResponse:
        principal = await self._principal(context)
        validation.text(request.channel, "channel", 63)
        limit = min(max(request.page_size or 50, 1), 500)
        async with self._sessions() as session:
            org = await admin_org(session, principal, request.org_slug)
            rows = await channels.deliveries(session, org.id, request.channel, limit)
            return admin_pb2.ListNotificationDeliveriesResponse(deliveries=[_delivery(r, n) for r, n in rows])

    @translated
    async def SetNotificationChannelDisabled(
        self, request: admin_pb2.SetNotificationChannelDisabledRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.NotificationChannel:
        principal = await self._principal(context)
        validation.text(request.name, "name", 63)
        async with self._tx() as session:
            org = await admin_org(session, principal, request.org_slug)
            row = await channels.set_disabled(session, org.id, request.name, request.disabled)
            return _channel(row, org.slug)

    @translated
    async def TestNotificationChannel(
        self, request: admin_pb2.TestNotificationChannelRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.NotificationDelivery:
        principal = await self._principal(context)
        validation.text(request.name, "name", 63)
        async with self._tx() as session:
            org = await admin_org(session, principal, request.org_slug)
            delivery, channel = await channels.queue_test(
                session, org.id, org.slug, request.name, principal.display, self.notify_config.public_url
            )
            shown = _delivery(delivery, channel.name)
        self.notify_poke()
        return shown
