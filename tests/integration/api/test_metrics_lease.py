"""`mic_delivery_lease_held` on /metrics: 1 on the MIC that holds the delivery lease, 0 on a standby.

A standby in the same process cannot be made here (a lease whose holder has this process's pid
reads as left by a restart, and is taken over); tests/e2e/test_serve_standby.py runs one.
"""

from __future__ import annotations

import pytest
from mic_api_harness import Api
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mic.api.routes import health
from mic.service.metrics import build_registry

pytestmark = pytest.mark.integration


def lease_held(text: str) -> float:
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "mic_delivery_lease_held"]
    assert family.type == "gauge"
    (sample,) = family.samples
    assert sample.labels == {}
    return float(sample.value)


def help_line(text: str) -> str:
    (line,) = [line for line in text.splitlines() if line.startswith("# HELP mic_delivery_lease_held ")]
    return line


async def test_the_holder_reports_1(api: Api) -> None:
    assert api.service.store is not None  # running: it took the lease to get here
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert "mic_delivery_lease_held 1.0" in response.text
    assert lease_held(response.text) == 1.0

    # A standby answers in the same words, so a dashboard compares them as one series.
    standby = health._STANDBY_METRICS.decode()
    assert lease_held(standby) == 0.0
    assert help_line(response.text) == help_line(standby)


async def test_a_lost_lease_reports_0_when_the_registry_can_ask(api: Api) -> None:
    service = api.service
    held = True
    registry = build_registry(service.supervisor, service.hub, service.engine, lease_held=lambda: held)
    assert lease_held(generate_latest(registry).decode()) == 1.0
    held = False
    assert lease_held(generate_latest(registry).decode()) == 0.0
