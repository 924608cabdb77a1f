"""Console templates: Jinja2 with autoescaping on, so every value from outside (tool names,
arguments, reasons) is text, never markup. Times are shown as UTC with their age."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from policy_service.wire_views import PrincipalView, moment

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def age(moment: datetime, now: datetime | None = None) -> str:
    """`3 min ago`, `in 2 h`."""
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    ahead, seconds = seconds < 0, abs(seconds)
    size, unit = next((s, u) for s, u in ((86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")) if seconds >= s or s == 1)
    return f"in {seconds // size} {unit}" if ahead else f"{seconds // size} {unit} ago"


def when(value: Any) -> dict[str, str]:
    """What a <time> element shows: ISO for machines, `2026-11-25 17:40 UTC` and age for people.
    `value` is what a page has: a client message's timestamp, a view's ISO string, a datetime."""
    at = moment(value)
    if at is None:
        return {"iso": "", "text": "—", "age": ""}
    return {"iso": at.isoformat(), "text": f"{at:%Y-%m-%d %H:%M:%S} UTC", "age": age(at)}


_ENV.globals["when"] = when


def signed_in_as(me: PrincipalView) -> str:
    """The header's "Signed in as …": name, org (or operator) and role."""
    if me.kind == "operator":
        return "the operator (every org)"
    return f"{me.display} ({me.org_slug}, {me.role or me.kind})"


def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_ENV.get_template(name).render(**context), status_code=status_code)
