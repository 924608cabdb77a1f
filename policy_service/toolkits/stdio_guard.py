"""What only the operator may change on a stdio toolkit (ADR 0017, 0035).

A stdio toolkit runs a command on the gateway's hosts. Who may reach it (visibility) and how
it runs (backend, backend headers, timeout) are the operator's, as is registering it. While
it is public, its owner defaults (catalogue, tool defaults, new-tool default) bind every
org, so they are the operator's too. Org admins keep its name and description, and the
defaults of a private one (they reach only their own org). Restating a value is no change."""

from __future__ import annotations

import json

from policy_service.errors import PermissionDenied
from policy_service.identity.principal import Principal
from policy_service.storage.models import Toolkit
from policy_service.toolkits import stdio_backend
from policy_service.toolkits.new_tools import DEFAULT_NEW_TOOL_PERMISSION


def _refuse(what: str) -> PermissionDenied:
    return PermissionDenied(
        f"only the operator can change {what} of a stdio toolkit: it runs a command on the gateway's hosts",
        "STDIO_NEEDS_OPERATOR",
    )


def _guarded(toolkit: Toolkit | None, principal: Principal) -> bool:
    return toolkit is not None and not principal.is_operator and stdio_backend.is_stdio(toolkit.backend_url)


def check_edit(
    existing: Toolkit | None,
    principal: Principal,
    *,
    visibility: str,
    backend_url: str,
    backend_headers: dict[str, str],
    backend_timeout_seconds: float,
    new_tool_permission: str,
) -> None:
    """PERMISSION_DENIED (STDIO_NEEDS_OPERATOR) when an org admin's upsert would change an
    operator-only field of an existing stdio toolkit; empty arguments change nothing."""
    if existing is None or not _guarded(existing, principal):
        return
    stored_default = existing.new_tool_permission or DEFAULT_NEW_TOOL_PERMISSION
    changes = {
        "visibility": bool(visibility) and visibility != existing.visibility,
        "backend_url": bool(backend_url),
        "backend_headers": bool(backend_headers)
        and backend_headers != json.loads(existing.backend_headers_json or "{}"),
        "backend_timeout_seconds": bool(backend_timeout_seconds)
        and backend_timeout_seconds != existing.backend_timeout_seconds,
        "new_tool_permission": existing.visibility == "public"
        and bool(new_tool_permission)
        and new_tool_permission != stored_default,
    }
    changed = [name for name, differs in changes.items() if differs]
    if changed:
        raise _refuse(", ".join(changed))


def check_owner_defaults(toolkit: Toolkit, principal: Principal) -> None:
    """A public stdio toolkit's catalogue and tool defaults are what every org gets."""
    if _guarded(toolkit, principal) and toolkit.visibility == "public":
        raise _refuse("the catalogue and tool defaults of a public toolkit")
