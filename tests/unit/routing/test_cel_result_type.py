"""A CEL filter must return true or false: one that returns anything else is refused when written.

The binding checks no types, so `compile_cel` evaluates the expression on sample variables shaped
like the matcher's. Only a non-bool actually returned there is refused: what fails on the sample
(a field it lacks) may be right for real objects, and passes.
"""

from __future__ import annotations

from typing import Any

import pytest

from mic.events.event import Event, EventType, KubeObject
from mic.routing import (
    InvalidExpressionError,
    InvalidSubscriptionError,
    SubscriptionFilter,
    SubscriptionMatcher,
    SubscriptionSpec,
    WebhookSink,
    compile_cel,
)
from mic.routing.expression import _SAMPLE_ACTIVATIONS


def deployment(replicas: int, rv: str = "7") -> KubeObject:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": rv, "labels": {"tier": "web"}},
        "spec": {"replicas": replicas},
        "data": {"enabled": "true"},
    }


@pytest.mark.parametrize(
    ("expression", "returns"),
    [
        ("object.metadata.name", "a string"),  # the operator's report
        ("object.metadata.name.lowerAscii()", "a string"),  # through the extension functions
        ("oldObject.metadata.name", "a string"),  # null on ADDED: shown by the MODIFIED sample
        ("event.type", "a string"),
        ("object.metadata.labels", "a map"),
        ("size(object.metadata.labels)", "an int"),
        ("double(object.metadata.generation)", "a double"),
        ("object.metadata.labels.map(k, k)", "a list"),
        ("timestamp(object.metadata.creationTimestamp)", "a timestamp"),
        ("b'x'", "bytes"),
    ],
)
def test_a_filter_that_returns_no_bool_is_refused_naming_the_type(expression: str, returns: str) -> None:
    with pytest.raises(InvalidExpressionError) as caught:
        compile_cel(expression)
    assert caught.value.problem.startswith(
        f"a filter must return true or false, but this one returns {returns}; compare the value"
    )


def test_the_refusal_names_the_field_the_api_reports() -> None:
    with pytest.raises(InvalidSubscriptionError) as caught:
        SubscriptionFilter(resources=("configmaps",), cel="object.metadata.name")
    assert caught.value.field == "filter.cel"
    assert str(caught.value).startswith(
        "filter.cel: invalid CEL expression 'object.metadata.name': a filter must return true or"
        " false, but this one returns a string"
    )


@pytest.mark.parametrize(
    "expression",
    [
        "object.metadata.name == 'sample'",
        "object.metadata.name != 'sample'",
        "has(object.metadata.labels)",
        "size(object.metadata.labels) > 0",
        "object.metadata.labels.exists(k, k == 'app')",
        "object.metadata.name.startsWith('web-')",
        "oldObject == null || oldObject.metadata.labels != object.metadata.labels",
        "event.type in ['ADDED', 'MODIFIED'] && event.namespace == 'shop'",
        "!(object.metadata.generation > 1)",
    ],
)
def test_a_filter_that_returns_a_bool_is_accepted(expression: str) -> None:
    assert compile_cel(expression).source == expression


@pytest.mark.parametrize(
    ("expression", "activation"),
    [
        ("object.spec.replicas > 1", {"object": deployment(3)}),
        ("object.data.enabled == 'true'", {"object": deployment(3)}),
        ("object.metadata.labels['tier'] == 'web'", {"object": deployment(3)}),
        (
            "oldObject.spec.replicas != object.spec.replicas",
            {"object": deployment(3, rv="8"), "oldObject": deployment(2)},
        ),
    ],
)
def test_a_filter_that_fails_on_the_sample_is_accepted(expression: str, activation: dict[str, Any]) -> None:
    """The sample lacks these fields; real objects have them, and there the filter is a bool."""
    assert compile_cel(expression)(activation) is True


def test_a_filter_that_is_a_bool_on_some_sample_is_accepted() -> None:
    """Its type depends on the event: the check errs on accepting (the rest fails per event)."""
    compile_cel("event.type == 'ADDED' ? true : object.metadata.name")


def test_the_sample_has_the_variables_the_matcher_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample must look like run time's variables, or the check would judge something else."""
    spec = SubscriptionSpec(
        "lb",
        SubscriptionFilter(resources=("deployments",), cel="event.type != '' && object != oldObject"),
        WebhookSink("https://lb.example/hook"),
    )
    m = SubscriptionMatcher(spec, frozenset({"deployments.apps"}))
    passed: list[dict[str, Any]] = []

    def record(activation: dict[str, Any]) -> bool:
        passed.append(activation)
        return True

    monkeypatch.setattr(m, "_cel", record)
    event = Event(
        type=EventType.MODIFIED,
        cluster="eu-1",
        group="apps",
        version="v1",
        kind="Deployment",
        resource="deployments",
        namespace="shop",
        name="web",
        uid="1234",
        resource_version="8",
        object=deployment(3, rv="8"),
        old_object=deployment(2),
    )
    assert m.matches(event, {})
    sample = _SAMPLE_ACTIVATIONS[1]
    assert passed[0].keys() == sample.keys()
    assert {key: type(value) for key, value in passed[0]["event"].items()} == {
        key: type(value) for key, value in sample["event"].items()
    }
