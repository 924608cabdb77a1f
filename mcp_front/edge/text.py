"""Text a caller sent, made safe to store and to log.

Control characters in names are refused at the edge; where caller text is kept anyway (the
audit row of that refusal, a log line), they are written as visible `\\uXXXX` escapes so no
byte can corrupt a row or forge a line.
"""

from __future__ import annotations

import math
import re
from typing import Any

# C0 controls and DEL: never valid in a tool name or a JSON-RPC method.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# For log lines also C1 controls and the Unicode line separators.
_LOG_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MAX_DEPTH = 64


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def escape_control(text: str) -> str:
    return _CONTROL.sub(_escape, text)


def log_safe(text: str, limit: int = 512) -> str:
    """One log line stays one line: CR/LF, ANSI escapes and friends become visible escapes."""
    safe = _LOG_UNSAFE.sub(_escape, text[:limit])
    return safe + "…" if len(text) > limit else safe


def storable(value: Any, depth: int = 0) -> Any:
    """A copy of decoded JSON with control characters escaped in every string and key, and
    NaN/Infinity as strings, so a refused request can still be audited exactly as sent."""
    if isinstance(value, str):
        return escape_control(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if depth >= _MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {escape_control(str(k)): storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v, depth + 1) for v in value]
    return value
