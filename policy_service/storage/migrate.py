"""Programmatic Alembic: `monomcp db upgrade` and test fixtures call this."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url)
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str) -> None:
    """Alembic's env runs its own event loop, so run it off this one."""
    await asyncio.to_thread(upgrade, database_url)


class DatabaseProblem(Exception):
    """A one-line explanation of why the database cannot be used."""


class DatabaseUnreachable(DatabaseProblem):
    """No database server answered: maybe not yet (it may be starting beside us)."""


def _postgres_connect_args(url: str) -> dict[str, object]:
    parsed = make_url(url)
    return {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username,
        "password": parsed.password,
    }


def ensure_database(url: str, create: bool) -> None:
    """On Postgres, explain a missing database or server in one line (or create the database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    import asyncpg

    async def check() -> None:
        args = _postgres_connect_args(url)
        try:
            conn = await asyncpg.connect(database=parsed.database, timeout=5, **args)
        except asyncpg.InvalidCatalogNameError:
            if not create:
                raise DatabaseProblem(
                    f"database {parsed.database!r} does not exist on {args['host']}:{args['port']} "
                    "(create it, or run `monomcp db upgrade --create`)"
                ) from None
            admin = await asyncpg.connect(database="postgres", timeout=5, **args)
            try:
                await admin.execute(f'CREATE DATABASE "{parsed.database}"')
            finally:
                await admin.close()
            return
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseUnreachable(f"cannot reach Postgres at {args['host']}:{args['port']}: {exc}") from None
        await conn.close()

    asyncio.run(check())


def revisions(url: str) -> tuple[str | None, str]:
    """(the database's current revision or None, the latest revision)."""
    from sqlalchemy import create_engine

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head() or ""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        ensure_database(url, create=False)

        async def read() -> str | None:
            import asyncpg

            conn = await asyncpg.connect(database=parsed.database, **_postgres_connect_args(url))
            try:
                return await conn.fetchval("SELECT version_num FROM alembic_version")  # type: ignore[no-any-return]
            except asyncpg.UndefinedTableError:
                return None
            finally:
                await conn.close()

        return asyncio.run(read()), head
    engine = create_engine(parsed.set(drivername="sqlite"))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision(), head
    finally:
        engine.dispose()


def schema_problem(url: str) -> str | None:
    """Why a policy service must not start on this database, or None. No schema, or a schema
    behind this code's, is refused in one line (it used to start and log a traceback a second
    per missing table); a revision this code does not know is a newer release's migration,
    which old code runs on (migrations are additive, docs/operations.md). A database server
    that does not answer is not a reason: the service starts, reports NOT_SERVING on its
    health check and serves once the database answers (docs/operations.md), as it did before
    this check existed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        if not Path(parsed.database).exists():
            return f"no database at {parsed.database}: run `monomcp db upgrade` first"
    try:
        current, head = revisions(url)
    except (DatabaseUnreachable, OSError):
        return None
    except DatabaseProblem as exc:
        return str(exc)
    if current is None:
        return "the database has no schema yet: run `monomcp db upgrade` first"
    if current == head:
        return None
    try:
        known = ScriptDirectory.from_config(alembic_config(url)).get_revision(current) is not None
    except Exception:  # alembic: not a revision of this release
        known = False
    return (
        f"the database's schema ({current}) is behind this release's ({head}): run `monomcp db upgrade`"
        if known
        else None
    )
