"""`mic serve`: run the service (REST API, supervisor) until interrupted.

Every flag has a `MIC_*` environment variable, so containers configure MIC without a
command line. Tokens are read from the environment or a file rather than flags, which would
show them in `ps`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from mic.service.defaults import DEFAULT_DATA_DIR, DEFAULT_LEASE_SECONDS, MAX_EVENT_TAILS

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def serve(
    host: Annotated[str, typer.Option(envvar="MIC_HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="MIC_PORT", help="TCP port to listen on.")] = 8000,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="MIC_DATABASE_URL",
            help="sqlite+aiosqlite:///path/mic.db or postgresql+asyncpg://user:pw@host/db "
            "(default: DATA_DIR/mic.db).",
            show_default=False,
        ),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(envvar="MIC_DATA_DIR", help="Directory of the default SQLite database.")
    ] = DEFAULT_DATA_DIR,
    kubeconfig_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="MIC_KUBECONFIG_DIR",
            help="Only directory whose kubeconfig files API users may name (kubeconfigFile connections).",
            show_default=False,
        ),
    ] = None,
    tokens_file: Annotated[
        Path | None,
        typer.Option(
            envvar="MIC_TOKENS_FILE",
            help="API tokens, one 'role:name:token' per line (role admin or viewer), or a JSON list.",
            show_default=False,
        ),
    ] = None,
    allow_kubeconfig_exec: Annotated[
        bool,
        typer.Option(
            "--allow-kubeconfig-exec",
            envvar="MIC_ALLOW_KUBECONFIG_EXEC",
            help="Let kubeconfigs from the API run exec credential plugins on this host.",
        ),
    ] = False,
    allow_kubeconfig_files: Annotated[
        bool,
        typer.Option(
            "--allow-kubeconfig-files",
            envvar="MIC_ALLOW_KUBECONFIG_FILES",
            help="Let kubeconfig text from the API refer to files on this host (certificates, token files).",
        ),
    ] = False,
    original_api_insecure_tls: Annotated[
        bool,
        typer.Option(
            "--original-api-insecure-tls",
            envvar="MIC_ORIGINAL_API_INSECURE_TLS",
            help="Let the original MIC API (/cic/nitro/...) register an https KubeURL without KubeCAData and "
            "connect to it without verifying its certificate, as the original did.",
        ),
    ] = False,
    log_level: Annotated[
        str, typer.Option(envvar="MIC_LOG_LEVEL", help=f"One of {', '.join(LOG_LEVELS)}.")
    ] = "info",
    cache_mode: Annotated[
        str,
        typer.Option(
            envvar="MIC_CACHE_MODE",
            help="How caches keep objects: full (as received), lean (without managedFields), "
            "compact (lean, as JSON bytes: about the JSON size in memory instead of 2-6x, and "
            "faster to ingest; reads of the cache decode).",
        ),
    ] = "compact",
    lease_seconds: Annotated[
        float,
        typer.Option(
            envvar="MIC_LEASE_SECONDS",
            min=1.0,
            help="MICs sharing one database elect one that delivers; the others wait as standbys and "
            "take over this many seconds after it stops renewing its lease (at once after a clean stop).",
        ),
    ] = DEFAULT_LEASE_SECONDS,
    max_event_tails: Annotated[
        int,
        typer.Option(
            envvar="MIC_MAX_EVENT_TAILS",
            min=1,
            help="Live tails (GET /v1/events) served at once, all tokens together; one more is answered 503.",
        ),
    ] = MAX_EVENT_TAILS,
    tls_cert_file: Annotated[
        Path | None,
        typer.Option(
            envvar="MIC_TLS_CERT_FILE",
            help="Serve HTTPS with this PEM certificate chain (and --tls-key-file).",
            show_default=False,
        ),
    ] = None,
    tls_key_file: Annotated[
        Path | None,
        typer.Option(
            envvar="MIC_TLS_KEY_FILE", help="The PEM private key of --tls-cert-file.", show_default=False
        ),
    ] = None,
) -> None:
    """Start the MIC service: REST API with Swagger UI at /swagger/, supervisor, store.

    Tokens: MIC_ADMIN_TOKEN, MIC_VIEWER_TOKEN (env only) or --tokens-file; with none, one is printed once.
    """
    level = log_level.lower()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(f"must be one of {', '.join(LOG_LEVELS)}", param_hint="--log-level")
    # Imported here so that every other `mic` command starts without loading the server.
    from mic.api.app import create_app
    from mic.runtime import tune_gc
    from mic.service.settings import ServiceSettings, SettingsError

    settings = ServiceSettings(
        host=host,
        port=port,
        database_url=database_url,
        data_dir=data_dir,
        kubeconfig_dir=kubeconfig_dir,
        admin_token=_env("MIC_ADMIN_TOKEN"),
        viewer_token=_env("MIC_VIEWER_TOKEN"),
        tokens_file=tokens_file,
        allow_kubeconfig_exec=allow_kubeconfig_exec,
        allow_kubeconfig_files=allow_kubeconfig_files,
        original_api_insecure_tls=original_api_insecure_tls,
        log_level=level,
        cache_mode=cache_mode.lower(),
        lease_seconds=lease_seconds,
        max_event_tails=max_event_tails,
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_key_file,
    )
    try:
        # Fail before binding the port, with the file's line number or the setting's name.
        settings.token_grants()
        settings.informer_options()
        settings.check_tls()
    except SettingsError as error:
        typer.echo(f"mic serve: {error}", err=True)
        raise typer.Exit(code=2) from None
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_noisy_loggers()
    if tls_cert_file is None and not _is_loopback(host):
        logging.getLogger("mic.serve").warning(
            "serving plain HTTP on %s: API tokens and cluster credentials cross the network in clear"
            " text; give --tls-cert-file/--tls-key-file or put a TLS-terminating proxy in front",
            host,
        )
    app = create_app(settings)
    tune_gc()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=level,
        ssl_certfile=tls_cert_file,
        ssl_keyfile=tls_key_file,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def quiet_noisy_loggers() -> None:
    """Keep libraries that log SQL parameters (stored credentials) at INFO, even at --log-level debug."""
    for name in ("aiosqlite", "sqlalchemy.engine", "asyncpg"):
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))


def _env(name: str) -> str | None:
    return os.environ.get(name) or None
