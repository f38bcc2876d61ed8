"""The value formatting the CLI tables rely on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mic.cli.client import format_detail
from mic.cli.output import age, labels_text, parse_time

NOW = datetime(2024, 5, 10, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ("2024-05-10T11:59:15Z", "45s"),
        ("2024-05-10T11:58:01Z", "119s"),
        ("2024-05-10T11:48:00Z", "12m"),
        ("2024-05-10T09:00:00Z", "3h"),
        ("2024-05-08T12:00:01Z", "47h"),
        ("2024-05-06T12:00:00Z", "4d"),
        ("2021-05-10T12:00:00Z", "3y"),
        ("2024-05-10T12:00:30Z", "0s"),  # clock skew: never negative
        (NOW.timestamp() - 30, "30s"),  # Unix seconds are accepted too
        ("yesterday", "<unknown>"),
        (None, ""),
    ],
)
def test_age_reads_like_kubectl(created: object, expected: str) -> None:
    assert age(created, now=NOW) == expected


def test_naive_timestamps_are_utc() -> None:
    assert parse_time("2024-05-10T12:00:00") == NOW


def test_labels_are_sorted_key_value_pairs() -> None:
    assert labels_text({"tier": "prod", "region": "eu"}) == "region=eu,tier=prod"
    assert labels_text(None) == ""


@pytest.mark.parametrize(
    ("detail", "line"),
    [
        ("cluster 'x'\n  not found", "cluster 'x' not found"),
        ([{"loc": ["query", "limit"], "msg": "not an int"}], "query.limit: not an int"),
        ([{"msg": "bad"}, "odd"], "bad; odd"),
        ([], "invalid request"),
        ({"message": "boom"}, "boom"),
        ({"loc": ["body"], "msg": "too large"}, "body: too large"),
        (42, "42"),
    ],
)  # fmt: skip
def test_fastapi_details_become_one_line(detail: object, line: str) -> None:
    assert format_detail(detail) == line
