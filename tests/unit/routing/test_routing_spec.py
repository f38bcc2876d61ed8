"""SubscriptionSpec and its parts: validation says what to fix, JSON round-trips exactly."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from mic.events.event import EventType
from mic.routing import (
    Batching,
    DeliveryPolicy,
    Format,
    InvalidSubscriptionError,
    SubscriptionFilter,
    SubscriptionSpec,
    WebhookSink,
)

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def minimal_json() -> dict[str, Any]:
    return {"name": "lb", "filter": {"resources": ["ingresses"]}, "sink": {"url": "https://lb.example/hook"}}


def with_changes(**changes: Any) -> dict[str, Any]:
    """The minimal JSON with `section__key=value` changes (`filter__cel="..."`, `format="raw"`)."""
    data = minimal_json()
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            data.setdefault(section, {})[key] = value
        else:
            data[section] = value
    return data


def test_defaults_are_the_documented_ones() -> None:
    spec = SubscriptionSpec.from_json(minimal_json())
    assert spec.filter == SubscriptionFilter(resources=("ingresses",))
    assert spec.filter.exclude_namespaces == ("kube-system",)
    assert spec.filter.event_types == (EventType.ADDED, EventType.MODIFIED, EventType.DELETED)
    assert spec.filter.suppress_noop is True
    assert spec.format is Format.CLOUDEVENTS
    assert spec.batching is None
    assert spec.include_secret_data is False
    assert spec.initial_state is True
    assert spec.delivery == DeliveryPolicy()
    assert spec.sink.timeout == 10.0


FULL = SubscriptionSpec(
    name="lb-eu-1",
    filter=SubscriptionFilter(
        resources=("ingresses.networking.k8s.io", "services"),
        clusters=("eu-1", "eu-2"),
        cluster_selector="env=prod,tier in (edge,web)",
        namespaces=("shop", "kube-system"),
        exclude_namespaces=(),
        label_selector="expose=true,!canary",
        event_types=(EventType.MODIFIED, EventType.DELETED),
        cel="object.metadata.name.startsWith('web') && event.cluster != 'eu-3'",
        suppress_noop=False,
        fields=("spec.rules", "metadata.labels", r"metadata.annotations.kubernetes\.io/ingress\.class"),
    ),
    sink=WebhookSink(
        url="https://lb.example:8443/hooks/mic?x=1",
        headers={"Authorization": "Bearer abc", "X-Team": "edge"},
        timeout=2.5,
        signing_secret=SECRET,
    ),
    format=Format.CLOUDEVENTS,
    batching=Batching(max_events=50, max_bytes=65_536, max_wait_ms=0),
    include_secret_data=True,
    initial_state=False,
    delivery=DeliveryPolicy(
        max_attempts=3,
        max_age=120,
        concurrency=1,
        initial_backoff=0.1,
        max_backoff=5,
        coalesce=True,
        backlog_limit=10,
        overflow="dead-letter",
    ),
)


@pytest.mark.parametrize(
    "spec",
    [
        FULL,
        SubscriptionSpec.from_json(minimal_json()),
        SubscriptionSpec("raw", SubscriptionFilter(("pods",)), WebhookSink("http://10.0.0.1/"), Format.RAW),
        SubscriptionSpec("v1", SubscriptionFilter(("secrets",)), WebhookSink("http://h/"), Format.MIC_V1),
    ],
    ids=["full", "minimal", "raw", "mic-v1"],
)
def test_json_round_trip(spec: SubscriptionSpec) -> None:
    data = spec.to_json()
    assert SubscriptionSpec.from_json(copy.deepcopy(data)) == spec
    assert SubscriptionSpec.from_json(data).to_json() == data


def test_json_uses_the_rest_api_camel_case_keys() -> None:
    data = FULL.to_json()
    assert list(data) == [
        "name",
        "filter",
        "sink",
        "format",
        "batching",
        "includeSecretData",
        "initialState",
        "delivery",
    ]
    assert list(data["filter"]) == [
        "resources",
        "clusters",
        "clusterSelector",
        "namespaces",
        "excludeNamespaces",
        "labelSelector",
        "eventTypes",
        "cel",
        "suppressNoop",
        "fields",
    ]
    assert data["sink"] == {
        "url": "https://lb.example:8443/hooks/mic?x=1",
        "headers": {"Authorization": "Bearer abc", "X-Team": "edge"},
        "timeoutSeconds": 2.5,
        "signingSecret": SECRET,
    }
    assert data["batching"] == {"maxEvents": 50, "maxBytes": 65_536, "maxWaitMs": 0}
    assert data["delivery"] == {
        "maxAttempts": 3,
        "maxAgeSeconds": 120.0,
        "concurrency": 1,
        "initialBackoffSeconds": 0.1,
        "maxBackoffSeconds": 5.0,
        "coalesce": True,
        "backlogLimit": 10,
        "overflow": "dead-letter",
    }
    assert data["format"] == "cloudevents"
    assert data["filter"]["eventTypes"] == ["MODIFIED", "DELETED"]


def test_selectors_are_kept_canonical_so_equal_filters_compare_equal() -> None:
    a = SubscriptionFilter(("pods",), label_selector="b=2, a==1", cluster_selector="env = prod")
    b = SubscriptionFilter(("pods",), label_selector="a=1,b=2", cluster_selector="env=prod")
    assert a == b
    assert hash(a) == hash(b)
    assert a.label_selector == "a=1,b=2"


def test_python_and_json_shaped_input_give_equal_values() -> None:
    from_lists = SubscriptionFilter(
        resources=["pods", "pods"],  # type: ignore[arg-type]
        namespaces=["shop"],  # type: ignore[arg-type]
        event_types=["ADDED"],  # type: ignore[arg-type]
    )
    assert from_lists == SubscriptionFilter(("pods",), namespaces=("shop",), event_types=(EventType.ADDED,))
    spec = SubscriptionSpec("a", from_lists, WebhookSink("http://h/"), format="raw")  # type: ignore[arg-type]
    assert spec.format is Format.RAW


def test_specs_are_hashable_and_secrets_stay_out_of_repr() -> None:
    assert hash(FULL) == hash(SubscriptionSpec.from_json(FULL.to_json()))
    text = repr(FULL)
    assert "Bearer" not in text
    assert SECRET not in text


def test_null_members_mean_their_defaults() -> None:
    data = with_changes(
        filter__clusterSelector=None,
        filter__excludeNamespaces=None,
        filter__cel=None,
        sink__headers=None,
        sink__signingSecret=None,
        batching=None,
        delivery=None,
        format=None,
    )
    assert SubscriptionSpec.from_json(data) == SubscriptionSpec.from_json(minimal_json())


def test_blank_cel_means_no_expression() -> None:
    assert SubscriptionFilter(("pods",), cel="  ").cel is None


# (JSON changes, the field the error names, words the message must contain)
INVALID: list[tuple[dict[str, Any], str, str]] = [
    (with_changes(name="Web_1"), "name", "DNS-1123 label"),
    (with_changes(name="x" * 64), "name", "longer than 63"),
    (with_changes(name=""), "name", "required"),
    (with_changes(filter__resources=[]), "filter.resources", "at least one resource"),
    (with_changes(filter__resources="ingresses"), "filter.resources", "list of strings"),
    (with_changes(filter__resources=["in gresses"]), "filter.resources[0]", "not a resource name"),
    (with_changes(filter__resources=[3]), "filter.resources[0]", "must be a string"),
    (with_changes(filter__clusters=[]), "filter.clusters", "omit it (null) for all clusters"),
    (with_changes(filter__clusters=["EU"]), "filter.clusters[0]", "DNS-1123"),
    (with_changes(filter__clusterSelector="env in prod"), "filter.clusterSelector", "expected '('"),
    (with_changes(filter__namespaces=[]), "filter.namespaces", "omit it (null) for all namespaces"),
    (with_changes(filter__namespaces=["Shop"]), "filter.namespaces[0]", "DNS-1123"),
    (with_changes(filter__excludeNamespaces=["a b"]), "filter.excludeNamespaces[0]", "DNS-1123"),
    (with_changes(filter__namespaces=["kube-system"]), "filter.namespaces", "excludeNamespaces: []"),
    (with_changes(filter__labelSelector="app=", filter__fields=[]), "", ""),  # valid: app has value ""
    (with_changes(filter__labelSelector="app in ("), "filter.labelSelector", "position"),
    (with_changes(filter__labelSelector="-bad=x"), "filter.labelSelector", "invalid label key"),
    (with_changes(filter__eventTypes=[]), "filter.eventTypes", "at least one of ADDED"),
    (with_changes(filter__eventTypes=["UPDATED"]), "filter.eventTypes[0]", "not one of ADDED, MODIFIED"),
    (with_changes(filter__cel="object.metadata.name =="), "filter.cel", "line 1, column 24"),
    (with_changes(filter__cel="obj.metadata.name == 'x'"), "filter.cel", "unknown variable 'obj'"),
    (with_changes(filter__cel=7), "filter.cel", "CEL expression string"),
    (with_changes(filter__suppressNoop="yes"), "filter.suppressNoop", "true or false"),
    (with_changes(filter__fields=["spec..rules"]), "filter.fields[0]", "single dots"),
    (with_changes(filter__fields=[""]), "filter.fields[0]", "single dots"),
    (with_changes(filter__labelselector="a=b"), "filter.labelselector", "unknown field"),
    (with_changes(sink={}), "sink.url", "required"),
    (with_changes(sink__url="ftp://lb.example/x"), "sink.url", "http:// or https://"),
    (with_changes(sink__url="lb.example/hook"), "sink.url", "http:// or https://"),
    (with_changes(sink__url="https:///hook"), "sink.url", "no host"),
    (with_changes(sink__url="https://lb.example:99999/"), "sink.url", "not a valid URL"),
    (with_changes(sink__url="https://lb.example/a b"), "sink.url", "whitespace"),
    (with_changes(sink__url="https://lb.example/#x"), "sink.url", "fragment"),
    (with_changes(sink__headers={"Bad Name": "x"}), "sink.headers", "not a valid HTTP header name"),
    (with_changes(sink__headers={"X-A": "a\r\nX-B: b"}), "sink.headers.X-A", "line breaks"),
    (with_changes(sink__headers={"X-Team": "caf\u20ac"}), "sink.headers.X-Team", "'€' at position 3"),
    (with_changes(sink__headers={"X-Team": "caf\u00e9"}), "sink.headers.X-Team", "no non-ASCII text"),
    (with_changes(sink__headers={"X-A": "a\x01b"}), "sink.headers.X-A", "control characters"),
    (with_changes(sink__headers={"X-A": "a\x7fb"}), "sink.headers.X-A", "visible ASCII"),
    (with_changes(sink__headers={"X-A": "tab\tand space ok"}), "", ""),  # valid: tabs and spaces
    (with_changes(sink__headers={"X-\u00c4": "x"}), "sink.headers", "not a valid HTTP header name"),
    (with_changes(sink__headers={"": "x"}), "sink.headers", "not a valid HTTP header name"),
    (with_changes(sink__url="https://u:pw@lb.example/hook"), "sink.url", "put credentials in sink.headers"),
    (with_changes(sink__url="https://token@lb.example/hook"), "sink.url", "user name or password"),
    (with_changes(sink__url="https://lb..example/hook"), "sink.url", "not a valid domain name"),
    (with_changes(sink__url="https://" + "a" * 64 + ".example/"), "sink.url", "1 to 63 characters"),
    (with_changes(sink__url="https://lb.example/a\x00b"), "sink.url", "control character"),
    (with_changes(sink__url="https://lb.example/\ud800"), "sink.url", "not valid Unicode"),
    (with_changes(sink__headers={"Content-Type": "text/plain"}), "sink.headers.Content-Type", "MIC sets"),
    (with_changes(sink__headers={"webhook-signature": "v1,x"}), "sink.headers.webhook-signature", "MIC sets"),
    (with_changes(sink__headers={"ce-id": "1"}), "sink.headers.ce-id", "MIC sets"),
    (with_changes(sink__timeoutSeconds=0), "sink.timeoutSeconds", "more than 0"),
    (with_changes(sink__timeoutSeconds=float("nan")), "sink.timeoutSeconds", "more than 0"),
    (with_changes(sink__timeoutSeconds=301), "sink.timeoutSeconds", "at most 300"),
    (with_changes(sink__timeoutSeconds=True), "sink.timeoutSeconds", "number of seconds"),
    (with_changes(sink__signingSecret="hunter2"), "sink.signingSecret", "'whsec_' followed by base64"),
    (with_changes(sink__signingSecret="whsec_!!!"), "sink.signingSecret", "not valid base64"),
    (with_changes(sink__signingSecret="whsec_c2hvcnQ="), "sink.signingSecret", "24 to 64 bytes"),
    (with_changes(format="json"), "format", "not one of cloudevents, cloudevents-binary, mic-v1, raw"),
    (with_changes(format="raw", batching={}), "batching", "use format 'cloudevents' or remove batching"),
    (with_changes(batching={"maxEvents": 0}), "batching.maxEvents", "between 1 and 10000"),
    (with_changes(batching={"maxBytes": 10}), "batching.maxBytes", "between 1024"),
    (with_changes(batching={"maxWaitMs": -1}), "batching.maxWaitMs", "between 0 and 60000"),
    (with_changes(batching={"maxEvents": 2.5}), "batching.maxEvents", "whole number"),
    (with_changes(includeSecretData=True), "", ""),  # valid: the sink is https
    (
        with_changes(includeSecretData=True, sink__url="http://lb.example/hook"),
        "includeSecretData",
        "https://",
    ),
    (with_changes(initialState="no"), "initialState", "true or false"),
    (with_changes(delivery={"maxAttempts": 0}), "delivery.maxAttempts", "between 1 and 1000"),
    (with_changes(delivery={"maxAgeSeconds": -5}), "delivery.maxAgeSeconds", "more than 0"),
    (with_changes(delivery={"concurrency": 0}), "delivery.concurrency", "between 1 and 256"),
    (with_changes(delivery={"initialBackoffSeconds": 0}), "delivery.initialBackoffSeconds", "more than 0"),
    (
        with_changes(delivery={"initialBackoffSeconds": 10, "maxBackoffSeconds": 1}),
        "delivery.maxBackoffSeconds",
        "at least initialBackoffSeconds (10)",
    ),
    (with_changes(delivery={"backlogLimit": 0}), "delivery.backlogLimit", "between 1"),
    (with_changes(delivery={"overflow": "drop"}), "delivery.overflow", "'coalesce' or 'dead-letter'"),
    (with_changes(delivery={"coalesce": 1}), "delivery.coalesce", "true or false"),
    (with_changes(delivery={"retries": 3}), "delivery.retries", "unknown field"),
    (with_changes(delivery=[]), "delivery", "JSON object"),
    (with_changes(extra=1), "extra", "unknown field"),
    ({"name": "lb", "sink": {"url": "https://h/"}}, "filter", "required"),
    ({"name": "lb", "filter": {}, "sink": {"url": "https://h/"}}, "filter.resources", "required"),
]


@pytest.mark.parametrize(
    ("data", "field", "words"), INVALID, ids=[f"{i}-{c[1]}" for i, c in enumerate(INVALID)]
)
def test_invalid_specs_say_what_to_fix(data: dict[str, Any], field: str, words: str) -> None:
    if not field:  # a near miss that is valid
        SubscriptionSpec.from_json(data)
        return
    with pytest.raises(InvalidSubscriptionError) as caught:
        SubscriptionSpec.from_json(data)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert words in str(caught.value)


def test_from_json_of_a_non_object_is_a_clear_error() -> None:
    with pytest.raises(InvalidSubscriptionError, match="subscription: must be a JSON object"):
        SubscriptionSpec.from_json(["lb"])


def test_python_constructors_validate_too() -> None:
    with pytest.raises(InvalidSubscriptionError, match=r"filter\.resources: list at least one"):
        SubscriptionFilter(())
    with pytest.raises(InvalidSubscriptionError, match=r"sink\.url"):
        WebhookSink("mailto:ops@example.com")
    with pytest.raises(InvalidSubscriptionError, match=r"^filter: must be a SubscriptionFilter"):
        SubscriptionSpec("lb", {"resources": ["pods"]}, WebhookSink("http://h/"))  # type: ignore[arg-type]
    with pytest.raises(InvalidSubscriptionError, match=r"^batching: batches are CloudEvents"):
        SubscriptionSpec(
            "lb", SubscriptionFilter(("pods",)), WebhookSink("http://h/"), Format.MIC_V1, batching=Batching()
        )


@pytest.mark.parametrize(
    ("written", "sent"),
    [
        ("https://lb.example/h\u20ac", "https://lb.example/h%E2%82%AC"),
        (
            "https://B\u00fccher.example:8443/gr\u00f6\u00dfe?q=\u00e9&x=%41",
            "https://xn--bcher-kva.example:8443/gr%C3%B6%C3%9Fe?q=%C3%A9&x=%41",
        ),
        ("HTTPS://LB.example/a%20b?x=1&y=[2]", "HTTPS://LB.example/a%20b?x=1&y=[2]"),  # ASCII: as written
        ("http://[::1]:8080/hook", "http://[::1]:8080/hook"),
    ],
)
def test_a_sink_url_is_stored_as_sent(written: str, sent: str) -> None:
    """Non-ASCII is IDNA/percent-encoded as browsers and HTTP libraries do, once, when written:
    the stored and shown URL is what goes on the wire, and it round-trips unchanged."""
    spec = SubscriptionSpec.from_json(with_changes(sink__url=written))
    assert spec.sink.url == sent
    assert SubscriptionSpec.from_json(spec.to_json()) == spec
    assert WebhookSink(sent).url == sent


def test_errors_about_credentials_do_not_repeat_them() -> None:
    with pytest.raises(InvalidSubscriptionError) as url:
        SubscriptionSpec.from_json(with_changes(sink__url="https://admin:hunter2@lb.example/hook"))
    assert "hunter2" not in str(url.value)
    with pytest.raises(InvalidSubscriptionError) as header:
        SubscriptionSpec.from_json(with_changes(sink__headers={"Authorization": "Bearer s3cr\u00e9t"}))
    assert "s3cr" not in str(header.value)


def test_the_error_is_a_value_error() -> None:
    assert issubclass(InvalidSubscriptionError, ValueError)
