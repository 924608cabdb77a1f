"""The `mcp` SDK stays behind one adapter (mcp_front/mcp/sdk.py): an SDK upgrade then touches
one module. A front module that needs something of the SDK re-exports it from sdk.py."""

from __future__ import annotations

import ast
from pathlib import Path

import mcp_front

FRONT = Path(mcp_front.__file__).parent
ADAPTER = FRONT / "mcp" / "sdk.py"
SDK_PACKAGES = frozenset({"mcp", "mcp_types"})


def sdk_imports(tree: ast.AST) -> list[str]:
    """Every absolute import of the SDK's packages in a module, as written."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] in SDK_PACKAGES]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in SDK_PACKAGES:
                found.append(node.module)
    return found


def test_the_detector_sees_every_form_of_sdk_import() -> None:
    source = (
        "import mcp_types as t\nimport mcp.shared\n"
        "from mcp.shared.exceptions import MCPError\nfrom mcp_types import x\n"
    )
    assert sdk_imports(ast.parse(source)) == ["mcp_types", "mcp.shared", "mcp.shared.exceptions", "mcp_types"]
    assert sdk_imports(ast.parse("from mcp_front.mcp.sdk import types\nimport mcpx\nfrom . import mcp\n")) == []


def test_only_the_adapter_imports_the_sdk() -> None:
    offenders = {
        str(path.relative_to(FRONT.parent)): found
        for path in sorted(FRONT.rglob("*.py"))
        if path != ADAPTER and (found := sdk_imports(ast.parse(path.read_text(), str(path))))
    }
    assert offenders == {}, f"import these through mcp_front/mcp/sdk.py instead: {offenders}"
    assert sdk_imports(ast.parse(ADAPTER.read_text())), "the adapter itself should be where the SDK comes in"
