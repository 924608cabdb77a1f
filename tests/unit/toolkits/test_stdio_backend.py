"""The stdio backend spec: validated before it is stored, and its address round-trips."""

from __future__ import annotations

import dataclasses

import pytest

from policy_service.errors import InvalidArgument
from policy_service.toolkits.stdio_backend import (
    StdioSpec,
    display_address,
    from_address,
    is_full_address,
    is_stdio,
    to_address,
    validated,
)

SPEC = StdioSpec("node", ("server.js", "stdio"), {"API_TOKEN": "s3cret"}, "/srv/mcp", 1024, 60, 2)


def test_the_address_round_trips_and_is_canonical() -> None:
    address = to_address(SPEC)
    assert is_stdio(address) and is_full_address(address)
    assert from_address(address) == SPEC
    assert to_address(dataclasses.replace(SPEC, env={"API_TOKEN": "s3cret"})) == address


def test_admins_are_shown_the_command_never_the_environment() -> None:
    shown = display_address(to_address(SPEC))
    assert shown == "stdio: node server.js stdio"
    assert "s3cret" not in shown and not is_full_address(shown)
    assert not is_stdio("https://example.com/mcp")


@pytest.mark.parametrize(
    "change",
    [
        {"command": ""},
        {"command": "node\x00"},
        {"args": ("a\x00",)},
        {"args": tuple("x" for _ in range(65))},
        {"env": {"1BAD": "x"}},
        {"env": {"A B": "x"}},
        {"env": {"OK": "nul\x00"}},
        {"cwd": "relative/dir"},
        {"memory_limit_mb": -1},
        {"cpu_limit_seconds": -5},
        {"pool_size": 0},
        {"pool_size": 9},
    ],
)
def test_specs_that_cannot_be_launched_as_given_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument) as raised:
        validated(dataclasses.replace(SPEC, **change))  # type: ignore[arg-type]
    assert raised.value.reason == "BAD_STDIO_BACKEND"


def test_a_good_spec_is_accepted_unchanged() -> None:
    assert validated(SPEC) is SPEC
