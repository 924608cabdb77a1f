"""How a stdio backend process is launched: the environment it gets and its rlimits."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mcp_front.backends.stdio_launch import child_environment, launch_argv
from policy_service.toolkits.stdio_backend import StdioSpec


def test_the_child_gets_the_spec_environment_and_none_of_the_gateways(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "gateway secret")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    env = child_environment(StdioSpec("server", env={"API_KEY": "backend key", "PATH": "/opt/bin"}))
    assert "JWT_SECRET" not in env
    assert env["API_KEY"] == "backend key"
    assert env["PATH"] == "/opt/bin"  # the spec wins over what is inherited


def test_without_limits_the_command_runs_directly() -> None:
    assert launch_argv(StdioSpec("server", ("--stdio",))) == ["server", "--stdio"]


def test_limits_are_in_force_in_the_launched_command() -> None:
    spec = StdioSpec(
        sys.executable,
        (
            "-c",
            "import resource as r; print(r.getrlimit(r.RLIMIT_AS)[0], r.getrlimit(r.RLIMIT_CPU)[0])",
        ),
        memory_limit_mb=512,
        cpu_limit_seconds=7,
    )
    out = subprocess.run(launch_argv(spec), capture_output=True, text=True, check=True, env=dict(os.environ))
    assert out.stdout.split() == [str(512 * 1024 * 1024), "7"]
