"""The CLI names toolkits one way: ORG/TOOLKIT. The permissions verbs crashed with a ValueError
traceback on a bare slug (`permissions set-override member tools …`), and `tools list`
took only a bare slug (`tools list acme/tools` answered TOOLKIT_NOT_FOUND)."""

from __future__ import annotations

from tests.conftest import World
from tests.e2e.test_cli_approvals import _cli


async def test_a_bare_toolkit_slug_is_refused_with_what_to_write(world: World) -> None:
    for verb in (
        ("permissions", "set-override", "member", "tools", "transfer", "blocked"),
        ("permissions", "clear-override", "member", "tools", "transfer"),
        ("permissions", "set-default", "tools", "transfer", "blocked"),
        ("permissions", "clear-default", "tools", "transfer"),
    ):
        done = await _cli(world, "acme:admin", *verb)
        assert done.exit_code == 2, (verb, done.output)
        said = " ".join(done.output.replace("│", " ").split())  # the error box wraps at 80 columns
        assert "give the toolkit as ORG/TOOLKIT, e.g. acme/seo" in said, (verb, done.output)
        assert "Traceback" not in done.output and not isinstance(done.exception, ValueError)
    async with world.client("acme:admin") as admin:
        assert await admin.list_permission_rules() == []  # nothing was changed


async def test_tools_verbs_take_org_slash_toolkit_too(world: World) -> None:
    bare = await _cli(world, "acme:admin", "tools", "list", "tools", "--json")
    full = await _cli(world, "acme:admin", "tools", "list", "acme/tools", "--json")
    assert bare.exit_code == 0 and full.exit_code == 0, full.output
    assert full.stdout == bare.stdout and '"transfer"' in full.stdout
    other = await _cli(world, "acme:admin", "tools", "list", "globex/tools", "--org", "acme")
    assert other.exit_code == 2 and "is not a toolkit of --org acme" in " ".join(other.output.replace("│", " ").split())
    done = await _cli(world, "acme:admin", "tools", "set-default", "acme/tools", "transfer", "blocked", "--json")
    assert done.exit_code == 0 and '"blocked"' in done.stdout, done.output
