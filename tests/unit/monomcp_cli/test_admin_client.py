"""A CLI verb with no policy service to talk to says which address it tried and how to change
it; gRPC's own words ("connections to all backends failing") named no setting."""

from __future__ import annotations

from typer.testing import CliRunner

from monomcp_cli.main import app
from tests.support.servers import free_port


def test_an_unreachable_policy_service_names_the_address_and_the_setting() -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = {"MONOMCP_POLICY_ADDR": address, "MONOMCP_TOKEN": "mmcp_whatever", "COLUMNS": "300"}
    done = CliRunner().invoke(app, ["orgs", "list"], env=env)
    assert done.exit_code == 1
    assert "POLICY_UNAVAILABLE" in done.output
    assert f"No policy service answers at {address} (MONOMCP_POLICY_ADDR)" in done.output
    assert "make run" in done.output
