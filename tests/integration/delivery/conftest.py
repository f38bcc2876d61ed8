"""Fixtures for delivery tests (helpers live in delivery_helpers.py and recipient.py)."""

from delivery_helpers import pipeline, recipient

__all__ = ["pipeline", "recipient"]
