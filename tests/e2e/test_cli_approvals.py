"""The approval verbs as the README uses them: full ids at 80 columns, unique prefixes,
a confirmation after each decision, status words, numbers as numbers, and a live watch."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from monomcp_cli import output
from monomcp_cli.main import app
from tests.conftest import World, mcp_client

MONOMCP = str(Path(sys.executable).parent / "monomcp")


async def _cli(world: World, who: str, *args: str) -> Result:
    """One `monomcp` command, in process (a thread: the CLI runs its own event loop)."""
    env = {
        "MONOMCP_POLICY_ADDR": world.policy_addr,
        "MONOMCP_TOKEN": world.keys[who],
        "MONOMCP_BACKEND_ALLOW_PRIVATE": "true",  # `toolkit sync` reaches the loopback test upstream
    }
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def _pending(front: str, world: World, args: dict[str, Any]) -> str:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        result = await client.call_tool("transfer", args)
    assert result.meta is not None
    return str(result.meta["monomcp/approval"]["id"])


async def test_list_shows_full_ids_and_decisions_take_prefixes(
    world: World, front: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output.console, "width", 80)
    first = await _pending(front, world, {"amount": 1, "to": "a"})
    second = await _pending(front, world, {"amount": 2, "to": "b"})

    listed = await _cli(world, "acme:admin", "approvals", "list", "--status", "pending")
    assert listed.exit_code == 0, listed.output
    assert first in listed.output and second in listed.output  # whole, not cut with …
    assert "APPROVAL_STATUS" not in listed.output and "pending" in listed.output

    approved = await _cli(world, "acme:admin", "approvals", "approve", first[:8])
    assert approved.exit_code == 0, approved.output
    assert f"Approved {first}" in approved.output and "transfer on acme/tools" in approved.output
    denied = await _cli(world, "acme:admin", "approvals", "deny", second[:6], "--reason", "too much")
    assert denied.exit_code == 0 and f"Denied {second}" in denied.output and "too much" in denied.output

    shown = await _cli(world, "acme:admin", "approvals", "show", first[:10], "--json")
    assert json.loads(shown.stdout)["status"] == "approved"
    unknown = await _cli(world, "acme:admin", "approvals", "approve", "ffffffff")
    assert unknown.exit_code == 1 and "no pending approval id starts with ffffffff" in unknown.output

    audit = await _cli(world, "acme:admin", "audit", "list", "--tool", "transfer", "--json")
    records = json.loads(audit.stdout)
    assert all(isinstance(r["seq"], int) for r in records)
    assert {r["permission"] for r in records} == {"needs_approval"} and "pending_approval" in {
        r["decision"] for r in records
    }
    exported = await _cli(world, "acme:admin", "audit", "export", "--tool", "transfer")
    assert "PERMISSION_" not in exported.stdout and '"seq": ' in exported.stdout


async def test_audit_list_names_the_call_id_that_audit_show_takes(
    world: World, front: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table had no call id, so `audit show <call-id>` (the README's next step) had nothing to take."""
    monkeypatch.setattr(output.console, "width", 80)
    await _pending(front, world, {"amount": 3, "to": "c"})
    async with world.client("acme:admin") as admin:
        call_id = (await admin.query_audit(tool="transfer", page_size=1)).records[0].call_id
    listed = await _cli(world, "acme:admin", "audit", "list", "--tool", "transfer")
    assert listed.exit_code == 0 and call_id in listed.output  # whole, on one line
    shown = await _cli(world, "acme:admin", "audit", "show", call_id)
    assert shown.exit_code == 0 and call_id in shown.output and "pending_approval" in shown.output


