"""An emulated Kubernetes API server speaking kube's REST wire protocol over real HTTP(S).

What it does as kube-apiserver does (the things clients depend on):

- URL layout (`/api/v1`, `/apis/{group}/{version}`, `namespaces/{ns}/`, `/status`, the legacy
  `/watch/` prefix), discovery documents (`/version`, `/api`, `/api/v1`, `/apis`,
  `/apis/{group}`, `/apis/{group}/{version}`), failures as `Status` bodies with kube's
  reasons and messages (NotFound, AlreadyExists, Conflict, Invalid, BadRequest,
  MethodNotAllowed, NotAcceptable, UnsupportedMediaType, Unauthorized, Forbidden, Expired,
  Timeout); 422 causes carry their field error's type (FieldValueRequired,
  FieldValueForbidden, FieldValueNotSupported, FieldValueInvalid...); 404/405 for a path
  with no route under a served group/version carry `"details":{}` as go-restful's handler
  sends them, a missing object's 404 its name and resource.
- One resourceVersion counter for all resources (etcd's revision), as decimal strings;
  no-op updates get no new resourceVersion and no event; generateName; finalizers hold an
  object with deletionTimestamp set until an update removes the last one.
- Lists: label selectors (=, ==, !=, in, notin, exists, !key, >, <), field selectors
  (metadata.name, metadata.namespace, plus kube's per-type fields such as pods'
  spec.nodeName/status.phase and secrets' type; others are 400), limit/continue with kube's
  token format, pages consistent at the first page's resourceVersion (rebuilt from history,
  like etcd MVCC), remainingItemCount on unfiltered lists, 410 Expired once the token's
  resourceVersion is compacted, a continue token on any full page with stored objects left
  to read even if none of them matches the selectors (as etcd3 storage),
  resourceVersionMatch=Exact/NotOlderThan, and kube's legacy rule that a paged list (limit,
  no continue) from resourceVersion N without resourceVersionMatch is Exact (410 once N is
  compacted). ListOptions are validated as
  apimachinery does (422 listing every violation: resourceVersionMatch without
  resourceVersion or with continue, Exact with "0", sendInitialEvents on a list...).
- Content negotiation: requests whose Accept header admits plain JSON (none, `*/*`,
  `application/json`, or a list that includes it) get JSON; others get 406 NotAcceptable.
- Watches: newline-delimited JSON over chunked HTTP/1.1; resourceVersion unset or "0" gives
  synthetic ADDED events for current objects first; "N" replays retained changes after N; a
  too-old N gets HTTP 200 with one ERROR event (Status 410 Expired, "too old resource
  version: N (M)") then the end; BOOKMARK events with allowWatchBookmarks; sendInitialEvents
  with the `k8s.io/initial-events-end` bookmark; timeoutSeconds; selectors with enter (ADDED)
  and leave (DELETED of the previous state at the new resourceVersion) as the watch cache
  does; slow watchers closed when their buffer overflows.
- List items of built-in types omit kind/apiVersion (typed encoding); custom resource items
  carry them (unstructured encoding). Watch event objects always carry them.
- DELETE answers the object for pods, services, namespaces and CRDs (kube's
  `ReturnDeletedObject` types, and objects held by finalizers), a Success `Status` with
  details (name, group, kind=plural, uid) for the others, custom resources included.

Known differences from kube-apiserver (do not build client behaviour on these):

- Only JSON (and YAML request bodies). No protobuf, no `as=Table`, no YAML responses: an
  Accept header asking only for those gets 406 ("only the following media types are
  accepted: application/json"), where kube serves protobuf and YAML for built-in types and
  Tables for all. No aggregated discovery (an Accept list with
  `application/json;g=apidiscovery.k8s.io;v=v2` and plain JSON gets the legacy documents, as
  from an old server; without plain JSON, 406), no /openapi. No server-side apply
  (apply-patch is 415); strategic merge patch is applied as a JSON merge patch (lists are
  replaced, not merged by key).
- No validation or defaulting of object bodies beyond metadata.name/namespace, no schemas
  for custom resources, no admission, no managedFields, no ownerReference garbage
  collection, no controllers: pods are never scheduled or run, services get no cluster IP,
  endpoints are not computed.
- metadata.generation is set to 1 on create and bumped on any change outside metadata and
  status for every type (kube bumps it only for types whose strategy does, e.g. not for
  ConfigMaps).
- Deleting a namespace deletes its contents and the namespace at once (no Terminating
  phase, content finalizers ignored); pods are deleted immediately (no grace period, as
  for unscheduled pods in kube).
- Custom resources serving several versions: objects are stored once and only their
  apiVersion is rewritten (no conversion webhooks). CRD updates re-register names.
- RBAC is a per-token allow list (`TokenPolicy`), not Roles/Bindings; discovery is open to
  every valid token; there is no anonymous access when tokens are configured.
- The history is a bounded count of changes (`history_size`), not a time window; it is
  global, so any resource's churn can expire another's resourceVersion (as etcd compaction
  does). A watch from a resourceVersion newer than the current one waits silently (no events,
  no bookmarks) until changes pass it, as kube's watch cache does (its documented behaviour;
  a kube-apiserver whose watch cache is still starting may answer "Too large resource
  version" instead); lists answer 504 "Too large resource version" for it at once (kube waits
  up to 3 s first).
- BOOKMARK objects carry only kind, apiVersion and metadata (resourceVersion, plus the
  initial-events-end annotation); kube's typed bookmarks also serialize empty fields
  (`creationTimestamp: null`, empty spec). Bookmarks come every `bookmark_interval` seconds
  on a quiet stream (kube: roughly every minute, and before a timeout), also when nothing at
  all changed since the watch began (a real cluster's resourceVersion always moves on:
  leases, events), carrying the watch's own version then.
- No default watch timeout: a watch without timeoutSeconds lasts until the client, a fault
  or `stop()` ends it (kube ends watches after 30-60 min).
- `limit` is always honoured, also with resourceVersion="0" (older kube served those from the
  watch cache ignoring limit). A 410 for an expired continue token or paged Exact list has no
  fresh continue token in its metadata. An unpaged list whose resourceVersion is compacted
  gets etcd's "The resourceVersion for the provided list is too old." even where kube would
  answer from its watch cache.
- `KubeEmulator(short_pages=True)` reads at most `limit` stored objects per page, so
  selectors give short or empty pages with a continue token: the API contract allows that,
  but kube's etcd3 storage and watch cache keep reading until the page is full (the
  default here).
- A path no API group/version serves (`/apis/unknown.example.com/v1/x`, `/foo`) gets a
  NotFound `Status` without details, as kube's newer not-found handler sends; kube 1.31 and
  older answer it with plain text `404 page not found`.
- Selector validation is close to kube's but not identical in its error wording.
- HTTP/1.1 only (no HTTP/2, no WebSocket watches). Ignored query parameters: dryRun,
  fieldManager, fieldValidation, pretty, propagationPolicy, gracePeriodSeconds,
  orphanDependents. No selfLink, no audit, no priority-and-fairness headers.
- A continue token is not checked against the query it came from (kube may reject a token
  reused with different selectors).
- `firehose` lines are sent verbatim, bypassing the watch's selectors and namespace.
"""

from mic.testing.emulator.auth import TokenPolicy
from mic.testing.emulator.emulator import KubeEmulator
from mic.testing.emulator.errors import StatusError
from mic.testing.emulator.server import RequestRecord

__all__ = ["KubeEmulator", "RequestRecord", "StatusError", "TokenPolicy"]
