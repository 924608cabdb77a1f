"""`monomcp audit digests check PATH` and `audit verify --against PATH` with a file that is
missing or is not a digest export: a usage error naming the file (both were tracebacks)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from monomcp_cli.main import app
from tests.support.servers import free_port


def _said(output: str) -> str:
    return " ".join(output.replace("│", " ").split())  # the error box wraps at 80 columns


def test_a_missing_or_foreign_digest_file_is_a_usage_error(tmp_path: Path) -> None:
    env = {"MONOMCP_POLICY_ADDR": f"127.0.0.1:{free_port()}", "MONOMCP_TOKEN": "mmcp-operator-x", "COLUMNS": "400"}
    missing = tmp_path / "gone.jsonl"
    foreign = tmp_path / "audit.jsonl"
    foreign.write_text('{"call_id": "abc", "status": "ok"}\n')  # an audit export, not digests
    for args in (["audit", "digests", "check"], ["audit", "verify", "--against"]):
        gone = CliRunner().invoke(app, [*args, str(missing)], env=env)
        assert gone.exit_code == 2 and f"cannot read {missing}" in _said(gone.output), gone.output
        wrong = CliRunner().invoke(app, [*args, str(foreign)], env=env)
        assert wrong.exit_code == 2, wrong.output
        assert "line 1 is not a digest from `monomcp audit digests export`" in _said(wrong.output)
