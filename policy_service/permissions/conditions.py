"""CEL conditions on permission rules (ADR 0021): compiled and type-checked once per policy
version, evaluated in the policy service only, bounded in cost, failing closed.

An expression sees `args` (the call's arguments), `principal` (`id`, `kind`, `role`, `org`),
`toolkit` ("org/slug"), `tool` and `now` (a UTC timestamp; use e.g.
`now.getHours("Europe/Berlin")`). It must be a bool. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cel_expr_python import cel

MAX_EXPRESSION_CHARS = 1000
# Comprehension macros are CEL's only loops; one per expression keeps an evaluation linear in
# the size of the arguments (which the front already bounds).
MAX_COMPREHENSIONS = 1
_COMPREHENSION = re.compile(r"\.\s*(all|exists|exists_one|map|filter)\s*\(")

_ENV = cel.NewEnv(
    variables={
        "args": cel.Type.Map(cel.Type.STRING, cel.Type.DYN),
        "principal": cel.Type.Map(cel.Type.STRING, cel.Type.STRING),
        "toolkit": cel.Type.STRING,
        "tool": cel.Type.STRING,
        "now": cel.Type.TIMESTAMP,
    }
)


class ConditionError(ValueError):
    """An expression that does not compile, is not a bool, or is too costly."""


@dataclass(frozen=True, slots=True)
class Facts:
    """What a condition may look at, for one call."""

    args: dict[str, Any]
    principal: dict[str, str]
    toolkit: str
    tool: str
    now: datetime

    def activation(self) -> dict[str, Any]:
        return {
            "args": self.args,
            "principal": self.principal,
            "toolkit": self.toolkit,
            "tool": self.tool,
            "now": self.now,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    matched: bool
    error: str = ""  # set when evaluation failed: the caller fails closed


class Condition:
    """One compiled, type-checked expression."""

    __slots__ = ("_program", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._program = compile_checked(source)

    def evaluate(self, facts: Facts) -> Outcome:
        try:
            value = self._program.eval(data=facts.activation())
        except Exception as exc:  # the binding raises on values it cannot convert
            return Outcome(False, f"condition could not be evaluated: {exc}"[:500])
        result = value.value()
        if value.type() == cel.Type.BOOL and isinstance(result, bool):
            return Outcome(result)
        return Outcome(False, f"condition could not be evaluated: {result}"[:500])


def compile_checked(source: str) -> Any:
    """The compiled program, or ConditionError saying why not (with CEL's column marker)."""
    if not isinstance(source, str) or not source.strip():
        raise ConditionError("a condition needs an expression")
    if len(source) > MAX_EXPRESSION_CHARS:
        raise ConditionError(f"a condition is at most {MAX_EXPRESSION_CHARS} characters")
    if len(_COMPREHENSION.findall(source)) > MAX_COMPREHENSIONS:
        raise ConditionError(f"a condition may use at most {MAX_COMPREHENSIONS} comprehension (all/exists/map/filter)")
    try:
        program = _ENV.compile(source)
    except RuntimeError as exc:
        raise ConditionError(_tidy(str(exc))) from None
    returns = program.return_type()
    if returns != cel.Type.BOOL:
        raise ConditionError(f"a condition must be a bool, this one is {returns.name().lower()}")
    return program


def _tidy(message: str) -> str:
    """CEL's checker message without its status prefix and suffix."""
    message = message.removeprefix("INVALID_ARGUMENT: ").removesuffix(" [INVALID_ARGUMENT]")
    return message.removeprefix("ERROR: ").strip()
