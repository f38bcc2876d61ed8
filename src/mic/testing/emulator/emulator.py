"""`KubeEmulator`: start, stop and script one emulated cluster (see the package docstring)."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from aiohttp import web

from mic.kube.patch import merge_patch
from mic.testing.emulator import errors
from mic.testing.emulator.auth import TokenPolicy
from mic.testing.emulator.crds import crd_object
from mic.testing.emulator.faults import FaultPlan
from mic.testing.emulator.patch import JSON_PATCH, json_patch
from mic.testing.emulator.resources import CRD_RESOURCE, ResourceType
from mic.testing.emulator.server import ApiServer, RequestRecord
from mic.testing.emulator.state import ClusterState, deep_copy
from mic.testing.emulator.tls import ServerCertificate, make_server_certificate
from mic.testing.emulator.watch import DROPPED, ENDED, STALLED

log = logging.getLogger(__name__)


class KubeEmulator:
    """An emulated Kubernetes API server on a real socket, plus in-process control of it.

    `tokens` maps bearer tokens to what they may do (None: no authentication at all).
    `history_size` bounds the global change history that watches and continue tokens are
    served from; `bookmark_interval` is the period of BOOKMARK events for watches that allow
    them; `watch_buffer` is how many undelivered events one watch may queue before the
    server closes it, as kube does with slow watchers. `short_pages` makes paged lists read
    at most `limit` stored objects per page, so selectors give short or empty pages with a
    continue token (allowed by the API, though kube's storage fills pages): for testing that
    a client keeps paging.

    The in-process helpers (`create`, `update`, `patch`, `delete`, ...) take the same path as
    the HTTP verbs, so they produce the same resourceVersions and watch events; they return
    copies, so mutating a result never changes the cluster. Failures raise `StatusError`
    with the code and reason the HTTP API would answer.
    """

    def __init__(
        self,
        name: str = "emulator",
        *,
        tokens: dict[str, TokenPolicy] | None = None,
        tls: bool = False,
        history_size: int = 1000,
        bookmark_interval: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        watch_buffer: int = 10_000,
        shutdown_timeout: float = 0.5,
        short_pages: bool = False,
    ) -> None:
        self.name = name
        self.tokens = dict(tokens) if tokens is not None else None
        self.tls = tls
        self.host = host
        self.port = port
        self.shutdown_timeout = shutdown_timeout
        self.state = ClusterState(history_size, short_pages=short_pages)
        self.faults = FaultPlan()
        self.server = ApiServer(
            self.state,
            tokens=self.tokens,
            bookmark_interval=bookmark_interval,
            watch_buffer=watch_buffer,
            faults=self.faults,
        )
        self.certificate: ServerCertificate | None = None
        self._runner: web.AppRunner | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> KubeEmulator:
        """Listen on host:port (port 0 picks a free one, kept across `restart`)."""
        if self._runner is not None:
            return self
        ssl_context = None
        if self.tls:
            if self.certificate is None:
                self.certificate = await asyncio.to_thread(make_server_certificate, [self.host], self.name)
            ssl_context = self.certificate.server_context()
        runner = web.AppRunner(
            self.server.app(),
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=self.shutdown_timeout,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=ssl_context)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = int(runner.addresses[0][1])
        self.server.address = f"{self.host}:{self.port}"
        self._runner = runner
        log.info("kube emulator %s listening on %s", self.name, self.url)
        return self

    async def stop(self) -> None:
        """Close every connection (open watches are aborted) and stop listening; never hangs."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self.server.close_watches(DROPPED)
        self.faults.resume()
        await runner.cleanup()
        log.info("kube emulator %s stopped", self.name)

    async def restart(self, *, expire_history: bool = True) -> None:
        """Stop and start again on the same port, keeping every object.

        Open connections die (watches are aborted mid-stream), as when an API server restarts.
        A restarted kube-apiserver rebuilds its watch cache from a fresh list, so a watch from
        any older resourceVersion gets 410 and its client relists: the history goes too, unless
        `expire_history` is False (a server whose watch cache survived, e.g. behind a proxy).
        """
        await self.stop()
        if expire_history:
            self.state.compact(0)
        await self.start()

    async def __aenter__(self) -> KubeEmulator:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._runner is not None

    # -- how clients reach it ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def ca_pem(self) -> bytes | None:
        """PEM of the CA that signed the server certificate (None without TLS or before start)."""
        return self.certificate.ca_pem if self.certificate else None

    def client_ssl_context(self) -> ssl.SSLContext | None:
        """An SSL context trusting this emulator's CA, for raw aiohttp/httpx clients."""
        return self.certificate.client_context() if self.certificate else None

    def default_token(self) -> str | None:
        """The token kubeconfigs use unless told otherwise: the first allow-all one, else the first."""
        if not self.tokens:
            return None
        for token, policy in self.tokens.items():
            if policy == TokenPolicy.allow_all():
                return token
        return next(iter(self.tokens))

    def kubeconfig(
        self, token: str | None = None, context_name: str | None = None, namespace: str = "default"
    ) -> dict[str, Any]:
        """A kubeconfig document (dict) for this emulator: one cluster, user and context."""
        if self.port == 0:
            raise RuntimeError("start the emulator before asking for its kubeconfig")
        context = context_name or self.name
        cluster: dict[str, Any] = {"server": self.url}
        if self.certificate is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.certificate.ca_pem).decode()
        user: dict[str, Any] = {}
        token = token or self.default_token()
        if token:
            user["token"] = token
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": self.name, "cluster": cluster}],
            "users": [{"name": f"{self.name}-user", "user": user}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": self.name, "user": f"{self.name}-user", "namespace": namespace},
                }
            ],
            "current-context": context,
            "preferences": {},
        }

    def kubeconfig_yaml(
        self, token: str | None = None, context_name: str | None = None, namespace: str = "default"
    ) -> str:
        return yaml.safe_dump(self.kubeconfig(token, context_name, namespace), sort_keys=False)

    def write_kubeconfig(
        self, path: str | Path, token: str | None = None, context_name: str | None = None
    ) -> Path:
        """Write the kubeconfig with mode 0600 (it holds a credential); returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(mode=0o600, exist_ok=True)
        target.chmod(0o600)
        target.write_text(self.kubeconfig_yaml(token, context_name))
        return target

    # -- faults ----------------------------------------------------------------------------------

    def drop_watches(self) -> int:
        """Abort every open watch connection like a network cut (no clean chunked end).

        Returns how many watches were dropped.
        """
        return self.server.close_watches(DROPPED)

    def end_watches(self) -> int:
        """End every open watch cleanly (pending events flushed, then the chunked end), as an
        API server's watch timeout does. Returns how many watches were ended."""
        return self.server.close_watches(ENDED)

    def stall_watches(self) -> int:
        """Open watches stop receiving anything (events, bookmarks) but stay open until the
        client closes them; watches opened later work normally. Returns how many stalled."""
        return self.server.close_watches(STALLED)

    def fail_requests(
        self,
        status: int,
        count: int = 1,
        retry_after: float | None = None,
        path_contains: str | None = None,
        verbs: Iterable[str] | None = None,
    ) -> None:
        """Answer the next `count` matching requests with `status` and kube's Status body.

        `verbs` are kube verbs (get, list, watch, create, update, patch, delete,
        deletecollection; discovery requests are `get`); `path_contains` matches the path and
        query string. `retry_after` adds a `Retry-After` header and details.retryAfterSeconds.
        Rules stack; each is used up after `count` matches.
        """
        self.faults.fail(status, count, retry_after, path_contains, verbs)

    @property
    def failed_requests(self) -> int:
        """How many requests have been failed by `fail_requests` so far."""
        return self.faults.failed

    def set_latency(self, seconds: float) -> None:
        """Delay every request (watches: the start of the stream) by `seconds`."""
        self.faults.latency = max(0.0, seconds)

    def pause(self) -> None:
        """Hold every new request unanswered until `resume` (open watches are unaffected)."""
        self.faults.pause()

    def resume(self) -> None:
        self.faults.resume()

    def clear_faults(self) -> None:
        """Disarm failures, latency and pause (watch faults already applied stay applied)."""
        self.faults.clear()

    def compact(self, keep: int = 0) -> None:
        """Drop all but the newest `keep` history entries: watches from older resourceVersions
        get an ERROR 410 Expired event, continue tokens from before answer 410 Expired."""
        self.state.compact(keep)

    def firehose(self, resource: str, events: Sequence[bytes], namespace: str | None = None) -> None:
        """Queue pre-serialised watch lines for the next watch on `resource`.

        That watch (in `namespace`, or any namespace when None) first receives these lines
        verbatim, written in 1 MiB chunks as fast as the socket takes them, then continues
        as a normal watch. Lines get a trailing newline if they lack one. For benchmarks that
        need a stream faster than any client.
        """
        self.server.add_firehose(self.state.type_for(resource), namespace, list(events))

    @property
    def open_watches(self) -> int:
        return len(self.server.watchers)

    async def wait_for_watches(
        self, count: int = 1, resource: str | None = None, within: float = 5.0
    ) -> None:
        """Wait until at least `count` watches (on `resource`, if given) are open."""
        key = self.state.type_for(resource).key if resource else None

        def enough() -> bool:
            return sum(1 for w in self.server.watchers if key is None or w.rt.key == key) >= count

        async with asyncio.timeout(within):
            async with self.server.watch_opened:
                await self.server.watch_opened.wait_for(enough)

    @property
    def requests(self) -> list[RequestRecord]:
        """The most recent requests answered (method, path with query, kube verb, status)."""
        return list(self.server.requests)

    # -- in-process state ------------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        """The current global resourceVersion."""
        return str(self.state.rv)

    def resource(self, resource: str) -> ResourceType:
        """A served type from `pods`, `po`, `Pod` or `ingresses.networking.k8s.io`; 404 otherwise."""
        return self.state.type_for(resource)

    def _type_of(self, obj: dict[str, Any]) -> ResourceType:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        rt = self.state.registry.by_kind(api_version, kind)
        if rt is None:
            raise errors.StatusError(
                404, "NotFound", f'no matches for kind "{kind}" in version "{api_version}"'
            )
        return rt

    @staticmethod
    def _version(obj: dict[str, Any]) -> str:
        return str(obj.get("apiVersion", "")).rpartition("/")[2]

    def create(self, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Create `obj` (its apiVersion and kind pick the resource); returns the stored object."""
        rt = self._type_of(obj)
        ns = namespace or (obj.get("metadata") or {}).get("namespace") or ""
        return deep_copy(self.state.create(rt, obj, ns, self._version(obj)))

    def update(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace an object (PUT); a metadata.resourceVersion in `obj` is a precondition."""
        rt = self._type_of(obj)
        ns = (obj.get("metadata") or {}).get("namespace") or ""
        return deep_copy(self.state.update(rt, obj, ns, None, "", self._version(obj)))

    def update_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace only the status (PUT .../status)."""
        rt = self._type_of(obj)
        ns = (obj.get("metadata") or {}).get("namespace") or ""
        return deep_copy(
            self.state.update(rt, obj, ns, None, "status" if rt.has_status else "", self._version(obj))
        )

    def patch(
        self,
        resource: str,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: str = "merge",
        subresource: str = "",
    ) -> dict[str, Any]:
        """Patch an object: `patch_type` "merge" (RFC 7386, default) or "json" (RFC 6902)."""
        rt = self.resource(resource)
        ns = (namespace or "default") if rt.namespaced else ""
        current = deep_copy(self.state.get(rt, ns, name))
        patched = (
            json_patch(current, patch) if patch_type in ("json", JSON_PATCH) else merge_patch(current, patch)
        )
        rv = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
        patched.setdefault("metadata", {})["resourceVersion"] = rv or ""
        return deep_copy(self.state.update(rt, patched, ns, name, subresource))

    def delete(self, resource: str, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        """Delete an object; returns its last state (with deletionTimestamp if finalizers hold it)."""
        rt = self.resource(resource)
        ns = (namespace or "default") if rt.namespaced else ""
        return deep_copy(self.state.delete(rt, ns, name)[0])

    def get(self, resource: str, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        rt = self.resource(resource)
        return deep_copy(self.state.get(rt, (namespace or "default") if rt.namespaced else "", name))

    def objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Current objects of a resource (all namespaces when `namespace` is None), key order."""
        rt = self.resource(resource)
        return [
            deep_copy(o)
            for o in self.state.objects(rt)
            if namespace is None or o["metadata"].get("namespace") == namespace
        ]

    def register_crd(
        self,
        group: str,
        version: str,
        kind: str,
        plural: str,
        namespaced: bool = True,
        short_names: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Create a CustomResourceDefinition serving `plural.group/version` (with a status
        subresource and no schema); returns the CRD object."""
        rt = self.resource(CRD_RESOURCE)
        crd = crd_object(group, version, kind, plural, namespaced, tuple(short_names))
        return deep_copy(self.state.create(rt, crd))
