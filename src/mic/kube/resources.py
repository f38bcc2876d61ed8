"""What MIC knows about one kind of Kubernetes resource, as discovery reports it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """One API resource: `networking.k8s.io/v1` `ingresses` of kind `Ingress`, namespaced.

    The core group is the empty string, as in the Kubernetes API.
    """

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        """`v1` for the core group, `group/version` otherwise (the objects' apiVersion)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified_name(self) -> str:
        """`ingresses.networking.k8s.io` (or `pods` for the core group), as kubectl prints it."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def watchable(self) -> bool:
        """Whether the server allows list and watch (an empty verb list means unknown: assume yes)."""
        return not self.verbs or ("list" in self.verbs and "watch" in self.verbs)

    def collection_path(self, namespace: str | None = None) -> str:
        """The URL path of the collection, all namespaces when `namespace` is None."""
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.resource}"
        return f"{base}/{self.resource}"

    def object_path(self, name: str, namespace: str | None = None) -> str:
        """The URL path of one object."""
        return f"{self.collection_path(namespace)}/{name}"
