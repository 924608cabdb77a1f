"""A real MCP backend (the SDK's MCPServer) offering what the conformance suite's resources-*,
prompts-* and completion-complete scenarios expect, plus a secret resource and template
used to test per-item permissions. Counts reads so tests can prove a refusal ran nothing.

Also runnable on its own for scripts/conformance_items.sh:
    python -m tests.support.item_backend PORT
"""

from __future__ import annotations

import base64
import sys
from collections import Counter
from typing import Any

import mcp_types as types
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp

from tests.support.upstream import PNG_1PX

EMBEDDED_TEXT = "Embedded resource content for testing."


class ItemBackend:
    def __init__(self) -> None:
        self.reads: Counter[str] = Counter()
        self.server = MCPServer("item-backend")
        self._resources()
        self._prompts()

    def _resources(self) -> None:
        server, reads = self.server, self.reads

        @server.resource("test://static-text", name="static-text", description="A static text", mime_type="text/plain")
        def static_text() -> str:
            reads["test://static-text"] += 1
            return "This is the content of the static text resource."

        @server.resource("test://static-binary", name="static-binary", description="A PNG", mime_type="image/png")
        def static_binary() -> bytes:
            reads["test://static-binary"] += 1
            return base64.b64decode(PNG_1PX)

        @server.resource("test://watched-resource", name="watched", description="Watched", mime_type="text/plain")
        def watched() -> str:
            return "watched"

        @server.resource("test://secret", name="secret", description="Payroll", mime_type="text/plain")
        def secret() -> str:
            reads["test://secret"] += 1
            return "the payroll"

        @server.resource("test://template/{id}/data", name="template-data", description="Data", mime_type="text/plain")
        def template_data(id: str) -> str:
            reads[f"test://template/{id}/data"] += 1
            return f'{{"id":"{id}","templateTest":true,"data":"Data for ID: {id}"}}'

        @server.resource("test://vault/{key}", name="vault", description="Secrets", mime_type="text/plain")
        def vault(key: str) -> str:
            reads[f"test://vault/{key}"] += 1
            return f"vault {key}"

    def _prompts(self) -> None:
        server = self.server

        @server.prompt(name="test_simple_prompt", description="A simple prompt")
        def simple() -> list[dict[str, Any]]:
            return [_user_text("This is a simple prompt for testing.")]

        @server.prompt(name="test_prompt_with_arguments", description="A prompt with arguments")
        def with_arguments(arg1: str, arg2: str) -> list[dict[str, Any]]:
            return [_user_text(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")]

        @server.prompt(name="test_prompt_with_embedded_resource", description="A prompt with a resource")
        def with_resource(resourceUri: str) -> list[dict[str, Any]]:
            embedded = {"uri": resourceUri, "mimeType": "text/plain", "text": EMBEDDED_TEXT}
            return [
                {"role": "user", "content": {"type": "resource", "resource": embedded}},
                _user_text("Please process the embedded resource above."),
            ]

        @server.prompt(name="test_prompt_with_image", description="A prompt with an image")
        def with_image() -> list[dict[str, Any]]:
            image = {"type": "image", "data": PNG_1PX, "mimeType": "image/png"}
            return [{"role": "user", "content": image}, _user_text("Please analyze the image above.")]

        @server.prompt(name="internal_prompt", description="Blocked in tests")
        def internal() -> list[dict[str, Any]]:
            return [_user_text("internal instructions")]

        @server.completion()  # type: ignore[no-untyped-call, untyped-decorator]  # the SDK leaves it untyped
        async def complete(ref: Any, argument: Any, context: Any) -> types.Completion:
            values = [v for v in ("test", "testing", "tested") if v.startswith(argument.value or "")]
            return types.Completion(values=values, total=len(values), has_more=False)

        async def subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
            return types.EmptyResult()

        async def unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
            return types.EmptyResult()

        lowlevel = server._lowlevel_server
        lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
        lowlevel.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)

    def app(self) -> ASGIApp:
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        return self.server.streamable_http_app(stateless_http=True, json_response=True, transport_security=security)


def _user_text(text: str) -> dict[str, Any]:
    return {"role": "user", "content": {"type": "text", "text": text}}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(ItemBackend().app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
