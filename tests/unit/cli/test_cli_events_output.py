"""`mic events tail -o`: only the formats a never-ending stream can print are offered.

`-o yaml` would need one YAML document per answer, and a tail has no end; the command prints
lines or one JSON object per line, says so in one line when asked for YAML, and its help does
not offer YAML.
"""

from __future__ import annotations

import json

import pytest
import typer
from click.testing import Result
from fake_mic_api import TOKEN, FakeMic
from typer.testing import CliRunner

from mic.cli.events import events_app

SSE_BODY = (
    b": stream open\n\n"
    b'id: a1\nevent: ADDED\ndata: {"id":"a1","type":"io.mic.resource.added","time":"2024-05-01T10:00:00Z",'
    b'"cluster":"eu-1","resource":"ingresses","subject":"shop/web","resourceversion":"12"}\n\n'
)


def mic(fake_mic: FakeMic, *args: str) -> Result:
    app = typer.Typer(pretty_exceptions_enable=False)
    app.add_typer(events_app, name="events")
    env = {"MIC_URL": fake_mic.url, "MIC_TOKEN": TOKEN, "COLUMNS": "200"}
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr
    return result


def test_help_offers_table_and_json_only(fake_mic: FakeMic) -> None:
    result = mic(fake_mic, "events", "tail", "--help")
    assert result.exit_code == 0, result.output
    assert "table|json" in result.stdout
    assert "yaml" not in result.stdout.lower()


@pytest.mark.parametrize("fmt", ["yaml", "YAML", "xml"])
def test_other_formats_are_a_one_line_usage_error_before_any_request(fake_mic: FakeMic, fmt: str) -> None:
    fake_mic.on("GET", "/v1/events", (200, SSE_BODY))
    result = mic(fake_mic, "events", "tail", "ingresses", "-o", fmt)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: -o {fmt}: events tail prints lines")
    assert "-o json" in result.stderr
    assert fake_mic.requests == []


@pytest.mark.parametrize("fmt", ["json", "JSON"])
def test_json_still_streams_one_object_per_line(fake_mic: FakeMic, fmt: str) -> None:
    fake_mic.on("GET", "/v1/events", (200, SSE_BODY))
    result = mic(fake_mic, "events", "tail", "ingresses", "-o", fmt)
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["a1"]


def test_table_is_the_default(fake_mic: FakeMic) -> None:
    fake_mic.on("GET", "/v1/events", (200, SSE_BODY))
    for args in [(), ("-o", "table")]:
        result = mic(fake_mic, "events", "tail", "ingresses", *args)
        assert result.stdout.splitlines() == ["2024-05-01T10:00:00Z ADDED eu-1 ingresses shop/web rv=12"]
