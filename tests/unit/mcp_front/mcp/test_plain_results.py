"""The lean path's plain tools/call results are exactly what the SDK's per-version sieve
makes of them (docs/adr/0040): same keys, same values, same order, for every version it serves."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp_types import methods

from mcp_front.mcp import sdk
from mcp_front.mcp.sdk import PLAIN_TEXT_VERSIONS, wire_result

_TEXT = st.text(max_size=20)
_BLOCK = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": _TEXT}),
    st.fixed_dictionaries({"text": _TEXT, "type": st.just("text")}),
    st.fixed_dictionaries({"type": st.sampled_from(["text", "image", "Text"]), "text": st.one_of(_TEXT, st.none())}),
    st.fixed_dictionaries(
        {"type": st.just("text"), "text": _TEXT},
        optional={"annotations": st.one_of(st.none(), st.just({"priority": 0.5})), "_meta": st.just({"a": 1})},
    ),
)
_RESULT = st.fixed_dictionaries(
    {},
    optional={
        "content": st.one_of(st.lists(_BLOCK, max_size=3), st.none(), st.just("text")),
        "isError": st.one_of(st.booleans(), st.none(), st.just(0), st.just("true")),
        "resultType": st.sampled_from(["complete", "input_required", None]),
        "structuredContent": st.just({"a": None}),
        "_meta": st.just({"k": "v"}),
        "extra": st.just(1),
    },
)


def _sieved(version: str, result: dict[str, Any]) -> Any:
    modern = version in sdk.MODERN_PROTOCOL_VERSIONS
    shaped = {"resultType": "complete", **result} if modern and "resultType" not in result else result
    try:
        return json.dumps(methods.serialize_server_result("tools/call", version, shaped))
    except Exception as exc:  # the sieve refuses it: the lean path must refuse it alike
        return type(exc)


def _wire(version: str, result: dict[str, Any]) -> Any:
    try:
        dumped = wire_result("tools/call", version, result)
    except Exception as exc:
        return type(exc)
    if version in sdk.MODERN_PROTOCOL_VERSIONS:  # the serverInfo stamp is added after the sieve, on both paths
        dumped["_meta"] = {k: v for k, v in (dumped.get("_meta") or {}).items() if k != sdk.types.SERVER_INFO_META_KEY}
        if not dumped["_meta"]:
            del dumped["_meta"]
    return json.dumps(dumped)


@pytest.mark.parametrize("version", sorted(PLAIN_TEXT_VERSIONS))
@pytest.mark.parametrize(
    "result",
    [
        {"content": [{"type": "text", "text": "ok"}]},
        {"isError": False, "content": [{"text": "ok", "type": "text"}, {"type": "text", "text": "\ud800 é"}]},
        {"content": [], "isError": True},
        {"resultType": "complete", "content": [{"type": "text", "text": "ok"}]},
        {"content": [{"type": "text", "text": "ok", "annotations": None}]},
        {"content": [{"type": "image", "text": "ok"}]},
        {"content": [{"type": "text", "text": 1}]},
        {"content": [{"type": "text", "text": "ok"}], "isError": None},
    ],
)
def test_plain_results_are_what_the_sieve_makes_of_them(version: str, result: dict[str, Any]) -> None:
    assert _wire(version, result) == _sieved(version, result)


@pytest.mark.parametrize("version", sorted(PLAIN_TEXT_VERSIONS))
@settings(max_examples=300, deadline=None)
@given(result=_RESULT)
def test_any_result_is_what_the_sieve_makes_of_it(version: str, result: dict[str, Any]) -> None:
    assert _wire(version, result) == _sieved(version, result)


def test_the_shortcut_is_taken_for_plain_text() -> None:
    """The cut itself: a plain text result never reaches pydantic."""
    plain = {"content": [{"type": "text", "text": "ok"}], "isError": False}
    assert sdk._plain_text_call(plain, modern=False) == {"content": [{"text": "ok", "type": "text"}], "isError": False}
    assert sdk._plain_text_call({**plain, "structuredContent": {}}, modern=False) is None
