"""Loads what a caller may see of a toolkit, with every tool's effective permission.

A snapshot per (toolkit, caller org, caller role) is cached briefly; permission changes
reach every replica within the cache TTL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.errors import NotFound
from policy_service.identity.principal import Principal
from policy_service.permissions.items import CatalogueItems
from policy_service.permissions.lookup import TOOL_KIND, TOOLKIT_NOT_FOUND, caller_rules, find_visible_toolkit
from policy_service.permissions.resolver import Effective, can_see_toolkit
from policy_service.storage.models import Tool
from policy_service.ttl_cache import TTLCache


@dataclass(frozen=True, slots=True)
class ResolvedTool:
    name: str
    title: str
    description: str
    input_schema_json: str
    output_schema_json: str
    annotations_json: str
    effective: Effective
    # The backend's `icons` and `_meta` for this tool, as JSON text ('' when none).
    passthrough_json: str = ""


@dataclass(frozen=True, slots=True)
class ToolkitView:
    toolkit_id: str
    org_id: str
    org_slug: str
    slug: str
    name: str
    description: str
    visibility: str
    backend_url: str
    backend_headers: dict[str, str]
    backend_timeout_seconds: float
    tools: dict[str, ResolvedTool] = field(default_factory=dict)


PASSTHROUGH_FIELDS = ("icons", "_meta")


def passthrough(spec_json: str) -> str:
    """The tool fields served as the backend declared them (parsed once per cache load)."""
    if not spec_json:
        return ""
    try:
        spec = json.loads(spec_json)
    except ValueError:
        return ""
    kept = {k: spec[k] for k in PASSTHROUGH_FIELDS if isinstance(spec, dict) and k in spec}
    return json.dumps(kept, separators=(",", ":")) if kept else ""


class Catalogue:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache_ttl: float) -> None:
        self._sessions = sessions
        self._cache: TTLCache[tuple[str, str, str, str], ToolkitView | None] = TTLCache(cache_ttl)
        # Resources, templates and prompts: loaded apart so tools/call never reads them.
        self.items = CatalogueItems(sessions, cache_ttl)

    def forget_cached(self) -> None:
        self._cache.clear()
        self.items.forget_cached()

    async def view(self, principal: Principal, org_slug: str, toolkit_slug: str) -> ToolkitView:
        """The toolkit as `principal` sees it; NotFound when unknown or not visible to them."""
        key = (org_slug, toolkit_slug, principal.org_id, principal.role_id)
        view = await self._cache.get_or_load(key, lambda: self._load(principal, org_slug, toolkit_slug))
        if view is None or not can_see_toolkit(view.visibility, view.org_id, principal.org_id, principal.is_operator):
            raise NotFound(TOOLKIT_NOT_FOUND, "TOOLKIT_NOT_FOUND")
        return view

    async def _load(self, principal: Principal, org_slug: str, toolkit_slug: str) -> ToolkitView | None:
        async with self._sessions() as session:
            toolkit = await find_visible_toolkit(session, principal, org_slug, toolkit_slug)
            if toolkit is None:
                # Decided before the tools are read, so an invisible toolkit costs what an unknown one
                # does: a private toolkit's 404 must not be measurably slower than a missing one's.
                return None
            tools = (
                (await session.execute(select(Tool).where(Tool.toolkit_id == toolkit.id, Tool.kind == TOOL_KIND)))
                .scalars()
                .all()
            )
            rules = await caller_rules(session, principal, [t.id for t in tools])
        resolved = {
            t.name: ResolvedTool(
                name=t.name,
                title=t.title,
                description=t.description,
                input_schema_json=t.input_schema_json,
                output_schema_json=t.output_schema_json,
                annotations_json=t.annotations_json,
                effective=rules.effective(t, consumer=principal.org_id != toolkit.org_id),
                passthrough_json=passthrough(t.spec_json),
            )
            for t in tools
        }
        return ToolkitView(
            toolkit_id=toolkit.id,
            org_id=toolkit.org_id,
            org_slug=org_slug,
            slug=toolkit.slug,
            name=toolkit.name,
            description=toolkit.description,
            visibility=toolkit.visibility,
            backend_url=toolkit.backend_url,
            backend_headers=json.loads(toolkit.backend_headers_json or "{}"),
            backend_timeout_seconds=toolkit.backend_timeout_seconds,
            tools=resolved,
        )
