"""Alembic environment: runs migrations on the connection `mic.store.migrate` hands over.

There is no `alembic.ini` and no URL here on purpose: the store opens the database (with its
pragmas and transaction handling) and passes the connection in `config.attributes`.
"""

from __future__ import annotations

from alembic import context

from mic.store.schema import metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "MIC applies its migrations itself at start (mic.store.migrate.upgrade);"
            " pass a connection in alembic_config(connection)"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite can only ALTER by copy-and-move
        compare_type=True,
        # The caller's transaction is real on both databases (on SQLite because `dialects`
        # emits BEGIN itself), so DDL is transactional even where Alembic assumes it is not.
        transactional_ddl=True,
    )
    with context.begin_transaction():  # joins the caller's transaction
        context.run_migrations()


run_migrations()
