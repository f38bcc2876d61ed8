import pytest

from mic.testing.emulator.errors import StatusError
from mic.testing.emulator.selectors import parse_field_selector, parse_label_selector

LABELS = {"app": "web", "tier": "front", "version": "3"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("app in (web, db)", True),
        ("app in (db)", False),
        ("app notin (db,cache)", True),
        ("app notin (web)", False),
        ("missing notin (web)", True),
        ("tier", True),
        ("missing", False),
        ("!missing", True),
        ("!tier", False),
        ("app=web,tier in (front,back),!missing", True),
        ("app=web,tier=back", False),
        ("version>2", True),
        ("version<3", False),
        ("example.com/role", False),
    ],
)
def test_label_selector_matches_like_kube(selector: str, expected: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is expected


@pytest.mark.parametrize("selector", ["app in web", "=x", "a b", "app=web,,", "bad key!=x=y", "v>x"])
def test_invalid_label_selectors_are_400(selector: str) -> None:
    with pytest.raises(StatusError) as info:
        parse_label_selector(selector)
    assert info.value.code == 400


def test_field_selector_supports_name_namespace_and_declared_fields() -> None:
    obj = {"metadata": {"name": "a", "namespace": "ns1"}, "status": {"phase": "Running"}}
    assert parse_field_selector("metadata.name=a,metadata.namespace==ns1").matches(obj)
    assert not parse_field_selector("metadata.name!=a").matches(obj)
    supported = ("metadata.name", "status.phase")
    assert parse_field_selector("status.phase=Running", supported).matches(obj)
    assert parse_field_selector("metadata.name=a", supported).required("metadata.name") == "a"


def test_unsupported_field_is_400_with_kube_wording() -> None:
    with pytest.raises(StatusError) as info:
        parse_field_selector("spec.foo=bar")
    assert info.value.code == 400
    assert info.value.message == "field label not supported: spec.foo"
