"""Fixtures for hub tests (helpers live in hub_helpers.py)."""

from hub_helpers import hub, record, recorders

__all__ = ["hub", "record", "recorders"]
