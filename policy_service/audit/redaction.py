"""Removes secrets from payloads before they are stored, and caps their size.

Keys are matched by name (case- and separator-insensitive); string values are scanned
for credential formats. Every redacted JSON path is reported so the row records it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

MARKER = "[REDACTED]"

_VALUE_PATTERNS = re.compile(
    "|".join(
        [
            r"mmcp_[0-9A-Za-z]{20,}",  # our own API keys
            r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}",  # JWTs
            r"AKIA[0-9A-Z]{16}",  # AWS access key ids
            r"gh[pousr]_[0-9A-Za-z]{30,}",  # GitHub tokens
            r"github_pat_[0-9A-Za-z_]{40,}",
            r"xox[abposr]-[0-9A-Za-z-]{10,}",  # Slack
            r"sk-(?:proj-|ant-)?[0-9A-Za-z_-]{20,}",  # OpenAI / Anthropic
            r"(?:sk|rk)_live_[0-9A-Za-z]{16,}",  # Stripe
            r"AIza[0-9A-Za-z_-]{35}",  # Google API keys
            r"(?i:bearer)\s+[A-Za-z0-9._~+/-]{16,}=*",
        ]
    )
)


def _normalise(key: str) -> str:
    return key.lower().replace("-", "_")


@dataclass(frozen=True)
class Redactor:
    keys: frozenset[str]
    max_payload_bytes: int
    _normalised: frozenset[str] = field(init=False, repr=False, default=frozenset())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_normalised", frozenset(_normalise(k) for k in self.keys))

    def redact(self, value: Any, root: str = "$") -> tuple[Any, list[str]]:
        """A redacted copy of `value` and the JSON paths (under `root`) that were redacted."""
        paths: list[str] = []
        return self._walk(value, root, self._normalised, paths), paths

    def _walk(self, value: Any, path: str, keys: frozenset[str], paths: list[str]) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                child = f"{path}.{k}"
                if isinstance(k, str) and _normalise(k) in keys and v not in (None, ""):
                    out[k] = MARKER
                    paths.append(child)
                else:
                    out[k] = self._walk(v, child, keys, paths)
            return out
        if isinstance(value, list):
            return [self._walk(v, f"{path}[{i}]", keys, paths) for i, v in enumerate(value)]
        if isinstance(value, str):
            cleaned = _VALUE_PATTERNS.sub(MARKER, value)
            if cleaned != value:
                paths.append(path)
            return cleaned
        return value

    def to_stored_text(self, value: Any, root: str = "$") -> tuple[str, list[str]]:
        """Redacted, size-capped JSON text ready for the audit row."""
        if value is None:
            return "", []
        redacted, paths = self.redact(value, root)
        text = json.dumps(redacted, separators=(",", ":"), ensure_ascii=False, default=str)
        return self.truncate(text), paths

    def redact_json_text(self, text: str, root: str = "$") -> tuple[str, list[str]]:
        if not text:
            return "", []
        try:
            value = json.loads(text)
        except ValueError:
            cleaned = _VALUE_PATTERNS.sub(MARKER, text)
            return self.truncate(cleaned), ([root] if cleaned != text else [])
        return self.to_stored_text(value, root)

    def truncate(self, text: str) -> str:
        size = len(text.encode())
        if size <= self.max_payload_bytes:
            return text
        preview = text.encode()[: self.max_payload_bytes].decode(errors="ignore")
        return json.dumps({"_truncated": True, "original_bytes": size, "preview": preview})
