"""Every operation of the admin REST API (/api/v1), generated from the front's own
/openapi.json, sent with an org admin's key to a real front. Property: never a 5xx.

Scale with MONOMCP_FUZZ_REST_EXAMPLES (default 300 clean + 100 hostile; `make fuzz` runs many more)."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import World
from tests.fuzz.openapi_strategies import Generated, Operation, SchemaStrategies, operations, request_for
from tests.fuzz.survey import check

EXAMPLES = int(os.environ.get("MONOMCP_FUZZ_REST_EXAMPLES", "300"))
FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


class RestTarget:
    def __init__(self, world: World, front: str, document: dict[str, Any]) -> None:
        self.front = front
        self.document = document
        self.ops: list[Operation] = [op for op in operations(document) if op.path.startswith("/api/v1/")]
        self.http = httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {world.keys['acme:admin']}"})
        self.known = {"org": ["acme", "globex"], "slug": ["tools", "shared"], "approval_id": ["x"], "key_id": ["x"]}

    async def send(self, req: Generated) -> httpx.Response:
        body = None if req.json_body is None else json.dumps(req.json_body).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        url = self.front + req.path
        return await self.http.request(req.method, url, params=req.params, content=body, headers=headers)


@pytest.fixture
async def rest(world: World, front: str) -> Any:
    async with httpx.AsyncClient() as http:
        document = (await http.get(f"{front}/openapi.json")).json()
    target = RestTarget(world, front, document)
    assert target.ops, "the OpenAPI document lists the REST operations"
    yield target
    await target.http.aclose()


def run_fuzz(clean: bool) -> Any:
    @settings(FUZZ, max_examples=EXAMPLES if clean else max(1, EXAMPLES // 3))
    @given(data=st.data())
    async def fuzz(rest: RestTarget, data: st.DataObject) -> None:
        schemas = SchemaStrategies(rest.document, clean)
        op = data.draw(st.sampled_from(rest.ops), label="operation")
        req = data.draw(request_for(schemas, op, rest.known), label="request")
        response = await rest.send(req)
        message = f"{response.status_code} for {req.describe()}: {response.text[:300]}"
        check(response.status_code < 500, message, {"status": response.status_code, "request": req.describe()})

    return fuzz


test_rest_api_never_answers_5xx = run_fuzz(clean=True)
test_rest_api_never_answers_5xx_on_hostile_input = run_fuzz(clean=False)


@pytest.mark.parametrize(
    ("method", "path", "params", "body"),
    # Each answered 500 before issue 10 (page_size past int32, bad page tokens, ttl 1e12, NUL).
    [
        pytest.param("GET", "/api/v1/audit", {"page_size": "2147483648"}, None),
        pytest.param("GET", "/api/v1/approvals", {"page_size": "2147483648"}, None),
        pytest.param("GET", "/api/v1/audit", {"page_token": "9" * 30}, None),
        pytest.param("GET", "/api/v1/approvals", {"page_token": "2026-01-01|x"}, None),
        pytest.param("POST", "/api/v1/keys", {}, {"name": "k", "ttl_seconds": 10**12}),
        pytest.param("POST", "/api/v1/keys", {}, {"name": "a\u0000b"}),
    ],
)
async def test_known_rest_inputs_answer_4xx(
    rest: RestTarget, method: str, path: str, params: dict[str, str], body: Any
) -> None:
    response = await rest.send(Generated(method, path, params, body))
    assert 400 <= response.status_code < 500, response.text[:300]
