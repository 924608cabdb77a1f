"""Hostile JSON-RPC bodies and header sets for fuzzing the front's toolkit endpoints.

`clean=True` leaves out the input classes with open bugs at the edge (control characters
in names, NaN/Infinity, unparseable bodies), so the default run stays green while those
are being fixed; the strict run includes everything."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

METHODS = [
    "initialize", "ping", "tools/list", "tools/call", "resources/list", "prompts/list", "tasks/get",
    "tasks/result", "tasks/list", "tasks/cancel", "notifications/initialized", "logging/setLevel",
    "completion/complete", "server/discover",
]  # fmt: skip
TOOLS = ["echo", "add", "transfer", "wipe", "slow", "media", "fails", "login", "approval_status", "nope"]
PATHS = ["/acme/tools/mcp", "/acme/shared/mcp", "/acme/shared/mcp/", "/globex/none/mcp", "/acme/tools/mcp?x=1"]

HUGE_NUMBERS = st.sampled_from([2**63, -(2**63) - 1, 10**400, 2**1024, 1.7976931348623157e308, -0.0, 5e-324])
PRINTABLE = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=30)
HOSTILE = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Co"]), max_size=30)


def _scalars(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.none() | st.booleans() | st.integers() | HUGE_NUMBERS | st.floats(allow_nan=False) | text


def json_values(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        _scalars(text),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=12,
    )


def _tool_params(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    arguments = st.fixed_dictionaries(
        {},
        optional={
            "text": json_values(text),
            "a": st.integers() | HUGE_NUMBERS | json_values(text),
            "b": st.integers(-5, 5),
            "amount": st.integers(),
            "to": text,
            "target": text,
            "seconds": st.sampled_from([0, 0.01, -1, "x"]),
            "username": text,
            "password": text,
        },
    )
    return st.fixed_dictionaries(
        {"name": st.sampled_from(TOOLS) | text},
        optional={"arguments": arguments | json_values(text), "_meta": json_values(text), "task": json_values(text)},
    )


def messages(clean: bool) -> st.SearchStrategy[Any]:
    """One JSON-RPC message, often well-formed, often subtly wrong."""
    text = PRINTABLE if clean else HOSTILE
    method = st.sampled_from(METHODS) | (st.from_regex(r"[a-z/]{1,20}", fullmatch=True) if clean else text)
    params = _tool_params(text) | json_values(text)
    ids = st.integers(0, 10**6) | st.text(max_size=10) | st.none() | HUGE_NUMBERS | json_values(text)
    return st.fixed_dictionaries(
        {"method": method},
        optional={"jsonrpc": st.sampled_from(["2.0", "2.0", "1.0", 2]), "id": ids, "params": params},
    )


def _nan_text(body: str, token: str) -> str:
    """Swaps the first number in `body` for a JSON extension literal (NaN, Infinity)."""
    for i, ch in enumerate(body):
        if ch.isdigit():
            return body[:i] + token + body[i + 1 :]
    return body.replace("{", '{"n":' + token + ",", 1)


@st.composite
def bodies(draw: st.DrawFn, clean: bool) -> bytes:
    """A request body: a message, a batch, or (strict run) deliberately broken bytes."""
    kinds = ["message", "message", "message", "batch", "deep"]
    if not clean:
        kinds += ["nan", "invalid_utf8", "truncated", "raw"]
    kind = draw(st.sampled_from(kinds))
    if kind == "raw":
        return draw(st.binary(max_size=200))
    if kind == "batch":
        return json.dumps(draw(st.lists(messages(clean), max_size=3))).encode()
    if kind == "deep":
        depth = draw(st.integers(1, 5000 if not clean else 200))
        nested = "[" * depth + "]" * depth
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {}}}
        return json.dumps(call).replace('"arguments": {}', '"arguments": {"text": ' + nested + "}").encode()
    text = json.dumps(draw(messages(clean)), ensure_ascii=draw(st.booleans()))
    if kind == "nan":
        return _nan_text(text, draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))).encode()
    if kind == "invalid_utf8":
        cut = draw(st.integers(0, len(text)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]))
        return text[:cut].encode() + bad + text[cut:].encode()
    if kind == "truncated":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))].encode()
    return text.encode()


HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@st.composite
def header_sets(draw: st.DrawFn, keys: dict[str, str]) -> dict[str, str]:
    """Random Accept, Content-Type, protocol version, Origin, Host and Authorization forms."""
    headers: dict[str, str] = {}
    choices: dict[str, st.SearchStrategy[str | None]] = {
        "accept": st.sampled_from(
            ["application/json, text/event-stream", "application/json", "text/event-stream", "*/*", "", "text/html"]
        )
        | HEADER_TEXT,
        "content-type": st.sampled_from(
            ["application/json", "application/json; charset=utf-8", "text/plain", "", "multipart/form-data"]
        )
        | HEADER_TEXT,
        "mcp-protocol-version": st.sampled_from(["2025-06-18", "2025-11-25", "2025-03-26", "2026-07-28", "1999-01-01"])
        | HEADER_TEXT,
        "origin": st.sampled_from(["http://127.0.0.1:1", "http://localhost", "https://evil.example", "null"])
        | HEADER_TEXT,
        "host": st.sampled_from(["evil.example", "127.0.0.1", "localhost:1", "[::1]:80"]) | HEADER_TEXT,
        "authorization": st.sampled_from(
            [f"Bearer {v}" for v in keys.values()]
            + [f"bearer {keys['acme:member']}", keys["acme:member"], "Bearer", "Bearer ", "Basic YTpi", "Bearer a.b.c"]
            + ["Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "Bearer mmcp_" + "A" * 54]
        )
        | HEADER_TEXT.map(lambda t: "Bearer " + t),
        "mcp-session-id": HEADER_TEXT,
        "last-event-id": HEADER_TEXT,
    }
    for name, values in choices.items():
        # Headers clients always send are mostly present; the rest mostly absent (a bad Host
        # or Origin is refused before anything else, so it would hide the deeper paths).
        usual = name in ("accept", "content-type", "mcp-protocol-version", "authorization")
        if draw(st.integers(0, 3)) > 0 if usual else draw(st.integers(0, 5)) == 0:
            value = draw(values)
            if value is not None:
                headers[name] = value.strip()  # h11 refuses to send edge whitespace
    return headers
