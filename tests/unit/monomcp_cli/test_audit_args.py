"""`monomcp audit list|export --since` with something that is not an ISO time is a usage error
naming the option and an example; it was a ValueError traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from monomcp_cli.main import app
from tests.support.servers import free_port


@pytest.mark.parametrize("verb", ["list", "export"])
def test_a_bad_since_is_a_usage_error(verb: str) -> None:
    env = {"MONOMCP_POLICY_ADDR": f"127.0.0.1:{free_port()}", "MONOMCP_TOKEN": "mmcp_whatever", "COLUMNS": "300"}
    done = CliRunner().invoke(app, ["audit", verb, "--since", "yesterday"], env=env)
    assert done.exit_code == 2, done.output
    assert "'yesterday' is not an ISO time" in done.output and "--since" in done.output
    assert not isinstance(done.exception, ValueError)
