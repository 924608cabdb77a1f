"""The CLI creates people, signs them in, and the JWT it prints works as MONOMCP_TOKEN."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

from tests.conftest import World


async def _monomcp(world: World, *args: str, token: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    environment = os.environ | {"MONOMCP_POLICY_ADDR": world.policy_addr, "MONOMCP_TOKEN": token} | env
    return await asyncio.to_thread(
        subprocess.run, ["uv", "run", "monomcp", *args], env=environment, capture_output=True, text=True, timeout=120
    )


async def test_people_add_login_and_use_the_token(world: World) -> None:
    added = await _monomcp(
        world, "people", "add", "cli@acme.example", "--role", "admin", "--json", token=world.keys["acme:admin"]
    )
    assert added.returncode == 0, added.stderr
    password = json.loads(added.stdout)["generated_password"]
    login = await _monomcp(world, "login", "--email", "cli@acme.example", "--org", "acme", MONOMCP_PASSWORD=password)
    assert login.returncode == 0, login.stdout + login.stderr
    token = login.stdout.strip().splitlines()[-1]
    assert token.count(".") == 2
    listed = await _monomcp(world, "people", "list", "--json", token=token)
    assert listed.returncode == 0, listed.stdout
    assert "cli@acme.example" in {p["email"] for p in json.loads(listed.stdout)}
    wrong = await _monomcp(world, "login", "--email", "cli@acme.example", "--org", "acme", MONOMCP_PASSWORD="nope")
    assert wrong.returncode == 1 and "SIGN_IN_REFUSED" in wrong.stdout
