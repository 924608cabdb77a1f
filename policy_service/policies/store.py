"""An org's policy in the database: read it as a document (export), check a file against the
catalogue and the org's roles, and apply it atomically as one new policy version.

Defaults and role overrides live in their tables (so every other admin path keeps working);
conditions and approval policies live in the newest `policy_versions` document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from policy_service.errors import FailedPrecondition, InvalidArgument
from policy_service.identity.principal import Principal
from policy_service.permissions.conditions import Condition, ConditionError
from policy_service.permissions.lookup import TOOL_KIND
from policy_service.permissions.resolver import can_see_toolkit
from policy_service.policies.diff import Change, diff
from policy_service.policies.document import (
    ApprovalPolicy,
    Parsed,
    PolicyDocument,
    PolicyFileError,
    Problem,
    ToolRules,
    from_json,
    to_json,
)
from policy_service.storage.models import (
    Organization,
    OrgToolDefault,
    PolicyVersion,
    Role,
    RoleOverride,
    Tool,
    Toolkit,
    utcnow,
)


@dataclass(frozen=True, slots=True)
class Live:
    """The org's live policy version (0: never applied)."""

    version: int = 0
    applied_by: str = ""
    applied_at: Any = None


@dataclass(frozen=True, slots=True)
class Applied:
    changes: list[Change]
    live: Live
    applied: bool


async def live_version(session: AsyncSession, org_id: str) -> tuple[Live, PolicyDocument | None]:
    row = (
        await session.execute(
            select(PolicyVersion).where(PolicyVersion.org_id == org_id).order_by(PolicyVersion.version.desc()).limit(1)
        )
    ).scalar_one_or_none()
    if row is None:
        return Live(), None
    return Live(row.version, row.applied_by, row.applied_at), from_json(row.document_json)


async def _tools_by_key(session: AsyncSession, org: Organization) -> dict[tuple[str, str], Tool]:
    """Every tool the org may set rules for, keyed by ("owner-org/toolkit", tool)."""
    rows = await session.execute(
        select(Tool, Toolkit, Organization.slug)
        .join(Toolkit, Toolkit.id == Tool.toolkit_id)
        .join(Organization, Organization.id == Toolkit.org_id)
        .where(Tool.kind == TOOL_KIND)
    )
    return {
        (f"{owner}/{toolkit.slug}", tool.name): tool
        for tool, toolkit, owner in rows.all()
        if can_see_toolkit(toolkit.visibility, toolkit.org_id, org.id)
    }


async def current_document(session: AsyncSession, org: Organization) -> PolicyDocument:
    """What is live for the org: its defaults and overrides, with the conditions and approval
    policies of its newest version (rules of tools that no longer exist are left out)."""
    tools = await _tools_by_key(session, org)
    key_of = {tool.id: key for key, tool in tools.items()}
    rules: dict[tuple[str, str], ToolRules] = {}
    defaults = await session.execute(
        select(OrgToolDefault.tool_id, OrgToolDefault.permission).where(OrgToolDefault.org_id == org.id)
    )
    for tool_id, permission in defaults.all():
        if tool_id in key_of:
            rules[key_of[tool_id]] = replace(rules.get(key_of[tool_id], ToolRules()), default=permission)
    overrides = await session.execute(
        select(RoleOverride.tool_id, Role.name, RoleOverride.permission)
        .join(Role, Role.id == RoleOverride.role_id)
        .where(RoleOverride.org_id == org.id)
    )
    for tool_id, role_name, permission in overrides.all():
        if tool_id in key_of:
            found = rules.get(key_of[tool_id], ToolRules())
            rules[key_of[tool_id]] = replace(found, roles={**found.roles, role_name: permission})
    _, applied = await live_version(session, org.id)
    for toolkit, tool_rules in (applied.toolkits if applied else {}).items():
        for tool, extra in tool_rules.items():
            if (toolkit, tool) in tools and (extra.conditions or extra.approval):
                found = rules.get((toolkit, tool), ToolRules())
                rules[(toolkit, tool)] = replace(found, conditions=extra.conditions, approval=extra.approval)
    toolkits: dict[str, dict[str, ToolRules]] = {}
    for (toolkit, tool), found in rules.items():
        toolkits.setdefault(toolkit, {})[tool] = found
    return PolicyDocument(org=org.slug, toolkits=toolkits)


