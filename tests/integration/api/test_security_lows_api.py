"""Low-severity review findings, over HTTP against the real app: what /metrics labels carry, weak
tokens at start, the Swagger UI page, sink URL secrets shown to viewers, dead letters' wire id."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import pytest
from mic_api_harness import ADMIN_TOKEN, VIEWER_TOKEN, Api, run_app, wait_until
from prometheus_client.parser import text_string_to_metric_families
from webhook_recipient import Recipient

from mic.api.app import SWAGGER_UI_VERSION
from mic.service.settings import ServiceSettings, SettingsError
from mic.testing.emulator import KubeEmulator

pytestmark = pytest.mark.integration


def configmap(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"k": "v"},
    }


# -- 1. /metrics carries no label value taken from a query ----------------------------------------


async def test_metrics_labels_hold_no_query_scope(api: Api, kube_emulator: KubeEmulator) -> None:
    kube_emulator.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments-prod"}})
    kube_emulator.create(configmap("a"))
    kube_emulator.create(configmap("b", "payments-prod", team="secret-project"))
    await api.add_cluster("eu-1", kube_emulator, resources=["configmaps"])
    await api.wait_cluster("eu-1", lambda c: c["status"]["state"] == "ready")
    query = {
        "resource": "configmaps",
        "cluster": "eu-1",
        "namespace": "hr,payments-prod",
        "labelSelector": "team=secret-project",
    }
    async with api.as_token(VIEWER_TOKEN) as viewer:
        # A live tail never ends (and ASGITransport answers only once it has): run it aside.
        tail = asyncio.create_task(viewer.get("/v1/events", params=query))
        try:
            # The tail got informers of its own, scoped as the viewer asked ...
            mine = ("hr", "payments-prod")
            await wait_until(lambda: mine in scopes(api), 5.0, lambda: str(scopes(api)))
            assert scopes(api)[mine] == "team=secret-project"
            text = (await api.get("/metrics")).text
        finally:
            tail.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tail
    # ... which /metrics (open to anyone) neither names nor counts as a series of its own.
    assert "secret-project" not in text
    assert "payments-prod" not in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("mic_informer_objects", "mic_informer_synced"):
        samples = families[name].samples
        assert [s.labels for s in samples] == [{"cluster": "eu-1", "resource": "configmaps"}], name
    (objects,) = families["mic_informer_objects"].samples
    assert objects.value == 3  # 2 in the configured informer + 1 in the tail's (payments-prod)


def scopes(api: Api) -> dict[tuple[str, ...] | None, str]:
    """Label selector of each informer of eu-1 by its namespaces."""
    return {r.namespaces: r.label_selector for r in api.service.hub.status("eu-1").resources}


# -- 2. weak tokens --------------------------------------------------------------------------------


async def test_a_short_token_stops_the_start_naming_the_setting(replace_settings: Any) -> None:
    with pytest.raises(SettingsError, match="MIC_ADMIN_TOKEN is 1 characters long") as raised:
        async with run_app(replace_settings(admin_token="a")):
            pass  # pragma: no cover - never starts
    assert "at least 16" in str(raised.value)


async def test_a_token_shorter_than_32_starts_with_a_warning(
    replace_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mic")
    good = "0123456789abcdef" * 3  # 48
    async with run_app(replace_settings(admin_token=good, viewer_token=VIEWER_TOKEN), token=good) as api:
        assert (await api.get("/v1/clusters")).status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith(f"MIC_VIEWER_TOKEN is only {len(VIEWER_TOKEN)} characters") for m in warnings)
    assert not any("MIC_ADMIN_TOKEN" in m for m in warnings)
    assert VIEWER_TOKEN not in caplog.text


# -- 3. Swagger UI ---------------------------------------------------------------------------------


async def test_swagger_ui_pins_its_release_checks_integrity_and_keeps_no_token(api: Api) -> None:
    page = await api.get("/swagger/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "persistAuthorization" not in html
    assert "swagger-ui-dist@5/" not in html
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        url = f"https://cdn.jsdelivr.net/npm/swagger-ui-dist@{SWAGGER_UI_VERSION}/{name}"
        assert html.count(url) == 1
        start = html.index(url)
        tag = html[html.rindex("<", 0, start) : html.index(">", start)]
        assert 'integrity="sha384-' in tag, tag
        assert 'crossorigin="anonymous"' in tag, tag
    assert "/openapi.json" in html
    assert (await api.get("/docs")).status_code == 404  # FastAPI's own page is not served


# -- 4. secrets in sink URLs -----------------------------------------------------------------------

SECRET_URL_PATH = "/XXXXSECRETXXXX"


async def test_viewers_see_sink_urls_and_errors_with_query_values_masked(
    api: Api, kube_emulator: KubeEmulator
) -> None:
    kube_emulator.create(configmap("a"))
    await api.add_cluster("eu-1", kube_emulator)
    url = f"http://127.0.0.1:1{SECRET_URL_PATH}?api_key=SECRET123&region=eu"  # nobody listens
    document = {
        "name": "sub",
        "filter": {"resources": ["configmaps"], "clusters": ["eu-1"]},
        "sink": {"url": url},
        "delivery": {"maxAttempts": 1},
    }
    created = await api.post("/v1/subscriptions", json=document)
    assert created.status_code == 201, created.text
    assert created.json()["sink"]["url"] == url  # the admin who wrote it

    async def dead() -> bool:
        return bool((await api.get("/v1/subscriptions/sub/dead-letters")).json()["items"])

    await wait_until(dead, 10.0)
    masked = f"http://127.0.0.1:1{SECRET_URL_PATH}?api_key=***&region=***"
    async with api.as_token(VIEWER_TOKEN) as viewer:
        one = await viewer.get("/v1/subscriptions/sub")
        listed = await viewer.get("/v1/subscriptions")
        status = await viewer.get("/v1/subscriptions/sub/status")
        letters = await viewer.get("/v1/subscriptions/sub/dead-letters")
    for response in (one, listed, status, letters):
        assert response.status_code == 200, response.text
        assert "SECRET123" not in response.text, response.text
    assert one.json()["sink"]["url"] == masked
    assert listed.json()["items"][0]["sink"]["url"] == masked
    assert status.json()["lastError"].startswith(f"cannot reach {masked}: ")
    assert one.json()["status"]["lastError"] == status.json()["lastError"]
    assert letters.json()["items"][0]["lastError"].startswith(f"cannot reach {masked}: ")

    # Admins see what they edit, whole.
    admin_view = (await api.get("/v1/subscriptions/sub")).json()
    assert admin_view["sink"]["url"] == url
    assert "SECRET123" in (await api.get("/v1/subscriptions/sub/status")).json()["lastError"]
    assert (
        "SECRET123" in (await api.get("/v1/subscriptions/sub/dead-letters")).json()["items"][0]["lastError"]
    )


# -- 5. dead letters carry the id the recipient saw ------------------------------------------------


async def test_dead_letters_carry_the_cloudevent_id_and_webhook_id(
    api: Api, kube_emulator: KubeEmulator, recipient: Recipient
) -> None:
    kube_emulator.create(configmap("a"))
    await api.add_cluster("eu-1", kube_emulator)
    recipient.status = 400  # permanent: a dead letter at once
    document = {
        "name": "sub",
        "filter": {"resources": ["configmaps"], "clusters": ["eu-1"]},
        "sink": {"url": recipient.url, "signingSecret": "generate"},
        "delivery": {"maxAttempts": 1},
    }
    assert (await api.post("/v1/subscriptions", json=document)).status_code == 201
    items: list[dict[str, Any]] = []

    async def dead() -> bool:
        nonlocal items
        async with api.as_token(VIEWER_TOKEN) as viewer:
            items = (await viewer.get("/v1/subscriptions/sub/dead-letters")).json()["items"]
        return bool(items)

    await wait_until(dead, 10.0)
    (letter,) = items
    (request,) = [r for r in recipient.received if r.body.get("subject") == "default/a"]
    assert letter["cloudEventId"] == request.body["id"]
    assert letter["cloudEventId"] == request.headers["webhook-id"]
    assert letter["eventId"] != letter["cloudEventId"]  # MIC's own id, documented as such
    document_schema = (await api.get("/openapi.json")).json()["components"]["schemas"]["DeadLetter"]
    assert "cloudEventId" in document_schema["required"]
    assert "internal" in document_schema["properties"]["eventId"]["description"]


async def test_an_admin_token_of_the_harness_still_works() -> None:
    # The fixtures' tokens (29 and 30 characters) pass the minimum: the suites keep running.
    assert len(ADMIN_TOKEN) >= 16
    assert len(VIEWER_TOKEN) >= 16
    ServiceSettings(admin_token=ADMIN_TOKEN, viewer_token=VIEWER_TOKEN).token_grants()
