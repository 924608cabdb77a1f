"""`monomcp domains remove` says it removed the domain; it printed the removed domain's row
alone, which reads as if the domain were still there."""

from __future__ import annotations

from tests.conftest import World
from tests.e2e.test_cli_approvals import _cli


async def test_remove_says_the_domain_is_gone(world: World) -> None:
    added = await _cli(world, "acme:admin", "domains", "add", "mcp.acme.example")
    assert added.exit_code == 0 and "domains verify mcp.acme.example" in " ".join(added.output.split())
    removed = await _cli(world, "acme:admin", "domains", "remove", "mcp.acme.example")
    assert removed.exit_code == 0, removed.output
    assert "Removed mcp.acme.example from org acme" in " ".join(removed.output.split())
    listed = await _cli(world, "acme:admin", "domains", "list", "--json")
    assert "mcp.acme.example" not in listed.output
