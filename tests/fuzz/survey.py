"""Survey mode for long fuzz runs: with MONOMCP_FUZZ_SURVEY=FILE, failing inputs are
appended to FILE (one JSON line each) and the run goes on, so one run lists every
distinct fault instead of stopping at the first."""

from __future__ import annotations

import json
import os
from typing import Any

SURVEY_FILE = os.environ.get("MONOMCP_FUZZ_SURVEY", "")


def check(ok: bool, message: str, case: dict[str, Any]) -> None:
    """Assert `ok`, or in survey mode record the case and carry on."""
    if ok:
        return
    if SURVEY_FILE:
        with open(SURVEY_FILE, "a", encoding="utf-8") as out:
            out.write(json.dumps({"message": message, **case}, default=repr) + "\n")
        return
    raise AssertionError(message)
