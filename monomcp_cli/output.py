"""Terminal output: rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table

console = Console()


def to_dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def emit(items: Iterable[Message] | Message, as_json: bool, columns: Sequence[str], title: str = "") -> None:
    rows = [items] if isinstance(items, Message) else list(items)
    dicts = [to_dict(m) for m in rows]
    if as_json:
        print(json.dumps(dicts[0] if isinstance(items, Message) else dicts, indent=2))
        return
    table = Table(title=title or None)
    for column in columns:
        table.add_column(column)
    for d in dicts:
        table.add_row(*[_cell(d.get(c, "")) for c in columns])
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def print_demo(result: dict[str, Any]) -> None:
    console.print("[bold]Endpoints[/bold]")
    for url in result["endpoints"]:
        console.print(f"  {url}")
    console.print("[bold]Demo API keys[/bold] (shown once)")
    for name, key in result["api_keys"].items():
        console.print(f"  {name:14} {key}")
    if result.get("people"):
        console.print("[bold]Demo people[/bold] (sign in at /console/login or POST /api/v1/auth/login)")
        for org, person in result["people"].items():
            console.print(f"  {org:8} {person['email']:24} password {person['password']}")
