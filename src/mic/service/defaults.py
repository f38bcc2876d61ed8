"""Defaults of the service that the CLI needs before anything heavy is imported."""

from pathlib import Path

DEFAULT_DATA_DIR = Path(".mic")
"""Where the SQLite file goes by default: `./.mic/mic.db`, next to where `mic serve` runs."""

DEFAULT_LEASE_SECONDS = 15.0
"""How long the store's delivery lease lasts unrenewed (see `mic.service.lease`)."""

MAX_EVENT_TAILS = 64
"""How many live tails (`GET /v1/events`) MIC serves at once by default: enough for people
debugging and a few pull consumers, while a token (a viewer's too) cannot make MIC open
watches without end."""

CACHE_IDLE_SECONDS = 300.0
"""How long a cache that a resource query started stays, by default, once no query uses it."""
