"""`mic subscriptions ...` and `mic events tail` against a fake MIC over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import Result
from fake_mic_api import TOKEN, FakeMic, Recorded, Run
from typer.testing import CliRunner

from mic.cli.client import warning_text
from mic.cli.events import events_app
from mic.cli.subscriptions import subscriptions_app

HEADER_VALUE = "Bearer hdr-s3cr3t"
SECRET = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="


@pytest.fixture
def mic(fake_mic: FakeMic) -> Run:
    """Run `mic <args>` with the subscriptions and events commands mounted as main.py mounts them."""
    app = typer.Typer(pretty_exceptions_enable=False)
    app.add_typer(subscriptions_app, name="subscriptions")
    app.add_typer(events_app, name="events")

    def invoke(*args: str, input: str | None = None) -> Result:
        env = {"MIC_URL": fake_mic.url, "MIC_TOKEN": TOKEN}
        result = CliRunner().invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        everything = result.output + result.stderr
        assert TOKEN not in everything, "the API token was printed"
        assert HEADER_VALUE not in everything, "a header value was printed"
        assert "Traceback" not in everything
        return result

    return invoke


def subscription_json(name: str = "lb", **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": name,
        "filter": {
            "resources": ["ingresses"],
            "clusters": None,
            "clusterSelector": "",
            "namespaces": None,
            "excludeNamespaces": ["kube-system"],
            "labelSelector": "",
            "eventTypes": ["ADDED", "MODIFIED", "DELETED"],
            "cel": None,
            "suppressNoop": True,
            "fields": [],
        },
        "sink": {"url": "https://lb.example/hook", "headerNames": ["Authorization"], "timeoutSeconds": 10.0,
                 "hasSigningSecret": True},
        "format": "cloudevents",
        "batching": None,
        "includeSecretData": False,
        "initialState": True,
        "delivery": {"coalesce": False},
        "createdAt": "2024-05-01T10:00:00Z",
        "updatedAt": "2024-05-01T10:00:00Z",
        "generation": 3,
        "status": {
            "deliveredTotal": 42, "backlog": 2, "retrying": 1, "inFlight": 1, "dead": 1,
            "deadTotal": 1, "coalescedTotal": 0, "oldestUndeliveredAge": 1.5,
            "lastError": "503 Service Unavailable", "lastDeliveredAt": "2024-05-01T10:05:00Z",
            "overflowing": False, "celErrors": 0, "lastCelError": None,
        },
        "generatedSigningSecret": None,
    }  # fmt: skip
    item.update(overrides)
    return item


def echo_created(request: Recorded) -> tuple[int, Any]:
    generated = SECRET if request.body["sink"].get("signingSecret") == "generate" else None
    return 201, subscription_json(request.body["name"], generatedSigningSecret=generated)


def test_add_sends_every_option_in_the_api_shape(mic: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("POST", "/v1/subscriptions", echo_created)
    result = mic(
        "subscriptions", "add", "lb", "--url", "https://lb.example/hook",
        "--resource", "ingresses", "--resource", "services", "--cluster", "eu-1", "--cluster", "us-1",
        "--cluster-selector", "env=prod", "-n", "shop", "--exclude-namespace", "kube-system",
        "--exclude-namespace", "infra", "-l", "app=web", "--type", "added", "--type", "DELETED",
        "--cel", "object.metadata.name != 'x'", "--format", "cloudevents",
        "--header", f"Authorization={HEADER_VALUE}",
        "--batch-max-events", "50", "--coalesce", "--no-initial-state",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == "subscription 'lb' added\n"
    sent = fake_mic.only_request().body
    assert sent == {
        "name": "lb",
        "filter": {
            "resources": ["ingresses", "services"],
            "clusters": ["eu-1", "us-1"],
            "clusterSelector": "env=prod",
            "namespaces": ["shop"],
            "excludeNamespaces": ["kube-system", "infra"],
            "labelSelector": "app=web",
            "eventTypes": ["ADDED", "DELETED"],
            "cel": "object.metadata.name != 'x'",
        },
        "sink": {"url": "https://lb.example/hook", "headers": {"Authorization": HEADER_VALUE}},
        "format": "cloudevents",
        "batching": {"maxEvents": 50},
        "delivery": {"coalesce": True},
        "initialState": False,
    }


def test_add_sends_only_what_was_given(mic: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("POST", "/v1/subscriptions", echo_created)
    result = mic("subscriptions", "add", "lb", "--url", "http://h/x", "--resource", "pods")
    assert result.exit_code == 0, result.output
    assert fake_mic.only_request().body == {
        "name": "lb",
        "filter": {"resources": ["pods"]},
        "sink": {"url": "http://h/x"},
    }


def test_exclude_namespace_empty_turns_the_default_off(mic: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("POST", "/v1/subscriptions", echo_created)
    mic("subscriptions", "add", "lb", "--url", "http://h/x", "--resource", "pods", "--exclude-namespace", "")
    assert fake_mic.only_request().body["filter"]["excludeNamespaces"] == []


def test_generated_secret_is_shown_once(mic: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("POST", "/v1/subscriptions", echo_created)
    result = mic(
        "subscriptions",
        "add",
        "lb",
        "--url",
        "http://h/x",
        "--resource",
        "pods",
        "--signing-secret",
        "generate",
    )
    assert result.exit_code == 0, result.output
    assert fake_mic.only_request().body["sink"]["signingSecret"] == "generate"
    assert result.stdout.splitlines() == [
        "subscription 'lb' added",
        f"signing secret (shown only this once; store it now): {SECRET}",
    ]


def test_signing_secret_file_content_is_sent_not_the_path(
    mic: Run, fake_mic: FakeMic, tmp_path: Path
) -> None:
    fake_mic.on("POST", "/v1/subscriptions", echo_created)
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    result = mic(
        "subscriptions",
        "add",
        "lb",
        "--url",
        "http://h/x",
        "--resource",
        "pods",
        "--signing-secret",
        str(path),
    )
    assert result.exit_code == 0, result.output
    assert fake_mic.only_request().body["sink"]["signingSecret"] == SECRET
    assert SECRET not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--header", "novalue"], "--header 'novalue'... is not NAME=VALUE"),
        (["--header", "A=1", "--header", "A=2"], "--header 'A' given twice"),
        (
            ["--format", "xml"],
            "--format must be one of cloudevents, cloudevents-binary, mic-v1, raw, not 'xml'",
        ),
        (["--type", "CREATED"], "--type must be one of ADDED, MODIFIED, DELETED, not 'CREATED'"),
        (
            ["--signing-secret", "/nonexistent/secret"],
            "cannot read --signing-secret file '/nonexistent/secret'",
        ),
    ],
)
def test_add_usage_errors_are_one_line(mic: Run, fake_mic: FakeMic, args: list[str], message: str) -> None:
    result = mic("subscriptions", "add", "lb", "--url", "http://h/x", "--resource", "pods", *args)
    assert result.exit_code in (1, 2)
    assert result.stderr.startswith(f"error: {message}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert fake_mic.requests == []


def test_server_errors_are_one_line(mic: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("POST", "/v1/subscriptions", (422, {"detail": "filter.cel: unknown variable 'obj'"}))
    result = mic("subscriptions", "add", "lb", "--url", "http://h/x", "--resource", "pods", "--cel", "obj")
    assert result.exit_code == 1
    assert result.stderr == "error: filter.cel: unknown variable 'obj' (422)\n"
    fake_mic.on("GET", "/v1/subscriptions/nope", (404, {"detail": "subscription 'nope' not found"}))
    missing = mic("subscriptions", "get", "nope")
    assert missing.stderr == "error: subscription 'nope' not found (404)\n"
    fake_mic.on("DELETE", "/v1/subscriptions/lb", (403, {"detail": "token 'v' has role viewer"}))
    refused = mic("subscriptions", "remove", "lb")
    assert refused.stderr == "error: token 'v' has role viewer (403); this needs an admin token\n"
    said = "token 'v' is a viewer: this needs an admin token"
    fake_mic.on("DELETE", "/v1/subscriptions/lb", (403, {"detail": said}))
    assert mic("subscriptions", "remove", "lb").stderr == f"error: {said} (403)\n"  # said once


def test_the_server_s_warnings_are_printed_on_stderr(mic: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("POST", "/v1/subscriptions", (201, {"name": "lb"}))
    fake_mic.headers.append(("Warning", "299 - \"no registered cluster serves 'podz'\""))
    try:
        result = mic("subscriptions", "add", "lb", "--url", "http://h/x", "--resource", "podz", "-o", "json")
    finally:
        fake_mic.headers.clear()  # the fake serves the module's other tests too
    assert result.exit_code == 0
    assert result.stderr == "Warning: no registered cluster serves 'podz'\n"


def test_warning_headers_are_read_as_kube_apiserver_writes_them() -> None:
    assert warning_text('299 - "no cluster serves \'x\'; a \\"quoted\\" word"') == (
        "no cluster serves 'x'; a \"quoted\" word"
    )
    assert warning_text("not in the usual form") == "not in the usual form"


def test_list_is_a_table_and_json_is_the_answer(mic: Run, fake_mic: FakeMic) -> None:
    fake_mic.on(
        "GET", "/v1/subscriptions", (200, {"items": [subscription_json("b"), subscription_json("a")]})
    )
    table = mic("subscriptions", "list")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "NAME", "FORMAT", "RESOURCES", "CLUSTERS", "URL", "DELIVERED", "BACKLOG", "DEAD", "LAST", "ERROR",
    ]  # fmt: skip
    assert lines[1].split()[:8] == [
        "a",
        "cloudevents",
        "ingresses",
        "*",
        "https://lb.example/hook",
        "42",
        "2",
        "1",
    ]
    assert lines[2].startswith("b ")
    as_json = mic("subscriptions", "list", "-o", "json")
    assert [s["name"] for s in json.loads(as_json.stdout)["items"]] == ["b", "a"]


def test_list_empty_says_so_on_stderr(mic: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", "/v1/subscriptions", (200, {"items": []}))
    result = mic("subscriptions", "list")
    assert result.stdout == ""
    assert result.stderr == "No subscriptions\n"


def test_get_shows_header_names_not_values(mic: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", "/v1/subscriptions/lb", (200, subscription_json()))
    result = mic("subscriptions", "get", "lb")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Headers:" in text
    assert "Authorization" in text
    assert "Signed:" in text
    assert "Delivered:" in text
    assert "503 Service Unavailable" in text


def test_get_shows_a_rotation_overlap(mic: Run, fake_mic: FakeMic) -> None:
    rotating = subscription_json()
    rotating["sink"] = {
        **rotating["sink"],
        "hasSigningSecret": True,
        "previousSigningSecretExpiresAt": "2026-12-04T09:00:00Z",
    }
    fake_mic.on("GET", "/v1/subscriptions/lb", (200, rotating))
    result = mic("subscriptions", "get", "lb")
    assert result.exit_code == 0, result.output
    signed = next(line for line in result.stdout.splitlines() if line.startswith("Signed:"))
    assert "replaced secret signs too until" in signed
    assert "2026-12-04T09:00:00Z)" in signed


def test_status_test_replay_and_remove(mic: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", "/v1/subscriptions/lb/status", (200, subscription_json()["status"]))
    status = mic("subscriptions", "status", "lb")
    assert "Backlog:" in status.stdout
    assert "1.5s" in status.stdout

    fake_mic.on("POST", "/v1/subscriptions/lb/test", (200, {"ok": True, "statusCode": 204, "error": None,
                                                           "durationMs": 12.4}))  # fmt: skip
    assert mic("subscriptions", "test", "lb").stdout == "ping delivered: 204 in 12 ms\n"
    refused = {"ok": False, "statusCode": None, "error": "connection refused", "durationMs": 1}
    fake_mic.on("POST", "/v1/subscriptions/lb/test", (200, refused))
    failed = mic("subscriptions", "test", "lb")
    assert failed.exit_code == 1
    assert failed.stderr == "error: ping to subscription 'lb' failed: connection refused\n"

    fake_mic.on(
        "POST", "/v1/subscriptions/lb/dead-letters/replay", lambda r: (200, {"replayed": len(r.body["ids"])})
    )
    fake_mic.requests.clear()
    replayed = mic("subscriptions", "replay", "lb", "--id", "4", "--id", "7")
    assert replayed.stdout == "2 dead letters of 'lb' queued for delivery again\n"
    assert fake_mic.only_request().body == {"ids": [4, 7]}
    fake_mic.on("POST", "/v1/subscriptions/lb/dead-letters/replay", (200, {"replayed": 1}))
    fake_mic.requests.clear()
    assert mic("subscriptions", "replay", "lb").stdout == "1 dead letter of 'lb' queued for delivery again\n"
    assert fake_mic.only_request().body == {}
    fake_mic.on("POST", "/v1/subscriptions/lb/dead-letters/replay", (200, {"replayed": 1, "superseded": 2}))
    assert mic("subscriptions", "replay", "lb").stdout == (
        "1 dead letter of 'lb' queued for delivery again; 2 dropped: a newer event of their object"
        " was delivered since, or is queued\n"
    )
    fake_mic.on(
        "POST", "/v1/subscriptions/lb/dead-letters/replay", (200, {"replayed": 1, "notFound": [9, 99]})
    )
    mistyped = mic("subscriptions", "replay", "lb", "--id", "4", "--id", "9", "--id", "99")
    assert mistyped.exit_code == 1
    assert mistyped.stdout == "1 dead letter of 'lb' queued for delivery again\n"
    assert mistyped.stderr == (
        "error: 'lb' has no dead letter with id 9, 99 (replayed already, or mistyped?);"
        " list them with: mic subscriptions dead-letters lb\n"
    )

    fake_mic.on("POST", "/v1/subscriptions/lb/resync", (202, {"detail": "every object queued"}))
    assert mic("subscriptions", "resync", "lb").stdout == "every object queued\n"

    fake_mic.on("DELETE", "/v1/subscriptions/lb", (204, None))
    assert mic("subscriptions", "remove", "lb").stdout == "subscription 'lb' removed\n"


def test_dead_letters_table_and_paging_hint(mic: Run, fake_mic: FakeMic) -> None:
    page = {
        "items": [
            {"id": 7, "eventId": "e", "cluster": "eu-1", "resource": "ingresses", "namespace": "shop",
             "name": "web", "type": "MODIFIED", "resourceVersion": "12", "attempts": 12,
             "lastError": "410 Gone", "createdAt": "2024-05-01T10:00:00Z", "object": None},
        ],
        "nextAfterId": 7,
    }  # fmt: skip
    fake_mic.on("GET", "/v1/subscriptions/lb/dead-letters", (200, page))
    result = mic("subscriptions", "dead-letters", "lb", "--limit", "1", "--after-id", "3")
    assert result.exit_code == 0, result.output
    request = fake_mic.only_request()
    assert request.param("limit") == "1"
    assert request.param("afterId") == "3"
    row = result.stdout.splitlines()[1].split()
    assert row[:6] == ["7", "eu-1", "ingresses", "shop/web", "MODIFIED", "12"]
    assert result.stderr == "more: --after-id 7\n"


SSE_BODY = (
    b": stream open\n\n"
    b'id: a1\nevent: ADDED\ndata: {"id":"a1","type":"io.mic.resource.added","time":"2024-05-01T10:00:00Z",'
    b'"cluster":"eu-1","resource":"ingresses","subject":"shop/web","resourceversion":"12"}\n\n'
    b": heartbeat\n\n"
    b'id: d2\nevent: DELETED\ndata: {"id":"d2","type":"io.mic.resource.deleted",'
    b'"time":"2024-05-01T10:00:01Z",'
    b'"cluster":"us-1","resource":"ingresses","subject":"shop/web","resourceversion":"13"}\n\n'
)


def test_events_tail_prints_one_line_per_event(mic: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", "/v1/events", (200, SSE_BODY))
    result = mic(
        "events", "tail", "--cluster", "eu-1", "--cluster", "us-1", "ing", "-n", "shop", "-l", "app=web"
    )
    assert result.stdout.splitlines() == [
        "2024-05-01T10:00:00Z ADDED eu-1 ingresses shop/web rv=12",
        "2024-05-01T10:00:01Z DELETED us-1 ingresses shop/web rv=13",
    ]
    request = fake_mic.only_request()
    assert request.query == {
        "resource": ["ing"],
        "cluster": ["eu-1", "us-1"],
        "namespace": ["shop"],
        "labelSelector": ["app=web"],
    }
    # The fake ends the stream; a real MIC only does when it shuts down, which is worth a line.
    assert result.exit_code == 1
    assert result.stderr == "error: MIC ended the stream (it is shutting down?)\n"


def test_events_tail_json_is_one_object_per_line(mic: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", "/v1/events", (200, SSE_BODY))
    result = mic("events", "tail", "ingresses", "-o", "json", "--type", "added")
    lines = result.stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a1", "d2"]
    assert fake_mic.only_request().param("types") == "ADDED"


def test_events_tail_selects_clusters_by_label(mic: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", "/v1/events", (200, SSE_BODY))
    mic("events", "tail", "ingresses", "--cluster-selector", "env=prod,region in (eu)")
    assert fake_mic.only_request().param("clusterSelector") == "env=prod,region in (eu)"


def test_events_tail_errors_are_one_line(mic: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", "/v1/events", (404, {"detail": "cluster 'nope' not found"}))
    result = mic("events", "tail", "--cluster", "nope", "pods")
    assert result.exit_code == 1
    assert result.stderr == "error: cluster 'nope' not found (404)\n"
    assert mic("events", "tail", "pods", "-o", "yaml").exit_code == 2


def test_events_tail_says_why_mic_ended_a_stream_it_could_not_keep(mic: Run, fake_mic: FakeMic) -> None:
    body = SSE_BODY + (
        b'event: error\ndata: {"message":"the consumer of ingresses fell 1024 batches behind for 5s, '
        b'so its stream was closed"}\n\n'
    )
    fake_mic.on("GET", "/v1/events", (200, body))
    result = mic("events", "tail", "ingresses")
    assert len(result.stdout.splitlines()) == 2  # the events before it are printed
    assert result.exit_code == 1
    assert result.stderr == (
        "error: MIC ended the stream: the consumer of ingresses fell 1024 batches behind for 5s, "
        "so its stream was closed\n"
    )
