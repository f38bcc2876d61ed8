"""A webhook recipient for MIC subscriptions: prints one line per change, checks signatures.

    python examples/webhook_receiver.py --port 9000                       # no signature check
    python examples/webhook_receiver.py --port 9000 --secret-file hook.secret

Point a subscription at it (`mic subscriptions add hook --url http://127.0.0.1:9000/hook ...`).
With `--secret-file` (a file holding the subscription's `whsec_...` signing secret) every
request must carry valid Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
`webhook-signature`); a bad one is answered 401, which MIC retries with backoff (until the
subscription's maxAgeSeconds), so nothing is lost while a rotated secret is put in place. The
check uses only the standard library, to show what any recipient has to do.

It accepts every body format MIC sends: CloudEvents structured (the default), CloudEvents
batches, CloudEvents binary (`ce-*` headers), the original `mic-v1` envelope and `raw`.
Duplicates (an event id seen before, possible after MIC is killed or a request timed out) are
reported and not printed twice; the last 10,000 ids are remembered. It dedupes per event (the
CloudEvents `id`, `ce-id`, the envelope's `app_event_id`), not per request: a batch MIC retries
may be regrouped, and then its `webhook-id` changes while each event's id does not. Bodies over
10 MiB are refused with 413.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TOLERANCE = 300  # seconds a webhook-timestamp may differ from this host's clock
MAX_BODY = 10 * 1024 * 1024  # bytes; a larger request is refused with 413
REMEMBERED_IDS = 10_000  # event ids kept to spot duplicates; the oldest are forgotten


def verify(secret: str, headers: dict[str, str], body: bytes) -> str | None:
    """None when the Standard Webhooks signature is valid, else why not."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 15):
        return "webhook-timestamp is not Unix seconds"
    if abs(time.time() - int(timestamp)) > TOLERANCE:
        return "webhook-timestamp too old or too new"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        # compare bytes: compare_digest refuses str holding non-ASCII characters (TypeError)
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return None
    return "no matching v1 signature"


def remember(seen: OrderedDict[str, None], msg_id: str) -> bool:
    """False when `msg_id` is among the last REMEMBERED_IDS ids seen; else remember it."""
    if msg_id in seen:
        return False
    seen[msg_id] = None
    if len(seen) > REMEMBERED_IDS:
        seen.popitem(last=False)  # forget the oldest: memory stays bounded
    return True


def describe(headers: dict[str, str], body: bytes) -> list[tuple[str, str]]:
    """(event id, one line) per event in the request, whatever the subscription's format."""
    request_id = headers.get("webhook-id", "")
    if "ce-type" in headers:  # CloudEvents binary: attributes in headers, body = data
        line = _line(headers.get("ce-cluster"), headers["ce-type"], headers.get("ce-subject"))
        return [(headers.get("ce-id", request_id), line)]
    payload: Any = json.loads(body)
    if isinstance(payload, list):  # CloudEvents batch
        return [
            (str(e.get("id", "")), _line(e.get("cluster"), e.get("type"), e.get("subject"))) for e in payload
        ]
    if "specversion" in payload:  # CloudEvents structured (also the ping of `mic subscriptions test`)
        line = _line(payload.get("cluster"), payload.get("type"), payload.get("subject"))
        return [(str(payload.get("id", "")), line)]
    if "app_event_id" in payload:  # the original mic-v1 envelope
        subject = f"{payload.get('server_group_id')}/{payload.get('resource_name')}"
        line = _line(payload.get("app_environment_id"), payload.get("type"), subject)
        return [(str(payload["app_event_id"]), line)]
    obj = payload.get("object") or {}  # raw: {"type": ..., "object": ...}, no id of its own
    meta = obj.get("metadata") or {}
    return [(request_id, _line("?", payload.get("type"), f"{meta.get('namespace')}/{meta.get('name')}"))]


def _line(cluster: Any, type_: Any, subject: Any) -> str:
    return f"{cluster or '-':<10} {type_ or '-':<28} {subject or '-'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret-file", type=Path, help="file holding the whsec_ signing secret")
    args = parser.parse_args()
    secret = args.secret_file.read_text().strip() if args.secret_file else None
    seen: OrderedDict[str, None] = OrderedDict()  # recent event ids, oldest first
    lock = threading.Lock()  # requests arrive in parallel (one thread each): one at a time here

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = self.headers.get("content-length") or "0"
            if not (length.isascii() and length.isdigit()):
                self.send_error(400, "bad content-length")  # send_error also closes the connection
                return
            if len(length) > 9 or int(length) > MAX_BODY:
                self.send_error(413)
                return
            body = self.rfile.read(int(length))
            headers = {name.lower(): value for name, value in self.headers.items()}
            problem = verify(secret, headers, body) if secret else None
            with lock:
                if problem:
                    print(f"rejected: {problem}", flush=True)
                else:
                    for event_id, line in describe(headers, body):
                        if event_id and not remember(seen, event_id):
                            print(f"duplicate {event_id} (already handled)", flush=True)
                        else:
                            print(line, flush=True)
            self.send_response(401 if problem else 204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per event only
            pass

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    checked = "checked" if secret else "not checked"
    print(f"listening on http://{args.host}:{args.port}/ (signatures {checked})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
