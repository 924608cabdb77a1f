"""Production processes refuse to start without their shared secrets, saying how to make them,
instead of inventing per-process keys that break across replicas."""

from __future__ import annotations

import os
import subprocess
import sys


def _serve_front(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONOMCP_", "JWT_"))}
    return subprocess.run(
        [sys.executable, "-m", "monomcp_cli.main", "serve", "front", "--listen", "127.0.0.1:1"],
        env={**env, "COLUMNS": "200", **extra},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_front_refuses_to_start_without_request_state_key_and_service_identity() -> None:
    result = _serve_front({})
    assert result.returncode == 2
    assert "MONOMCP_REQUEST_STATE_KEY is not set" in result.stdout and "token_urlsafe" in result.stdout
    assert "MONOMCP_SERVICE_TOKEN is not set" in result.stdout and "services create front" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_front_names_only_what_is_missing() -> None:
    result = _serve_front({"MONOMCP_REQUEST_STATE_KEY": "x" * 32})
    assert result.returncode == 2
    assert "MONOMCP_REQUEST_STATE_KEY" not in result.stdout and "MONOMCP_SERVICE_TOKEN is not set" in result.stdout
