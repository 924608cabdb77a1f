"""The demo toolkit backend: a real MCP server (streamable HTTP) with SEO tools and a
small page store that publishing changes, so approvals and blocking guard something real."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from starlette.applications import Starlette

from demo_backend import seo_tools

# Annotations tell a catalogue sync which tools are safe to allow by default.
READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, openWorldHint=False)
CHANGES_STATE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False)
DESTRUCTIVE = ToolAnnotations(readOnlyHint=False, destructiveHint=True, openWorldHint=False)

# Owner defaults the demo seeds into the catalogue (the backend itself does not enforce them).
DEFAULT_PERMISSIONS = {
    "publish_page": "needs_approval",
    "delete_page": "blocked",
}


def build_server() -> MCPServer:
    server = MCPServer("monomcp-demo-seo", instructions="Deterministic SEO helpers and a demo page store.")
    pages: dict[str, dict[str, str]] = {}

    @server.tool(description="Keyword occurrences and density (percent of words) in a text.", annotations=READ_ONLY)
    def keyword_density(text: str, keyword: str) -> dict[str, Any]:
        return seo_tools.keyword_density(text, keyword)

    @server.tool(
        description="Audit an HTML page's title, meta description, h1, canonical link and alt texts.",
        annotations=READ_ONLY,
    )
    def meta_tag_audit(html: str) -> dict[str, Any]:
        return seo_tools.meta_tag_audit(html)

    @server.tool(
        description="Preview how a title, description and URL look in a Google result, with length checks.",
        annotations=READ_ONLY,
    )
    def serp_preview(title: str, description: str, url: str) -> dict[str, Any]:
        return seo_tools.serp_preview(title, description, url)

    @server.tool(description="Turn a title into a URL slug.", annotations=READ_ONLY)
    def slugify(text: str) -> str:
        return seo_tools.slugify(text)

    @server.tool(description="Flesch reading-ease score of a text.", annotations=READ_ONLY)
    def readability(text: str) -> dict[str, Any]:
        return seo_tools.readability(text)

    @server.tool(
        description="Publish a page to the demo site (changes state; needs approval by default).",
        annotations=CHANGES_STATE,
    )
    def publish_page(slug: str, title: str, body: str) -> dict[str, Any]:
        clean = seo_tools.slugify(slug)
        if not clean:
            raise ValueError("slug is empty after normalisation")
        revision = int(pages.get(clean, {}).get("revision", "0")) + 1
        pages[clean] = {"title": title, "body": body, "revision": str(revision)}
        return {"url": f"https://demo.monomcp.dev/{clean}", "revision": revision, "published_pages": len(pages)}

    @server.tool(description="Delete a published page (destructive; blocked by default).", annotations=DESTRUCTIVE)
    def delete_page(slug: str) -> dict[str, Any]:
        existed = pages.pop(seo_tools.slugify(slug), None) is not None
        return {"deleted": existed, "published_pages": len(pages)}

    @server.tool(description="List the pages published on the demo site.", annotations=READ_ONLY)
    def list_pages() -> dict[str, Any]:
        return {
            "pages": [
                {"slug": s, "title": p["title"], "revision": int(p["revision"])} for s, p in sorted(pages.items())
            ]
        }

    return server


def build_app() -> Starlette:
    return build_server().streamable_http_app(stateless_http=True, json_response=True)
