"""The check an informer makes before resuming a watch after a lost connection (`_same_history`).

It must tell a server back with the same history (resume: every change made meanwhile is
reported one by one) from one back with another history (relist). Emulated clusters over
real HTTP; a server "back with the same history" is the same emulator stopped and started.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from hub_helpers import connect, eventually

from mic.events import Event
from mic.kube.client import KubeClient
from mic.kube.connection import ClusterConnection
from mic.kube.informer import Informer, InformerOptions, InformerState
from mic.kube.resources import ResourceInfo
from mic.testing import KubeEmulator
from mic.testing.objects import configmap

CONFIGMAPS = ResourceInfo("", "v1", "configmaps", "ConfigMap", namespaced=True)
PATIENT = InformerOptions(stall_timeout=120.0, initial_backoff=0.05, max_backoff=0.3, page_size=3)
WARNING = "do not fit resourceVersion"  # the history check's warning (relisting to be sure)
WEB = {"app": "web"}


class Watched:
    """An informer on the configmaps of one emulator, recording what it reports."""

    def __init__(self, emulator: KubeEmulator, label_selector: str | None = None) -> None:
        self.client = KubeClient(connect(emulator))
        self.events: list[Event] = []
        self.informer = Informer(
            self.client, "c1", CONFIGMAPS, self._sink, label_selector=label_selector, options=PATIENT
        )

    async def _sink(self, events: list[Event]) -> None:
        self.events.extend(events)

    def since(self, start: int) -> list[tuple[str, str]]:
        return [(e.type.value, e.name) for e in self.events[start:]]

    async def wait_count(self, count: int, timeout: float = 5.0) -> None:
        await eventually(lambda: len(self.events) >= count, timeout, f"{count} events")

    async def disconnect(self, emulator: KubeEmulator) -> None:
        await emulator.stop()
        await eventually(lambda: self.informer.status.state is InformerState.UNREACHABLE)


@pytest.fixture
async def watch() -> AsyncIterator[Any]:
    made: list[Watched] = []

    async def start(emulator: KubeEmulator, label_selector: str | None = None) -> Watched:
        watched = Watched(emulator, label_selector)
        made.append(watched)
        await watched.informer.start()
        assert await watched.informer.wait_synced(5)
        return watched

    yield start
    for watched in made:
        await watched.informer.stop()
        await watched.client.close()


def _bump(emulator: KubeEmulator, name: str, times: int) -> None:
    for i in range(times):
        emulator.patch("configmaps", name, {"data": {"n": str(i)}})


async def test_an_object_recreated_while_disconnected_is_relisted_to_be_sure(
    kube_emulators: Any, watch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The first object listed was deleted and created again (another uid) while MIC was
    away. From one object this cannot be told from a cluster whose new history went past our
    version, and taking that for a reconnect would leave the cache stale for good: so it is
    relisted (a decision), which reports exactly what differs, b-other's two changes folded
    into one, and says why without calling it another cluster."""
    emu = await kube_emulators(name="c1")
    emu.create(configmap("a-first"))
    emu.create(configmap("b-other"))
    watched = await watch(emu)
    await watched.wait_count(2)
    await watched.disconnect(emu)
    emu.delete("configmaps", "a-first")
    emu.create(configmap("a-first"))
    _bump(emu, "b-other", 2)
    with caplog.at_level(logging.WARNING, logger="mic.kube.informer"):
        await emu.start()
        await watched.wait_count(5)
        await asyncio.sleep(0.2)
    assert sorted(watched.since(2)) == [
        ("ADDED", "a-first"),
        ("DELETED", "a-first"),
        ("MODIFIED", "b-other"),  # folded: a resumed watch would have reported two
    ]
    assert watched.informer.status.relists == 1
    assert WARNING in caplog.text
    assert "an object re-created meanwhile" in caplog.text


