"""Wire details kube-apiserver has and clients may rely on: list resourceVersion semantics,
ListOptions validation, 422 cause reasons, 404/405 details, short pages, content negotiation."""

from typing import Any

import aiohttp

from mic.testing import KubeEmulator

CMS = "/api/v1/namespaces/default/configmaps"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
PROTOBUF = "application/vnd.kubernetes.protobuf"


async def get(
    session: aiohttp.ClientSession,
    path: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    /,
    **params: str,
) -> Any:
    async with session.get(path, params=params, headers=headers) as response:
        assert response.status == status, await response.text()
        assert response.content_type == "application/json"
        return await response.json()


def create_cm(emu: KubeEmulator, name: str, **labels: str) -> None:
    emu.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}})


def names(body: Any) -> list[str]:
    return [item["metadata"]["name"] for item in body["items"]]


# -- 1. a paged list from resourceVersion N without resourceVersionMatch is Exact -------------


async def test_paged_list_at_a_resource_version_is_exact(
    kube_emulator: KubeEmulator, session: aiohttp.ClientSession
) -> None:
    create_cm(kube_emulator, "a")
    then = kube_emulator.resource_version
    kube_emulator.delete("configmaps", "a")
    create_cm(kube_emulator, "b")
    paged = await get(session, CMS, limit="10", resourceVersion=then)
    assert names(paged) == ["a"]
    assert paged["metadata"]["resourceVersion"] == then
    # Without limit, N is NotOlderThan (served at the most recent version); "0" with limit is Any.
    assert names(await get(session, CMS, resourceVersion=then)) == ["b"]
    assert names(await get(session, CMS, limit="10", resourceVersion="0")) == ["b"]
    kube_emulator.compact()
    expired = await get(session, CMS, 410, limit="10", resourceVersion=then)
    assert (expired["reason"], expired["code"]) == ("Expired", 410)
    unpaged = await get(session, CMS, 410, resourceVersion=then, resourceVersionMatch="Exact")
    assert unpaged["message"] == "The resourceVersion for the provided list is too old."


# -- 2. ListOptions validation ------------------------------------------------------------------


def list_options_invalid(causes: list[tuple[str, str, str]]) -> dict[str, Any]:
    text = [f"{field}: {message}" for field, _, message in causes]
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'ListOptions.meta.k8s.io "" is invalid: '
        + (text[0] if len(text) == 1 else "[" + ", ".join(text) + "]"),
        "reason": "Invalid",
        "details": {
            "group": "meta.k8s.io",
            "kind": "ListOptions",
            "causes": [
                {"reason": reason, "message": message, "field": field} for field, reason, message in causes
            ],
        },
        "code": 422,
    }


async def test_list_options_validation(kube_emulator: KubeEmulator, session: aiohttp.ClientSession) -> None:
    for i in range(3):
        create_cm(kube_emulator, f"c{i}")
    token = (await get(session, CMS, limit="1"))["metadata"]["continue"]
    rvm = "resourceVersionMatch"
    exact_zero = (
        rvm,
        "FieldValueForbidden",
        'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
    )
    with_continue = (
        rvm,
        "FieldValueForbidden",
        "Forbidden: resourceVersionMatch is forbidden when continue is provided",
    )
    body = await get(session, CMS, 422, resourceVersion="0", resourceVersionMatch="Exact")
    assert body == list_options_invalid([exact_zero])
    body = await get(session, CMS, 422, sendInitialEvents="true")
    assert body == list_options_invalid(
        [("sendInitialEvents", "FieldValueForbidden", "Forbidden: sendInitialEvents is forbidden for list")]
    )
    params = {"continue": token, "resourceVersion": "0", "resourceVersionMatch": "NotOlderThan"}
    assert await get(session, CMS, 422, **params) == list_options_invalid([with_continue])
    # Every violation at once, in apimachinery's order, bracketed as its error aggregate prints them.
    params = {"continue": token, "resourceVersion": "0", "resourceVersionMatch": "Exact"}
    assert await get(session, CMS, 422, **params) == list_options_invalid([with_continue, exact_zero])
    body = await get(session, CMS, 422, resourceVersion="1", resourceVersionMatch="Newest")
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "Newest": supported values: "Exact", "NotOlderThan", ""',
            "field": rvm,
        }
    ]


# -- 3. 422 causes carry their field error's type -------------------------------------------------


