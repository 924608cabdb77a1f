"""Catalogue items other than tools (resources, resource templates, prompts) as one caller
sees them, with each item's effective permission from the same rule tools use.

Loaded separately from the tools view so the tools/call hot path never reads them; a
snapshot per (toolkit, caller org, caller role) is cached briefly like the tools view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.errors import NotFound
from policy_service.identity.principal import Principal
from policy_service.permissions.lookup import TOOLKIT_NOT_FOUND, caller_rules, find_visible_toolkit
from policy_service.permissions.resolver import Effective
from policy_service.permissions.uri_templates import matches
from policy_service.storage.models import Tool
from policy_service.versioned_cache import VersionedCache, VersionSource

RESOURCE = "resource"
RESOURCE_TEMPLATE = "resource_template"
PROMPT = "prompt"
ITEM_KINDS = (RESOURCE, RESOURCE_TEMPLATE, PROMPT)


@dataclass(frozen=True, slots=True)
class ResolvedItem:
    kind: str
    name: str
    spec_json: str
    effective: Effective


@dataclass(frozen=True, slots=True)
class ItemsView:
    toolkit_id: str
    org_id: str
    backend_url: str
    backend_headers: dict[str, str]
    backend_timeout_seconds: float
    items: dict[tuple[str, str], ResolvedItem] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[ResolvedItem]:
        return [item for (k, _), item in self.items.items() if k == kind]

    def find(self, kind: str, name: str) -> ResolvedItem | None:
        """The item a request names. A resource URI that is not itself catalogued falls
        under the first catalogued template it matches (most specific, longest, first)."""
        found = self.items.get((kind, name))
        if found is not None or kind != RESOURCE:
            return found
        templates = sorted(self.of_kind(RESOURCE_TEMPLATE), key=lambda t: -len(t.name))
        return next((t for t in templates if matches(t.name, name)), None)


class CatalogueItems:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], cache_ttl: float, version: VersionSource | None = None
    ) -> None:
        self._sessions = sessions
        self._cache: VersionedCache[tuple[str, str, str, str], ItemsView | None] = VersionedCache(cache_ttl, version)

    def forget_cached(self) -> None:
        self._cache.clear()

    async def view(self, principal: Principal, org_slug: str, toolkit_slug: str) -> ItemsView:
        """NotFound when the toolkit is unknown or not visible to `principal` (indistinguishable)."""
        key = (org_slug, toolkit_slug, principal.org_id, principal.role_id)
        view = await self._cache.get_or_load(key, lambda: self._load(principal, org_slug, toolkit_slug))
        if view is None:
            raise NotFound(TOOLKIT_NOT_FOUND, "TOOLKIT_NOT_FOUND")
        return view

    async def _load(self, principal: Principal, org_slug: str, toolkit_slug: str) -> ItemsView | None:
        async with self._sessions() as session:
            toolkit = await find_visible_toolkit(session, principal, org_slug, toolkit_slug)
            if toolkit is None:
                return None
            rows = (
                (await session.execute(select(Tool).where(Tool.toolkit_id == toolkit.id, Tool.kind.in_(ITEM_KINDS))))
                .scalars()
                .all()
            )
            rules = await caller_rules(session, principal, [r.id for r in rows])
        consumer = principal.org_id != toolkit.org_id
        items = {
            (r.kind, r.name): ResolvedItem(r.kind, r.name, r.spec_json, rules.effective(r, consumer=consumer))
            for r in rows
        }
        return ItemsView(
            toolkit_id=toolkit.id,
            org_id=toolkit.org_id,
            backend_url=toolkit.backend_url,
            backend_headers=json.loads(toolkit.backend_headers_json or "{}"),
            backend_timeout_seconds=toolkit.backend_timeout_seconds,
            items=items,
        )
