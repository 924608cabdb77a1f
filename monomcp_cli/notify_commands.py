"""`monomcp notify`: where an org's approvals are announced, and how deliveries went."""

from __future__ import annotations

import json

import typer

from monomcp_cli.admin_client import call
from monomcp_cli.output import console, emit, to_dict

JSON = typer.Option(False, "--json", help="Machine-readable output.")
ORG = typer.Option("", "--org", help="Org slug (default: the credential's org).")
CHANNEL_COLUMNS = ["name", "kind", "target", "disabled", "created_at"]
DELIVERY_COLUMNS = ["created_at", "channel_name", "event", "approval_id", "status", "attempts", "response_status"]


def register(app: typer.Typer) -> None:
    notify = typer.Typer(help="Approval notifications: webhooks, Slack, email.", no_args_is_help=True)
    app.add_typer(notify, name="notify")

    @notify.command("add")
    def notify_add(
        name: str,
        target: str = typer.Option(..., help="https URL (webhook, slack) or comma-separated email addresses"),
        kind: str = typer.Option("webhook", help="webhook (signed JSON) | slack (Slack-compatible) | email"),
        org: str = ORG,
        as_json: bool = JSON,
    ) -> None:
        """Announce new pending approvals and decisions to TARGET."""
        created = call(lambda c: c.create_notification_channel(org, name, kind, target))
        if as_json:
            print(json.dumps(to_dict(created), indent=2))
            return
        console.print(f"Added {created.channel.kind} channel {created.channel.name} → {created.channel.target}")
        if created.signing_secret:
            console.print("Signing secret (shown once; receivers check X-MonoMCP-Signature with it):")
            print(created.signing_secret)

    @notify.command("list")
    def notify_list(org: str = ORG, as_json: bool = JSON) -> None:
        """The org's notification channels."""
        emit(call(lambda c: c.list_notification_channels(org)), as_json, CHANNEL_COLUMNS)

    @notify.command("remove")
    def notify_remove(name: str, org: str = ORG, as_json: bool = JSON) -> None:
        """Remove a channel (and its signing secret)."""
        removed = call(lambda c: c.delete_notification_channel(org, name))
        if as_json:
            emit(removed, True, [])
        else:
            console.print(f"Removed {removed.kind} channel {removed.name}")

    @notify.command("test")
    def notify_test(name: str, org: str = ORG, as_json: bool = JSON) -> None:
        """Send the channel a test event now (see how it went with `notify deliveries`)."""
        queued = call(lambda c: c.test_notification_channel(org, name))
        if as_json:
            emit(queued, True, [])
        else:
            console.print(f"Test event queued for {queued.channel_name} (delivery {queued.id})")

    @notify.command("disable")
    def notify_disable(name: str, org: str = ORG, as_json: bool = JSON) -> None:
        """Send the channel nothing until `notify enable` (it keeps its secret and log)."""
        _switch(name, org, True, as_json)

    @notify.command("enable")
    def notify_enable(name: str, org: str = ORG, as_json: bool = JSON) -> None:
        """Send a disabled channel its events again."""
        _switch(name, org, False, as_json)

    def _switch(name: str, org: str, disabled: bool, as_json: bool) -> None:
        changed = call(lambda c: c.set_notification_channel_disabled(org, name, disabled))
        if as_json:
            emit(changed, True, [])
        else:
            console.print(f"{'Disabled' if disabled else 'Enabled'} {changed.kind} channel {changed.name}")

    @notify.command("deliveries")
    def notify_deliveries(
        channel: str = typer.Option("", help="Only this channel"),
        org: str = ORG,
        limit: int = typer.Option(50, help="At most this many deliveries"),
        errors: bool = typer.Option(False, "--errors", help="Show each delivery's last error"),
        as_json: bool = JSON,
    ) -> None:
        """The delivery log, newest first."""
        columns = DELIVERY_COLUMNS + (["last_error"] if errors else [])
        emit(call(lambda c: c.list_notification_deliveries(org, channel, limit)), as_json, columns)
