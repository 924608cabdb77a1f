"""The conformance fixture's server (demo_backend/conformance_server.py) over stdio, with two
more tools that show how the gateway launched it: its environment, working directory and
rlimits, and a crash on demand.

Run: python -m tests.support.stdio_server
"""

from __future__ import annotations

import asyncio
import os
import resource

from demo_backend.conformance_server import build_server


def main() -> None:
    server = build_server()

    @server.tool(description="How this process was launched: env names, GREETING, cwd, rlimits, pid.")
    def launched() -> dict[str, object]:
        return {
            "env_names": sorted(os.environ),
            "greeting": os.environ.get("GREETING", ""),
            "cwd": os.getcwd(),
            "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)[0],
            "rlimit_cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
            "pid": os.getpid(),
        }

    @server.tool(description="Waits `seconds`, then names the process that ran it (to see the pool at work).")
    async def hold(seconds: float) -> int:
        await asyncio.sleep(seconds)
        return os.getpid()

    @server.tool(description="Ends the process at once (exit code 3), as a crashing backend would.")
    def crash() -> str:
        os._exit(3)

    server.run("stdio")


if __name__ == "__main__":
    main()
