"""The policy file (ADR 0021): YAML in, a typed document out, with every error tied to the
line it is on; and the document back to stable YAML (export) and canonical JSON (storage).

Pure: no I/O. What needs the database (unknown toolkits, tools, roles) is checked by
`policies.check`, which reports against the same line map.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import yaml

Path = tuple[str | int, ...]

_DURATION = re.compile(r"([1-9][0-9]*)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_FILE_BYTES = 1_000_000
# A policy file nests about eight levels deep; PyYAML's scanner is quadratic and its composer
# recursive in the nesting depth, so depth is checked on the token stream before either runs.
MAX_DEPTH = 32
_OPENS = (
    yaml.BlockMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.FlowSequenceStartToken,
)
_CLOSES = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class PolicyFileError(ValueError):
    """The file is not a valid policy; `problems` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line)
        count = len(self.problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(f"the policy file has {count} error{'s' if count != 1 else ''}:\n{lines}")


@dataclass(frozen=True, slots=True)
class Window:
    when: str
    seconds: int


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    approvers: int = 1
    approver_roles: tuple[str, ...] = ()
    requester_role_may_approve: bool = True
    valid_for_seconds: int = 0  # 0: the service's default
    window: Window | None = None


@dataclass(frozen=True, slots=True)
class ConditionRule:
    when: str
    permission: str
    roles: tuple[str, ...] = ()
    name: str = ""
    # For the calls this condition sends to approval (None: the tool's approval policy).
    approval: ApprovalPolicy | None = None


@dataclass(frozen=True, slots=True)
class ToolRules:
    default: str | None = None
    roles: dict[str, str] = field(default_factory=dict)
    conditions: tuple[ConditionRule, ...] = ()
    approval: ApprovalPolicy | None = None


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    org: str
    # "owner-org/toolkit" -> tool name -> rules
    toolkits: dict[str, dict[str, ToolRules]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Parsed:
    document: PolicyDocument
    lines: dict[Path, int]

    def line(self, path: Path) -> int:
        """The line of `path`, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return 1


@cache
def schema() -> dict[str, Any]:
    """The published JSON Schema (shipped in the package, see docs/policy-files.md)."""
    text = resources.files("policy_service.policies").joinpath("policy.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def parse(text: str) -> Parsed:
    """The document, or PolicyFileError listing every problem with its line."""
    if len(text.encode()) > MAX_FILE_BYTES:
        raise PolicyFileError([Problem(0, f"a policy file is at most {MAX_FILE_BYTES} bytes")])
    try:
        _refuse_shapes(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise PolicyFileError([Problem(line, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    lines: dict[Path, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _walk(node, (), lines, problems)
    if problems:
        raise PolicyFileError(problems)
    parsed = Parsed(PolicyDocument(org=""), lines)
    validator = jsonschema.Draft202012Validator(schema())
    problems = [Problem(_error_line(parsed, e), _schema_message(e)) for e in validator.iter_errors(data or {})]
    if problems:
        raise PolicyFileError(problems)
    return Parsed(_document(data), lines)


def _refuse_shapes(text: str) -> None:
    """Aliases let a small file expand into a huge tree (and every check walks the tree), and
    deep nesting makes parsing itself costly: a policy file has no use for either."""
    depth = 0
    for token in yaml.scan(text, Loader=yaml.SafeLoader):
        line = token.start_mark.line + 1 if token.start_mark is not None else 0
        if isinstance(token, yaml.AliasToken):
            raise PolicyFileError([Problem(line, "YAML aliases (*name) are not allowed in a policy file")])
        if isinstance(token, _OPENS):
            depth += 1
            if depth > MAX_DEPTH:
                raise PolicyFileError([Problem(line, f"nested deeper than {MAX_DEPTH} levels")])
        elif isinstance(token, _CLOSES):
            depth -= 1


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int], problems: list[Problem]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                problems.append(Problem(key.start_mark.line + 1, f"{_dotted((*path, name))} is given twice"))
            seen.add(name)
            lines[(*path, name)] = key.start_mark.line + 1
            _walk(value, (*path, name), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, problems)


def _dotted(path: Path) -> str:
    return ".".join(str(p) for p in path) or "the file"


def _error_line(parsed: Parsed, error: jsonschema.ValidationError) -> int:
    path = tuple(error.absolute_path)
    if "propertyNames" in error.relative_schema_path and isinstance(error.instance, str):
        return parsed.line((*path, error.instance))  # the offending key's own line
    return parsed.line(path)


def _schema_message(error: jsonschema.ValidationError) -> str:
    where = _dotted(tuple(error.absolute_path))
    rule = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(rule.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in known)
        return f"{where}: unknown field {', '.join(repr(k) for k in extra)}"
    if error.validator == "enum" and isinstance(error.validator_value, list):
        return f"{where}: {error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    return f"{where}: {error.message}"


def seconds(value: int | str) -> int:
    if isinstance(value, int):
        return value
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ValueError(f"bad duration {value!r}")
    return int(match[1]) * _UNIT_SECONDS[match[2]]


def _approval(data: dict[str, Any]) -> ApprovalPolicy:
    window = data.get("window")
    return ApprovalPolicy(
        approvers=int(data.get("approvers", 1)),
        approver_roles=tuple(data.get("approver_roles", ())),
        requester_role_may_approve=bool(data.get("requester_role_may_approve", True)),
        valid_for_seconds=seconds(data["valid_for"]) if "valid_for" in data else 0,
        window=Window(window["when"], seconds(window["for"])) if window else None,
    )


def _tool_rules(data: dict[str, Any]) -> ToolRules:
    return ToolRules(
        default=data.get("default"),
        roles=dict(data.get("roles") or {}),
        conditions=tuple(
            ConditionRule(
                c["when"],
                c["permission"],
                tuple(c.get("roles", ())),
                c.get("name", ""),
                _approval(c["approval"]) if c.get("approval") is not None else None,
            )
            for c in data.get("conditions") or ()
        ),
        approval=_approval(data["approval"]) if data.get("approval") is not None else None,
    )


def _document(data: dict[str, Any]) -> PolicyDocument:
    toolkits = {
        toolkit: {tool: _tool_rules(rules or {}) for tool, rules in (tools or {}).items()}
        for toolkit, tools in (data.get("toolkits") or {}).items()
    }
    return PolicyDocument(org=data["org"], toolkits=toolkits)


def to_data(document: PolicyDocument) -> dict[str, Any]:
    """Plain data in a stable order: toolkits, tools and roles sorted; conditions keep theirs."""
    toolkits: dict[str, Any] = {}
    for toolkit in sorted(document.toolkits):
        tools = {}
        for tool in sorted(document.toolkits[toolkit]):
            rules = _rules_data(document.toolkits[toolkit][tool])
            if rules:
                tools[tool] = rules
        if tools:
            toolkits[toolkit] = tools
    return {"org": document.org, "toolkits": toolkits}


def _rules_data(rules: ToolRules) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rules.default is not None:
        out["default"] = rules.default
    if rules.roles:
        out["roles"] = {role: rules.roles[role] for role in sorted(rules.roles)}
    if rules.conditions:
        out["conditions"] = [condition_data(c) for c in rules.conditions]
    if rules.approval is not None:
        out["approval"] = approval_data(rules.approval)
    return out


def condition_data(c: ConditionRule) -> dict[str, Any]:
    out: dict[str, Any] = {"name": c.name} if c.name else {}
    out |= {"when": c.when, "permission": c.permission}
    if c.roles:
        out["roles"] = list(c.roles)
    if c.approval is not None:
        out["approval"] = approval_data(c.approval)
    return out


def approval_data(a: ApprovalPolicy) -> dict[str, Any]:
    out: dict[str, Any] = {"approvers": a.approvers}
    if a.approver_roles:
        out["approver_roles"] = list(a.approver_roles)
    out["requester_role_may_approve"] = a.requester_role_may_approve
    if a.valid_for_seconds:
        out["valid_for"] = a.valid_for_seconds
    if a.window is not None:
        out["window"] = {"when": a.window.when, "for": a.window.seconds}
    return out


def to_yaml(document: PolicyDocument, header: str = "") -> str:
    """Stable YAML: exporting, applying and exporting again gives the same text."""
    body = yaml.safe_dump(to_data(document), sort_keys=False, allow_unicode=True, width=1000)
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comments + body


def to_json(document: PolicyDocument) -> str:
    return json.dumps(to_data(document), sort_keys=True, separators=(",", ":"))


def from_json(text: str) -> PolicyDocument:
    return _document(json.loads(text))
