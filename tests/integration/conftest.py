"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from policy_service.audit.writer import AuditLog
from policy_service.config import Settings
from policy_service.storage.database import WriteGuard, create_engine, is_sqlite


@pytest.fixture
async def log(settings: Settings) -> AsyncIterator[tuple[AuditLog, Any]]:
    """A started AuditLog on the test's database, and its engine."""
    engine = create_engine(settings.database_url)
    audit = AuditLog(engine, WriteGuard(is_sqlite(settings.database_url)))
    audit.start()
    try:
        yield audit, engine
    finally:
        await audit.stop()
        await engine.dispose()
