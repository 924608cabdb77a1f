"""Process logging: one JSON object per line for machines (the default for `serve`), or a
short human line for `monomcp dev` (MONOMCP_LOG_FORMAT=text). The SDK's per-request INFO
chatter is turned down so each request leaves one line of our own."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

_NOISY = ("mcp", "httpx", "alembic", "uvicorn.error", "uvicorn.access")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry |= {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(default_format: str = "json") -> None:
    fmt = os.environ.get("MONOMCP_LOG_FORMAT", default_format).lower()
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("MONOMCP_LOG_LEVEL", "INFO").upper())
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
