"""The HTTP face of the emulator: kube's URL layout, verbs, status codes and bodies.

One catch-all route parses the path the way kube-apiserver lays it out (`/api/v1/...`,
`/apis/{group}/{version}/...`, `namespaces/{ns}/` infix, `/status` subresource, the legacy
`/watch/` prefix) so unknown paths, unknown resources and unsupported verbs get kube's
404/405 `Status` bodies rather than aiohttp's defaults.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from aiohttp import web

from mic.kube.patch import merge_patch
from mic.testing.emulator import errors
from mic.testing.emulator.auth import TokenPolicy, forbidden, unauthorized
from mic.testing.emulator.errors import StatusError
from mic.testing.emulator.faults import FaultPlan
from mic.testing.emulator.patch import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    json_patch,
)
from mic.testing.emulator.resources import ResourceType
from mic.testing.emulator.selectors import FieldSelector, parse_field_selector, parse_label_selector
from mic.testing.emulator.state import ClusterState, deep_copy, strip_type_meta
from mic.testing.emulator.watch import DROPPED, LIVE, STALLED, Watcher, chunk_lines

log = logging.getLogger(__name__)

KUBE_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-mic-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}
TOKEN_KEY = web.RequestKey("mic_emulator_token", str)


@dataclass(frozen=True, slots=True)
class Target:
    """A resource request's parts, as parsed from the URL."""

    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str
    watch_path: bool


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the emulator answered (for tests asserting what a client sent)."""

    method: str
    path_qs: str
    verb: str
    status: int


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def status_response(exc: StatusError) -> web.Response:
    return json_response(exc.body, exc.code, exc.headers or None)


def parse_target(path: str) -> Target | str:
    """A `Target` for resource paths, or the name of a discovery document ("api", "group:x"...)."""
    segs = [s for s in path.split("/") if s]
    if not segs:
        return "root"
    if len(segs) == 1 and segs[0] in ("version", "healthz", "livez", "readyz", "api", "apis"):
        return segs[0]
    if segs[0] == "api" and len(segs) >= 2:
        group, version, rest = "", segs[1], segs[2:]
    elif segs[0] == "apis" and len(segs) >= 2:
        if len(segs) == 2:
            return f"group:{segs[1]}"
        group, version, rest = segs[1], segs[2], segs[3:]
    else:
        raise errors.page_not_found()
    if not rest:
        return f"resources:{group}/{version}"
    watch_path = rest[0] == "watch"
    if watch_path:
        rest = rest[1:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise errors.page_not_found()
    return Target(
        group=group,
        version=version,
        plural=rest[0],
        namespace=namespace,
        name=rest[1] if len(rest) > 1 else None,
        subresource=rest[2] if len(rest) > 2 else "",
        watch_path=watch_path,
    )


SERVED_MEDIA_TYPES = ("application/json",)


def accepts_json(accept: str | None) -> bool:
    """Whether an Accept header admits plain JSON, the only encoding the emulator produces.

    As kube's content negotiation: no header, `*/*`, `application/*` or `application/json`
    clauses qualify; a clause asking for a conversion (`as=Table`, `g=`/`v=` parameters) does
    not, since the emulator serves no Table or PartialObjectMetadata; other parameters
    (charset, pretty, stream, q) do not matter.
    """
    if accept is None or not accept.strip():
        return True
    for clause in accept.split(","):
        media_type, *params = (part.strip() for part in clause.split(";"))
        if media_type.lower() not in ("*/*", "application/*", "application/json", "*"):
            continue
        names = {p.partition("=")[0].strip().lower() for p in params}
        if not names & {"as", "g", "v"}:
            return True
    return False


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def kube_verb(method: str, target: Target | str, watch: bool) -> str:
    if not isinstance(target, Target):
        return "get"
    if method == "GET":
        if watch or target.watch_path:
            return "watch"
        return "get" if target.name else "list"
    if method == "DELETE":
        return "delete" if target.name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiServer:
    """Serves one `ClusterState` over HTTP; owns the open watches and the injected faults."""

    def __init__(
        self,
        state: ClusterState,
        *,
        tokens: dict[str, TokenPolicy] | None,
        bookmark_interval: float,
        watch_buffer: int,
        faults: FaultPlan,
    ) -> None:
        self.state = state
        self.tokens = tokens
        self.bookmark_interval = bookmark_interval
        self.watch_buffer = watch_buffer
        self.faults = faults
        self.watchers: set[Watcher] = set()
        self.watch_opened = asyncio.Condition()
        self.firehoses: dict[tuple[str, str | None], list[bytes]] = {}
        self.requests: deque[RequestRecord] = deque(maxlen=10_000)
        self.address = ""

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    # -- cross-cutting: pause, latency, faults, authentication ----------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        await self.faults.gate()
        watch = _truthy(request.query.get("watch"))
        try:
            target: Target | str | None = parse_target(request.path)
        except StatusError:
            target = None
        verb = kube_verb(request.method, target or "", watch)
        status = 200
        try:
            failure = self.faults.take(verb, request.path_qs)
            if failure is not None:
                raise failure
            self._authenticate(request)
            response = await handler(request)
            status = response.status
            return response
        except StatusError as exc:
            status = exc.code
            return status_response(exc)
        finally:
            self.requests.append(RequestRecord(request.method, request.path_qs, verb, status))

    def _authenticate(self, request: web.Request) -> None:
        if self.tokens is None:
            return
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self.tokens:
            raise unauthorized()
        request[TOKEN_KEY] = token.strip()

    def _authorize(self, request: web.Request, verb: str, target: Target) -> None:
        token = request.get(TOKEN_KEY)
        if self.tokens is None or token is None:
            return
        policy = self.tokens[token]
        resource = f"{target.plural}.{target.group}" if target.group else target.plural
        if not policy.allows(verb, resource, target.namespace):
            raise forbidden(
                token, verb, target.plural, target.group, target.namespace, target.name, target.subresource
            )

    # -- routing ----------------------------------------------------------------------------

    def _route_not_found(self, path: str) -> StatusError:
        """404 for a path with no route: with details `{}` under a served group/version (kube's
        go-restful handler), without them elsewhere (kube's last-resort not-found handler)."""
        segs = [s for s in path.split("/") if s]
        group_version: tuple[str, str] | None = None
        if len(segs) >= 2 and segs[0] == "api":
            group_version = ("", segs[1])
        elif len(segs) >= 3 and segs[0] == "apis":
            group_version = (segs[1], segs[2])
        if group_version is not None and self.state.registry.resource_list(*group_version) is not None:
            return errors.page_not_found()
        return errors.no_handler()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            target = parse_target(request.path)
        except StatusError:
            raise self._route_not_found(request.path) from None
        if isinstance(target, str):
            if request.method != "GET":
                raise errors.method_not_allowed()
            if target not in ("version", "healthz", "livez", "readyz"):
                self._negotiate(request)
            return self._discovery(target)
        watch = _truthy(request.query.get("watch")) or target.watch_path
        verb = kube_verb(request.method, target, watch)
        self._authorize(request, verb, target)
        rt = self.state.registry.find(target.group, target.version, target.plural)
        if rt is None:
            raise self._route_not_found(request.path)
        if target.namespace is not None and not rt.namespaced:
            raise errors.page_not_found()
        if target.subresource and (target.subresource != "status" or not rt.has_status):
            raise errors.page_not_found()
        if target.subresource and verb not in ("get", "update", "patch"):
            raise errors.method_not_allowed()
        if verb not in rt.verbs and verb != "watch":
            raise errors.method_not_allowed()
        if verb in ("update", "patch") and not target.name:
            raise errors.method_not_allowed()
        self._negotiate(request)
        ns = target.namespace or ""
        if verb == "watch":
            return await self._watch(request, rt, target)
        if verb == "list":
            return self._list(request, rt, target)
        if verb == "get":
            return json_response(self._out(rt, target, self.state.get(rt, ns, target.name or "")))
        if verb == "create":
            if target.name:
                raise errors.method_not_allowed()
            body = await self._read_object(request, rt, target)
            created = self.state.create(rt, body, ns, target.version)
            return json_response(self._out(rt, target, created), 201)
        if verb == "update":
            body = await self._read_object(request, rt, target)
            updated = self.state.update(rt, body, ns, target.name, target.subresource, target.version)
            return json_response(self._out(rt, target, updated))
        if verb == "patch":
            return await self._patch(request, rt, target)
        if verb == "delete":
            return await self._delete(request, rt, target)
        if verb == "deletecollection":
            return self._delete_collection(request, rt, target)
        raise errors.method_not_allowed()

    def _discovery(self, what: str) -> web.Response:
        registry = self.state.registry
        if what == "root":
            paths = ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]
            for group, versions in registry.groups().items():
                if group:
                    paths += [f"/apis/{group}"] + [f"/apis/{group}/{v}" for v in versions]
            return json_response({"paths": sorted(paths)})
        if what == "version":
            return json_response(KUBE_VERSION)
        if what in ("healthz", "livez", "readyz"):
            return web.Response(text="ok", content_type="text/plain")
        if what == "api":
            return json_response(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": self.address}
                    ],
                }
            )
        if what == "apis":
            return json_response(registry.api_group_list())
        if what.startswith("group:"):
            group_doc = registry.api_group(what[6:])
            if group_doc is None:
                raise errors.no_handler()
            return json_response({"kind": "APIGroup", "apiVersion": "v1", **group_doc})
        group, _, version = what[len("resources:") :].partition("/")
        doc = registry.resource_list(group, version)
        if doc is None:
            raise errors.no_handler()
        return json_response(doc)

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _negotiate(request: web.Request) -> None:
        """406 when the client accepts nothing the emulator can send (it sends only JSON)."""
        if not accepts_json(request.headers.get("Accept")):
            raise errors.not_acceptable(SERVED_MEDIA_TYPES)

    @staticmethod
    def _out(rt: ResourceType, target: Target, obj: dict[str, Any]) -> dict[str, Any]:
        """The object as served at the requested version (custom resources may serve several)."""
        api_version = rt.api_version_for(target.version)
        return obj if obj.get("apiVersion") == api_version else dict(obj, apiVersion=api_version)

    async def _read_body(self, request: web.Request, allowed: tuple[str, ...]) -> Any:
        content_type = request.content_type or "application/json"
        if content_type not in allowed:
            raise errors.unsupported_media_type(content_type)
        raw = await request.read()
        try:
            if content_type.endswith("yaml"):
                return yaml.safe_load(raw)
            return orjson.loads(raw)
        except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"the body of the request could not be decoded: {exc}") from None

    async def _read_object(self, request: web.Request, rt: ResourceType, target: Target) -> dict[str, Any]:
        body = await self._read_body(request, ("application/json", "application/yaml"))
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        expected = rt.api_version_for(target.version)
        if body.get("apiVersion") and body["apiVersion"] != expected:
            raise errors.bad_request(
                f"the API version in the data ({body['apiVersion']}) does not match the expected API version "
                f"({expected})"
            )
        if body.get("kind") and body["kind"] != rt.kind:
            raise errors.bad_request(
                f"the kind in the data ({body['kind']}) does not match the expected kind ({rt.kind})"
            )
        return body

    def _selectors(self, request: web.Request, rt: ResourceType, target: Target) -> tuple[Any, FieldSelector]:
        labels = parse_label_selector(request.query.get("labelSelector"))
        field_text = request.query.get("fieldSelector", "")
        if target.name:
            field_text = f"metadata.name={target.name}" + (f",{field_text}" if field_text else "")
        return labels, parse_field_selector(field_text, rt.field_selectors)

    # -- list / watch ----------------------------------------------------------------------

    @staticmethod
    def _parse_rv(value: str | None) -> int | None:
        if value is None or value == "":
            return None
        try:
            rv = int(value)
        except ValueError:
            raise errors.bad_request(f'invalid resource version "{value}"') from None
        if rv < 0:
            raise errors.bad_request(f'invalid resource version "{value}"')
        return rv

    @staticmethod
    def _validate_list_options(query: Any, watch: bool) -> None:
        """apimachinery's ValidateListOptions: every violation, in its order, as one 422."""
        match = query.get("resourceVersionMatch", "")
        has_continue = bool(query.get("continue"))
        send_initial = query.get("sendInitialEvents")
        causes: list[tuple[str, str]] = []

        def forbid(why: str, field: str = "resourceVersionMatch") -> None:
            causes.append((field, f"Forbidden: {why}"))

        def not_supported(*values: str) -> None:
            supported = ", ".join(f'"{v}"' for v in values)
            causes.append(
                ("resourceVersionMatch", f'Unsupported value: "{match}": supported values: {supported}')
            )

        if watch:
            if send_initial is not None and match != "NotOlderThan":
                forbid("sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")
            if match:
                if send_initial is None:
                    forbid("resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")
                if match != "NotOlderThan":
                    not_supported("NotOlderThan")
                if has_continue:
                    forbid("resourceVersionMatch is forbidden when continue is provided")
        else:
            rv_text = query.get("resourceVersion", "")
            if match:
                if not rv_text:
                    forbid("resourceVersionMatch is forbidden unless resourceVersion is provided")
                if has_continue:
                    forbid("resourceVersionMatch is forbidden when continue is provided")
                if match not in ("Exact", "NotOlderThan"):
                    not_supported("Exact", "NotOlderThan", "")
                if match == "Exact" and rv_text == "0":
                    forbid('resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
            if send_initial is not None:
                forbid("sendInitialEvents is forbidden for list", "sendInitialEvents")
        if causes:
            raise errors.invalid_list_options(causes)

    def _list(self, request: web.Request, rt: ResourceType, target: Target) -> web.Response:
        query = request.query
        labels, fields = self._selectors(request, rt, target)
        self._validate_list_options(query, watch=False)
        continue_token = query.get("continue") or None
        rv = self._parse_rv(query.get("resourceVersion"))
        match = query.get("resourceVersionMatch", "")
        if continue_token and rv:
            raise errors.bad_request("specifying resource version is not allowed when using continue")
        try:
            limit = max(int(query.get("limit", "0") or 0), 0)
        except ValueError:
            raise errors.bad_request(f"invalid limit {query.get('limit')!r}") from None
        # kube's list semantics: resourceVersion N is Exact with resourceVersionMatch=Exact, and
        # also (the legacy rule) for a paged list without resourceVersionMatch; otherwise it is
        # NotOlderThan, served at the most recent version.
        at: int | None = None
        if rv:
            if match == "Exact" or (not match and limit and not continue_token):
                at = rv
            elif rv > self.state.rv:
                raise errors.too_large_resource_version(rv, self.state.rv)
        page = self.state.list(rt, target.namespace, labels, fields, limit, continue_token, at)
        api_version = rt.api_version_for(target.version)
        items = page.items
        if rt.builtin:
            items = strip_type_meta(items)
        elif api_version != rt.api_version:
            items = [dict(item, apiVersion=api_version) for item in items]
        meta: dict[str, Any] = {"resourceVersion": str(page.resource_version)}
        if page.continue_token:
            meta["continue"] = page.continue_token
        if page.remaining is not None:
            meta["remainingItemCount"] = page.remaining
        return json_response(
            {"kind": rt.list_kind_name, "apiVersion": api_version, "metadata": meta, "items": items}
        )

    def _take_firehose(self, rt: ResourceType, namespace: str | None) -> list[bytes]:
        for key in ((rt.key, namespace), (rt.key, None)):
            chunks = self.firehoses.pop(key, None)
            if chunks is not None:
                return chunks
        return []

    async def _watch(self, request: web.Request, rt: ResourceType, target: Target) -> web.StreamResponse:
        query = request.query
        labels, fields = self._selectors(request, rt, target)
        rv = self._parse_rv(query.get("resourceVersion"))
        send_initial = query.get("sendInitialEvents")
        bookmarks = _truthy(query.get("allowWatchBookmarks"))
        self._validate_list_options(query, watch=True)
        try:
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
        except ValueError:
            raise errors.bad_request(f"invalid timeoutSeconds {query.get('timeoutSeconds')!r}") from None
        watcher = Watcher(
            rt,
            target.version,
            target.namespace,
            labels,
            fields,
            bookmarks=bookmarks,
            bookmark_interval=self.bookmark_interval,
            timeout=timeout,
            max_buffer=self.watch_buffer,
            current_rv=lambda: self.state.rv,
        )
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
        )
        response.enable_chunked_encoding()
        # From here to subscribe there is no await: the snapshot and the subscription are atomic.
        # rv unset or "0": current state as ADDED events first (unless sendInitialEvents=false,
        # which starts at the most recent version); rv N: retained changes after N.
        initial = _truthy(send_initial) or (send_initial is None and not rv)
        try:
            replay = [] if initial or not rv else self.state.changes_since(rt.key, rv)
        except StatusError as exc:
            await response.prepare(request)
            error = {"type": "ERROR", "object": exc.body}
            await response.write(orjson.dumps(error) + b"\n")
            await response.write_eof()
            return response
        if rv and not initial:
            watcher.since_rv = rv
        if initial:
            watcher.initial = [o for o in self.state.objects(rt) if watcher.wants(o)]
            if _truthy(send_initial) and bookmarks:
                watcher.initial_end_rv = self.state.rv
        # Replayed history goes out before live events and does not count against the
        # slow-watcher buffer: a long replay is not the client's fault.
        replayed = [line for change in replay if (line := watcher.line_for(change)) is not None]
        watcher.prelude = [*self._take_firehose(rt, target.namespace), *chunk_lines(replayed)]
        self.state.subscribe(rt.key, watcher)
        self.watchers.add(watcher)
        async with self.watch_opened:
            self.watch_opened.notify_all()
        try:
            await response.prepare(request)
            how = await watcher.stream(request, response)
        except ConnectionError:
            how = DROPPED
        finally:
            self.state.unsubscribe(rt.key, watcher)
            self.watchers.discard(watcher)
        log.debug("watch on %s ended: %s", rt.key, how)
        if how == DROPPED:
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write_eof()
        return response

    # -- writes ----------------------------------------------------------------------------

    async def _patch(self, request: web.Request, rt: ResourceType, target: Target) -> web.Response:
        content_type = request.content_type
        allowed = (MERGE_PATCH, JSON_PATCH) + ((STRATEGIC_MERGE_PATCH,) if rt.builtin else ())
        if content_type == APPLY_PATCH or content_type not in allowed:
            raise errors.unsupported_media_type(content_type)
        patch = await self._read_body(request, allowed)
        ns = target.namespace or ""
        current = deep_copy(self.state.get(rt, ns, target.name or ""))
        if content_type == JSON_PATCH:
            patched = json_patch(current, patch)
        else:
            if not isinstance(patch, dict):
                raise errors.bad_request("a merge patch must be a JSON object")
            patched = merge_patch(current, patch)
        if not isinstance(patched, dict):
            raise errors.bad_request("the patched object is not a JSON object")
        meta = patched.setdefault("metadata", {})
        # A patch is a precondition on resourceVersion only if it names one itself.
        patch_rv = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
        if content_type == JSON_PATCH:
            same = meta.get("resourceVersion") == current["metadata"].get("resourceVersion")
            patch_rv = None if same else meta.get("resourceVersion")
        meta["resourceVersion"] = patch_rv or ""
        if meta.get("name") != target.name:
            raise errors.invalid(
                rt.kind, target.name or "", rt.group, [("metadata.name", "Invalid value: field is immutable")]
            )
        updated = self.state.update(rt, patched, ns, target.name, target.subresource, target.version)
        return json_response(self._out(rt, target, updated))

    async def _delete(self, request: web.Request, rt: ResourceType, target: Target) -> web.Response:
        options: Any = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                try:
                    options = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise errors.bad_request(f"invalid DeleteOptions: {exc}") from None
        pre = (options.get("preconditions") or {}) if isinstance(options, dict) else {}
        obj, _ = self.state.delete(
            rt, target.namespace or "", target.name or "", pre.get("uid"), pre.get("resourceVersion")
        )
        if rt.returns_deleted_object or obj["metadata"].get("deletionTimestamp"):
            return json_response(self._out(rt, target, obj))
        details: dict[str, Any] = {"name": obj["metadata"]["name"]}
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.plural
        details["uid"] = obj["metadata"].get("uid")
        return json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    def _delete_collection(self, request: web.Request, rt: ResourceType, target: Target) -> web.Response:
        labels, fields = self._selectors(request, rt, target)
        page = self.state.list(rt, target.namespace, labels, fields)
        deleted = [
            self.state.delete(rt, o["metadata"].get("namespace", ""), o["metadata"]["name"])[0]
            for o in page.items
        ]
        items = strip_type_meta(deleted) if rt.builtin else deleted
        return json_response(
            {
                "kind": rt.list_kind_name,
                "apiVersion": rt.api_version_for(target.version),
                "metadata": {"resourceVersion": str(self.state.rv)},
                "items": items,
            }
        )

    # -- faults on open watches ----------------------------------------------------------------

    def close_watches(self, how: str) -> int:
        """End (ENDED), abort (DROPPED) or silence (STALLED) every open watch; returns how many."""
        count = 0
        for watcher in list(self.watchers):
            if watcher.state == LIVE or (watcher.state == STALLED and how != STALLED):
                if how == STALLED:
                    self.state.unsubscribe(watcher.rt.key, watcher)
                watcher.close(how)
                count += 1
        return count

    def add_firehose(self, rt: ResourceType, namespace: str | None, lines: list[bytes]) -> None:
        self.firehoses[(rt.key, namespace)] = chunk_lines(
            [line if line.endswith(b"\n") else line + b"\n" for line in lines]
        )
