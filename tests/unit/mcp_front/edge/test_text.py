from __future__ import annotations

import math

from mcp_front.edge.text import escape_control, log_safe, storable


def test_log_lines_stay_one_line() -> None:
    assert log_safe("/a\r\nINFO forged\x1b[31m\u2028") == "/a\\u000d\\u000aINFO forged\\u001b[31m\\u2028"


def test_storable_escapes_keys_values_and_non_finite_numbers() -> None:
    value = {"k\x00": ["v\x00", math.inf, 1.5, {"deep": "\x7f"}]}
    assert storable(value) == {"k\\u0000": ["v\\u0000", "inf", 1.5, {"deep": "\\u007f"}]}


def test_printable_text_is_unchanged() -> None:
    assert escape_control("tools/call ünïcode") == "tools/call ünïcode"
