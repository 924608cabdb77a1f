"""REST for approval notifications: /api/v1/notifications/channels and /deliveries."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from mcp_front.admin.inputs import Ident, PageSize
from mcp_front.admin.rest import AdminApi, to_json


class ChannelBody(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    kind: Literal["webhook", "slack", "email"] = "webhook"
    target: Annotated[
        str,
        Field(
            min_length=3,
            max_length=2048,
            pattern=r"^[^\x00-\x1f\x7f]*$",
            description="https URL (webhook, slack) or comma-separated email addresses",
        ),
    ]


def build_notifications_router(api: AdminApi) -> APIRouter:
    r = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])

    @r.get("/channels")
    async def channels(request: Request, org: Ident = "") -> list[dict[str, Any]]:
        return [to_json(c) for c in await api.call(request, lambda c: c.list_notification_channels(org))]

    @r.post("/channels", status_code=201)
    async def add_channel(request: Request, body: ChannelBody, org: Ident = "") -> dict[str, Any]:
        """A webhook's `signing_secret` is in this answer only. `org`: the operator's choice."""
        created = await api.call(
            request, lambda c: c.create_notification_channel(org, body.name, body.kind, body.target)
        )
        return to_json(created)

    @r.delete("/channels/{name}")
    async def remove_channel(request: Request, name: Ident, org: Ident = "") -> dict[str, Any]:
        return to_json(await api.call(request, lambda c: c.delete_notification_channel(org, name)))

    @r.post("/channels/{name}/test", status_code=202)
    async def test_channel(request: Request, name: Ident, org: Ident = "") -> dict[str, Any]:
        """Queues a `notification.test` event; its outcome shows in the delivery log."""
        return to_json(await api.call(request, lambda c: c.test_notification_channel(org, name)))

    @r.post("/channels/{name}/disable")
    async def disable_channel(request: Request, name: Ident, org: Ident = "") -> dict[str, Any]:
        """Sends it nothing (what is queued is given up) until enabled; keeps its secret and log."""
        return to_json(await api.call(request, lambda c: c.set_notification_channel_disabled(org, name, True)))

    @r.post("/channels/{name}/enable")
    async def enable_channel(request: Request, name: Ident, org: Ident = "") -> dict[str, Any]:
        return to_json(await api.call(request, lambda c: c.set_notification_channel_disabled(org, name, False)))

    @r.get("/deliveries")
    async def deliveries(
        request: Request, channel: Ident = "", page_size: PageSize = 50, org: Ident = ""
    ) -> list[dict[str, Any]]:
        found = await api.call(request, lambda c: c.list_notification_deliveries(org, channel, page_size))
        return [to_json(d) for d in found]

    return r
