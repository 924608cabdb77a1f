"""The policy file format without a database: errors by line, refusals, stable output."""

from __future__ import annotations

import re

import pytest

from policy_service.policies.diff import diff
from policy_service.policies.document import PolicyFileError, parse, to_yaml

FILE = """\
org: acme
toolkits:
  acme/seo:
    publish_page:
      default: needs_approval
      roles:
        member: blocked
        admin: always_allow
"""


def test_export_order_is_stable_whatever_the_file_order() -> None:
    text = to_yaml(parse(FILE).document)
    assert text.index("admin: always_allow") < text.index("member: blocked")
    assert to_yaml(parse(text).document) == text


def test_duplicate_keys_are_errors_with_their_line() -> None:
    with pytest.raises(
        PolicyFileError, match=re.escape("line 6: toolkits.acme/seo.publish_page.default is given twice")
    ):
        parse(FILE.replace("      roles:", "      default: blocked\n      roles:"))


def test_aliases_are_refused_before_anything_expands() -> None:
    bomb = "org: acme\nx: &a [1, 1, 1]\ny: &b [*a, *a, *a]\nz: [*b, *b, *b]\n"
    with pytest.raises(PolicyFileError, match="line 3: YAML aliases"):
        parse(bomb)


@pytest.mark.parametrize(
    "text",
    [
        "org: acme\ntoolkits: " + "[" * 5000 + "]" * 5000,
        "org: acme\ntoolkits: " + "{a: " * 5000 + "1" + "}" * 5000,
        "org: acme\ntoolkits:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(1200)) + " " * 1201 + "x\n",
    ],
    ids=["flow-sequences", "flow-mappings", "block-mappings"],
)
def test_deep_nesting_is_refused_before_the_tree_is_built(text: str) -> None:
    """A small file nested thousands deep used to cost the policy service seconds of CPU per
    kilobyte in its event loop (every tenant waited), then failed with a RecursionError."""
    with pytest.raises(PolicyFileError, match=r"line \d+: nested deeper than 32 levels"):
        parse(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("org: acme\n  bad: [", "not valid YAML"),
        ("", "the file: 'org' is a required property"),
        ("org: Acme!\n", "line 1: org: 'Acme!' does not match"),
        ("org: acme\ntoolkits:\n  seo:\n    x: {}\n", "line 3: toolkits: 'seo' does not match"),
        ("org: acme\nextra: 1\n", "line 1: the file: unknown field 'extra'"),
    ],
)
def test_bad_files_say_where(text: str, message: str) -> None:
    with pytest.raises(PolicyFileError, match=message):
        parse(text)


def test_diff_names_each_rule() -> None:
    before = parse(FILE).document
    after = parse(
        FILE.replace("member: blocked", "member: needs_approval").replace("      default: needs_approval\n", "")
    )
    changes = [str(c) for c in diff(before, after.document)]
    assert changes == [
        "- acme/seo publish_page default: needs_approval",
        "~ acme/seo publish_page role member: blocked -> needs_approval",
    ]
