"""A cluster whose history goes back (etcd restored from a backup, a cluster rebuilt behind the
same address): the resourceVersion MIC resumes from is one the server has not reached, so it
waits silently for it and would then skip everything before it. MIC must relist instead."""

from __future__ import annotations

from typing import Any

from hub_helpers import Recorder, connect

from mic.hub import Hub
from mic.kube.errors import ApiError
from mic.kube.informer import SILENT_STALLS_BEFORE_RELIST
from mic.testing.objects import configmap


async def test_a_server_whose_history_went_back_is_listed_again(
    hub: Hub, kube_emulators: Any, record: Any
) -> None:
    before = await kube_emulators(name="c1")
    for i in range(5):
        before.create(configmap(f"old-{i}"))
    await hub.add_cluster("c1", connect(before))
    recorder: Recorder = await record("configmaps")
    await recorder.wait_count(5)
    port = before.port
    await before.stop()
    # Restored from an old backup: the same address, a shorter history, other objects.
    after = await kube_emulators(name="c1", port=port)
    after.create(configmap("restored"))
    assert SILENT_STALLS_BEFORE_RELIST == 2  # FAST: a stall after 2 s of silence, so ~4 s
    await recorder.wait_for(
        lambda events: (
            {(e.type.value, e.name) for e in events[5:]}
            >= {("ADDED", "restored"), *(("DELETED", f"old-{i}") for i in range(5))}
        ),
        timeout=15,
    )
    after.create(configmap("later"))
    await recorder.wait_for(lambda events: events[-1].name == "later")


def test_too_large_resource_version_is_recognised_as_kube_words_it() -> None:
    with_cause = {
        "kind": "Status",
        "code": 504,
        "reason": "Timeout",
        "message": "Too large resource version: 12, current: 5",
        "details": {
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]
        },
    }
    assert ApiError(
        504, "Timeout: other words", reason="Timeout", body=with_cause
    ).is_resource_version_too_large
    # Servers before 1.19 only say it in the message.
    assert ApiError(
        504, "Too large resource version: 12, current: 5", reason="Timeout"
    ).is_resource_version_too_large
    assert not ApiError(504, "request timed out", reason="Timeout").is_resource_version_too_large
    assert not ApiError(
        500, "Too large resource version", reason="InternalError"
    ).is_resource_version_too_large
