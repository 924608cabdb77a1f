"""Terminal output: rich tables for people, JSON for scripts.

Both show status words (`pending`, `blocked`), never protobuf enum names, and numbers as
numbers; tables show every id in full (the next command needs it) and zeros as 0.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table

from policy_service.wire_enums import message_to_dict

console = Console()
_FULL = {"id", "call_id", "approval_id", "key_id"}


def to_dict(message: Message) -> dict[str, Any]:
    return message_to_dict(message)


def cell(message: Message, column: str) -> str:
    """One table cell: the field's value as a person reads it (0 stays 0, unset times blank)."""
    field = message.DESCRIPTOR.fields_by_name.get(column)
    if field is None:
        return ""
    value = getattr(message, column)
    if field.message_type is not None:
        if field.is_repeated:
            return ", ".join(str(v) for v in value)
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return when(value.ToDatetime(tzinfo=UTC)) if message.HasField(column) else ""
        return json.dumps(message_to_dict(value)) if message.HasField(column) else ""
    if field.type == FieldDescriptor.TYPE_ENUM:
        return str(message_to_dict(message).get(column, ""))
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def age(moment: datetime, now: datetime | None = None) -> str:
    """`3 min ago`, `in 2 h`."""
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    ahead, seconds = seconds < 0, abs(seconds)
    size, unit = next((s, u) for s, u in ((86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")) if seconds >= s or s == 1)
    return f"in {seconds // size} {unit}" if ahead else f"{seconds // size} {unit} ago"


def when(moment: datetime, now: datetime | None = None) -> str:
    """`2026-11-25 17:40:12 (3 min ago)`: UTC to the second, with its age."""
    return f"{moment:%Y-%m-%d %H:%M:%S} ({age(moment, now)})"


def emit(
    items: Iterable[Message] | Message,
    as_json: bool,
    columns: Sequence[str],
    title: str = "",
    cell_of: Callable[[Message, str], str] = cell,
) -> None:
    rows = [items] if isinstance(items, Message) else list(items)
    if as_json:
        dicts = [to_dict(m) for m in rows]
        print(json.dumps(dicts[0] if isinstance(items, Message) else dicts, indent=2))
        return
    table = Table(title=title or None)
    for column in columns:
        # Ids are never cut: they are what the next command takes. An id column with no id in
        # it (a delivery's approval_id for a test event) keeps no room, or it squeezed the rest.
        full = column in _FULL and any(cell_of(m, column) for m in rows)
        table.add_column(column, no_wrap=full, overflow="fold", min_width=32 if full else None)
    for message in rows:
        table.add_row(*[cell_of(message, c) for c in columns])
    console.print(table)


def print_demo(result: dict[str, Any]) -> None:
    console.print("[bold]Endpoints[/bold]")
    for url in result["endpoints"]:
        console.print(f"  {url}")
    console.print("[bold]Demo API keys[/bold] (shown once; the previous run's demo keys are revoked)")
    for name, key in result["api_keys"].items():
        console.print(f"  {name:14} {key}")
    if result.get("people"):
        console.print("[bold]Demo people[/bold] (sign in at /console/login or POST /api/v1/auth/login)")
        for org, person in result["people"].items():
            console.print(f"  {org:8} {person['email']:24} password {person['password']}")
