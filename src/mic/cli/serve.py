"""`mic serve`: run the service (REST API, supervisor) until interrupted.

Every flag has a `MIC_*` environment variable, so containers configure MIC without a
command line. Tokens are read from the environment or a file rather than flags, which would
show them in `ps`.

A start that fails is one line on stderr, never a traceback, and its exit code says what to do:
`EXIT_SETTINGS` (2) when a setting is wrong as given, `EXIT_UNAVAILABLE` (1) when the settings
are fine but what they name cannot be used now (the database cannot be reached or is newer than
this MIC, the port is taken). Code 3 is left to its one meaning: this MIC lost the delivery
lease (`mic.service.service.end_process`); uvicorn would use it for every failed start.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
import uvicorn

from mic.service.defaults import DEFAULT_DATA_DIR, DEFAULT_LEASE_SECONDS, MAX_EVENT_TAILS

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import Message, Receive, Scope, Send

    from mic.service.settings import ServiceSettings

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

EXIT_UNAVAILABLE = 1
"""The settings are usable, what they name is not, now: the database or the port."""

EXIT_SETTINGS = 2
"""A setting is wrong as given (as for wrong options): starting again will not help."""

log = logging.getLogger("mic.serve")


def serve(
    host: Annotated[str, typer.Option(envvar="MIC_HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="MIC_PORT", help="TCP port to listen on.")] = 8000,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="MIC_DATABASE_URL",
            help="sqlite+aiosqlite:////abs/path/mic.db (three slashes: relative to the working directory) "
            "or postgresql+asyncpg://user:pw@host/db (default: DATA_DIR/mic.db).",
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
        _fail(str(error), EXIT_SETTINGS)
    try:
        _check_database_url(settings)
    except ValueError as error:
        _fail(f"{error} (MIC_DATABASE_URL)", EXIT_SETTINGS)
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_noisy_loggers()
    if tls_cert_file is None and not _is_loopback(host):
        log.warning(
            "serving plain HTTP on %s: API tokens and cluster credentials cross the network in clear"
            " text; give --tls-cert-file/--tls-key-file or put a TLS-terminating proxy in front",
            host,
        )
    try:
        sockets = _bind(host, port)
    except OSError as error:
        _fail(f"cannot listen on {host}:{port}: {error} (MIC_HOST, MIC_PORT)", EXIT_UNAVAILABLE)
    app = _StartGuard(create_app(settings))
    tune_gc()
    config = uvicorn.Config(
        app, host=host, port=port, log_level=level, ssl_certfile=tls_cert_file, ssl_keyfile=tls_key_file
    )
    _run(_Server(config), sockets, app, settings.effective_database_url)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"mic serve: {message}", err=True)
    raise typer.Exit(code=code)


def _check_database_url(settings: ServiceSettings) -> None:
    """Raise `ValueError` for a database URL the store would refuse, or (only for a URL given
    by the operator) a SQLite file in a directory that does not exist: the store would create
    it, and MIC would start on a new, empty database (see `check_sqlite_directory`). The default
    file in `--data-dir` is created with its directory, as on a first start."""
    from mic.store.dialects import check_sqlite_directory, normalize_url

    url = normalize_url(settings.effective_database_url)
    if settings.database_url:
        check_sqlite_directory(url)


def _bind(host: str, port: int) -> list[socket.socket]:
    """Bind every address `host` resolves to, as uvicorn (asyncio's `create_server`) would.

    Done before the store is opened: a port in use then fails the start at once, with the
    `OSError`, before this MIC opens the database or takes its delivery lease; uvicorn would
    bind after both, and `sys.exit(3)` with the reason only in its log.
    """
    bound: list[socket.socket] = []
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(addresses):
            sock = socket.socket(family, kind, proto)
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError:
        for sock in bound:
            sock.close()
        raise
    return bound


class _StartGuard:
    """The app, keeping a start that failed for want of its database for `serve` to report.

    Such a failure (a `StoreError`, or an `OSError` creating the SQLite file) is for the operator
    to fix, not a bug: uvicorn would log Starlette's formatted traceback of it. The guard keeps the
    error in `failure` and gives uvicorn the failure without the traceback; any other error keeps
    its traceback.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.failure: Exception | None = None
        app.router.lifespan_context = self._guarded(app.router.lifespan_context)

    def _guarded(
        self, lifespan: Callable[[Any], AbstractAsyncContextManager[Any]]
    ) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
        from mic.store import StoreError

        @asynccontextmanager
        async def guarded(app: Any) -> AsyncIterator[Any]:
            started = False
            try:
                async with lifespan(app) as state:
                    started = True
                    yield state
            except (StoreError, OSError) as error:
                if not started:
                    self.failure = error
                raise

        return guarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_without_traceback(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed" and self.failure is not None:
                message = {**message, "message": ""}
            await send(message)

        await self.app(scope, receive, send_without_traceback if scope["type"] == "lifespan" else send)


class _Server(uvicorn.Server):
    """uvicorn's server on sockets bound beforehand (`_bind`), saying where it listens once it
    does: uvicorn says so only for sockets it binds itself."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and sockets:
            scheme = "https" if self.config.is_ssl else "http"
            host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
            log.info("listening on %s://%s:%d (CTRL+C to quit)", scheme, host, sockets[0].getsockname()[1])


def _run(server: _Server, sockets: list[socket.socket], app: _StartGuard, database_url: str) -> None:
    """Serve until stopped; a start that failed ends `serve` with one line and `EXIT_UNAVAILABLE`.

    uvicorn ends a failed start with `sys.exit(3)`, caught here, and re-raises a SIGINT it handled
    once it stopped, ignored here as `uvicorn.run` does.
    """
    try:
        server.run(sockets=sockets)
    except KeyboardInterrupt:
        pass
    except SystemExit:
        if server.started:
            raise
    finally:
        for sock in sockets:
            sock.close()
    if server.started:
        return
    if app.failure is None:
        _fail("the service did not start (see the log above)", EXIT_UNAVAILABLE)
    _fail(
        f"cannot use the database {_masked(database_url)}: {_redacted(app.failure, database_url)}",
        EXIT_UNAVAILABLE,
    )


def _masked(database_url: str) -> str:
    from mic.store.dialects import normalize_url

    return normalize_url(database_url).render_as_string(hide_password=True)


def _redacted(error: Exception, database_url: str) -> str:
    """The error's message without the URL's password, should a driver ever quote it."""
    from mic.store.dialects import normalize_url

    message = str(error) or type(error).__name__
    password = normalize_url(database_url).password
    if not password:
        return message
    return re.sub(rf"(?<!\w){re.escape(str(password))}(?!\w)", "***", message)


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
