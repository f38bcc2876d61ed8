"""`WatchStream`: newline-delimited watch events, decoded in bounded batches across chunks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp.base_protocol import BaseProtocol

from mic.kube.client import WATCH_BATCH, WATCH_BATCH_BYTES, WatchStream


@dataclass
class _Response:
    """The one part of a response WatchStream reads: its body stream (a real aiohttp one)."""

    content: aiohttp.StreamReader


def _stream(chunks: list[bytes], *, eof: bool = True) -> tuple[WatchStream, aiohttp.StreamReader]:
    loop = asyncio.get_running_loop()
    reader = aiohttp.StreamReader(BaseProtocol(loop), 2**22, loop=loop)
    for chunk in chunks:
        reader.feed_data(chunk)
    if eof:
        reader.feed_eof()
    response: Any = _Response(reader)
    return WatchStream(response, "https://example.invalid"), reader


def _line(i: int) -> bytes:
    return orjson.dumps({"type": "MODIFIED", "object": {"metadata": {"name": f"o{i}"}}}) + b"\n"


async def test_a_big_chunk_comes_out_in_bounded_batches_in_order() -> None:
    count = WATCH_BATCH * 2 + 7
    body = b"".join(_line(i) for i in range(count))
    cut = len(body) // 3 + 5  # the second chunk starts in the middle of a line
    stream, _ = _stream([body[:cut], body[cut:]])
    names: list[str] = []
    sizes: list[int] = []
    while (batch := await stream.next_batch()) is not None:
        sizes.append(len(batch))
        names += [event["object"]["metadata"]["name"] for event in batch]
    assert names == [f"o{i}" for i in range(count)]
    assert max(sizes) == WATCH_BATCH


async def test_big_objects_come_in_batches_of_bounded_size() -> None:
    big = [
        orjson.dumps({"type": "MODIFIED", "object": {"metadata": {"name": f"o{i}"}, "data": "x" * 10_000}})
        + b"\n"
        for i in range(30)
    ]
    stream, _ = _stream([b"".join(big)])
    sizes: list[int] = []
    while (batch := await stream.next_batch()) is not None:
        sizes.append(len(batch))
    assert sum(sizes) == 30
    per_batch = -(-WATCH_BATCH_BYTES // len(big[0]))  # the line that crosses the budget is taken
    assert max(sizes) == per_batch < WATCH_BATCH
    huge = orjson.dumps({"type": "MODIFIED", "object": {"data": "x" * (2 * WATCH_BATCH_BYTES)}}) + b"\n"
    stream, _ = _stream([huge * 2])
    assert [len(b) for b in [await stream.next_batch(), await stream.next_batch()] if b] == [1, 1]


async def test_a_partial_line_gives_an_empty_batch_until_it_completes() -> None:
    line = _line(1)
    stream, reader = _stream([line[:10]], eof=False)
    assert await stream.next_batch() == []
    reader.feed_data(line[10:] + line[:10])
    reader.feed_eof()
    batch = await stream.next_batch()
    assert batch is not None
    assert [e["object"]["metadata"]["name"] for e in batch] == ["o1"]
    assert await stream.next_batch() is None  # the partial line left at the end is no event
