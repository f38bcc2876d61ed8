"""Fixtures for end-to-end tests (helpers live in mic_process.py)."""

from mic_process import mic_server

__all__ = ["mic_server"]
