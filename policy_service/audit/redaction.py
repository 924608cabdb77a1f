"""Removes secrets from payloads before they are stored, and caps their size.

Keys are matched by their words (see `redaction_keys`); string values are scanned for
credential shapes (see `redaction_patterns`), and a string that is itself a JSON document
(a tool result's text content, say) is redacted as JSON. Every redacted JSON path is
reported so the row records it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from policy_service.audit.redaction_keys import KeyMatcher
from policy_service.audit.redaction_patterns import MARKER, scrub

__all__ = ["MARKER", "Redactor"]

# Deeper structures are not inspected; they are stored as the marker (fail closed).
MAX_DEPTH = 64
# JSON documents inside strings: how many levels of embedding, and how large, get parsed.
MAX_EMBEDDED_LEVELS = 3
MAX_EMBEDDED_CHARS = 1_048_576
# What one payload may cost the policy service, whose one event loop serves every tenant: a
# stored payload keeps at most `max_payload_bytes` anyway. Text larger than this is not
# parsed (it is recorded by size, without a preview: fail closed), and past this many objects
# and arrays the rest of a payload is stored as the marker. Measured: 14 MiB of small JSON
# objects took 4 s to parse, redact and encode; 1 MiB within the budget, ~25 ms.
MAX_REDACTED_CHARS = 1_048_576
MAX_NODES = 10_000
# Name/value entries (HTTP header lists, environment variables, form fields).
_NAME_KEYS = ("name", "key", "header", "field")
_VALUE_KEYS = ("value", "val")
# Environment maps (a stdio backend's `env`) are write-only: every value is redacted, whatever
# its variable is called; the names stay readable.
_ENV_KEYS = frozenset({"env"})
# Values that hold no text to scan and no structure to descend into (exact types: a subclass
# takes the general path).
_LEAVES = frozenset({int, float, bool, type(None)})
_NUMBERS = frozenset({int, float})
_CONTAINERS = (dict, list)
_NO_KEY = object()
_EMBEDDED = json.JSONEncoder(ensure_ascii=False)


def _compact_encoder() -> Callable[[Any], str]:
    """`json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)`, with the C
    encoder built once instead of per call (as `JSONEncoder.encode` does). Without its circular
    reference check: it only ever encodes a redaction pass's output, a fresh tree of at most
    MAX_DEPTH levels that cannot contain itself."""
    make = getattr(json.encoder, "c_make_encoder", None)  # private to the json package
    if make is None:  # an interpreter without the C accelerator
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode
    encode = make(None, str, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    return lambda value: "".join(encode(value, 0))


_STORED = _compact_encoder()


@dataclass(frozen=True)
class Redactor:
    keys: frozenset[str]
    max_payload_bytes: int
    _matcher: KeyMatcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_matcher", KeyMatcher(self.keys))

    def is_secret_key(self, key: str) -> bool:
        return self._matcher.is_secret(key)

    def redact(self, value: Any, root: str = "$") -> tuple[Any, list[str]]:
        """A redacted copy of `value` and the JSON paths (under `root`) that were redacted."""
        paths: list[str] = []
        return _Walk(self._matcher, paths).value(value, root, 0, 0), paths

    def to_stored_text(self, value: Any, root: str = "$") -> tuple[str, list[str]]:
        """Redacted, size-capped JSON text ready for the audit row."""
        if value is None:
            return "", []
        redacted, paths = self.redact(value, root)
        return self.truncate(_STORED(redacted)), paths

    def redact_json_text(self, text: str, root: str = "$") -> tuple[str, list[str]]:
        if not text:
            return "", []
        if len(text) > MAX_REDACTED_CHARS:
            size = len(text.encode("utf-8", "surrogatepass"))
            return json.dumps({"_truncated": True, "original_bytes": size, "preview": ""}), [root]
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            cleaned = scrub(text, self._matcher.is_secret, self._matcher.sorted_words)
            return self.truncate(cleaned), ([root] if cleaned != text else [])
        return self.to_stored_text(value, root)

    def truncate(self, text: str) -> str:
        size = len(text) if text.isascii() else len(text.encode())
        if size <= self.max_payload_bytes:
            return text
        preview = text.encode()[: self.max_payload_bytes].decode(errors="ignore")
        return json.dumps({"_truncated": True, "original_bytes": size, "preview": preview})


@dataclass
class _Walk:
    """One redaction pass: the key matcher and the paths redacted so far.

    Runs on every audited payload, so the common nodes take short cuts that decide exactly
    as the general case would: numbers, booleans and nulls are kept without a call, a child's
    path is only spelled out when it is redacted or descended into, and a string that cannot
    hold JSON skips the parse attempt."""

    matcher: KeyMatcher
    paths: list[str]
    nodes: int = 0  # objects and arrays visited, up to MAX_NODES

    def value(self, value: Any, path: str, depth: int, embedded: int) -> Any:
        if isinstance(value, str):
            return self.text(value, path, depth, embedded)
        if not isinstance(value, _CONTAINERS):
            return value
        self.nodes += 1
        if depth >= MAX_DEPTH or self.nodes > MAX_NODES:
            self.paths.append(path)
            return MARKER
        if isinstance(value, list):
            return self._array(value, path, depth, embedded)
        return self._object(value, path, depth, embedded)

    def _array(self, value: list[Any], path: str, depth: int, embedded: int) -> list[Any]:
        if len(value) == 2 and self._secret_pair(value):  # [["password", "hunter2"]]: a key and its value
            self.paths.append(f"{path}[1]")
            return [value[0], MARKER]
        out = []
        for i, v in enumerate(value):
            if self.nodes > MAX_NODES:  # the rest is one marker, not one per element
                self.paths.append(f"{path}[{i}:]")
                out.append(MARKER)
                break
            out.append(v if type(v) in _LEAVES else self.value(v, f"{path}[{i}]", depth + 1, embedded))
        return out

    def _object(self, value: dict[Any, Any], path: str, depth: int, embedded: int) -> dict[Any, Any]:
        # {"name": "Authorization", "value": "Bearer …"}: only a dict with a name key can be one.
        named = None if value.keys().isdisjoint(_NAME_KEYS) else self._named_secret(value)
        is_secret = self.matcher.is_secret
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if self.nodes > MAX_NODES:  # this key and the rest: one marker
                self.paths.append(f"{path}.{k}:")
                out[k] = MARKER
                break
            kind = type(v)
            if kind is str or kind in _LEAVES:
                # Exact types: text and numbers hold data unless empty; booleans and nulls never.
                if (v if kind is str else kind in _NUMBERS) and isinstance(k, str) and (is_secret(k) or k == named):
                    out[k] = MARKER
                    self.paths.append(f"{path}.{k}")
                else:
                    out[k] = self.text(v, path, depth + 1, embedded, k) if kind is str else v
            elif isinstance(k, str) and _holds_data(v) and (is_secret(k) or k == named):
                out[k] = MARKER
                self.paths.append(f"{path}.{k}")
            elif k in _ENV_KEYS and isinstance(v, dict):
                out[k] = self._environment(v, f"{path}.{k}")
            else:
                out[k] = self.value(v, f"{path}.{k}", depth + 1, embedded)
        return out

    def _environment(self, env: dict[Any, Any], path: str) -> dict[Any, Any]:
        self.paths.extend(f"{path}.{name}" for name, v in env.items() if _holds_data(v))
        return {name: MARKER if _holds_data(v) else v for name, v in env.items()}

    def _secret_pair(self, value: list[Any]) -> bool:
        return (
            isinstance(value[0], str)
            and _holds_data(value[1])
            and not isinstance(value[1], _CONTAINERS)
            and self.matcher.is_secret(value[0])
        )

    def _named_secret(self, value: dict[Any, Any]) -> str | None:
        """The value field of a name/value entry whose name is a secret (headers, env lists)."""
        for name_key in _NAME_KEYS:
            name = value.get(name_key)
            if isinstance(name, str) and self.matcher.is_secret(name):
                return next((k for k in _VALUE_KEYS if k in value), None)
        return None

    def text(self, text: str, path: str, depth: int, embedded: int, key: Any = _NO_KEY) -> str:
        """`text` redacted; its path is `path`, or `path.key` when `key` is given (spelled out
        only if needed)."""
        if "{" in text or "[" in text:  # else it cannot be a JSON object or array
            document = _embedded_json(text, embedded)
            if document is not None:
                where = path if key is _NO_KEY else f"{path}.{key}"
                before = len(self.paths)
                redacted = self.value(document, where, depth + 1, embedded + 1)
                return _EMBEDDED.encode(redacted) if len(self.paths) > before else text
        cleaned = scrub(text, self.matcher.is_secret, self.matcher.sorted_words)
        if cleaned != text:
            self.paths.append(path if key is _NO_KEY else f"{path}.{key}")
        return cleaned


def _holds_data(value: Any) -> bool:
    """Empty values and booleans cannot carry a secret; keep them readable."""
    return value is not None and value != "" and not isinstance(value, bool)


def _embedded_json(text: str, embedded: int) -> dict[str, Any] | list[Any] | None:
    """The JSON object or array `text` holds, if it is one and small and shallow enough to parse."""
    if embedded >= MAX_EMBEDDED_LEVELS or len(text) > MAX_EMBEDDED_CHARS:
        return None
    head = text.lstrip()[:1]
    if head not in ("{", "["):
        return None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict | list) else None
