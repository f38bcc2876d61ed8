"""`mic resources get` against a fake MIC: routes and parameters, paging, tables, partial failures."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from fake_mic_api import FakeMic, Recorded, Run, k8s_object

LIST = "/v1/clusters/eu-1/resources/ingresses"


def a_list(*items: dict[str, object], continue_token: str | None = None) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"continue": continue_token},
        "items": list(items),
    }


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def test_list_in_one_cluster_passes_filters_and_prints_a_table(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on(
        "GET", LIST, (200, a_list(k8s_object("web", "shop", rv="12"), k8s_object("api", "shop", rv="9")))
    )

    result = run("resources", "get", "eu-1", "ingresses", "-n", "shop", "-l", "app in (web,api)")

    assert result.exit_code == 0, result.output
    sent = fake_mic.only_request()
    assert sent.param("namespace") == "shop"
    assert sent.param("labelSelector") == "app in (web,api)"
    assert sent.param("limit") == "500"
    table = rows(result.stdout)
    assert table[0] == ["NAMESPACE", "NAME", "AGE", "RESOURCE", "VERSION"]
    assert [row[:2] + row[3:] for row in table[1:]] == [["shop", "api", "9"], ["shop", "web", "12"]]
    assert re.fullmatch(r"\d+[dy]", table[1][2])  # created long ago: an age in days or years


def test_list_follows_continue_tokens_and_merges_pages(run: Run, fake_mic: FakeMic) -> None:
    def paged(request: Recorded) -> tuple[int, object]:
        if request.param("continue") is None:
            return 200, a_list(k8s_object("a"), continue_token="page-2")
        return 200, a_list(k8s_object("b"))

    fake_mic.on("GET", LIST, paged)

    result = run("resources", "get", "eu-1", "ingresses", "--chunk-size", "1", "-o", "json")

    assert result.exit_code == 0, result.output
    assert [r.param("continue") for r in fake_mic.requests] == [None, "page-2"]
    assert all(r.param("limit") == "1" for r in fake_mic.requests)
    listing = json.loads(result.stdout)
    assert [item["metadata"]["name"] for item in listing["items"]] == ["a", "b"]
    assert listing["kind"] == "List"
    assert listing["metadata"]["continue"] is None


def test_a_server_repeating_its_continue_token_does_not_loop(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", LIST, (200, a_list(k8s_object("a"), continue_token="same")))

    result = run("resources", "get", "eu-1", "ingresses", "-o", "json")

    assert result.exit_code == 0
    assert len(fake_mic.requests) == 2


def test_cluster_scoped_list_has_no_namespace_column(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on(
        "GET", "/v1/clusters/eu-1/resources/namespaces", (200, a_list(k8s_object("kube-system", None)))
    )

    result = run("resources", "get", "eu-1", "namespaces", "--chunk-size", "0")

    assert fake_mic.only_request().param("limit") is None
    assert rows(result.stdout)[0] == ["NAME", "AGE", "RESOURCE", "VERSION"]


def test_empty_list_says_so_on_stderr(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", LIST, (200, a_list()))

    result = run("resources", "get", "eu-1", "ingresses", "-n", "shop")

    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == "No ingresses found in namespace 'shop' of cluster 'eu-1'\n"


def test_get_one_object_namespaced_and_cluster_scoped(run: Run, fake_mic: FakeMic) -> None:
    web = k8s_object("web", "shop", rv="12")
    fake_mic.on("GET", f"{LIST}/shop/web", (200, web))
    fake_mic.on("GET", "/v1/clusters/eu-1/resources/namespaces/shop", (200, k8s_object("shop", None)))

    result = run("resources", "get", "eu-1", "ingresses", "web", "-n", "shop", "-o", "yaml")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == web

    result = run("resources", "get", "eu-1", "namespaces", "shop")
    assert result.exit_code == 0, result.output
    assert rows(result.stdout)[1][0] == "shop"

    result = run("resources", "get", "eu-1", "ingresses", "nope", "-n", "shop")
    assert result.exit_code == 1
    assert result.stderr == "error: ingresses shop/nope not found in cluster 'eu-1' (404)\n"


def test_unknown_cluster_or_resource_uses_the_server_detail(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", "/v1/clusters/x/resources/ingresses", (404, {"detail": "cluster 'x' not found"}))
    fake_mic.on("GET", "/v1/clusters/eu-1/resources/gizmos", (404, {"detail": "unknown resource 'gizmos'"}))

    result = run("resources", "get", "x", "ingresses")
    assert (result.exit_code, result.stderr) == (1, "error: cluster 'x' not found (404)\n")
    result = run("resources", "get", "eu-1", "gizmos")
    assert (result.exit_code, result.stderr) == (1, "error: unknown resource 'gizmos' (404)\n")
    result = run("resources", "get", "eu-1", "ingresses", "-l", "a in (")
    assert result.stderr == "error: cluster 'eu-1' or resource 'ingresses' not found (404)\n"


def across_answer() -> dict[str, object]:
    return {
        "items": [
            {"cluster": "us-1", "object": k8s_object("web", "shop", rv="7")},
            {"cluster": "eu-1", "object": k8s_object("web", "shop", rv="12")},
            {"cluster": "eu-1", "object": k8s_object("api", "shop", rv="3")},
        ],
        "errors": {},
    }


def test_all_clusters_adds_a_cluster_column(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", "/v1/resources/ingresses", (200, across_answer()))

    result = run("resources", "get", "-A", "ingresses", "-n", "shop")

    assert result.exit_code == 0, result.output
    sent = fake_mic.only_request()
    assert sent.param("clusters") is None
    assert sent.param("namespace") == "shop"
    table = rows(result.stdout)
    assert table[0] == ["CLUSTER", "NAMESPACE", "NAME", "AGE", "RESOURCE", "VERSION"]
    assert [(r[0], r[2], r[4]) for r in table[1:]] == [
        ("eu-1", "api", "3"),
        ("eu-1", "web", "12"),
        ("us-1", "web", "7"),
    ]


def test_named_clusters_and_name_filter(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", "/v1/resources/ingresses", (200, across_answer()))

    result = run(
        "resources", "get", "--clusters", "eu-1, us-1", "ingresses", "web", "-l", "app=web", "-o", "json"
    )

    assert result.exit_code == 0, result.output
    sent = fake_mic.only_request()
    assert sent.param("clusters") == "eu-1,us-1"
    assert sent.param("labelSelector") == "app=web"
    answer = json.loads(result.stdout)
    assert [(i["cluster"], i["object"]["metadata"]["name"]) for i in answer["items"]] == [
        ("us-1", "web"),
        ("eu-1", "web"),
    ]


def test_objects_as_last_seen_are_listed_with_a_warning(run: Run, fake_mic: FakeMic) -> None:
    answer = across_answer()
    answer["stale"] = {"eu-1": "unreachable: connection refused; objects as last seen"}
    fake_mic.on("GET", "/v1/resources/ingresses", (200, answer))
    result = run("resources", "get", "-A", "ingresses")
    assert result.exit_code == 0
    assert len(rows(result.stdout)) == 4
    assert result.stderr == "warning: cluster 'eu-1': unreachable: connection refused; objects as last seen\n"


def test_per_cluster_errors_are_shown_and_make_the_exit_code_1(run: Run, fake_mic: FakeMic) -> None:
    answer = across_answer()
    answer["errors"] = {
        "ap-1": "cluster 'ap-1' is unreachable: [Errno 111]\nConnect call failed",
        "zz": "not found",
    }
    fake_mic.on("GET", "/v1/resources/ingresses", (200, answer))

    result = run("resources", "get", "-A", "ingresses")

    assert result.exit_code == 1
    assert len(rows(result.stdout)) == 4  # the clusters that answered are still listed
    assert result.stderr.splitlines() == [
        "error: cluster 'ap-1': cluster 'ap-1' is unreachable: [Errno 111] Connect call failed",
        "error: cluster 'zz': not found",
    ]

    result = run("resources", "get", "-A", "ingresses", "-o", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["errors"] == answer["errors"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eu-1"], "expected CLUSTER RESOURCE [NAME], got 1 argument(s): eu-1"),
        (
            ["eu-1", "ingresses", "web", "x"],
            "expected CLUSTER RESOURCE [NAME], got 4 argument(s): eu-1 ingresses web x",
        ),
        (
            ["-A", "eu-1", "ingresses", "web"],
            "expected RESOURCE [NAME], got 3 argument(s): eu-1 ingresses web",
        ),
        (["-A", "--clusters", "a", "ingresses"], "--all-clusters and --clusters are mutually exclusive"),
        (["--clusters", " , ", "ingresses"], "--clusters needs at least one cluster name (a,b,c)"),
        (["eu-1", "ingresses", "web", "-l", "a=b"], "--selector cannot be combined with a NAME"),
    ],
)
def test_usage_errors(run: Run, fake_mic: FakeMic, args: list[str], message: str) -> None:
    result = run("resources", "get", *args)

    assert result.exit_code == 2
    assert result.stderr == f"error: {message}\n"
    assert fake_mic.requests == []


def test_resource_and_object_names_stay_one_path_segment(run: Run, fake_mic: FakeMic) -> None:
    run("resources", "get", "eu-1", "ingresses", "a/b", "-n", "x?y")
    assert fake_mic.only_request().path == "/v1/clusters/eu-1/resources/ingresses/x%3Fy/a%2Fb"
