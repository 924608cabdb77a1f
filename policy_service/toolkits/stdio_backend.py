"""A toolkit backend that is a command the gateway runs and speaks MCP to over stdin/stdout.

Why it is operator-only: the command runs on the gateway's own hosts (every front replica),
so registering one is running code there. The policy service accepts a spec only from the
operator, validates it, and stores it as a self-describing `stdio:v1:` address in the
toolkit's `backend_url`, which reaches the front in the call's `Backend` exactly as an
HTTP URL does (docs/adr/0017-stdio-backends.md). The address carries the environment,
so it is shown only to the operator; org admins see `display_address` (command and args).
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from policy_service.errors import InvalidArgument

SCHEME = "stdio:"
_PREFIX = "stdio:v1:"
MAX_ARGS = 64
MAX_ENV = 64
MAX_TEXT = 4096
MAX_POOL_SIZE = 8
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True, slots=True)
class StdioSpec:
    """How to launch one backend process, and the limits it runs under."""

    command: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    # RLIMIT_AS (address space) in MiB and RLIMIT_CPU in seconds; 0 = no limit.
    memory_limit_mb: int = 0
    cpu_limit_seconds: int = 0
    # Processes per tenant (toolkit and caller org); each runs one request at a time.
    pool_size: int = 1


def is_stdio(url: str) -> bool:
    return url.startswith(SCHEME)


def _text(value: str, what: str) -> str:
    if not value or len(value) > MAX_TEXT or "\x00" in value:
        raise InvalidArgument(f"{what} must be 1-{MAX_TEXT} characters without NUL bytes", "BAD_STDIO_BACKEND")
    return value


def is_full_address(url: str) -> bool:
    """A launchable address, as opposed to the command-only form org admins are shown."""
    return url.startswith(_PREFIX)


def validated(spec: StdioSpec) -> StdioSpec:
    """The spec if it can be launched as given; INVALID_ARGUMENT (BAD_STDIO_BACKEND) otherwise."""
    _text(spec.command, "the stdio command")
    if len(spec.args) > MAX_ARGS:
        raise InvalidArgument(f"at most {MAX_ARGS} stdio arguments", "BAD_STDIO_BACKEND")
    for arg in spec.args:
        if len(arg) > MAX_TEXT or "\x00" in arg:
            raise InvalidArgument("a stdio argument is too long or contains a NUL byte", "BAD_STDIO_BACKEND")
    if len(spec.env) > MAX_ENV:
        raise InvalidArgument(f"at most {MAX_ENV} stdio environment variables", "BAD_STDIO_BACKEND")
    for name, value in spec.env.items():
        if not _ENV_NAME.match(name):
            raise InvalidArgument(f"{name[:40]!r} is not an environment variable name", "BAD_STDIO_BACKEND")
        if len(value) > MAX_TEXT or "\x00" in value:
            raise InvalidArgument(f"environment variable {name} is too long or has a NUL", "BAD_STDIO_BACKEND")
    if spec.cwd and not os.path.isabs(_text(spec.cwd, "the stdio working directory")):
        raise InvalidArgument("the stdio working directory must be an absolute path", "BAD_STDIO_BACKEND")
    if spec.memory_limit_mb < 0 or spec.cpu_limit_seconds < 0:
        raise InvalidArgument("stdio resource limits must be positive (0 = none)", "BAD_STDIO_BACKEND")
    if not 1 <= spec.pool_size <= MAX_POOL_SIZE:
        raise InvalidArgument(f"the stdio pool size must be 1-{MAX_POOL_SIZE}", "BAD_STDIO_BACKEND")
    return spec


def to_address(spec: StdioSpec) -> str:
    """The canonical `stdio:v1:` address of a spec (equal specs, equal addresses)."""
    data = asdict(spec)
    data["args"] = list(spec.args)
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return _PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def from_address(address: str) -> StdioSpec:
    """The spec inside a `stdio:v1:` address; ValueError when it is not one."""
    if not address.startswith(_PREFIX):
        raise ValueError("not a stdio:v1 backend address")
    encoded = address[len(_PREFIX) :]
    data: Any = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    if not isinstance(data, dict):
        raise ValueError("malformed stdio backend address")
    return StdioSpec(
        command=str(data["command"]),
        args=tuple(str(a) for a in data.get("args") or ()),
        env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
        cwd=str(data.get("cwd") or ""),
        memory_limit_mb=int(data.get("memory_limit_mb") or 0),
        cpu_limit_seconds=int(data.get("cpu_limit_seconds") or 0),
        pool_size=int(data.get("pool_size") or 1),
    )


def display_address(address: str) -> str:
    """What an org admin sees: `stdio: COMMAND ARGS…` (never the environment)."""
    try:
        spec = from_address(address)
    except (ValueError, KeyError, TypeError):
        return "stdio: (unreadable)"
    return " ".join(["stdio:", spec.command, *spec.args])[:1000]
