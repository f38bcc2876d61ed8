"""`labelSelector=app notin ()` and `app in ()` over HTTP: the emulator answers as kube-apiserver does.

kube's parser reads `()` as one empty value, so `app notin ()` leaves out exactly the objects
whose `app` label is "" (see tests/unit/kube/test_selector_empty_sets.py).
"""

from collections.abc import Callable
from typing import Any

import aiohttp

CMS = "/api/v1/namespaces/default/configmaps"


async def test_notin_empty_parentheses_leaves_out_the_empty_value(
    session: aiohttp.ClientSession, cm: Callable[..., Any]
) -> None:
    for body in [cm("blank", app=""), cm("web", app="web"), cm("unlabelled")]:
        async with session.post(CMS, json=body) as response:
            assert response.status == 201, await response.text()

    async with session.get(CMS, params={"labelSelector": "app notin ()"}) as response:
        assert response.status == 200, await response.text()
        listed = await response.json()
    assert [item["metadata"]["name"] for item in listed["items"]] == ["unlabelled", "web"]


async def test_in_empty_parentheses_selects_the_empty_value(
    session: aiohttp.ClientSession, cm: Callable[..., Any]
) -> None:
    for body in [cm("blank", app=""), cm("web", app="web"), cm("unlabelled")]:
        async with session.post(CMS, json=body) as response:
            assert response.status == 201, await response.text()

    async with session.get(CMS, params={"labelSelector": "app in ()"}) as response:
        assert response.status == 200, await response.text()
        listed = await response.json()
    assert [item["metadata"]["name"] for item in listed["items"]] == ["blank"]