async def test_show_reads_like_audit_show_and_keeps_json(
    world: World, front: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`approvals show` printed the raw JSON of the message (enum-free, but one brace soup)."""
    monkeypatch.setattr(output.console, "width", 80)
    approval_id = await _pending(front, world, {"amount": 7, "to": "shown"})

    shown = await _cli(world, "acme:admin", "approvals", "show", approval_id[:8])

    assert shown.exit_code == 0, shown.output
    head, arguments = shown.output.split("\narguments\n", 1)
    facts = dict(line.strip().split(None, 1) for line in head.splitlines() if line.strip())  # a field a line
    assert facts["id"] == approval_id and facts["status"] == "pending"
    assert facts["request"] == "transfer on acme/tools" and "(member, api_key " in facts["requester"]
    assert "(in " in facts["expires_at"] and facts["approvals"] == "0 of 1"
    assert not facts.keys() & {"decided_by", "reason", "consumed_by_call_id"}  # empty fields left out
    arguments, decide = arguments.split("\nsha256 ")
    assert json.loads(arguments) == {"amount": 7, "to": "shown"} and '\n  "amount": 7' in arguments
    assert f"approve: monomcp approvals approve {approval_id}\n" in decide and "--reason TEXT" in decide
    assert all(len(line) <= 80 for line in shown.output.splitlines())

    await _cli(world, "acme:admin", "approvals", "deny", approval_id, "--reason", "not [this] one")
    denied = await _cli(world, "acme:admin", "approvals", "show", approval_id)
    assert "denied" in denied.output and "not [this] one" in denied.output
    assert "decided_by" in denied.output and "approve:" not in denied.output
    as_json = json.loads((await _cli(world, "acme:admin", "approvals", "show", approval_id, "--json")).stdout)
    assert as_json["status"] == "denied" and as_json["id"] == approval_id and as_json["reason"] == "not [this] one"


async def test_a_prefix_must_be_long_enough(world: World, front: str) -> None:
    approval_id = await _pending(front, world, {"amount": 9, "to": "z"})
    too_short = await _cli(world, "acme:admin", "approvals", "approve", approval_id[:3])
    assert too_short.exit_code == 1 and "at least its first 4 characters" in too_short.output
    async with world.client("acme:admin") as admin:
        assert (await admin.get_approval(approval_id)).decided_by == ""


async def test_toolkit_sync_names_the_org_and_shows_zeros(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output.console, "width", 100)
    synced = await _cli(world, "acme:admin", "toolkit", "sync", "tools")
    assert synced.exit_code == 0, synced.output
    assert "Synced acme/tools" in synced.output
    assert synced.output.count(" 0 ") >= 2  # nothing added or removed: zeros, not blank cells
    as_json = await _cli(world, "acme:admin", "toolkit", "sync", "tools", "--json")
    counts = json.loads(as_json.stdout)
    assert counts["toolkit"] == "acme/tools" and counts["added"] == 0 and counts["removed"] == 0


async def test_toolkit_sync_refused_by_egress_says_how_to_allow_a_loopback_backend(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`monomcp dev`'s backend is on loopback; the sync runs in the admin's shell, whose egress
    settings refuse it unless told otherwise (found following the README)."""
    monkeypatch.setattr(output.console, "width", 120)
    env = {"MONOMCP_POLICY_ADDR": world.policy_addr, "MONOMCP_TOKEN": world.keys["acme:admin"]}
    refused = await asyncio.to_thread(
        CliRunner().invoke, app, ["toolkit", "sync", "tools"], env=env | {"MONOMCP_BACKEND_ALLOW_PRIVATE": "false"}
    )
    assert refused.exit_code == 1 and "not allowed" in refused.output
    assert "MONOMCP_BACKEND_ALLOW_PRIVATE=true" in refused.output


async def test_watch_streams_the_queue_live(world: World, front: str) -> None:
    env = os.environ | {"MONOMCP_POLICY_ADDR": world.policy_addr, "MONOMCP_TOKEN": world.keys["acme:admin"]}
    watch = await asyncio.create_subprocess_exec(
        MONOMCP, "approvals", "watch", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert watch.stdout is not None
    try:
        head = await asyncio.wait_for(watch.stdout.readline(), 60)
        assert b"0 pending; watching" in head
        approval_id = await _pending(front, world, {"amount": 3, "to": "w"})
        line = await asyncio.wait_for(watch.stdout.readline(), 30)
        assert b"pending" in line and approval_id.encode() in line and b"transfer on acme/tools" in line
        async with world.client("acme:admin2") as admin:
            await admin.decide_approval(approval_id, approve=False, reason="no")
        line = await asyncio.wait_for(watch.stdout.readline(), 30)
        assert b"denied" in line and approval_id.encode() in line and b": no" in line
        watch.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(watch.wait(), 30) == 0
    finally:
        if watch.returncode is None:
            watch.kill()
            await watch.wait()
