"""Entry point of the `mic` command: one Typer app with a sub-command per area."""

from __future__ import annotations

import typer

from mic.cli.clusters import clusters_app
from mic.cli.events import events_app
from mic.cli.resources import resources_app
from mic.cli.serve import serve
from mic.cli.subscriptions import subscriptions_app
from mic.cli.testing import testing_app

app = typer.Typer(
    name="mic",
    help="MIC, the Multicluster Ingress Controller: watch many Kubernetes clusters from one place.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(serve)
app.add_typer(clusters_app, name="clusters")
app.add_typer(resources_app, name="resources")
app.add_typer(subscriptions_app, name="subscriptions")
app.add_typer(events_app, name="events")
app.add_typer(testing_app, name="testing")


if __name__ == "__main__":  # pragma: no cover
    app()
