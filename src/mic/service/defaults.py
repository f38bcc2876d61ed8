"""Defaults of the service that the CLI needs before anything heavy is imported."""

from pathlib import Path

DEFAULT_DATA_DIR = Path(".mic")
"""Where the SQLite file goes by default: `./.mic/mic.db`, next to where `mic serve` runs."""

DEFAULT_LEASE_SECONDS = 15.0
"""How long the store's delivery lease lasts unrenewed (see `mic.service.lease`)."""
