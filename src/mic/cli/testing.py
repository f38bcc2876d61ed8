"""`mic testing ...`: run emulated clusters from the command line."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mic.testing.emulator import KubeEmulator

testing_app = typer.Typer(help="Tools for testing: emulated Kubernetes clusters.", no_args_is_help=True)


async def _serve(emulator: KubeEmulator, kubeconfig_out: Path, demo: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with emulator:
        if demo:
            from mic.testing.seed import seed_demo

            seed_demo(emulator)
        path = emulator.write_kubeconfig(kubeconfig_out)
        typer.echo(f"cluster {emulator.name} serving at {emulator.url}")
        typer.echo(f"kubeconfig written to {path.resolve()}")
        typer.echo("press Ctrl-C to stop")
        await stop.wait()
    typer.echo(f"cluster {emulator.name} stopped")


@testing_app.command("cluster")
def cluster(
    name: Annotated[str, typer.Option(help="Cluster name (kubeconfig cluster and context).")] = "c1",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 6443,
    token: Annotated[
        list[str] | None, typer.Option(help="Bearer token allowed full access (repeatable). None: no auth.")
    ] = None,
    tls: Annotated[bool, typer.Option("--tls", help="Serve HTTPS with a freshly generated CA.")] = False,
    kubeconfig_out: Annotated[
        Path | None, typer.Option(help="Where to write the kubeconfig (default ./NAME.kubeconfig).")
    ] = None,
    seed_demo_objects: Annotated[
        bool, typer.Option("--seed-demo", help="Create demo namespaces, services, ingresses, configmaps.")
    ] = False,
    history_size: Annotated[int, typer.Option(help="Changes retained for watch resumption.")] = 1000,
    bookmark_interval: Annotated[float, typer.Option(help="Seconds between watch bookmarks.")] = 1.0,
) -> None:
    """Run an emulated Kubernetes API server in the foreground until Ctrl-C or SIGTERM."""
    from mic.testing.emulator import KubeEmulator, TokenPolicy  # the server stack only when used

    tokens = {t: TokenPolicy.allow_all() for t in token} if token else None
    emulator = KubeEmulator(
        name,
        tokens=tokens,
        tls=tls,
        host=host,
        port=port,
        history_size=history_size,
        bookmark_interval=bookmark_interval,
    )
    try:
        asyncio.run(_serve(emulator, kubeconfig_out or Path(f"{name}.kubeconfig"), seed_demo_objects))
    except OSError as exc:
        typer.echo(f"cannot serve on {host}:{port}: {exc}", err=True)
        raise typer.Exit(code=1) from None
