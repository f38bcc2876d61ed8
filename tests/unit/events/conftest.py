"""Fixtures of the encoding tests; the sample events themselves live in `encoding_samples`."""

from __future__ import annotations

import pytest
from encoding_samples import ingress_event, secret_event

from mic.events import Event


@pytest.fixture
def ingress() -> Event:
    return ingress_event()


@pytest.fixture
def secret() -> Event:
    return secret_event()
