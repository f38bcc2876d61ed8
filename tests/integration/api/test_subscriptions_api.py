"""`/v1/subscriptions`: CRUD, every error a user can cause, write-only secrets and roles."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from mic_api_harness import VIEWER_TOKEN, Api
from webhook_recipient import Recipient

pytestmark = pytest.mark.integration

HOOK = "http://127.0.0.1:9/hook"  # never contacted: these tests do not start a cluster
HEADER_VALUE = "Bearer hdr-s3cr3t-value"


def body(name: str = "lb", **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"name": name, "filter": {"resources": ["ingresses"]}, "sink": {"url": HOOK}}
    document.update(overrides)
    return document


async def create(api: Api, **overrides: Any) -> dict[str, Any]:
    response = await api.post("/v1/subscriptions", json=body(**overrides))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_create_fills_in_the_defaults(api: Api) -> None:
    created = await create(api)
    assert created["name"] == "lb"
    assert created["format"] == "cloudevents"
    assert created["filter"]["excludeNamespaces"] == ["kube-system"]
    assert created["filter"]["clusters"] is None
    assert created["filter"]["eventTypes"] == ["ADDED", "MODIFIED", "DELETED"]
    assert created["sink"] == {
        "url": HOOK,
        "headerNames": [],
        "timeoutSeconds": 10.0,
        "hasSigningSecret": False,
    }
    assert created["delivery"]["maxAttempts"] is None  # no limit: retried until maxAgeSeconds
    assert created["initialState"] is True
    assert created["includeSecretData"] is False
    assert created["generation"] > 0
    assert created["createdAt"]
    assert created["generatedSigningSecret"] is None


async def test_get_list_and_delete(api: Api) -> None:
    await create(api, name="a")
    await create(api, name="b", format="mic-v1")
    assert (await api.get("/v1/subscriptions/b")).json()["format"] == "mic-v1"
    listed = (await api.get("/v1/subscriptions")).json()["items"]
    assert [s["name"] for s in listed] == ["a", "b"]
    assert (await api.delete("/v1/subscriptions/a")).status_code == 204
    assert (await api.get("/v1/subscriptions/a")).status_code == 404
    assert [s["name"] for s in (await api.get("/v1/subscriptions")).json()["items"]] == ["b"]


async def test_status_is_embedded_once_the_engine_runs_it(api: Api) -> None:
    created = await create(api)
    assert created["status"]["backlog"] == 0
    assert created["status"]["deliveredTotal"] == 0


async def test_duplicate_is_409(api: Api) -> None:
    await create(api)
    again = await api.post("/v1/subscriptions", json=body())
    assert again.status_code == 409
    assert again.json() == {"detail": "subscription 'lb' already exists"}


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("GET", "/v1/subscriptions/nope", None),
        ("DELETE", "/v1/subscriptions/nope", None),
        ("PUT", "/v1/subscriptions/nope", body("nope")),
        ("PATCH", "/v1/subscriptions/nope", {"format": "raw"}),
        ("GET", "/v1/subscriptions/nope/status", None),
        ("POST", "/v1/subscriptions/nope/test", None),
        ("GET", "/v1/subscriptions/nope/dead-letters", None),
        ("POST", "/v1/subscriptions/nope/dead-letters/replay", {}),
    ],
)
async def test_unknown_subscription_is_404(api: Api, method: str, path: str, payload: Any) -> None:
    response = await api.request(method, path, json=payload)
    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "subscription 'nope' not found"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "Bad_Name"}, "name: String should match pattern"),
        ({"filter": {}}, "filter.resources: Field required"),
        ({"filter": {"resources": []}}, "filter.resources: List should have at least 1 item"),
        (
            {"filter": {"resources": ["ingresses"], "labelSelctor": "a=b"}},
            "filter.labelSelctor: Extra inputs",
        ),
        ({"filter": {"resources": ["ingresses"], "labelSelector": "a in"}}, "filter.labelSelector:"),
        ({"filter": {"resources": ["ingresses"], "cel": "object.metadata.name =="}}, "filter.cel:"),
        ({"filter": {"resources": ["ingresses"], "cel": "obj.metadata.name == 'x'"}}, "filter.cel:"),
        ({"format": "xml"}, "format: Input should be"),
        ({"format": "mic-v1", "batching": {"maxEvents": 10}}, "batching: batches are CloudEvents batches"),
        ({"sink": {"url": "ftp://example"}}, "sink.url:"),
        ({"sink": {"url": HOOK, "headers": {"Content-Type": "x"}}}, "sink.headers.Content-Type:"),
        (
            {"sink": {"url": HOOK, "headers": {"X-Team": "caf\u20ac"}}},
            "sink.headers.X-Team: has '€' at position 3: a header value may hold only visible ASCII",
        ),
        (
            {"sink": {"url": "http://user:pw@127.0.0.1:9/hook"}},
            "sink.url: must not contain a user name or password",
        ),
        (
            {"sink": {"url": "http://127.0.0.1:9/\x00"}},
            "sink.url: 'http://127.0.0.1:9/\\x00' contains a control",
        ),
        ({"sink": {"url": HOOK, "signingSecret": "plain"}}, "sink.signingSecret: must be 'whsec_'"),
        (
            {"delivery": {"maxAttempts": 0}},
            "delivery.maxAttempts: Input should be greater than or equal to 1",
        ),
        (
            {"delivery": {"initialBackoffSeconds": 10, "maxBackoffSeconds": 1}},
            "delivery.maxBackoffSeconds: must be at least initialBackoffSeconds",
        ),
    ],
)
async def test_invalid_bodies_are_422_with_one_message(api: Api, overrides: Any, message: str) -> None:
    response = await api.post("/v1/subscriptions", json=body(**overrides))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert detail.startswith(message), detail
    assert (await api.get("/v1/subscriptions")).json()["items"] == []


async def test_a_too_costly_cel_filter_is_422_when_written(api: Api) -> None:
    """Evaluation cannot be stopped once started (the binding has no limit and holds the GIL),
    so a filter whose cost multiplies is refused on POST and PATCH, saying what to change."""
    labels = "object.metadata.labels"
    too_deep = f"{labels}.all(a, {labels}.all(b, {labels}.exists(c, c == a)))"
    response = await api.post(
        "/v1/subscriptions", json=body(filter={"resources": ["ingresses"], "cel": too_deep})
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("filter.cel: invalid CEL expression"), detail
    assert "comprehensions nested 3 deep (all → all → exists): at most 2 levels are allowed" in detail
    assert "joined with && or ||" in detail
    assert (await api.get("/v1/subscriptions")).json()["items"] == []

    allowed = f"{labels}.all(a, {labels}.exists(b, b == a))"
    await create(api, filter={"resources": ["ingresses"], "cel": allowed})
    for cel in (too_deep, "[[1]].map(a, a + a).map(b, b + b).size() == 1", "lists.range(100000).size() > 0"):
        patched = await api.patch("/v1/subscriptions/lb", json={"filter": {"cel": cel}})
        assert patched.status_code == 422, patched.text
        assert patched.json()["detail"].startswith("filter.cel: invalid CEL expression")
    assert (await api.get("/v1/subscriptions/lb")).json()["filter"]["cel"] == allowed


async def test_secret_data_needs_an_https_sink(api: Api) -> None:
    response = await api.post("/v1/subscriptions", json=body(includeSecretData=True))
    assert response.status_code == 422
    assert response.json()["detail"].startswith("includeSecretData: Secret data may only be sent over https")
    created = await create(api, includeSecretData=True, sink={"url": "https://lb.example/hook"})
    assert created["includeSecretData"] is True


async def test_headers_and_signing_secret_are_write_only(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    # Everything MIC and the HTTP stack log, at DEBUG (aiosqlite's DEBUG log prints SQL
    # parameters; `mic serve` keeps it at INFO, see quiet_noisy_loggers).
    for logger in ("mic", "uvicorn", "httpx", "aiohttp"):
        caplog.set_level(logging.DEBUG, logger=logger)
    created = await create(
        api, sink={"url": HOOK, "headers": {"Authorization": HEADER_VALUE}, "signingSecret": "generate"}
    )
    secret = created["generatedSigningSecret"]
    assert secret.startswith("whsec_")
    assert created["sink"]["headerNames"] == ["Authorization"]
    assert created["sink"]["hasSigningSecret"] is True
    assert HEADER_VALUE not in str(created)

    for path in ("/v1/subscriptions", "/v1/subscriptions/lb", "/v1/subscriptions/lb/status"):
        text = (await api.get(path)).text
        assert secret not in text, path
        assert HEADER_VALUE not in text, path
        assert 'generatedSigningSecret":"' not in text, path
    assert secret not in caplog.text
    assert HEADER_VALUE not in caplog.text


async def test_a_given_secret_is_stored_not_shown(api: Api) -> None:
    given = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    created = await create(api, sink={"url": HOOK, "signingSecret": given})
    assert created["sink"]["hasSigningSecret"] is True
    assert created["generatedSigningSecret"] is None
    assert given not in (await api.get("/v1/subscriptions/lb")).text
    stored = await api.service.store.get_subscription("lb")
    assert stored.spec["sink"]["signingSecret"] == given


async def test_put_keeps_write_only_fields_unless_sent(api: Api) -> None:
    await create(
        api, sink={"url": HOOK, "headers": {"Authorization": HEADER_VALUE}, "signingSecret": "generate"}
    )
    shown = (await api.get("/v1/subscriptions/lb")).json()
    replaced = await api.put(
        "/v1/subscriptions/lb", json={"filter": shown["filter"], "sink": {"url": HOOK}, "format": "raw"}
    )
    assert replaced.status_code == 200, replaced.text
    view = replaced.json()
    assert view["format"] == "raw"
    assert view["sink"]["headerNames"] == ["Authorization"]
    assert view["sink"]["hasSigningSecret"] is True
    assert view["generation"] > shown["generation"]

    cleared = await api.put(
        "/v1/subscriptions/lb",
        json={
            "filter": {"resources": ["services"]},
            "sink": {"url": HOOK, "headers": None, "signingSecret": None},
        },
    )
    assert cleared.json()["sink"]["headerNames"] == []
    assert cleared.json()["sink"]["hasSigningSecret"] is False
    assert cleared.json()["format"] == "cloudevents", "PUT replaces: what is left out is back to its default"


async def test_put_cannot_rename(api: Api) -> None:
    await create(api)
    response = await api.put("/v1/subscriptions/lb", json=body("other"))
    assert response.status_code == 422
    assert "cannot be renamed" in response.json()["detail"]


async def test_patch_merges_and_rotates_the_secret(api: Api) -> None:
    first = await create(
        api,
        sink={
            "url": HOOK,
            "headers": {"Authorization": HEADER_VALUE, "X-Team": "a"},
            "signingSecret": "generate",
        },
    )
    patched = await api.patch(
        "/v1/subscriptions/lb",
        json={
            "filter": {"namespaces": ["shop"]},
            "sink": {"headers": {"X-Team": None}},
            "delivery": {"coalesce": True},
        },
    )
    assert patched.status_code == 200, patched.text
    view = patched.json()
    assert view["filter"]["namespaces"] == ["shop"]
    assert view["filter"]["resources"] == ["ingresses"]
    assert view["sink"]["headerNames"] == ["Authorization"]
    assert view["sink"]["hasSigningSecret"] is True
    assert view["delivery"]["coalesce"] is True
    assert view["generatedSigningSecret"] is None

    rotated = (await api.patch("/v1/subscriptions/lb", json={"sink": {"signingSecret": "generate"}})).json()
    assert rotated["generatedSigningSecret"].startswith("whsec_")
    assert rotated["generatedSigningSecret"] != first["generatedSigningSecret"]

    back = (await api.patch("/v1/subscriptions/lb", json={"filter": {"namespaces": None}})).json()
    assert back["filter"]["namespaces"] is None


async def test_patch_errors_are_422(api: Api) -> None:
    await create(api)
    bad = await api.patch("/v1/subscriptions/lb", json={"filter": {"resources": []}})
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("filter.resources")
    typo = await api.patch("/v1/subscriptions/lb", json={"filtre": {}})
    assert typo.status_code == 422
    assert typo.json()["detail"].startswith("filtre: Extra inputs")
    unknown = await api.patch("/v1/subscriptions/lb", json={"filter": {"labelSelctor": "a=b"}})
    assert unknown.status_code == 422
    assert unknown.json()["detail"].startswith("filter.labelSelctor: Extra inputs")


async def test_viewer_reads_admin_writes(api: Api, recipient: Recipient) -> None:
    await create(api, sink={"url": recipient.url})
    async with api.as_token(VIEWER_TOKEN) as viewer:
        for path in (
            "/v1/subscriptions",
            "/v1/subscriptions/lb",
            "/v1/subscriptions/lb/status",
            "/v1/subscriptions/lb/dead-letters",
        ):
            assert (await viewer.get(path)).status_code == 200, path
        for method, path, payload in (
            ("POST", "/v1/subscriptions", body("other")),
            ("PUT", "/v1/subscriptions/lb", body()),
            ("PATCH", "/v1/subscriptions/lb", {"format": "raw"}),
            ("DELETE", "/v1/subscriptions/lb", None),
            ("POST", "/v1/subscriptions/lb/test", None),
            ("POST", "/v1/subscriptions/lb/dead-letters/replay", {}),
        ):
            response = await viewer.request(method, path, json=payload)
            assert response.status_code == 403, (method, path)
            assert "needs an admin token" in response.json()["detail"]
    async with api.as_token(None) as anonymous:
        assert (await anonymous.get("/v1/subscriptions")).status_code == 401
    assert recipient.received == [], "the viewer's test ping must not have been sent"


async def test_ping_is_signed_and_reports_the_answer(api: Api, recipient: Recipient) -> None:
    from standardwebhooks import Webhook

    secret = (await create(api, sink={"url": recipient.url, "signingSecret": "generate"}))[
        "generatedSigningSecret"
    ]
    result = (await api.post("/v1/subscriptions/lb/test")).json()
    assert result["ok"] is True
    assert result["statusCode"] == 200
    assert result["error"] is None
    assert result["durationMs"] >= 0
    (ping,) = recipient.received
    assert ping.body["type"] == "io.mic.ping"
    Webhook(secret).verify(ping.raw, ping.headers)

    recipient.status = 500
    failed = (await api.post("/v1/subscriptions/lb/test")).json()
    assert failed["ok"] is False
    assert failed["statusCode"] == 500


async def test_a_non_ascii_sink_url_is_encoded_and_reached(api: Api, recipient: Recipient) -> None:
    """Written as a user writes it, stored and shown as sent: percent-encoded UTF-8."""
    created = await create(api, sink={"url": recipient.url + "/gr\u00f6\u00dfe\u20ac"})
    assert created["sink"]["url"] == recipient.url + "/gr%C3%B6%C3%9Fe%E2%82%AC"
    result = (await api.post("/v1/subscriptions/lb/test")).json()
    assert result["ok"] is True, result
    (ping,) = recipient.received
    assert ping.path == "/hook/gr\u00f6\u00dfe\u20ac"


async def test_ping_to_nobody_says_why(api: Api) -> None:
    await create(api, sink={"url": "http://127.0.0.1:9/hook", "timeoutSeconds": 2})
    result = (await api.post("/v1/subscriptions/lb/test")).json()
    assert result["ok"] is False
    assert result["statusCode"] is None
    assert result["error"]


async def test_dead_letter_query_checks_include(api: Api) -> None:
    await create(api)
    response = await api.get("/v1/subscriptions/lb/dead-letters", params={"include": "everything"})
    assert response.status_code == 422
    assert response.json()["detail"] == "include must be 'object', not 'everything'"
    empty = (await api.get("/v1/subscriptions/lb/dead-letters")).json()
    assert empty == {"items": [], "nextAfterId": None}
    assert (await api.post("/v1/subscriptions/lb/dead-letters/replay", json={})).json() == {
        "replayed": 0,
        "superseded": 0,
        "notFound": [],
    }
    unknown = await api.post("/v1/subscriptions/lb/dead-letters/replay", json={"ids": [999999, 5]})
    assert unknown.json() == {"replayed": 0, "superseded": 0, "notFound": [5, 999999]}


async def test_ids_beyond_64_bits_are_a_422_not_a_database_error(api: Api) -> None:
    await create(api)
    huge = 2**64
    replay = await api.post("/v1/subscriptions/lb/dead-letters/replay", json={"ids": [huge]})
    assert replay.status_code == 422
    assert "ids.0" in str(replay.json()["detail"])
    page = await api.get("/v1/subscriptions/lb/dead-letters", params={"afterId": str(huge)})
    assert page.status_code == 422
    assert "afterId" in str(page.json()["detail"])


async def test_openapi_documents_the_routes_and_the_write_only_fields(api: Api) -> None:
    document = (await api.get("/openapi.json")).json()
    paths = document["paths"]
    for path in (
        "/v1/subscriptions",
        "/v1/subscriptions/{name}",
        "/v1/subscriptions/{name}/status",
        "/v1/subscriptions/{name}/test",
        "/v1/subscriptions/{name}/dead-letters",
        "/v1/subscriptions/{name}/dead-letters/replay",
        "/v1/events",
        "/cic/nitro/v1/config/controller",
        "/cic/nitro/v1/config/ingresses/{clustername}/{namespace}/{name}",
    ):
        assert path in paths, path
    schemas = document["components"]["schemas"]
    assert "write-only" in schemas["WebhookSinkBody"]["properties"]["signingSecret"]["description"]
    assert "signingSecret" not in schemas["SinkView"]["properties"]
    assert schemas["SubscriptionBody"]["examples"]
