"""What an approval is bound to: the canonical JSON of the arguments and its SHA-256."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(arguments: Any) -> str:
    """Sorted keys, no whitespace, UTF-8: the same arguments always give the same text."""
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def arguments_sha256(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()
