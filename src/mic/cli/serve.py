"""`mic serve`: run the service (REST API, supervisor) until interrupted."""

from __future__ import annotations

import typer
import uvicorn

from mic.api.app import create_app


def serve(
    host: str = typer.Option("127.0.0.1", envvar="MIC_HOST", help="Address to listen on."),
    port: int = typer.Option(8000, envvar="MIC_PORT", help="TCP port to listen on."),
) -> None:
    """Start the MIC service."""
    uvicorn.run(create_app(), host=host, port=port, log_level="info")