async def test_an_empty_short_page_is_not_read_as_an_empty_history(
    kube_emulators: Any, watch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that answers the one-object probe with an empty page and a continue token
    (its selector skipped the object it read) has not lost our objects: the probe follows
    the list to an object it can judge (here unchanged since our version) and resumes."""
    emu = await kube_emulators(name="c1", short_pages=True)
    emu.create(configmap("a-plain"))  # read first, filtered out: an empty first page
    emu.create(configmap("b-web", labels=WEB))  # unchanged meanwhile: what the probe judges
    emu.create(configmap("c-web", labels=WEB))
    watched = await watch(emu, "app=web")
    await watched.wait_count(2)
    await watched.disconnect(emu)
    _bump(emu, "c-web", 2)
    with caplog.at_level(logging.WARNING, logger="mic.kube.informer"):
        await emu.start()
        await watched.wait_count(4)
        await asyncio.sleep(0.2)
    assert watched.since(2) == [("MODIFIED", "c-web"), ("MODIFIED", "c-web")]
    assert watched.informer.status.relists == 0
    assert WARNING not in caplog.text
    probes = [r.path_qs for r in emu.requests if "resourceVersionMatch=NotOlderThan" in r.path_qs]
    assert probes, "no history check was made"


async def test_another_history_behind_short_pages_is_still_listed_again(
    kube_emulators: Any, watch: Any
) -> None:
    """Following the probe past an empty page must not hide another history: the object it
    reaches is not newer than our version and is not the one we hold, so MIC relists."""
    old = await kube_emulators(name="c1", short_pages=True)
    old.create(configmap("a-plain"))
    old.create(configmap("b-web", labels=WEB))
    watched = await watch(old, "app=web")
    await watched.wait_count(1)
    await watched.disconnect(old)
    new = await kube_emulators(name="c1", port=old.port, short_pages=True)
    new.create(configmap("a-plain"))
    new.create(configmap("b-web", labels=WEB))  # the same name and version, another uid
    for i in range(5):  # its history goes past our version
        new.create(configmap(f"c-web-{i}", labels=WEB))
    await watched.wait_count(8)
    await asyncio.sleep(0.2)
    assert sorted(watched.since(1)) == sorted(
        [("DELETED", "b-web"), ("ADDED", "b-web"), *(("ADDED", f"c-web-{i}") for i in range(5))]
    )
    assert watched.informer.status.relists == 1


async def test_lists_with_short_and_empty_pages_report_exact_differences(
    kube_emulators: Any, watch: Any
) -> None:
    """A selective list served in short pages, some empty, each with a continue token: the
    first list and a relist (after 410 Gone) see every page to the end, and report exactly
    what differs, deletions included."""
    emu = await kube_emulators(name="c1", short_pages=True)
    for i in range(12):
        emu.create(configmap(f"cm-{i:02}", labels=WEB if i % 5 == 4 else {}))  # 4, 9 match
    emu.create(configmap("z-web", labels=WEB))
    watched = await watch(emu, "app=web")
    assert sorted(watched.since(0)) == [("ADDED", "cm-04"), ("ADDED", "cm-09"), ("ADDED", "z-web")]
    pages = [r.path_qs for r in emu.requests if "continue=" in r.path_qs]
    assert len(pages) >= 4, "the emulator did not serve short pages"
    await watched.disconnect(emu)
    emu.delete("configmaps", "cm-09")
    emu.patch("configmaps", "z-web", {"data": {"x": "1"}})
    emu.create(configmap("cm-11b", labels=WEB))
    emu.compact()  # our version is gone: 410, relist
    await emu.start()
    await watched.wait_count(6)
    await asyncio.sleep(0.2)
    assert sorted(watched.since(3)) == [
        ("ADDED", "cm-11b"),
        ("DELETED", "cm-09"),
        ("MODIFIED", "z-web"),
    ]
    assert watched.informer.status.relists == 1
    assert set(watched.informer.cache.keys()) == {("default", n) for n in ("cm-04", "cm-11b", "z-web")}


def _cm(name: str, uid: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": rv}}


@pytest.mark.parametrize(
    ("ours", "listed", "same"),
    [
        # Integers: an object newer than our version changed after it; another uid under a
        # name we hold is relisted (re-created, or another history: one object cannot tell) ...
        ("20", _cm("a", "uid-new", "21"), False),
        ("20", _cm("a", "uid-a", "21"), True),
        ("20", _cm("new", "uid-x", "21"), True),
        # ... one not newer must be the one we hold, as we hold it.
        ("20", _cm("a", "uid-a", "10"), True),
        ("20", _cm("a", "uid-other", "20"), False),
        ("20", _cm("a", "uid-a", "9"), False),
        ("20", _cm("absent", "uid-x", "15"), False),
        # Opaque versions: only the uid of an object we hold by that name can tell.
        ("v-20", _cm("a", "uid-new", "v-21"), False),
        ("20", _cm("a", "uid-new", "021"), False),
        ("v-20", _cm("a", "uid-a", "v-21"), True),
        ("v-20", _cm("absent", "uid-x", "v-15"), True),
    ],
)
async def test_the_listed_object_is_judged_by_its_resource_version(
    ours: str, listed: dict[str, Any], same: bool
) -> None:
    informer = Informer(
        KubeClient(ClusterConnection(server="http://127.0.0.1:1")), "c1", CONFIGMAPS, _discard
    )
    reflector = informer._reflectors[0]
    reflector._sync_page([_cm("a", "uid-a", "10")], set())
    reflector.resource_version = ours
    assert reflector._listed_matches(listed) is same


async def _discard(events: list[Event]) -> None:
    return None
