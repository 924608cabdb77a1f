"""`monomcp policy export|diff|apply` and /api/v1/policy against the real stack."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import World
from tests.e2e.test_admin_api import _sign_in

POLICY = """\
org: acme
toolkits:
  acme/tools:
    transfer:
      default: needs_approval
      roles:
        admin: always_allow
      conditions:
      - name: small
        when: args.amount < 100
        permission: always_allow
"""


async def _monomcp(world: World, *args: str, token: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"MONOMCP_POLICY_ADDR": world.policy_addr, "MONOMCP_TOKEN": token}
    command = [sys.executable, "-m", "monomcp_cli.main", *args]
    return await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=120)


async def test_cli_diff_apply_export(world: World, tmp_path: Path) -> None:
    admin = world.keys["acme:admin"]
    policy = tmp_path / "acme.yaml"
    policy.write_text(POLICY)
    diff = await _monomcp(world, "policy", "diff", "-f", str(policy), token=admin)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert "+ acme/tools transfer role admin: always_allow" in diff.stdout
    dry = await _monomcp(world, "policy", "apply", "-f", str(policy), "--dry-run", "--json", token=admin)
    assert {c["field"] for c in json.loads(dry.stdout)["changes"]} == {"default", "role:admin", "conditions"}
    applied = await _monomcp(world, "policy", "apply", "-f", str(policy), token=admin)
    assert applied.returncode == 0 and "applied: policy version 1" in applied.stdout
    exported = await _monomcp(world, "policy", "export", token=admin)
    assert exported.stdout.startswith("# MonoMCP policy of org acme: live version 1, applied by")
    body = "\n".join(line for line in exported.stdout.splitlines() if not line.startswith("#")) + "\n"
    assert body == POLICY  # the file as written is the file exported


async def test_rest_policy(world: World, front: str) -> None:
    admin = {"Authorization": f"Bearer {world.keys['acme:admin']}", "Content-Type": "application/yaml"}
    async with httpx.AsyncClient(base_url=front) as http:
        diff = await http.post("/api/v1/policy/diff", headers=admin, content=POLICY)
        assert diff.status_code == 200 and len(diff.json()["changes"]) == 3
        dry = await http.put("/api/v1/policy?dry_run=true", headers=admin, content=POLICY)
        assert dry.status_code == 200 and not dry.json().get("applied")
        applied = await http.put("/api/v1/policy", headers=admin, content=POLICY)
        assert applied.json()["applied"] and applied.json()["live"]["version"] == 1
        live = (await http.get("/api/v1/policy", headers=admin)).json()
        assert live["live"]["version"] == 1 and "small" in live["yaml"]
        file = await http.get("/api/v1/policy/file", headers=admin)
        assert file.headers["content-type"].startswith("application/yaml") and file.text == live["yaml"]
        bad = await http.put("/api/v1/policy", headers=admin, content=POLICY.replace("admin:", "boss:"))
        assert bad.status_code == 400 and "line 7: unknown role 'boss'" in bad.json()["detail"]["message"]
        member = {"Authorization": f"Bearer {world.keys['acme:member']}"}
        assert (await http.put("/api/v1/policy", headers=member, content=POLICY)).status_code == 403


async def test_console_shows_the_live_policy_version(world: World, front: str) -> None:
    async with httpx.AsyncClient(base_url=front) as http:
        await _sign_in(http, world.keys["acme:admin"])
        assert "Policy version 0: no policy file applied yet" in (await http.get("/console/permissions")).text
        async with world.client("acme:admin") as admin:
            await admin.apply_policy(POLICY)
        page = (await http.get("/console/permissions")).text
        assert "Policy version 1, applied by acme admin at" in page
        async with world.client("acme:admin") as admin:
            await admin.apply_policy(
                POLICY + "      approval:\n        window: {when: 'args.to == \"eve\"', for: 2h}\n"
            )
        async with world.service() as service:
            call = await service.authorize_tool_call(
                world.keys["acme:member"], "acme", "tools", "transfer", '{"amount": 500, "to": "eve"}'
            )
        approval = (await http.get(f"/console/approvals/{call.approval.id}")).text
    # The widening is in front of the approver before they decide.
    assert "calls of this tool whose arguments match" in approval
    assert "for 2h after approval" in approval and "(0 of 1)" in approval
