"""Decides requests about resources, resource templates and prompts, on the same path as
tools: identity → visibility → the item's effective permission, with the audit row (which
names the item) written before the answer.

Reads and gets cannot wait for an approval (no client flow resumes a resources/read), so
`needs_approval` refuses them with a message saying so (docs/adr/0013). Unknown and
blocked items are refused alike, so a blocked item cannot be told from a missing one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from policy_service.errors import InvalidArgument, NotFound, Unauthenticated
from policy_service.gate import Gate, RequestFacts
from policy_service.identity.principal import Principal
from policy_service.identity.services import ServiceCaller
from policy_service.permissions.items import ITEM_KINDS, ItemsView, ResolvedItem
from policy_service.storage.models import new_id

_KIND_WORDS = {"resource": "Resource", "resource_template": "Resource template", "prompt": "Prompt"}


@dataclass(frozen=True, slots=True)
class ItemAuthorization:
    decision: str  # "allow" | "blocked"
    call_id: str
    permission: str
    principal: Principal
    message: str
    item: ResolvedItem | None = None
    view: ItemsView | None = None


def unknown_message(kind: str, name: str) -> str:
    """One message for unknown and blocked items alike."""
    return f"{_KIND_WORDS.get(kind, 'Item')} not found: {name}"


def check_kind(kind: str) -> str:
    if kind not in ITEM_KINDS:
        raise InvalidArgument(f"kind must be one of {', '.join(ITEM_KINDS)}", "BAD_KIND")
    return kind


class ItemGate:
    """Shares the Gate's authenticator, catalogue and audit log: one decision path, one log."""

    def __init__(self, gate: Gate) -> None:
        self._gate = gate

    async def list_items(
        self, credential: str, org_slug: str, toolkit_slug: str, kind: str
    ) -> tuple[Principal, list[ResolvedItem]]:
        check_kind(kind)
        principal = await self._gate.authenticator.authenticate(credential)
        view = await self._gate.catalogue.items.view(principal, org_slug, toolkit_slug)
        return principal, [i for i in view.of_kind(kind) if i.effective.permission != "blocked"]

    async def authorize(
        self,
        service: ServiceCaller,
        credential: str,
        org_slug: str,
        toolkit_slug: str,
        kind: str,
        name: str,
        method: str,
        params: Any,
        facts: RequestFacts,
    ) -> ItemAuthorization:
        check_kind(kind)
        gate = self._gate
        call_id = new_id()
        base = gate._row(call_id, facts, org_slug, toolkit_slug, name, method, params)
        base["service_id"] = service.id
        try:
            principal = await gate.authenticator.authenticate(credential)
            view = await gate.catalogue.items.view(principal, org_slug, toolkit_slug)
        except (Unauthenticated, NotFound) as exc:
            status = "unauthenticated" if isinstance(exc, Unauthenticated) else "not_found"
            await gate._audit.insert(gate._finished(base, status=status, error=f"{exc.reason}: {exc.message}"))
            raise
        base |= gate._actor(principal)
        item = view.find(kind, name)
        permission = item.effective.permission if item is not None else ""
        if permission:
            base["permission"] = permission
        if item is None or permission == "blocked":
            message = unknown_message(kind, name)
            return await self._refuse(base, principal, permission, "blocked" if item else "invalid", message)
        if permission == "needs_approval":
            message = (
                f"{_KIND_WORDS[kind]} '{name}' needs an admin's approval, and {method} cannot wait for one. "
                "Ask an admin of your org to allow it."
            )
            return await self._refuse(base, principal, permission, "needs_approval", message)
        await gate._audit.insert(base | {"decision": "allow", "status": "started"})
        return ItemAuthorization("allow", call_id, permission, principal, "", item=item, view=view)

    async def _refuse(
        self, base: dict[str, Any], principal: Principal, permission: str, status: str, message: str
    ) -> ItemAuthorization:
        row = self._gate._finished(base | {"decision": "blocked"}, status=status, error=message)
        await self._gate._audit.insert(row)
        return ItemAuthorization("blocked", base["call_id"], permission, principal, message)


def params_of(params_json: str) -> Any:
    """The request's params for the audit row; text that is not JSON is stored as text."""
    try:
        return json.loads(params_json) if params_json else {}
    except ValueError:
        return params_json
