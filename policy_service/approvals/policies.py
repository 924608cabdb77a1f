"""Approval policies (ADR 0021): n-of-m distinct approvers, from which roles, whether the
requester's role may approve, validity, and an optional window that widens a grant from
one exact call to the same principal's matching calls for a while.

The policy is frozen on the approval when the request is made, so approvers decide what
they are shown. Pure: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from policy_service.identity.principal import Principal
from policy_service.permissions.conditions import Condition
from policy_service.policies.document import ApprovalPolicy, Window


@dataclass(frozen=True, slots=True)
class Frozen:
    """The approval policy as stored on an approval row (`Approval.policy_json`)."""

    approvers: int = 1
    approver_roles: tuple[str, ...] = ()
    requester_role_may_approve: bool = True
    valid_for_seconds: int = 0
    window: Window | None = None

    @staticmethod
    def of(policy: ApprovalPolicy) -> Frozen:
        return Frozen(
            policy.approvers,
            policy.approver_roles,
            policy.requester_role_may_approve,
            policy.valid_for_seconds,
            policy.window,
        )

    def to_json(self) -> str:
        window = {"when": self.window.when, "seconds": self.window.seconds} if self.window else None
        return json.dumps(
            {
                "approvers": self.approvers,
                "approver_roles": list(self.approver_roles),
                "requester_role_may_approve": self.requester_role_may_approve,
                "valid_for_seconds": self.valid_for_seconds,
                "window": window,
            },
            sort_keys=True,
        )

    @staticmethod
    def from_json(text: str) -> Frozen:
        if not text:
            return Frozen()
        data = json.loads(text)
        window = data.get("window")
        return Frozen(
            int(data["approvers"]),
            tuple(data["approver_roles"]),
            bool(data["requester_role_may_approve"]),
            int(data["valid_for_seconds"]),
            Window(window["when"], int(window["seconds"])) if window else None,
        )


def scope(frozen: Frozen) -> str:
    """What an approval grants and needs, in words the approver reads before deciding."""
    if frozen.window is None:
        grant = "this exact call, once"
    else:
        grant = (
            f"a window: this principal's calls of this tool whose arguments match "
            f"`{frozen.window.when}`, for {_duration(frozen.window.seconds)} after approval (not only this call)"
        )
    needs = f"{frozen.approvers} distinct approver{'s' if frozen.approvers != 1 else ''}"
    if frozen.approver_roles:
        needs += f" with role {' or '.join(frozen.approver_roles)}"
    if not frozen.requester_role_may_approve:
        needs += ", none of the requester's role"
    valid = f"; usable for {_duration(frozen.valid_for_seconds)} once granted" if frozen.valid_for_seconds else ""
    return f"Covers {grant}. Needs {needs}{valid}."


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def voter_key(approver: Principal) -> str:
    """Who an approver is, for counting distinct approvers: a person, or the operator.
    A credential that names no person (an unowned key) cannot be told apart from another
    of the same holder's keys, so it cannot be one of several approvers ('')."""
    if approver.is_operator:
        return "operator"
    person = approver.person_id or (approver.id if approver.kind == "user" else "")
    return f"person:{person}" if person else ""


def eligibility_problem(frozen: Frozen, approver: Principal, requester_role: str) -> str | None:
    """Why `approver` may not approve under the frozen policy (None: they may)."""
    if approver.is_operator:
        return None
    if frozen.approver_roles and approver.role not in frozen.approver_roles:
        return f"this approval needs an approver with role {' or '.join(frozen.approver_roles)}"
    if not frozen.requester_role_may_approve and approver.role == requester_role:
        return f"the requester's role ({requester_role}) may not approve this tool's calls"
    return None


@lru_cache(maxsize=1024)
def window_condition(source: str) -> Condition:
    """Compiled once per expression text (each was type-checked when its policy was applied)."""
    return Condition(source)
