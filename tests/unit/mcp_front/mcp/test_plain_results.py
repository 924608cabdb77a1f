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
_INFO = sdk.types.SERVER_INFO_META_KEY
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
        "_meta": st.one_of(
            st.just({"k": "v"}),
            st.just({}),
            st.fixed_dictionaries({_INFO: st.fixed_dictionaries({"name": _TEXT, "version": _TEXT})}),
            st.fixed_dictionaries({_INFO: st.fixed_dictionaries({"version": _TEXT, "name": _TEXT})}),
            st.fixed_dictionaries({_INFO: st.just({"name": "x", "version": None})}),
            st.fixed_dictionaries({_INFO: st.just({"name": "x", "version": "1", "title": "t"})}),
            st.fixed_dictionaries({_INFO: st.just({"name": "x", "version": "1"}), "a": st.none()}),
        ),
        "extra": st.just(1),
    },
)


def _sieved(version: str, result: dict[str, Any]) -> Any:
    """`wire_result` as it was: every result through the SDK's sieve, then the serverInfo stamp."""
    modern = version in sdk.MODERN_PROTOCOL_VERSIONS
    shaped = {"resultType": "complete", **result} if modern and "resultType" not in result else result
    try:
        dumped = methods.serialize_server_result("tools/call", version, shaped)
    except Exception as exc:  # the sieve refuses it: the lean path must refuse it alike
        return type(exc)
    if modern:
        meta, stamp = dumped.get("_meta"), {"name": sdk.SERVER_NAME, "version": sdk.SERVER_VERSION}
        if meta is None:
            dumped["_meta"] = {_INFO: stamp}
        elif isinstance(meta, dict) and meta.get(_INFO) is None:
            dumped["_meta"] = {**meta, _INFO: stamp}
    return json.dumps(dumped)


def _wire(version: str, result: dict[str, Any]) -> Any:
    try:
        return json.dumps(wire_result("tools/call", version, result))
    except Exception as exc:
        return type(exc)


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
        {"content": [{"type": "text", "text": "ok"}], "_meta": {_INFO: {"name": "up", "version": "1"}}},
        {"_meta": {_INFO: {"version": "1", "name": "up"}}, "content": [], "isError": False},
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
    stamped = {**plain, "_meta": {_INFO: {"name": "up", "version": "1"}}}
    assert sdk._plain_text_call(stamped, modern=False) == {"_meta": stamped["_meta"], **plain}
