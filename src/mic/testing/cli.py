"""`mic testing ...`: run emulated clusters from the command line."""

from __future__ import annotations

import typer

testing_app = typer.Typer(help="Tools for testing: emulated Kubernetes clusters.", no_args_is_help=True)


@testing_app.command("cluster")
def cluster() -> None:
    """Run an emulated Kubernetes API server (placeholder until the emulator lands)."""
    raise typer.Exit(code=1)
