"""The front gets plain values from the policy client, never protobuf: no generated module
imported, no protobuf presence or conversion methods called. What a page or a result needs
of a message comes from policy_service/wire_views.py (STYLE.md: one shape per concept)."""

from __future__ import annotations

import ast
from pathlib import Path

import mcp_front

FRONT = Path(mcp_front.__file__).parent
# Methods only protobuf messages have: calling one means a caller reads the wire shape.
PROTOBUF_METHODS = frozenset(
    {"HasField", "ToJsonString", "WhichOneof", "ListFields", "ToDatetime", "ToMilliseconds", "FromDatetime"}
)
# Modules allowed to break the rule, with the reason. Keep it empty.
ALLOWED: dict[str, str] = {}


def _generated(module: str) -> bool:
    parts = module.split(".")
    return module.startswith("policy_service._generated") or any(p.endswith(("_pb2", "_pb2_grpc")) for p in parts)


def wire_uses(tree: ast.AST) -> list[str]:
    """Imports of generated protobuf modules and calls of protobuf-only methods in a module."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if _generated(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if any(_generated(f"{node.module}.{a.name}") for a in node.names):
                found.append(f"from {node.module} import")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in PROTOBUF_METHODS:
                found.append(f".{node.func.attr}(")
    return found


def test_the_detector_sees_generated_imports_and_protobuf_methods() -> None:
    source = (
        "from policy_service._generated.monomcp.policy.v1.types_pb2 import Principal\n"
        "from google.protobuf import timestamp_pb2\n"
        "import grpc_health.v1.health_pb2\n"
        "k.HasField('expires_at') and a.created_at.ToJsonString()\n"
    )
    assert wire_uses(ast.parse(source)) == [
        "from policy_service._generated.monomcp.policy.v1.types_pb2 import",
        "from google.protobuf import",
        "import grpc_health.v1.health_pb2",
        ".HasField(",
        ".ToJsonString(",
    ]
    assert wire_uses(ast.parse("from policy_service.wire_views import approval_of\nx.has_field('a')\n")) == []


def test_the_front_reads_no_protobuf() -> None:
    offenders = {
        rel: found
        for path in sorted(FRONT.rglob("*.py"))
        if (rel := str(path.relative_to(FRONT.parent))) not in ALLOWED
        and (found := wire_uses(ast.parse(path.read_text(), str(path))))
    }
    assert offenders == {}, f"read these through policy_service/wire_views.py instead: {offenders}"
