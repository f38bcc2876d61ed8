"""Schema migrations, applied by `Store.open` at every start.

Users never see Alembic: the `Config` is built here in code (no `alembic.ini`), with the scripts in
the package directory `mic/store/migrations/`. Migrations run on the store's own async engine
through `AsyncConnection.run_sync`, inside one write transaction (`BEGIN IMMEDIATE` on SQLite, an
advisory lock on PostgreSQL), so two processes starting together on an empty database do not race:
the second waits, then finds the schema at head and does nothing. On SQLite the DDL is
transactional too (see `dialects`), so a failed migration leaves the previous schema intact.

Adding a migration (for developers), e.g. for the subscriptions of issue 4:

1. change `mic.store.schema`;
2. write `migrations/versions/r0002_<what>.py` by hand after `r0001_initial.py` (`revision`
   "0002", `down_revision` "0001"), or generate a draft with
   `alembic.command.revision(alembic_config(), "<what>", rev_id="0002")`;
3. `tests/integration/store` then checks the migrated schema equals the metadata.

Applied migrations are never edited. Use `op.batch_alter_table` for ALTERs, so SQLite works.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from mic.store.dialects import lock_for_migration, writer
from mic.store.errors import SchemaError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic `Config` for MIC's migrations; `env.py` runs them on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    # Module names must be valid identifiers (mypy checks these files): r0001_initial.py.
    config.set_main_option("file_template", "r%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version of MIC knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the database to the newest schema; a no-op when it already is."""
    async with writer(engine).begin() as conn:
        await lock_for_migration(conn)
        await conn.run_sync(_upgrade)


def _upgrade(connection: Connection) -> None:
    config = alembic_config(connection)
    script = ScriptDirectory.from_config(config)
    known = {s.revision for s in script.walk_revisions()}
    current = MigrationContext.configure(connection).get_current_heads()
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        raise SchemaError(
            f"the database schema is at revision {', '.join(unknown)}, newer than this MIC knows"
            f" (newest {script.get_current_head()}); run a newer MIC or restore a matching backup"
        )
    command.upgrade(config, "head")
