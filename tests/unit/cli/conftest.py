"""Fixtures for the CLI tests: a fake MIC over real HTTP, and a runner for the `mic` commands.

Helpers live in `fake_mic_api.py` (test modules import that, never this conftest, which pytest
may load under another name).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from click.testing import Result
from fake_mic_api import TOKEN, FakeMic, Run, serving
from typer.testing import CliRunner

from mic.cli.clusters import clusters_app
from mic.cli.resources import resources_app


@pytest.fixture(scope="session")
def _fake_mic_server() -> Iterator[FakeMic]:
    # One server for the session: starting and stopping a threaded server per test costs more
    # than all the tests together.
    with serving() as fake:
        yield fake


@pytest.fixture
def fake_mic(_fake_mic_server: FakeMic) -> FakeMic:
    """The fake MIC with no routes and no recorded requests."""
    _fake_mic_server.routes.clear()
    _fake_mic_server.requests.clear()
    return _fake_mic_server


def _cli() -> typer.Typer:
    # Mounted as main.py mounts them; built here so these tests import no server code.
    app = typer.Typer(pretty_exceptions_enable=False)
    app.add_typer(clusters_app, name="clusters")
    app.add_typer(resources_app, name="resources")
    return app


@pytest.fixture
def run(fake_mic: FakeMic) -> Run:
    """Run `mic <args>` against the fake server with MIC_URL/MIC_TOKEN set, as a user would."""
    app = _cli()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        full_env = {"MIC_URL": fake_mic.url, "MIC_TOKEN": TOKEN, **(env or {})}
        result = runner.invoke(app, list(args), input=input, env=full_env, catch_exceptions=False)
        assert TOKEN not in result.output + result.stderr, "the API token was printed"
        assert "Traceback" not in result.output + result.stderr
        return result

    return invoke
