"""Processes log one JSON object per line, with the fields a log pipeline indexes."""

from __future__ import annotations

import json
import logging

import pytest

from monomcp_cli.log_setup import JsonFormatter, configure


def test_json_lines_carry_level_logger_message_and_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "monomcp.front", "levelno": logging.INFO, "levelname": "INFO", "msg": "http status=%s", "args": (200,)}
    )
    record.request_id = "abc"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "info" and entry["logger"] == "monomcp.front"
    assert entry["msg"] == "http status=200" and entry["request_id"] == "abc" and entry["ts"].endswith("+00:00")


def test_a_message_with_newlines_stays_on_one_line() -> None:
    record = logging.makeLogRecord({"msg": "line one\nline two", "levelname": "WARNING"})
    assert "\n" not in JsonFormatter().format(record)


def test_sdk_chatter_is_turned_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONOMCP_LOG_FORMAT", "json")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure()
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        assert not logging.getLogger("mcp.server.streamable_http_manager").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name in ("mcp", "httpx", "alembic", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).setLevel(logging.NOTSET)
