"""Exit 0 when the local test Postgres (127.0.0.1:5432, database `test`) accepts connections."""

from __future__ import annotations

import asyncio
import sys

import asyncpg


async def main() -> int:
    try:
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="test", timeout=2)
    except Exception:
        print("no local Postgres: the suite runs on SQLite only", file=sys.stderr)
        return 1
    await conn.close()
    print("local Postgres found: the suite runs on SQLite and Postgres", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
