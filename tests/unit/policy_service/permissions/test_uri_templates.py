"""Which URIs a resource template covers: a read of an uncatalogued URI is allowed only
through a template that matches it, so matching must not stretch past what was published."""

from __future__ import annotations

import pytest

from policy_service.permissions.uri_templates import matches


@pytest.mark.parametrize(
    ("template", "uri", "expected"),
    [
        ("test://template/{id}/data", "test://template/123/data", True),
        ("test://template/{id}/data", "test://template/1/2/data", False),  # {id} is one segment
        ("test://template/{id}/data", "test://template//data", False),
        ("file:///docs/{name}", "file:///docs/a/../../etc/passwd", False),
        ("file:///docs/{+path}", "file:///docs/a/b.txt", True),  # reserved expansion may span
        ("api://users{/id}", "api://users/7", True),
        ("api://search{?q,lang}", "api://search?q=x&lang=en", True),
        ("a.b://{x}", "aXb://y", False),  # literal parts are literal
        ("broken://{x", "broken://{x", False),  # malformed templates match nothing
    ],
)
def test_matches(template: str, uri: str, expected: bool) -> None:
    assert matches(template, uri) is expected
