"""A tiny real HTTP server that answers like MIC's REST API, and sample bodies in the contract's shapes.

The CLI is tested against real HTTP (sockets, headers, status codes, JSON bodies) rather than a
mocked transport, so what is checked is what goes over the wire — but against a fake, so the
tests do not depend on the service being finished or on its storage and watches.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from click.testing import Result

TOKEN = "mic-admin-t0ken-never-printed"


@dataclass
class Recorded:
    """One request as the fake server saw it."""

    method: str
    path: str  # raw, still percent-encoded
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


Reply = tuple[int, Any]  # status, JSON-able body (None: empty; bytes: sent raw)
Handler = Callable[[Recorded], Reply]


@dataclass
class FakeMic:
    """Routes keyed by (method, raw path); anything unrouted gets FastAPI's 404 body."""

    url: str = ""
    routes: dict[tuple[str, str], Reply | Handler] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    """Sent with every answer (e.g. a `Warning`)."""

    def on(self, method: str, path: str, reply: Reply | Handler) -> None:
        self.routes[(method, path)] = reply

    def only_request(self) -> Recorded:
        assert len(self.requests) == 1, self.requests
        return self.requests[0]


def _handler_class(fake: FakeMic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            recorded = Recorded(
                method=self.command,
                path=split.path,
                query=parse_qs(split.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=json.loads(raw) if raw else None,
            )
            fake.requests.append(recorded)
            reply = fake.routes.get((self.command, split.path), (404, {"detail": "Not Found"}))
            status, body = reply(recorded) if callable(reply) else reply
            if body is None:
                payload, ctype = b"", "application/json"
            elif isinstance(body, bytes):
                payload, ctype = body, "text/plain"
            else:
                payload, ctype = json.dumps(body).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in fake.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815 (http.server names)

    return Handler


@contextmanager
def serving() -> Iterator[FakeMic]:
    """Serve a `FakeMic` on a free loopback port in a thread for the duration of the block."""
    fake = FakeMic()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


Run = Callable[..., Result]


def cluster_json(name: str = "eu-1", **overrides: Any) -> dict[str, Any]:
    """A Cluster as the contract shapes it."""
    cluster: dict[str, Any] = {
        "name": name,
        "labels": {"region": "eu", "tier": "prod"},
        "connection": {"type": "kubeconfig", "server": "https://10.0.0.1:6443", "context": "eu"},
        "resources": ["ingresses", "services"],
        "createdAt": "2024-05-01T10:00:00Z",
        "updatedAt": "2024-05-01T10:00:00Z",
        "generation": 1,
        "status": {
            "state": "ready",
            "reason": "Connected",
            "lastError": None,
            "serverVersion": "v1.30.2",
            "lastEventTime": "2024-05-01T10:05:00Z",
            "resources": [
                {
                    "resource": "ingresses",
                    "namespaces": None,
                    "labelSelector": "",
                    "state": "watching",
                    "reason": None,
                    "synced": True,
                    "objectCount": 3,
                    "resourceVersion": "1200",
                    "lastError": None,
                    "lastEventTime": "2024-05-01T10:05:00Z",
                },
                {
                    "resource": "services",
                    "namespaces": None,
                    "labelSelector": "",
                    "state": "watching",
                    "reason": None,
                    "synced": True,
                    "objectCount": 4,
                    "resourceVersion": "1201",
                    "lastError": None,
                    "lastEventTime": None,
                },
            ],
        },
    }
    cluster.update(overrides)
    return cluster


def k8s_object(name: str, namespace: str | None = "default", rv: str = "1", **labels: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "resourceVersion": rv,
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "labels": labels,
    }
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata}
