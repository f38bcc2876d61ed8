"""A set of owned background tasks: nothing runs unowned, everything can be cancelled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class OwnedTasks:
    """Starts named tasks, logs why each one stopped, and cancels the rest on `close()`.

    Unlike `asyncio.TaskGroup`, tasks can be added and removed for as long as the owner lives
    (clusters and informers come and go at runtime), and one task failing does not cancel
    its siblings: a dead cluster must never stop the others.
    """

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._tasks: dict[asyncio.Task[Any], str] = {}
        self._closed = False

    def start(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run `coro` as a task owned by this set."""
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self._owner} is closed; cannot start {name}")
        task = asyncio.create_task(coro, name=f"{self._owner}:{name}")
        self._tasks[task] = name
        task.add_done_callback(self._on_done)
        return task

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        name = self._tasks.pop(task, task.get_name())
        if task.cancelled():
            log.debug("%s: task %s cancelled", self._owner, name)
        elif (error := task.exception()) is not None:
            log.error("%s: task %s crashed: %r", self._owner, name, error, exc_info=error)
        else:
            log.debug("%s: task %s finished", self._owner, name)

    async def cancel(self, task: asyncio.Task[Any]) -> None:
        """Cancel one task and wait until it has stopped."""
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def cancel_named(self, name: str) -> None:
        """Cancel the tasks started under `name` (without waiting for them)."""
        for task, task_name in list(self._tasks.items()):
            if task_name == name:
                task.cancel()

    async def close(self) -> None:
        """Cancel every task and wait for all of them to stop."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def __len__(self) -> int:
        return len(self._tasks)
