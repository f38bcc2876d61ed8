"""Empty value sets for `in`/`notin`, as Kubernetes treats them.

apimachinery's `NewRequirement` refuses an `in`/`notin` requirement without values ("for 'in',
'notin' operators, values set can't be empty"); that is what a metav1.LabelSelector object with
`matchExpressions: [{operator: In, values: []}]` meets. The text form never gets there: its
parser reads `()` as one empty slot, so `a in ()` means `a in ("")` and the API server accepts
it (apimachinery's selector_test lists `"x in ()"` among the valid selectors). MIC's parser must
do the same, or a selector kubectl and the API server take would be refused by MIC, or the
other way round.
"""

from __future__ import annotations

import pytest

from mic.kube.selectors import InvalidSelectorError, LabelSelector, Operator, Requirement
from mic.testing.emulator.selectors import parse_label_selector as emulator_parse


@pytest.mark.parametrize("operator", ["In", "NotIn"])
@pytest.mark.parametrize("values", [[], None, "missing"])
def test_an_object_selector_with_an_empty_set_is_refused(operator: str, values: object) -> None:
    expression: dict[str, object] = {"key": "app", "operator": operator}
    if values != "missing":
        expression["values"] = values
    with pytest.raises(InvalidSelectorError) as info:
        LabelSelector.from_label_selector_object({"matchExpressions": [expression]})
    message = str(info.value)
    assert "matchExpressions[0]" in message
    assert "'app'" in message
    assert "need at least one value" in message


@pytest.mark.parametrize("operator", [Operator.IN, Operator.NOT_IN])
def test_a_requirement_with_an_empty_set_is_refused(operator: Operator) -> None:
    with pytest.raises(InvalidSelectorError, match="need at least one value"):
        Requirement("app", operator, ())


@pytest.mark.parametrize("text", ["app in ()", "app in ( )", "app in (,)", "app in(,)"])
def test_empty_parentheses_in_text_mean_the_empty_value(text: str) -> None:
    selector = LabelSelector.parse(text)
    (requirement,) = selector.requirements
    assert requirement.values == ("",)
    assert str(selector) == "app in ()"
    assert selector.matches({"app": ""})
    assert not selector.matches({"app": "web"})
    assert not selector.matches({})


def test_notin_empty_parentheses_leaves_out_only_the_empty_value() -> None:
    selector = LabelSelector.parse("app notin ()")
    assert selector.requirements == (Requirement("app", Operator.NOT_IN, ("",)),)
    assert not selector.matches({"app": ""})
    assert selector.matches({"app": "web"})
    assert selector.matches({})
    assert selector.matches(None)


@pytest.mark.parametrize("labels", [{"app": ""}, {"app": "web"}, {}, {"other": "x"}])
@pytest.mark.parametrize(
    "text", ["app in ()", "app notin ()", "app notin (,web)", "app in (,web)", "app in (web,)"]
)
def test_the_emulator_matches_empty_slots_as_mic_does(text: str, labels: dict[str, str]) -> None:
    # The emulator plays the API server: what it returns for a labelSelector must be what MIC's
    # own matcher keeps, or tests against it would pass on behaviour no real cluster has.
    assert emulator_parse(text).matches(labels) is LabelSelector.parse(text).matches(labels)
