"""A condition's cost must not grow with what a caller sends: an org admin writes it, any
member's call runs it, and every tenant shares the policy service that evaluates it.

Regressions: a `//` comment between a macro's name and its `(` hid a second (nested)
comprehension from the one-loop limit; and CEL keeps every intermediate value until the
evaluation ends, so `args.l.all(x, (args.s + args.s + args.s + args.s).size() > 0)` with 9,999
items and a 10 KB `s` held 950 MiB (`map` with a 100 KB `s`: 25 s and 10 GiB). Nothing here
evaluates a costly expression: they are refused when applied, or not evaluated at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from policy_service.permissions.conditions import Condition, ConditionError, Facts, compile_checked


def facts(args: dict[str, Any]) -> Facts:
    principal = {"id": "k", "kind": "api_key", "role": "member", "org": "acme"}
    return Facts(args, principal, "acme/seo", "t", datetime.now(UTC))


def test_a_comment_does_not_hide_a_second_comprehension() -> None:
    with pytest.raises(ConditionError, match="at most 1 comprehension"):
        compile_checked("args.a.all// hidden\n(x, args.b.exists// hidden\n(y, x == y))")


def test_the_length_limit_does_not_count_comments() -> None:
    compile_checked("// why this rule exists\n" * 100 + "true")  # 2,400 characters of comments
    with pytest.raises(ConditionError, match="without its comments"):
        compile_checked("true || " * 200 + "true // short")


@pytest.mark.parametrize(
    ("source", "args", "matched"),
    [
        ('args.url.startsWith("https://a.example") // not a comment inside the string', "https://a.example/x", True),
        ("args.url == r'//' && args.l.exists(x, x == 1)", "//", True),
        ('args.url == """//\n""" // a comment after a triple-quoted string', "//\n", True),
        ("args.url == '\\'//' // an escaped quote does not end the string", "'//", True),
    ],
)
def test_strings_with_slashes_are_not_comments(source: str, args: str, matched: bool) -> None:
    assert Condition(source).evaluate(facts({"url": args, "l": [1]})).matched is matched


@pytest.mark.parametrize(
    "source",
    [
        "args.l.all(x, (args.s + args.s + args.s + args.s).size() > 0)",
        "args.l.exists(x, x + [1] == [1])",
        "(args.l + args.l).all(x, x > 0)",
        "args.l.map(x, args.s).size() > 0",
        "args.l.// comment\nmap(x, x).size() > 0",
    ],
)
def test_a_loop_that_builds_values_is_refused(source: str) -> None:
    with pytest.raises(ConditionError):
        compile_checked(source)


def test_plus_without_a_loop_and_plus_in_a_string_are_allowed() -> None:
    assert Condition("args.n + 1 == 2").evaluate(facts({"n": 1})).matched
    assert Condition('args.l.exists(x, x == "a+b")').evaluate(facts({"l": ["a+b"]})).matched


def test_a_loop_over_large_arguments_fails_closed_without_evaluating() -> None:
    condition = Condition("args.l.all(x, args.s.size() > 0)")
    assert condition.evaluate(facts({"l": list(range(20)), "s": "a" * 100_000})).matched
    outcome = condition.evaluate(facts({"l": list(range(9_999)), "s": "a" * 10_000}))
    assert not outcome.matched
    assert "too large for a condition with a loop" in outcome.error


@pytest.mark.parametrize("source", ["args.s.matches(args.p)", "matches(args.s, 'a+')", 'args.s.matches("a" + args.p)'])
def test_a_regex_from_the_callers_data_is_refused(source: str) -> None:
    with pytest.raises(ConditionError, match="string literal"):
        compile_checked(source)


def test_a_literal_regex_is_allowed_in_a_loop() -> None:
    condition = Condition('args.l.exists(x, x.matches("^ab+$")) // any item like abbb')
    assert condition.evaluate(facts({"l": ["zz", "abbb"]})).matched
