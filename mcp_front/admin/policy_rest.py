"""/api/v1/policy: the org's policy file over REST (ADR 0021), the same RPCs the CLI uses.

GET returns the live file and version; POST /diff and PUT take the YAML file as the body
(`Content-Type: application/yaml`) and answer the changes as JSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse

from mcp_front.admin.rest import AdminApi, to_json

MAX_POLICY_BYTES = 1_000_000


async def _file(request: Request) -> str:
    body = await request.body()
    if len(body) > MAX_POLICY_BYTES:
        raise HTTPException(413, {"reason": "POLICY_TOO_LARGE", "message": "a policy file is at most 1 MB"})
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, {"reason": "POLICY_ENCODING", "message": "the policy file must be UTF-8"}) from None


def _changes(response: Any) -> dict[str, Any]:
    return to_json(response) | {"changes": [to_json(c) for c in response.changes]}


def build_policy_router(api: AdminApi) -> APIRouter:
    r = APIRouter(prefix="/api/v1/policy")

    @r.get("")
    async def export(request: Request) -> dict[str, Any]:
        """The caller's org's policy file (`yaml`) and the live version (`live`)."""
        return to_json(await api.call(request, lambda c: c.export_policy()))

    @r.get("/file", response_class=PlainTextResponse)
    async def export_file(request: Request) -> PlainTextResponse:
        exported = await api.call(request, lambda c: c.export_policy())
        return PlainTextResponse(exported.yaml, media_type="application/yaml")

    @r.post("/diff")
    async def diff(request: Request) -> dict[str, Any]:
        """What applying the body's policy file would change; 400 lists problems by line."""
        text = await _file(request)
        return _changes(await api.call(request, lambda c: c.apply_policy(text, dry_run=True)))

    @r.put("")
    async def apply(request: Request, dry_run: bool = False) -> dict[str, Any]:
        """Apply the body's policy file: all or nothing, one new version, audited."""
        text = await _file(request)
        return _changes(await api.call(request, lambda c: c.apply_policy(text, dry_run=dry_run)))

    return r
