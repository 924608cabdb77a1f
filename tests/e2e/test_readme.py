"""The README's snippets run as written: its Python code against a real front, its
approval and notification commands against a real policy service, and every other
`monomcp` line parses as a real command (options and arguments the CLI has)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import shlex
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import typer
from typer.testing import CliRunner

from mcp_front.backends.catalogue_sync import sync_catalogue
from monomcp_cli.main import app
from policy_service.config import Settings
from policy_service.toolkits.egress import EgressPolicy
from tests.conftest import World, issue_front_identity, make_settings, mcp_client
from tests.support.receivers import WebhookReceiver, smtp_server
from tests.support.servers import serve_asgi

README = Path(__file__).parents[2] / "README.md"


@pytest.fixture
def settings(database_url: str) -> Iterator[Settings]:
    """As conftest's, with a local SMTP server for the README's email channel."""
    with smtp_server() as (port, _):
        yield make_settings(
            database_url,
            MONOMCP_SERVICE_TOKEN=asyncio.run(issue_front_identity(database_url)),
            MONOMCP_SMTP_HOST="127.0.0.1",
            MONOMCP_SMTP_PORT=port,
            MONOMCP_SMTP_STARTTLS=False,
        )


_BLOCK = re.compile(r"^( *)```(\w+)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    return [textwrap.dedent(body) for _, lang, body in _BLOCK.findall(README.read_text()) if lang == language]


def monomcp_lines() -> list[str]:
    """Every `uv run monomcp …` command in the README's shell blocks, as written."""
    found = []
    for block in blocks("bash"):
        for raw in block.replace("\\\n", " ").splitlines():
            for match in re.finditer(r"uv run monomcp ([^)|]*)", raw):
                found.append(re.split(r" #| > ", match.group(1))[0].strip())
    return found


def _words(line: str) -> list[str]:
    """The line's arguments with placeholders (`<id>`, `$VAR`, `…`) as plain values."""
    line = re.sub(r"<[^>]+>", "x", line)
    return [re.sub(r"\$\{?\w+\}?", "x", w) for w in shlex.split(line, comments=True)]


def test_every_monomcp_line_in_the_readme_is_a_real_command() -> None:
    root = typer.main.get_command(app)
    lines = monomcp_lines()
    assert len(lines) > 20
    for line in lines:
        args, command, path = _words(line), root, ["monomcp"]
        while True:
            ctx = command.make_context(" ".join(path), list(args), resilient_parsing=False)
            if not isinstance(command, click.Group):
                break
            rest = [*ctx.protected_args, *ctx.args]
            assert rest, f"{line!r}: names no command"
            found = command.get_command(ctx, rest[0])
            assert found is not None, f"{line!r}: no command {rest[0]!r} under {' '.join(path)}"
            command, path, args = found, [*path, rest[0]], rest[1:]


async def test_the_python_sdk_snippet_runs(world: World, front: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from demo_backend.server import build_app

    monkeypatch.setenv("KEY", world.keys["acme:member"])
    async with serve_asgi(build_app()) as demo:
        await world.operator.upsert_toolkit("acme", "seo", name="SEO", visibility="private", backend_url=f"{demo}/mcp")
        await sync_catalogue(world.operator, "acme", "seo", False, EgressPolicy(allow_private=True))
        [snippet] = blocks("python")
        script = snippet.replace("http://127.0.0.1:8765", front)
        out = io.StringIO()

        def run() -> None:  # as `python call.py` would, in a thread with its own event loop
            with contextlib.redirect_stdout(out):
                exec(compile(script, "call.py", "exec"), {"__name__": "__main__"})

        await asyncio.to_thread(run)
    assert "hello-mcp" in out.getvalue()


async def _pending(front: str, world: World, n: int) -> str:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        result = await client.call_tool("transfer", {"amount": n, "to": "readme"})
    assert result.meta is not None
    return str(result.meta["monomcp/approval"]["id"])


async def test_the_approval_and_notification_commands_run(world: World, front: str) -> None:
    hooks = WebhookReceiver()
    async with serve_asgi(hooks) as receiver:
        ids = iter([await _pending(front, world, n) for n in (1, 2)])
        env = {
            "MONOMCP_POLICY_ADDR": world.policy_addr,
            "MONOMCP_TOKEN": world.keys["acme:admin"],
            "MONOMCP_BACKEND_ALLOW_PRIVATE": "true",
        }
        ran: list[str] = []
        for line in monomcp_lines():
            if not line.startswith(("approvals", "notify")) or line.startswith("approvals watch"):
                continue  # `watch` runs until Ctrl-C: tests/e2e/test_cli_approvals.py
            line = re.sub(r"https://hooks\.[a-z.]+", receiver, line)  # local receivers, not the Internet
            args = [next(ids) if w == "<id>" else w for w in shlex.split(line, comments=True)]
            result: Any = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
            assert result.exit_code == 0, f"{line}: {result.output}"
            ran.append(line)
        assert len(ran) >= 9