async def check(session: AsyncSession, org: Organization, parsed: Parsed) -> dict[tuple[str, str], Tool]:
    """Every reference resolved and every expression type-checked, or PolicyFileError with lines."""
    document = parsed.document
    problems: list[Problem] = []
    if document.org != org.slug:
        problems.append(Problem(parsed.line(("org",)), f"this file is for org {document.org!r}, not {org.slug!r}"))
    tools = await _tools_by_key(session, org)
    toolkits = {key[0] for key in tools}
    role_rows = (await session.execute(select(Role.name, Role.is_admin).where(Role.org_id == org.id))).all()
    roles = {name for name, _ in role_rows}
    admin_roles = {name for name, is_admin in role_rows if is_admin}
    for toolkit, tool_rules in document.toolkits.items():
        if toolkit not in toolkits:
            problems.append(Problem(parsed.line(("toolkits", toolkit)), f"unknown toolkit {toolkit!r}"))
            continue
        for tool, rules in tool_rules.items():
            at: tuple[str | int, ...] = ("toolkits", toolkit, tool)
            if (toolkit, tool) not in tools:
                problems.append(Problem(parsed.line(at), f"unknown tool {tool!r} in {toolkit}"))
                continue
            problems += _check_rules(parsed, at, rules, roles, admin_roles)
    if problems:
        raise PolicyFileError(problems)
    return tools


def _check_rules(
    parsed: Parsed, at: tuple[str | int, ...], rules: ToolRules, roles: set[str], admin_roles: set[str]
) -> list[Problem]:
    problems = [
        Problem(parsed.line((*at, "roles", role)), f"unknown role {role!r}")
        for role in rules.roles
        if role not in roles
    ]
    for index, condition in enumerate(rules.conditions):
        where = (*at, "conditions", index)
        problems += [
            Problem(parsed.line((*where, "roles")), f"unknown role {role!r}")
            for role in condition.roles
            if role not in roles
        ]
        problems += _check_expression(parsed, (*where, "when"), condition.when)
        if condition.approval is not None:
            problems += _check_approval(parsed, (*where, "approval"), condition.approval, roles, admin_roles)
    if rules.approval is not None:
        problems += _check_approval(parsed, (*at, "approval"), rules.approval, roles, admin_roles)
    return problems


def _check_approval(
    parsed: Parsed, at: tuple[str | int, ...], approval: ApprovalPolicy, roles: set[str], admin_roles: set[str]
) -> list[Problem]:
    problems = [
        Problem(
            parsed.line((*at, "approver_roles")),
            f"unknown role {role!r}" if role not in roles else f"role {role!r} is not an admin role: it cannot approve",
        )
        for role in approval.approver_roles
        if role not in admin_roles
    ]
    if approval.window is not None:
        problems += _check_expression(parsed, (*at, "window", "when"), approval.window.when)
    return problems


def _check_expression(parsed: Parsed, path: tuple[str | int, ...], source: str) -> list[Problem]:
    try:
        Condition(source)
    except ConditionError as exc:
        return [Problem(parsed.line(path), f"condition {source!r}: {exc}")]
    return []


async def apply(
    session: AsyncSession, org: Organization, parsed: Parsed, principal: Principal, dry_run: bool
) -> Applied:
    """Make the org's rules exactly the file's, in the caller's transaction, as one version."""
    tools = await check(session, org, parsed)
    current = await current_document(session, org)
    changes = diff(current, parsed.document)
    live, _ = await live_version(session, org.id)
    if dry_run or not changes:
        return Applied(changes, live, applied=False)
    await _write_rules(session, org, parsed.document, tools)
    version = (
        await session.execute(
            select(func.coalesce(func.max(PolicyVersion.version), 0)).where(PolicyVersion.org_id == org.id)
        )
    ).scalar_one() + 1
    now = utcnow()
    try:
        async with session.begin_nested():
            session.add(
                PolicyVersion(
                    org_id=org.id,
                    version=version,
                    document_json=to_json(parsed.document),
                    changes_json=json.dumps([c.to_json() for c in changes]),
                    applied_by=principal.display[:320],
                    applied_at=now,
                )
            )
    except IntegrityError:
        raise FailedPrecondition(
            "another apply for this org won the race; diff and apply again", "POLICY_RACE"
        ) from None
    return Applied(changes, Live(version, principal.display, now), applied=True)


async def _write_rules(
    session: AsyncSession, org: Organization, document: PolicyDocument, tools: dict[tuple[str, str], Tool]
) -> None:
    """Replace the org's tool defaults and role overrides with the document's."""
    tool_ids = [t.id for t in tools.values()]
    await session.execute(
        delete(OrgToolDefault).where(OrgToolDefault.org_id == org.id, OrgToolDefault.tool_id.in_(tool_ids))
    )
    await session.execute(delete(RoleOverride).where(RoleOverride.org_id == org.id, RoleOverride.tool_id.in_(tool_ids)))
    role_ids = {
        name: ident for name, ident in await session.execute(select(Role.name, Role.id).where(Role.org_id == org.id))
    }
    for toolkit, tool_rules in document.toolkits.items():
        for tool, rules in tool_rules.items():
            target = tools[(toolkit, tool)]
            if rules.default is not None:
                session.add(OrgToolDefault(org_id=org.id, tool_id=target.id, permission=rules.default))
            for role, permission in rules.roles.items():
                if role not in role_ids:
                    raise InvalidArgument(f"unknown role {role!r}", "ROLE_NOT_FOUND")
                session.add(
                    RoleOverride(org_id=org.id, role_id=role_ids[role], tool_id=target.id, permission=permission)
                )
    await session.flush()
