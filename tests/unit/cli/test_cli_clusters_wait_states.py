"""How `mic clusters add|update` read the states a fake MIC reports while they wait.

The real MIC and clusters are in tests/integration/cli; here the fake scripts the states that
are hard to bring about there (a cluster connecting over several reads, degraded, removed
while the command waits) and checks each request the command makes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fake_mic_api import FakeMic, Recorded, Run, cluster_json

CONNECTING: dict[str, Any] = {"state": "connecting", "lastError": None, "resources": []}


def states(*statuses: dict[str, Any]) -> Any:
    """A handler answering each GET with the next status (the last one for ever after)."""
    remaining: Iterator[dict[str, Any]] = iter(statuses)
    last: list[dict[str, Any]] = []

    def answer(request: Recorded) -> tuple[int, object]:
        status = next(remaining, None)
        if status is not None:
            last[:] = [status]
        return 200, cluster_json("eu-1", status=last[0])

    return answer


def test_add_reads_the_status_until_it_connects(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("POST", "/v1/clusters", (201, cluster_json("eu-1", status=CONNECTING)))
    fake_mic.on("GET", "/v1/clusters/eu-1", states(CONNECTING, CONNECTING, cluster_json()["status"]))

    result = run("clusters", "add", "eu-1", "--in-cluster", "--wait-seconds", "5")

    assert result.exit_code == 0, result.output
    assert result.stdout == "cluster 'eu-1' added: connected (server v1.30.2), 7 objects cached\n"
    assert [(r.method, r.path) for r in fake_mic.requests] == [
        ("POST", "/v1/clusters"),
        ("GET", "/v1/clusters/eu-1"),
        ("GET", "/v1/clusters/eu-1"),
        ("GET", "/v1/clusters/eu-1"),
    ]


def test_connected_without_resources_or_version_is_one_short_line(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on(
        "POST", "/v1/clusters", (201, cluster_json("eu-1", status={"state": "ready", "resources": []}))
    )

    result = run("clusters", "add", "eu-1", "--in-cluster")

    assert (result.exit_code, result.stdout) == (0, "cluster 'eu-1' added: connected\n")


def test_degraded_is_connected_but_not_working(run: Run, fake_mic: FakeMic) -> None:
    degraded = {
        **cluster_json()["status"],
        "state": "degraded",
        "lastError": "ingresess: not served by the cluster",
    }
    fake_mic.on("POST", "/v1/clusters", (201, cluster_json("eu-1", status=CONNECTING)))
    fake_mic.on("GET", "/v1/clusters/eu-1", states(degraded))

    result = run("clusters", "add", "eu-1", "--in-cluster", "--wait-seconds", "5")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: cluster 'eu-1' added and connected, but not every resource can be watched: degraded:"
        " ingresess: not served by the cluster. The registration is stored and MIC keeps retrying;"
        " see 'mic clusters get eu-1'\n"
    )


def test_json_output_is_the_cluster_as_last_read(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("POST", "/v1/clusters", (201, cluster_json("eu-1", status=CONNECTING)))
    fake_mic.on("GET", "/v1/clusters/eu-1", states(CONNECTING, cluster_json()["status"]))

    result = run("clusters", "add", "eu-1", "--in-cluster", "-o", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == cluster_json("eu-1")
    assert result.stderr == ""


def test_a_cluster_removed_while_waiting_is_one_line(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("POST", "/v1/clusters", (201, cluster_json("eu-1", status=CONNECTING)))

    result = run("clusters", "add", "eu-1", "--in-cluster")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: cluster 'eu-1' added, but reading its status failed: cluster 'eu-1' not found (404)\n"
    )


def test_update_waits_for_the_new_connection(run: Run, fake_mic: FakeMic) -> None:
    unauthorized = {"state": "unauthorized", "lastError": "401 Unauthorized: Unauthorized", "resources": []}
    fake_mic.on("GET", "/v1/clusters/eu-1", states(cluster_json()["status"], unauthorized))
    fake_mic.on("PUT", "/v1/clusters/eu-1", (200, cluster_json("eu-1", status=CONNECTING)))

    result = run("clusters", "update", "eu-1", "--in-cluster", "--wait-seconds", "5")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: cluster 'eu-1' updated, but MIC cannot connect to it: unauthorized: the cluster refused"
        " MIC's credentials (401 Unauthorized: Unauthorized). The registration is stored and MIC keeps"
        " retrying; fix its credentials with 'mic clusters update eu-1 --kubeconfig FILE'\n"
    )
    assert [(r.method, r.path) for r in fake_mic.requests] == [
        ("GET", "/v1/clusters/eu-1"),
        ("PUT", "/v1/clusters/eu-1"),
        ("GET", "/v1/clusters/eu-1"),
    ]


def test_wait_seconds_0_looks_at_the_answer_only(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("POST", "/v1/clusters", (201, cluster_json("eu-1", status=CONNECTING)))

    result = run("clusters", "add", "eu-1", "--in-cluster", "--wait-seconds", "0")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: cluster 'eu-1' added, but it did not connect within 0s (state: connecting). The registration"
        " is stored and MIC keeps retrying; see 'mic clusters get eu-1'\n"
    )
    assert len(fake_mic.requests) == 1


def test_ctrl_c_while_waiting_says_the_cluster_is_stored(
    run: Run, fake_mic: FakeMic, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("mic.cli.clusters.wait_for_connection", interrupted)
    fake_mic.on("POST", "/v1/clusters", (201, cluster_json("eu-1", status=CONNECTING)))

    result = run("clusters", "add", "eu-1", "--in-cluster")

    assert result.exit_code == 130
    assert result.stderr == (
        "error: interrupted while waiting for cluster 'eu-1' to connect; the registration is stored:"
        " see 'mic clusters get eu-1'\n"
    )


def unreachable(reason: str | None, last_error: str) -> dict[str, Any]:
    """A token cluster MIC cannot reach; `reason` None: a MIC too old to send one."""
    status: dict[str, Any] = {"state": "unreachable", "lastError": last_error, "resources": []}
    if reason is not None:
        status["reason"] = reason
    connection = {"type": "token", "server": "https://10.0.0.1:6443"}
    return cluster_json("eu-1", status=status, connection=connection)


def test_a_certificate_that_fails_verification_is_told_by_its_reason(run: Run, fake_mic: FakeMic) -> None:
    # The words are the server's or OpenSSL's and may not say "certificate": the reason does.
    failed = unreachable("TLSVerifyFailed", "cannot reach https://10.0.0.1:6443: self-signed chain")
    fake_mic.on("POST", "/v1/clusters", (201, failed))

    result = run("clusters", "add", "eu-1", "--in-cluster")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: cluster 'eu-1' added, but MIC cannot connect to it: unreachable: the server's certificate"
        " could not be verified (cannot reach https://10.0.0.1:6443: self-signed chain). The registration"
        " is stored and MIC keeps retrying; give the CA that signed it with 'mic clusters update eu-1"
        " --server URL --token-file FILE --ca-file CA.pem'\n"
    )


@pytest.mark.parametrize("reason", ["ConnectionRefused", None])
def test_the_word_certificate_in_the_error_is_not_a_certificate_failure(
    run: Run, fake_mic: FakeMic, reason: str | None
) -> None:
    refused = unreachable(reason, "cannot reach https://certificate.example:6443: connection refused")
    fake_mic.on("POST", "/v1/clusters", (201, refused))

    result = run("clusters", "add", "eu-1", "--in-cluster")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: cluster 'eu-1' added, but MIC cannot connect to it: unreachable: cannot reach"
        " https://certificate.example:6443: connection refused. The registration is stored and MIC keeps"
        " retrying; check that MIC's host can reach the server, or fix it with 'mic clusters update eu-1"
        " --server URL --token-file FILE'\n"
    )
