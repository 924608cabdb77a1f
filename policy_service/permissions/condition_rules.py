"""The live conditions of each org, compiled once per policy version, and the decision they
make for one call (ADR 0021).

Order: the owner's block stays a ceiling for consumer orgs; otherwise the tool's
conditions, in file order, filtered by role; the first that matches decides. When none
matches, the unconditional rule (role override > org default > owner default) decides.
An evaluation error fails closed: blocked, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policy_service.identity.principal import Principal
from policy_service.permissions.conditions import Condition, ConditionError, Facts
from policy_service.permissions.resolver import Effective, Permission
from policy_service.policies.document import ApprovalPolicy, from_json
from policy_service.storage.models import PolicyVersion
from policy_service.versioned_cache import VersionedCache, VersionSource


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str  # how the audit row names it, e.g. "acme/seo publish_page drafts"
    condition: Condition
    permission: str
    roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    version: int = 0
    rules: dict[tuple[str, str], tuple[CompiledRule, ...]] = field(default_factory=dict)
    approvals: dict[tuple[str, str], ApprovalPolicy] = field(default_factory=dict)
    # Approval policies of single conditions, by the rule name the decision carries.
    rule_approvals: dict[str, ApprovalPolicy] = field(default_factory=dict)
    # A stored expression that no longer compiles (a newer CEL, say): those tools fail closed.
    broken: dict[tuple[str, str], str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    permission: str
    rule: str = ""  # '' when the unconditional rule decided
    error: str = ""  # why the call is blocked when a condition could not be evaluated


EMPTY = CompiledPolicy()


def compile_policy(version: int, document_json: str) -> CompiledPolicy:
    document = from_json(document_json)
    rules: dict[tuple[str, str], tuple[CompiledRule, ...]] = {}
    approvals: dict[tuple[str, str], ApprovalPolicy] = {}
    broken: dict[tuple[str, str], str] = {}
    for toolkit, tools in document.toolkits.items():
        for tool, tool_rules in tools.items():
            key = (toolkit, tool)
            if tool_rules.approval is not None:
                approvals[key] = tool_rules.approval
            try:
                rules[key] = tuple(
                    CompiledRule(
                        f"{toolkit} {tool} {c.name or f'conditions[{i}]'}",
                        Condition(c.when),
                        c.permission,
                        frozenset(c.roles),
                    )
                    for i, c in enumerate(tool_rules.conditions)
                )
            except ConditionError as exc:
                broken[key] = f"policy v{version}: {exc}"
    rule_approvals = {
        f"{toolkit} {tool} {c.name or f'conditions[{i}]'}": c.approval
        for toolkit, tools in document.toolkits.items()
        for tool, tool_rules in tools.items()
        for i, c in enumerate(tool_rules.conditions)
        if c.approval is not None
    }
    rules = {k: v for k, v in rules.items() if v}
    return CompiledPolicy(version, rules, approvals, rule_approvals=rule_approvals, broken=broken)


class OrgConditions:
    """Per org, the compiled conditions of its newest policy version, kept while the policy
    version stands like the other snapshots (a policy apply writes `policy_versions`, whose
    trigger bumps the version): steady calls read nothing, and a change reaches every replica
    as fast as a revocation does."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], cache_ttl: float, version: VersionSource | None = None
    ) -> None:
        self._sessions = sessions
        self._cache: VersionedCache[str, CompiledPolicy] = VersionedCache(cache_ttl, version)
        self._compiled: dict[str, CompiledPolicy] = {}  # org id -> last compiled, reused while its version is live

    def forget_cached(self) -> None:
        self._cache.clear()

    async def policy(self, org_id: str) -> CompiledPolicy:
        if not org_id:
            return EMPTY
        return await self._cache.get_or_load(org_id, lambda: self._load(org_id))

    async def _load(self, org_id: str) -> CompiledPolicy:
        async with self._sessions() as session:
            version = (
                await session.execute(
                    select(PolicyVersion.version)
                    .where(PolicyVersion.org_id == org_id)
                    .order_by(PolicyVersion.version.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if version is None:
                return EMPTY
            known = self._compiled.get(org_id)
            if known is not None and known.version == version:
                return known
            document_json = (
                await session.execute(
                    select(PolicyVersion.document_json).where(
                        PolicyVersion.org_id == org_id, PolicyVersion.version == version
                    )
                )
            ).scalar_one()
        compiled = compile_policy(version, document_json)
        self._compiled[org_id] = compiled
        return compiled

    async def decide(
        self,
        principal: Principal,
        toolkit: str,
        tool: str,
        arguments: dict[str, Any],
        effective: Effective,
        consumer: bool,
        now: datetime,
    ) -> Decision:
        """The permission for this call under the principal's org's live policy."""
        if consumer and effective.source == "tool_default" and effective.permission == "blocked":
            return Decision("blocked")  # decided before any load: the owner's block is final
        policy = await self.policy(principal.org_id)
        return decide(policy, principal, toolkit, tool, arguments, effective, consumer=consumer, now=now)


def facts_of(principal: Principal, toolkit: str, tool: str, arguments: dict[str, Any], now: datetime) -> Facts:
    return Facts(
        args=arguments,
        principal={"id": principal.id, "kind": principal.kind, "role": principal.role, "org": principal.org_slug},
        toolkit=toolkit,
        tool=tool,
        now=now,
    )


def decide(
    policy: CompiledPolicy,
    principal: Principal,
    toolkit: str,
    tool: str,
    arguments: dict[str, Any],
    effective: Effective,
    *,
    consumer: bool,
    now: datetime,
) -> Decision:
    """The one rule (pure): owner's ceiling, then the first matching condition, then `effective`."""
    if consumer and effective.source == "tool_default" and effective.permission == "blocked":
        return Decision("blocked")
    key = (toolkit, tool)
    if key in policy.broken:
        return Decision("blocked", f"{toolkit} {tool}", policy.broken[key])
    rules = policy.rules.get(key)
    if not rules:
        return Decision(effective.permission)
    facts = facts_of(principal, toolkit, tool, arguments, now)
    for rule in rules:
        if rule.roles and principal.role not in rule.roles:
            continue
        outcome = rule.condition.evaluate(facts)
        if outcome.error:
            return Decision("blocked", rule.name, outcome.error)
        if outcome.matched:
            return Decision(rule.permission, rule.name)
    return Decision(effective.permission)


def listed(
    policy: CompiledPolicy, toolkit: str, tool: str, role: str, effective: Effective, consumer: bool
) -> Effective:
    """How a tool is listed: a tool blocked by its unconditional rule is still listed when a
    condition that applies to the caller's role can allow some of its calls."""
    if effective.permission != "blocked" or (consumer and effective.source == "tool_default"):
        return effective
    for rule in policy.rules.get((toolkit, tool), ()):
        if rule.permission != "blocked" and (not rule.roles or role in rule.roles):
            return Effective(cast(Permission, rule.permission), "condition")
    return effective