async def test_invalid_causes_carry_the_error_type(session: aiohttp.ClientSession) -> None:
    async with session.post(CMS, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}) as response:
        assert response.status == 422
        body = await response.json()
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value: name or generateName is required",
            "field": "metadata.name",
        }
    ]
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "wrong.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Everywhere",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": True, "storage": True}],
        },
    }
    async with session.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd) as response:
        assert response.status == 422
        body = await response.json()
    assert [(c["field"], c["reason"]) for c in body["details"]["causes"]] == [
        ("spec.scope", "FieldValueNotSupported"),
        ("metadata.name", "FieldValueInvalid"),
    ]


# -- 4. details of 404 and 405 --------------------------------------------------------------------


async def test_not_found_details_follow_kube(session: aiohttp.ClientSession) -> None:
    generic = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server could not find the requested resource",
        "reason": "NotFound",
        "details": {},
        "code": 404,
    }
    # A route missing under a served group/version: go-restful's handler, empty details.
    assert await get(session, "/api/v1/namespaces/default/foos", 404) == generic
    assert await get(session, "/apis/networking.k8s.io/v1/nonsense", 404) == generic
    assert await get(session, f"{CMS}/x/status", 404) == generic
    # An object that does not exist: its name and resource.
    assert await get(session, f"{CMS}/x", 404) == dict(
        generic, message='configmaps "x" not found', details={"name": "x", "kind": "configmaps"}
    )
    # No API group/version serves the path at all: kube's last-resort handler, no details.
    no_details = {k: v for k, v in generic.items() if k != "details"}
    assert await get(session, "/apis/nope.example.com/v1/things", 404) == no_details
    assert await get(session, "/apis/nope.example.com", 404) == no_details
    async with session.put(CMS, json={}) as response:
        assert response.status == 405
        assert (await response.json())["details"] == {}


# -- 5. short pages on request ------------------------------------------------------------------------


async def test_short_pages_scan_at_most_limit_objects(kube_emulators: Any) -> None:
    emu: KubeEmulator = await kube_emulators(short_pages=True)
    for i in range(5):
        create_cm(emu, f"c{i}", **({"pick": "yes"} if i in (0, 4) else {}))
    pages: list[list[str]] = []
    params = {"limit": "2", "labelSelector": "pick=yes"}
    async with aiohttp.ClientSession(emu.url) as session:
        body = await get(session, CMS, **params)
        rv = body["metadata"]["resourceVersion"]
        pages.append(names(body))
        while token := body["metadata"].get("continue"):
            body = await get(session, CMS, **params, **{"continue": token})
            assert body["metadata"]["resourceVersion"] == rv
            assert "remainingItemCount" not in body["metadata"]
            pages.append(names(body))
    assert pages == [["c0"], [], ["c4"]]


async def test_pages_fill_up_by_default(kube_emulator: KubeEmulator, session: aiohttp.ClientSession) -> None:
    for i in range(5):
        create_cm(kube_emulator, f"c{i}", **({"pick": "yes"} if i in (0, 2) else {}))
    first = await get(session, CMS, limit="2", labelSelector="pick=yes")
    assert names(first) == ["c0", "c2"]
    # As etcd3 storage: a full page with objects left to read gets a continue token, even if
    # none of them matches; the last page is then empty.
    last = await get(
        session, CMS, limit="2", labelSelector="pick=yes", **{"continue": first["metadata"]["continue"]}
    )
    assert names(last) == []
    assert "continue" not in last["metadata"]


# -- 6. content negotiation ------------------------------------------------------------------------


async def test_unacceptable_media_types_are_406(
    kube_emulator: KubeEmulator, session: aiohttp.ClientSession
) -> None:
    create_cm(kube_emulator, "a")
    not_acceptable = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "only the following media types are accepted: application/json",
        "reason": "NotAcceptable",
        "code": 406,
    }
    for accept in (PROTOBUF, TABLE, "text/html"):
        assert await get(session, CMS, 406, {"Accept": accept}) == not_acceptable
        assert await get(session, f"{CMS}/a", 406, {"Accept": accept}) == not_acceptable
        assert await get(session, "/api/v1", 406, {"Accept": accept}) == not_acceptable
        assert await get(session, CMS, 406, {"Accept": accept}, watch="true") == not_acceptable
    for accept in (
        f"{PROTOBUF}, application/json",
        f"{TABLE},application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
        "*/*",
        "application/json",
        "application/json; charset=utf-8",
    ):
        assert names(await get(session, CMS, 200, {"Accept": accept})) == ["a"]
    assert (await get(session, "/version", 200, {"Accept": "text/html"}))["major"] == "1"
    async with (
        aiohttp.ClientSession(kube_emulator.url, skip_auto_headers=["Accept"]) as bare,
        bare.get(CMS) as response,
    ):
        assert "Accept" not in response.request_info.headers
        assert response.status == 200
