"""The command line and environment a stdio backend process starts with.

The environment is the spec's own plus a few basics from the front, never the front's
secrets. Rlimits are applied by a tiny Python trampoline that then execs the command, not by
a preexec_fn: the front has gRPC threads, and running Python between fork and exec in a
threaded process can deadlock the child.
"""

from __future__ import annotations

import os
import sys

from policy_service.toolkits.stdio_backend import StdioSpec

# The only parts of the gateway's environment a backend process inherits.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME", "SHELL", "TERM")
_LIMITED = (
    "import os, resource, sys\n"
    "for limit, value in ((resource.RLIMIT_AS, int(sys.argv[1])), (resource.RLIMIT_CPU, int(sys.argv[2]))):\n"
    "    if value:\n"
    "        resource.setrlimit(limit, (value, value))\n"
    "os.execvp(sys.argv[3], sys.argv[3:])\n"
)


def child_environment(spec: StdioSpec) -> dict[str, str]:
    env = {name: os.environ[name] for name in _INHERITED_ENV if name in os.environ}
    env.update(spec.env)
    return env


def launch_argv(spec: StdioSpec) -> list[str]:
    """The command line that starts the backend under the spec's rlimits (if any)."""
    if not (spec.memory_limit_mb or spec.cpu_limit_seconds):
        return [spec.command, *spec.args]
    memory = str(spec.memory_limit_mb * 1024 * 1024)
    return [sys.executable, "-I", "-S", "-c", _LIMITED, memory, str(spec.cpu_limit_seconds), spec.command, *spec.args]
