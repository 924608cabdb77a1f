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

MAX_EXPRESSION_CHARS = 1000  # not counting `//` comments
MAX_SOURCE_CHARS = 4000  # with them
# Comprehension macros are CEL's only loops; one per expression keeps an evaluation linear in
# the size of the arguments. The limits are counted on the expression without its comments
# (CEL ignores them), so a comment cannot hide a macro's name from its `(`.
MAX_COMPREHENSIONS = 1
_COMPREHENSION = re.compile(r"\.\s*(all|exists|exists_one|map|filter)\s*\(")
_MAP = re.compile(r"\.\s*map\s*\(")
# A loop's cost is (iterations) x (the data each iteration touches), both chosen by the caller.
# CEL keeps every intermediate value until the evaluation ends, so a loop that builds values
# (`+` concatenation, `map`'s result list) grows memory with that product: refused when the
# policy is applied. What is left is bounded when the call is decided: a condition with a loop
# is not evaluated (the call is blocked, the reason audited) when the elements of the
# arguments' lists and maps times the arguments' size exceed this budget.
MAX_LOOP_WORK = 16 * 1024 * 1024
# A regex pattern is compiled where it is used: one from the caller's data would cost what the
# caller likes (800 items x 30 matches of a 9 KB pattern: 44 s of CPU), so patterns are literals.
_MATCHES_CALL = re.compile(r"\bmatches\s*\(")
_LITERAL_MATCHES = re.compile(r"\.\s*matches\s*\(\s*\"\"\s*\)")
_PREFIXES = {"r", "b", "br"}  # string prefixes, any case (CEL's lexer: BYTES is b + STRING)

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

    __slots__ = ("_loops", "_program", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._program = compile_checked(source)
        self._loops = bool(_COMPREHENSION.search(_without_comments(source)[0]))

    def evaluate(self, facts: Facts) -> Outcome:
        if self._loops and _loop_work(facts.args) > MAX_LOOP_WORK:
            return Outcome(False, "condition not evaluated: the arguments are too large for a condition with a loop")
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
    if len(source) > MAX_SOURCE_CHARS:
        raise ConditionError(f"a condition is at most {MAX_SOURCE_CHARS} characters with its comments")
    code, blanked = _without_comments(source)
    if len(code) > MAX_EXPRESSION_CHARS:
        raise ConditionError(f"a condition is at most {MAX_EXPRESSION_CHARS} characters without its comments")
    loops = len(_COMPREHENSION.findall(code))  # string contents counted too: an over-count fails closed
    if loops > MAX_COMPREHENSIONS:
        raise ConditionError(f"a condition may use at most {MAX_COMPREHENSIONS} comprehension (all/exists/map/filter)")
    if loops and _MAP.search(code):
        raise ConditionError("a condition may not use map (its result copies a value per item): use exists or all")
    if loops and "+" in blanked:
        raise ConditionError("a condition with a comprehension may not use + (it would build values per item)")
    if len(_MATCHES_CALL.findall(blanked)) > len(_LITERAL_MATCHES.findall(blanked)):
        raise ConditionError('a regex must be a string literal: write value.matches("pattern")')
    try:
        program = _ENV.compile(code)  # exactly the text the limits counted
    except RuntimeError as exc:
        raise ConditionError(_tidy(str(exc))) from None
    returns = program.return_type()
    if returns != cel.Type.BOOL:
        raise ConditionError(f"a condition must be a bool, this one is {returns.name().lower()}")
    return program


def _without_comments(source: str) -> tuple[str, str]:
    """(source without `//` comments, the same with string literals emptied), tokenised as CEL's
    lexer does: quotes with an r/b/br prefix, raw strings without escapes, triple quotes."""
    code: list[str] = []
    blanked: list[str] = []
    i, n = 0, len(source)
    while i < n:
        if source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end
            continue
        j = i + 1
        if source[i].isascii() and (source[i].isalpha() or source[i] == "_"):
            while j < n and source[j].isascii() and (source[j].isalnum() or source[j] == "_"):
                j += 1
            if j < n and source[j] in "'\"" and source[i:j].lower() in _PREFIXES:
                j = _string_end(source, j, raw="r" in source[i:j].lower())
                blanked.append('""')
            else:
                blanked.append(source[i:j])
        elif source[i] in "'\"":
            j = _string_end(source, i, raw=False)
            blanked.append('""')
        else:
            blanked.append(source[i])
        code.append(source[i:j])
        i = j
    return "".join(code), "".join(blanked)


def _string_end(source: str, start: int, raw: bool) -> int:
    """Just past the literal opening at `start` (the end of `source` if it never closes)."""
    quote = source[start] * 3 if source.startswith(source[start] * 3, start) else source[start]
    i = start + len(quote)
    while i < len(source):
        if source.startswith(quote, i):
            return i + len(quote)
        i += 2 if source[i] == "\\" and not raw else 1
    return len(source)


def _loop_work(value: Any) -> int:
    """(elements of every list and map) x (approximate size in bytes) of the arguments."""
    elements = size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            elements += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            elements += len(item)
            stack.extend(item)
        size += len(item) if isinstance(item, str | bytes) else 8
    return (elements + 1) * size


def _tidy(message: str) -> str:
    """CEL's checker message without its status prefix and suffix."""
    message = message.removeprefix("INVALID_ARGUMENT: ").removesuffix(" [INVALID_ARGUMENT]")
    return message.removeprefix("ERROR: ").strip()
