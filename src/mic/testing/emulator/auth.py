"""Bearer-token authentication and a small RBAC stand-in.

Each token maps to a `TokenPolicy`; the user kube would report for it is `token:<token>`,
which is what 403 messages name. Discovery (`/api`, `/apis`, `/version`, health) is open to
every authenticated token, as kube's `system:discovery` role makes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mic.testing.emulator.errors import StatusError


@dataclass(frozen=True)
class TokenPolicy:
    """What one token may do; None in a field means "anything".

    `resources` holds names like `pods` or `ingresses.networking.k8s.io` (the group-qualified
    plural; `*` means all); `verbs` kube verbs (get, list, watch, create, update, patch,
    delete, deletecollection); `namespaces` restricts namespaced requests (cluster-wide
    requests on namespaced resources are then forbidden, as with a RoleBinding).
    """

    resources: frozenset[str] | None = None
    verbs: frozenset[str] | None = None
    namespaces: frozenset[str] | None = None

    def __init__(
        self,
        resources: Iterable[str] | None = None,
        verbs: Iterable[str] | None = None,
        namespaces: Iterable[str] | None = None,
    ) -> None:
        object.__setattr__(self, "resources", None if resources is None else frozenset(resources))
        object.__setattr__(self, "verbs", None if verbs is None else frozenset(verbs))
        object.__setattr__(self, "namespaces", None if namespaces is None else frozenset(namespaces))

    @classmethod
    def allow_all(cls) -> TokenPolicy:
        return cls()

    @classmethod
    def read_only(cls, resources: Iterable[str] | None = None) -> TokenPolicy:
        return cls(resources=resources, verbs=("get", "list", "watch"))

    def allows(self, verb: str, resource: str, namespace: str | None) -> bool:
        if self.resources is not None and "*" not in self.resources and resource not in self.resources:
            return False
        if self.verbs is not None and "*" not in self.verbs and verb not in self.verbs:
            return False
        return self.namespaces is None or (namespace is not None and namespace in self.namespaces)


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")


def forbidden(
    token: str,
    verb: str,
    plural: str,
    group: str,
    namespace: str | None,
    name: str | None,
    subresource: str = "",
) -> StatusError:
    """403 worded as kube's RBAC authorizer words it."""
    qualified = f"{plural}.{group}" if group else plural
    subject = f'{qualified} "{name}"' if name else qualified
    resource = f"{plural}/{subresource}" if subresource else plural
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "token:{token}" cannot {verb} resource "{resource}" '
        f'in API group "{group}" {scope}'
    )
    details: dict[str, str] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = plural
    return StatusError(403, "Forbidden", message, dict(details))
