"""The demo seed that `make run` (`monomcp dev`) and `monomcp demo seed` run, run again on the
same database: each run prints fresh demo keys that work, the previous run's stop working
(revoked, and said so), and keys do not pile up. Before, every run added six more live keys."""

from __future__ import annotations

from collections import Counter

import pytest

from monomcp_cli.runtime import seed_demo
from policy_service import errors
from policy_service.client import PolicyClient
from policy_service.config import Settings
from policy_service.demo import ORGS

BACKEND = "http://127.0.0.1:9/mcp"
ROLES = ("admin", "member")
DEMO_KEY_NAMES = {f"demo {role}" for role in ROLES}  # what the seed names its keys


async def _demo_keys(operator: PolicyClient) -> list[tuple[str, bool]]:
    """(org:role, live) of every key the seed made, in every demo org."""
    found = []
    for org in ORGS:
        for key in await operator.list_api_keys(org):
            if key.name in DEMO_KEY_NAMES and not key.owner_user_id:
                found.append((f"{org}:{key.role}", not key.HasField("revoked_at")))
    return found


async def test_each_run_leaves_one_live_set_of_demo_keys(
    settings: Settings, policy_addr: str, operator: PolicyClient
) -> None:
    first = (await seed_demo(settings, BACKEND))["api_keys"]
    second = (await seed_demo(settings, BACKEND))["api_keys"]

    keys = await _demo_keys(operator)
    live = sorted(name for name, is_live in keys if is_live)
    assert live == sorted(second) == sorted(f"{org}:{role}" for org in ORGS for role in ROLES)
    for name, secret in second.items():  # what the second run printed works
        async with PolicyClient(policy_addr, secret) as client:
            assert (await client.whoami()).role == name.split(":")[1]
    for secret in first.values():  # the first run's keys are refused, as revoked
        async with PolicyClient(policy_addr, secret) as client:
            with pytest.raises(errors.Unauthenticated) as refused:
                await client.whoami()
        assert refused.value.reason == "KEY_REVOKED"

    for _ in range(2):
        await seed_demo(settings, BACKEND)
    per_key = Counter(name for name, _ in await _demo_keys(operator))
    assert set(per_key.values()) == {2}  # the live one and the last run's, revoked: no pile-up
    assert sum(is_live for _, is_live in await _demo_keys(operator)) == len(ORGS) * len(ROLES)
