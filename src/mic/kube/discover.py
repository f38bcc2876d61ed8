"""Fetch a cluster's API discovery documents and build its `ResourceCatalog`."""

from __future__ import annotations

import asyncio
import logging

from mic.kube.client import JsonObject, KubeClient
from mic.kube.discovery import ResourceCatalog, catalog_from_api_group_list, served_group_versions
from mic.kube.errors import ApiError, ConnectionFailure, KubeError

log = logging.getLogger(__name__)


async def discover(client: KubeClient) -> ResourceCatalog:
    """Read `/api/v1`, `/apis` and every served group version, concurrently.

    A group version that fails to answer (an aggregated API whose backend is down answers
    503) is left out and logged, as kubectl does; the core group and `/apis` must answer.
    """
    core, group_list = await asyncio.gather(client.get_json("/api/v1"), client.get_json("/apis"))
    try:
        group_versions = served_group_versions(group_list)
    except ValueError as error:
        raise KubeError(f"the server's /apis document is malformed: {error}") from error

    unavailable: dict[str, str] = {}

    async def fetch(group_version: str) -> tuple[str, JsonObject | None]:
        try:
            return group_version, await client.get_json(f"/apis/{group_version}")
        except (ApiError, ConnectionFailure) as error:
            log.warning("discovery of %s failed, leaving it out: %s", group_version, error)
            unavailable[group_version] = str(error)
            return group_version, None

    documents = await asyncio.gather(*(fetch(gv) for gv in group_versions))
    groups = {gv: doc for gv, doc in documents if doc is not None}
    try:
        catalog = catalog_from_api_group_list(group_list, core, groups)
    except ValueError as error:
        raise KubeError(f"the server's discovery documents are malformed: {error}") from error
    catalog.unavailable.update(unavailable)
    return catalog
