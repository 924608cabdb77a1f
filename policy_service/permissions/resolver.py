"""The one rule that decides a tool's effective permission, and who may see a toolkit.

Pure functions: no I/O, so the precedence is tested exhaustively from data files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Permission = Literal["always_allow", "needs_approval", "blocked"]
# "condition": listed because a policy condition (ADR 0021) allows some calls of a tool
# whose unconditional rule blocks it.
Source = Literal["role_override", "org_default", "tool_default", "condition"]


@dataclass(frozen=True, slots=True)
class Effective:
    permission: Permission
    source: Source


def effective_permission(
    role_override: Permission | None,
    org_default: Permission | None,
    tool_default: Permission,
    *,
    consumer: bool,
) -> Effective:
    """Caller's role override, else the caller org's default, else the owner's default.

    `consumer` is True when the caller's org does not own the toolkit. For a consumer the
    owner's `blocked` is a ceiling: the consumer's own rules may tighten, never loosen it.
    """
    if consumer and tool_default == "blocked":
        return Effective("blocked", "tool_default")
    if role_override is not None:
        return Effective(role_override, "role_override")
    if org_default is not None:
        return Effective(org_default, "org_default")
    return Effective(tool_default, "tool_default")


def can_see_toolkit(visibility: str, toolkit_org_id: str, caller_org_id: str) -> bool:
    """Public toolkits are visible to every authenticated caller; private ones to their org.
    The operator belongs to no org: on the MCP endpoints a private toolkit does not exist for
    it either (ADR 0035); the admin API's own rule (`rules.visible_toolkit`) lets it manage them."""
    return visibility == "public" or (bool(caller_org_id) and toolkit_org_id == caller_org_id)
