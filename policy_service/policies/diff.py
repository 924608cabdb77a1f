"""What applying a policy file would change, rule by rule. Pure: no I/O."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from policy_service.policies.document import PolicyDocument, ToolRules, approval_data, condition_data


@dataclass(frozen=True, slots=True)
class Change:
    toolkit: str
    tool: str
    # "default", "role:<name>", "conditions" or "approval"
    field: str
    before: str  # '' = not set
    after: str  # '' = removed

    @property
    def action(self) -> str:
        return "add" if not self.before else "remove" if not self.after else "change"

    def to_json(self) -> dict[str, str]:
        return asdict(self) | {"action": self.action}

    def __str__(self) -> str:
        sign = {"add": "+", "remove": "-", "change": "~"}[self.action]
        what = f"{self.toolkit} {self.tool} {self.field.replace(':', ' ')}"
        if self.action == "add":
            return f"{sign} {what}: {self.after}"
        if self.action == "remove":
            return f"{sign} {what}: {self.before}"
        return f"{sign} {what}: {self.before} -> {self.after}"


def _fields(rules: ToolRules) -> dict[str, str]:
    out: dict[str, str] = {}
    if rules.default is not None:
        out["default"] = rules.default
    for role, permission in rules.roles.items():
        out[f"role:{role}"] = permission
    if rules.conditions:
        out["conditions"] = _compact([condition_data(c) for c in rules.conditions])
    if rules.approval is not None:
        out["approval"] = _compact(approval_data(rules.approval))
    return out


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def _flatten(document: PolicyDocument) -> dict[tuple[str, str, str], str]:
    return {
        (toolkit, tool, name): value
        for toolkit, tools in document.toolkits.items()
        for tool, rules in tools.items()
        for name, value in _fields(rules).items()
    }


def diff(current: PolicyDocument, desired: PolicyDocument) -> list[Change]:
    """Every rule that differs, in a stable order (toolkit, tool, field)."""
    before, after = _flatten(current), _flatten(desired)
    keys = sorted(set(before) | set(after), key=lambda k: (k[0], k[1], _field_order(k[2]), k[2]))
    return [
        Change(toolkit, tool, name, before.get((toolkit, tool, name), ""), after.get((toolkit, tool, name), ""))
        for toolkit, tool, name in keys
        if before.get((toolkit, tool, name), "") != after.get((toolkit, tool, name), "")
    ]


def _field_order(name: str) -> int:
    return {"default": 0, "conditions": 2, "approval": 3}.get(name, 1)
