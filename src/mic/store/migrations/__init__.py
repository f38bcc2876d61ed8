"""Alembic scripts for `mic.store`; run by `mic.store.migrate.upgrade`, never by hand."""
