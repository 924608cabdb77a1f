"""What an admin action changed: one small snapshot per kind of object, read by the audit
interceptor before and after the servicer runs, so no servicer writes its own before/after.

A snapshot is the object's audit-worthy state as plain JSON, or None when it does not exist
(before a create, after a remove). Secrets never enter it: no key hash, no password hash
(a `_`-prefixed private value lets the interceptor say *whether* it changed, then is dropped),
and backend headers pass through the audit redactor with the rest of the row.

A snapshot is taken only of an object in the caller's own org (any org for the operator),
because the row is filed under the caller's org and must not show another org's objects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.domains import names
from policy_service.errors import PolicyError
from policy_service.identity.principal import Principal
from policy_service.storage.models import (
    ApiKey,
    Approval,
    Membership,
    Organization,
    OrgDomain,
    OrgToolDefault,
    Role,
    RoleOverride,
    Tool,
    Toolkit,
    User,
)
from policy_service.toolkits import stdio_backend

Snapshot = dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Target:
    """What a reader gets: the request, the response (None before the call), the org acted
    in ('' for the operator acting across orgs) and the caller."""

    request: Any
    response: Any
    org: str
    caller: Principal


Reader = Callable[[AsyncSession, Target], Awaitable[Snapshot]]


@dataclass(frozen=True, slots=True)
class Subject:
    """How to find the object an RPC changes: the org it belongs to, and how to read it."""

    org: Callable[[Any], str]
    read: Reader


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _org_field(request: Any) -> str:
    return str(getattr(request, "org_slug", ""))


async def _org_id(session: AsyncSession, slug: str) -> str | None:
    return (await session.execute(select(Organization.id).where(Organization.slug == slug))).scalar_one_or_none()


async def _tool(session: AsyncSession, org_slug: str, toolkit_slug: str, name: str, kind: str) -> Tool | None:
    return (
        await session.execute(
            select(Tool)
            .join(Toolkit, Toolkit.id == Tool.toolkit_id)
            .join(Organization, Organization.id == Toolkit.org_id)
            .where(
                Organization.slug == org_slug,
                Toolkit.slug == toolkit_slug,
                Tool.name == name,
                Tool.kind == (kind or "tool"),
            )
        )
    ).scalar_one_or_none()


async def _tool_default(session: AsyncSession, t: Target) -> Snapshot:
    r = t.request
    tool = await _tool(session, t.org, r.toolkit_slug, r.tool, r.kind)
    return None if tool is None else {"tool": tool.name, "permission": tool.default_permission}


async def _org_rule_target(session: AsyncSession, t: Target) -> tuple[Tool, str] | None:
    """The tool (of the named toolkit org, else the caller's) and the org an org-level rule belongs to."""
    r = t.request
    tool = await _tool(session, r.toolkit_org_slug or t.org, r.toolkit_slug, r.tool, r.kind)
    org_id = await _org_id(session, t.org)
    return None if tool is None or org_id is None else (tool, org_id)


async def _org_default(session: AsyncSession, t: Target) -> Snapshot:
    found = await _org_rule_target(session, t)
    if found is None:
        return None
    tool, org_id = found
    permission = (
        await session.execute(
            select(OrgToolDefault.permission).where(OrgToolDefault.org_id == org_id, OrgToolDefault.tool_id == tool.id)
        )
    ).scalar_one_or_none()
    return None if permission is None else {"tool": tool.name, "permission": permission}


async def _role_override(session: AsyncSession, t: Target) -> Snapshot:
    found = await _org_rule_target(session, t)
    if found is None:
        return None
    tool, org_id = found
    r = t.request
    permission = (
        await session.execute(
            select(RoleOverride.permission)
            .join(Role, Role.id == RoleOverride.role_id)
            .where(Role.org_id == org_id, Role.name == r.role, RoleOverride.tool_id == tool.id)
        )
    ).scalar_one_or_none()
    return None if permission is None else {"role": r.role, "tool": tool.name, "permission": permission}


async def _key(session: AsyncSession, key_id: str, org: str) -> Snapshot:
    row = (
        await session.execute(
            select(ApiKey, Role.name)
            .join(Role, Role.id == ApiKey.role_id)
            .join(Organization, Organization.id == ApiKey.org_id)
            .where(ApiKey.id == key_id, Organization.slug == org)
        )
    ).first()
    if row is None:
        return None
    key, role = row
    return {
        "id": key.id,
        "name": key.name,
        "role": role,
        "expires_at": _when(key.expires_at),
        "revoked_at": _when(key.revoked_at),
    }


async def _created_key(session: AsyncSession, t: Target) -> Snapshot:
    return None if t.response is None else await _key(session, t.response.key.id, t.org)


async def _revoked_key(session: AsyncSession, t: Target) -> Snapshot:
    return await _key(session, t.request.id, t.org)


async def _person(session: AsyncSession, who: str, org: str) -> Snapshot:
    if not who:
        return None
    row = (
        await session.execute(
            select(User, Role.name)
            .join(Membership, Membership.user_id == User.id)
            .join(Role, Role.id == Membership.role_id)
            .join(Organization, Organization.id == Membership.org_id)
            .where(Organization.slug == org, (User.id == who.strip()) | (User.email == who.strip().lower()))
        )
    ).first()
    if row is None:
        return None
    user, role = row
    return {
        "user_id": user.id,
        "email": user.email,
        "role": role,
        "disabled": user.disabled_at is not None,
        "has_password": bool(user.password_hash),
        # Compared before/after into `password_changed`, then dropped: never stored.
        "_password": hashlib.sha256(user.password_hash.encode()).hexdigest(),
    }


async def _named_person(session: AsyncSession, t: Target) -> Snapshot:
    who = getattr(t.request, "person", "") or getattr(t.request, "email", "")
    return await _person(session, who, t.org)


async def _own_account(session: AsyncSession, t: Target) -> Snapshot:
    return await _person(session, t.caller.person_id or "", t.org)


def _backend(url: str) -> dict[str, Any]:
    """A stdio backend's address carries its environment (base64): shown decoded, so the
    redactor sees `env` and hides its values, never as the encoded address."""
    if not stdio_backend.is_stdio(url):
        return {"backend_url": url}
    try:
        spec = asdict(stdio_backend.from_address(url))
    except (ValueError, KeyError, TypeError):
        return {"backend_url": "stdio (unreadable address)"}
    return {"backend_url": "stdio", "backend_stdio": spec | {"args": list(spec["args"])}}


async def _toolkit(session: AsyncSession, t: Target) -> Snapshot:
    toolkit = (
        await session.execute(
            select(Toolkit)
            .join(Organization, Organization.id == Toolkit.org_id)
            .where(Organization.slug == t.org, Toolkit.slug == t.request.slug)
        )
    ).scalar_one_or_none()
    if toolkit is None:
        return None
    return {
        "slug": toolkit.slug,
        "name": toolkit.name,
        "description": toolkit.description,
        "visibility": toolkit.visibility,
        **_backend(toolkit.backend_url),
        # Values under secret-looking names are redacted with the rest of the row.
        "backend_headers": json.loads(toolkit.backend_headers_json or "{}"),
        "backend_timeout_seconds": toolkit.backend_timeout_seconds,
        "new_tool_permission": toolkit.new_tool_permission,
    }


async def _domain(session: AsyncSession, t: Target) -> Snapshot:
    try:
        domain = names.normalize(t.request.domain)
    except PolicyError:
        return None  # refused as bad input: nothing to show
    row = (
        await session.execute(
            select(OrgDomain)
            .join(Organization, Organization.id == OrgDomain.org_id)
            .where(Organization.slug == t.org, OrgDomain.domain == domain)
        )
    ).scalar_one_or_none()
    return None if row is None else {"domain": row.domain, "verified_at": _when(row.verified_at)}


async def _approval(session: AsyncSession, t: Target) -> Snapshot:
    row = (
        await session.execute(
            select(Approval)
            .join(Organization, Organization.id == Approval.org_id)
            .where(Approval.id == t.request.id, (Organization.slug == t.org) if t.org else true())
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return {
        "id": row.id,
        "tool": row.tool,
        "status": row.status,
        "decided_by": row.decided_by,
        "reason": row.reason,
        "approvals_count": row.approvals_count,
        "decided_at": _when(row.decided_at),
    }


_PERMISSIONS = ("SetOrgDefault", "ClearOrgDefault")
_OVERRIDES = ("SetRoleOverride", "ClearRoleOverride")
_PEOPLE = ("AddMember", "CreatePerson", "SetPersonDisabled", "ResetPassword")
SUBJECTS: dict[str, Subject] = {
    "SetToolDefault": Subject(_org_field, _tool_default),
    **{name: Subject(_org_field, _org_default) for name in _PERMISSIONS},
    **{name: Subject(_org_field, _role_override) for name in _OVERRIDES},
    "CreateApiKey": Subject(_org_field, _created_key),
    "RevokeApiKey": Subject(_org_field, _revoked_key),
    **{name: Subject(_org_field, _named_person) for name in _PEOPLE},
    "ChangePassword": Subject(lambda request: "", _own_account),
    "UpsertToolkit": Subject(_org_field, _toolkit),
    **{name: Subject(_org_field, _domain) for name in ("AddDomain", "VerifyDomain", "RemoveDomain")},
    "DecideApproval": Subject(lambda request: "", _approval),
}


class Snapshots:
    """Reads the subject of an admin RPC for the audit interceptor (None: not one it knows)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    def org(self, name: str, request: Message, principal: Principal | None) -> str | None:
        """The org whose object the call changes, if the caller may see it in the audit log."""
        subject = SUBJECTS.get(name)
        if subject is None or principal is None:
            return None
        org = subject.org(request) or principal.org_slug
        return org if principal.is_operator or org == principal.org_slug else None

    async def read(self, name: str, request: Message, response: Any, org: str, caller: Principal) -> Snapshot:
        async with self._sessions() as session:
            return await SUBJECTS[name].read(session, Target(request, response, org, caller))


def change(before: Snapshot, after: Snapshot, finished: bool) -> dict[str, Any]:
    """The before/after a row keeps: private `_` values become a `<name>_changed` flag on the
    after (or vanish); an unfinished action keeps only its before (nothing changed)."""
    public_before = _public(before)
    if not finished:
        return {"before": public_before}
    public_after = _public(after)
    if public_after is not None and before is not None and after is not None:
        for key in (k for k in after if k.startswith("_")):
            public_after[f"{key[1:]}_changed"] = before.get(key) != after.get(key)
    return {"before": public_before, "after": public_after}


def _public(snapshot: Snapshot) -> Snapshot:
    return None if snapshot is None else {k: v for k, v in snapshot.items() if not k.startswith("_")}
