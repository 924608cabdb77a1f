"""The deployment artefacts (Dockerfile, deploy/compose.yaml, deploy/systemd/) say what they
mean: every command they run is a real `monomcp` command, the image is multi-stage, slim and
runs as a plain user, and compose runs two replicas of each process on Postgres and Redis
with every secret production needs. No Docker needed: CI never depends on a daemon."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONOMCP = Path(sys.executable).parent / "monomcp"  # the console script the package installs
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    return loaded


def _instruction(name: str) -> list[str]:
    """The last JSON-form ENTRYPOINT/CMD of the Dockerfile (the runtime stage's)."""
    found = re.findall(rf"^{name} (\[.*\])$", DOCKERFILE, re.MULTILINE)
    args: list[str] = json.loads(found[-1])
    return args


def _image_commands() -> list[list[str]]:
    """Every command line the image and the units run, as argv without the program."""
    entry = _instruction("ENTRYPOINT")
    assert entry == ["monomcp"]
    commands = [_instruction("CMD")]
    for name, service in _compose()["services"].items():
        if service.get("image", "").startswith("${MONOMCP_IMAGE") and name != "cli":
            commands.append(service["command"])
    for unit in (ROOT / "deploy" / "systemd").glob("*.service"):
        for line in unit.read_text().splitlines():
            if line.startswith(("ExecStart=", "ExecStartPre=")):
                program, *args = line.split("=", 1)[1].split()
                assert program == "/opt/monomcp/bin/monomcp"
                commands.append(args)
    return commands


async def _help(args: list[str]) -> tuple[int, str]:
    # Options after the command name are checked by the parser, then --help answers.
    words = [a for a in args if not a.startswith("-") and ":" not in a]
    proc = await asyncio.create_subprocess_exec(
        str(MONOMCP), *words, "--help", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_every_command_the_artefacts_run_is_a_real_monomcp_command() -> None:
    commands = _image_commands()
    assert ["serve", "front"] in commands
    assert any(c[:2] == ["serve", "policy"] for c in commands)
    assert ["db", "upgrade"] in commands
    # One process per distinct command (the CLI's start-up dominates this test's time).
    commands = list({" ".join(c): c for c in commands}.values())
    answers = await asyncio.gather(*(_help(c) for c in commands))
    for command, (code, output) in zip(commands, answers, strict=True):
        assert code == 0, (command, output)
        assert "Usage: monomcp" in output
        for option in (a for a in command if a.startswith("--")):
            assert option in output, (command, option)  # e.g. --listen, --policy are real options


def test_the_image_is_multi_stage_slim_and_runs_as_a_plain_user() -> None:
    stages = re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert len(stages) >= 2 and stages[-1].endswith("-slim-bookworm")
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert "uv sync --frozen --no-dev" in DOCKERFILE  # the locked runtime set, without dev tools
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    for package in packages["packages"]:
        assert f"COPY {package} ./{package}" in DOCKERFILE


def test_compose_runs_two_replicas_of_each_process_on_postgres_and_redis() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "policy", "front", "migrate"} <= set(services)
    for name in ("policy", "front"):
        assert services[name]["deploy"]["replicas"] == 2
        assert services[name]["image"] == services["migrate"]["image"]  # one image for both
        assert "healthcheck" in services[name]
    assert services["policy"]["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert services["front"]["environment"]["MONOMCP_REDIS_URL"].startswith("redis://redis:")
    assert services["policy"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize(
    ("service", "secrets"),
    [
        ("policy", ["MONOMCP_OPERATOR_TOKEN", "JWT_SECRET", "MONOMCP_AUDIT_SIGNING_KEY"]),
        ("front", ["MONOMCP_SERVICE_TOKEN", "MONOMCP_REQUEST_STATE_KEY"]),
    ],
)
def test_compose_passes_every_production_secret_from_the_env_file(service: str, secrets: list[str]) -> None:
    environment = _compose()["services"][service]["environment"]
    example = (ROOT / "deploy" / "compose.env.example").read_text()
    for secret in secrets:
        assert environment[secret].startswith(f"${{{secret}:"), secret
        assert re.search(rf"^{secret}=$", example, re.MULTILINE), f"{secret} missing from compose.env.example"


async def _client_seen_by_the_front(client: str, sent_forwarded_for: str) -> str:
    """What the front takes as the client's address behind compose's nginx: nginx's
    X-Forwarded-For directive applied to the request, then uvicorn's proxy-header handling
    with the FORWARDED_ALLOW_IPS compose gives the front."""
    directive = re.search(r"proxy_set_header X-Forwarded-For (\S+);", (ROOT / "deploy" / "nginx.conf").read_text())
    assert directive is not None
    forwarded = {
        "$remote_addr": client,
        "$proxy_add_x_forwarded_for": f"{sent_forwarded_for}, {client}" if sent_forwarded_for else client,
    }[directive.group(1)]
    environment = _compose()["services"]["front"]["environment"]
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["client"][0])

    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    inner: Any = app
    front = ProxyHeadersMiddleware(inner, trusted_hosts=environment.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"))
    nginx = ("172.18.0.9", 40000)  # the lb container, on compose's network
    headers = [(b"x-forwarded-for", forwarded.encode())]
    scope: Any = {"type": "http", "client": nginx, "headers": headers}
    await front(scope, None, None)  # type: ignore[arg-type]
    return seen[0]


@pytest.mark.parametrize("sent_forwarded_for", ["", "198.51.100.1", "198.51.100.1, 198.51.100.2"])
async def test_behind_compose_nginx_the_front_sees_each_client_and_no_forged_address(sent_forwarded_for: str) -> None:
    """Failed credentials and sign-ins are limited per client address, and audit rows keep it:
    if the front saw nginx's address, one scanner would lock every client out (429); if it
    believed a client's own X-Forwarded-For, a scanner would get a fresh budget per request."""
    assert await _client_seen_by_the_front("203.0.113.9", sent_forwarded_for) == "203.0.113.9"
