"""Kubernetes `Status` failure bodies and the exception that carries one to the HTTP layer.

Every error the emulator answers is a `Status` object shaped exactly as kube-apiserver
shapes it (kind, apiVersion, metadata, status, message, reason, details, code), because
clients decide what to do from `reason` and `code`, and print `message` to users.
"""

from __future__ import annotations

from typing import Any


class StatusError(Exception):
    """A request failed; `body` is the `Status` to send with HTTP status `code`.

    Raised anywhere below the HTTP layer (state, selectors, patches); the server turns it into
    a response. In-process helpers let it propagate so tests see the same reason and code.
    """

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    @property
    def body(self) -> dict[str, Any]:
        return status_body(self.code, self.reason, self.message, self.details)


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A failure `Status` object; `details` is omitted when None (kube's nil details) and sent
    when empty (`{}`: kube's non-nil details whose fields are all empty)."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def _details(resource: str, name: str | None, group: str) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = resource
    return details


def qualified(resource: str, group: str) -> str:
    """`pods` or `ingresses.networking.k8s.io`: how kube names a resource in messages."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        404, "NotFound", f'{qualified(resource, group)} "{name}" not found', _details(resource, name, group)
    )


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{qualified(resource, group)} "{name}" already exists',
        _details(resource, name, group),
    )


def conflict(resource: str, name: str, group: str = "", why: str = "") -> StatusError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        _details(resource, name, group),
    )


# A field error's message starts with its type's words (apimachinery's `field.ErrorType`);
# a `Status` cause carries the matching `CauseType`.
_CAUSE_TYPES = (
    ("Required value", "FieldValueRequired"),
    ("Forbidden", "FieldValueForbidden"),
    ("Unsupported value", "FieldValueNotSupported"),
    ("Duplicate value", "FieldValueDuplicate"),
    ("Not found", "FieldValueNotFound"),
    ("Too long", "FieldValueTooLong"),
    ("Too many", "FieldValueTooMany"),
    ("Internal error", "InternalError"),
    ("Invalid value", "FieldValueInvalid"),
)


def cause_reason(message: str) -> str:
    """The `reason` of a 422 cause whose message is kube's `field.Error.ErrorBody()`."""
    for words, reason in _CAUSE_TYPES:
        if message == words or message.startswith(words + ":"):
            return reason
    return "FieldValueInvalid"


def invalid(kind: str, name: str, group: str, causes: list[tuple[str, str]]) -> StatusError:
    """422 Invalid; `causes` are (field, message) pairs, as kube lists them.

    The message joins the causes as apimachinery's error aggregate does: one as is, several
    in brackets; `details.name` is omitted when empty (kube's `omitempty`).
    """
    parts = [f"{field}: {msg}" for field, msg in causes]
    text = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [{"reason": cause_reason(msg), "message": msg, "field": f} for f, msg in causes]
    subject = f"{kind}.{group}" if group else kind
    return StatusError(422, "Invalid", f'{subject} "{name}" is invalid: {text}', details)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def gone(message: str) -> StatusError:
    """410 Expired: a resourceVersion or continue token older than the retained history."""
    return StatusError(410, "Expired", message)


def page_not_found() -> StatusError:
    """404 for a path under a served group/version that names no route (an unknown resource, a
    subresource it lacks, a cluster-scoped resource under `namespaces/{ns}/`): kube's go-restful
    error handler answers `NewGenericServerResponse`, whose empty details are sent as `{}`."""
    return StatusError(404, "NotFound", "the server could not find the requested resource", {})


def no_handler() -> StatusError:
    """404 for a path no API group/version serves (kube's `notfoundhandler`: no details)."""
    return StatusError(404, "NotFound", "the server could not find the requested resource")


def method_not_allowed() -> StatusError:
    """405 from kube's go-restful error handler (`NewGenericServerResponse`: details `{}`)."""
    return StatusError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}
    )


def not_acceptable(accepted: tuple[str, ...]) -> StatusError:
    """406 when no media type the client accepts can be served (apimachinery's
    `errNotAcceptable`: no details)."""
    return StatusError(
        406,
        "NotAcceptable",
        f"only the following media types are accepted: {', '.join(accepted)}",
    )


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"
        f' (got "{content_type}")',
    )


_FAULT_REASONS = {
    400: ("BadRequest", "injected fault: bad request"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "injected fault: forbidden"),
    404: ("NotFound", "the server could not find the requested resource"),
    408: ("Timeout", "injected fault: request timeout"),
    409: ("Conflict", "injected fault: conflict"),
    410: ("Expired", "injected fault: resource version expired"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected fault"),
    502: ("InternalError", "Internal error occurred: injected fault (bad gateway)"),
    503: ("ServiceUnavailable", "The server is currently unable to handle the request"),
    504: (
        "Timeout",
        "The server was unable to return a response in the time allotted,"
        " but may still be processing the request",
    ),
}


def injected(code: int, retry_after: float | None) -> StatusError:
    """The failure `fail_requests` injects: kube's reason and words for that status code."""
    fallback = (
        ("BadRequest", f"injected fault {code}")
        if code < 500
        else ("InternalError", f"injected fault {code}")
    )
    reason, message = _FAULT_REASONS.get(code, fallback)
    details: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if retry_after is not None:
        details["retryAfterSeconds"] = max(1, round(retry_after))
        headers["Retry-After"] = str(max(0, round(retry_after)))
    return StatusError(code, reason, message, details or None, headers)


def too_large_resource_version(rv: int, current: int) -> StatusError:
    """504 for a resourceVersion the server has not reached yet, as kube's watch cache answers."""
    return StatusError(
        504,
        "Timeout",
        f"Too large resource version: {rv}, current: {current}",
        {
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        },
    )


def invalid_list_options(causes: list[tuple[str, str]]) -> StatusError:
    """422 for query parameters kube's ListOptions validation rejects (all of them at once)."""
    return invalid("ListOptions", "", "meta.k8s.io", causes)
