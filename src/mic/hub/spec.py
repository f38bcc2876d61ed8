"""What a consumer asks the hub to watch."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mic.kube.selectors import LabelSelector


@dataclass(frozen=True)
class WatchSpec:
    """A resource (as a user types it), in some clusters, namespaces and labels.

    `clusters=None` means every cluster, including clusters added later; `namespaces=None`
    means all namespaces. The label selector is kept in canonical form (requirements sorted,
    spacing normalised), so the same selector written in another order or spacing shares one
    informer; selectors equal only in meaning (`team in (web)` and `team=web`) do not.
    """

    resource: str
    clusters: frozenset[str] | None = None
    namespaces: frozenset[str] | None = None
    label_selector: str = ""

    @classmethod
    def build(
        cls,
        resource: str,
        *,
        clusters: Iterable[str] | None = None,
        namespaces: Iterable[str] | None = None,
        label_selector: str | LabelSelector | None = None,
    ) -> WatchSpec:
        """Normalise user input; raises InvalidSelectorError for a bad selector."""
        if isinstance(label_selector, str):
            label_selector = LabelSelector.parse(label_selector)
        return cls(
            resource=resource.strip(),
            clusters=frozenset(clusters) if clusters is not None else None,
            namespaces=frozenset(namespaces) if namespaces is not None else None,
            label_selector=str(label_selector) if label_selector is not None else "",
        )

    def applies_to(self, cluster: str) -> bool:
        return self.clusters is None or cluster in self.clusters
