"""The README's policy files do what the README says, against the real demo data: the first
is exactly what `policy export` prints after seeding; the second's condition and
two-approver rule decide calls."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from policy_service.api.server import PolicyServer
from policy_service.client import DECISION_ALLOW, DECISION_BLOCKED, DECISION_PENDING_APPROVAL, PolicyClient
from policy_service.config import Settings
from policy_service.demo import seed
from policy_service.storage.database import create_engine, session_factory

README = Path(__file__).resolve().parents[2] / "README.md"


def example(name: str) -> str:
    found = re.search(rf"<!-- policy-example: {name} -->\n```yaml\n(.*?)```", README.read_text(), re.S)
    assert found is not None, f"README has no policy example {name!r}"
    return found.group(1)


def body(exported: str) -> str:
    return "".join(line for line in exported.splitlines(keepends=True) if not line.startswith("#"))


async def _seed(settings: Settings) -> dict[str, str]:
    engine = create_engine(settings.database_url)
    try:
        result = await seed(session_factory(engine), "http://127.0.0.1:9/mcp", settings.public_url)
    finally:
        await engine.dispose()
    keys: dict[str, str] = result["api_keys"]
    return keys


def _berlin_office_hours() -> bool:
    return 9 <= datetime.now(UTC).astimezone(ZoneInfo("Europe/Berlin")).hour < 18


async def test_readme_policy_examples(settings: Settings, policy: PolicyServer) -> None:
    keys = await _seed(settings)
    address = f"127.0.0.1:{policy.port}"
    async with PolicyClient(address, keys["acme:admin"]) as admin:
        exported = await admin.export_policy()
        assert body(exported.yaml) == example("demo")  # the demo's permissions, as the README shows them
        conditions = example("conditions")
        assert (await admin.apply_policy(conditions)).live.version == 1
        assert body((await admin.export_policy()).yaml) == conditions  # and it round-trips

    async def call(tool: str, arguments: dict[str, str]) -> tuple[int, str, int]:
        async with PolicyClient(address, service_token=settings.service_token) as service:
            response = await service.authorize_tool_call(
                keys["acme:member"], "acme", "seo", tool, json.dumps(arguments)
            )
        return response.decision, response.approval.id, response.approval.required_approvals

    page = {"title": "T", "body": "B"}
    assert (await call("publish_page", {"slug": "drafts/launch", **page}))[0] == DECISION_ALLOW
    decision, approval_id, required = await call("publish_page", {"slug": "launch", **page})
    assert (decision, required) == (DECISION_PENDING_APPROVAL, 2)
    before = _berlin_office_hours()
    decision, _, _ = await call("delete_page", {"slug": "launch"})
    if before == _berlin_office_hours():  # not across 09:00 or 18:00 Berlin time
        assert decision == (DECISION_PENDING_APPROVAL if before else DECISION_BLOCKED)
    async with PolicyClient(address, keys["acme:admin"]) as admin:
        shown = await admin.get_approval(approval_id)
    assert "Needs 2 distinct approvers with role admin" in shown.scope
