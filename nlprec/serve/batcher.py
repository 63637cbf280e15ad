"""A per-model asyncio micro-batcher: concurrent requests merged into one model call.

Requests wait in one bounded queue per served model. The batcher's task takes the oldest
request, waits at most `max_wait_ms` for more with the same batch key (an operation and its
parameters, e.g. ("similar", k=10)), takes requests with that key until they hold `max_batch`
items, and runs the adapter's batched function on all their items at once in the model's own
thread (the event loop never runs model code; one thread per model, so a model is never
called twice at once). Each request then gets its own slice of the answers. While a model
call runs, new requests queue up, so under load batches fill without any waiting.

A request larger than `max_batch` items runs alone. A full queue refuses new requests
(`QueueFull`, answered 429 with Retry-After). A request whose caller gave up (timeout) leaves
the queue at once; if its batch is already running, its answer is dropped. If a batched call
fails, each of its requests is run alone so that one bad request cannot fail the others.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

# run(key, items) -> one answer per item, in order.
BatchFunction = Callable[[Hashable, list], Sequence]


class Retired(Exception):
    """The batcher's model was replaced by a reload: submit to the new one."""


class QueueFull(Exception):
    """The model's queue holds `max_queue` requests; `retry_after` is a whole number of seconds."""

    def __init__(self, model: str, limit: int, retry_after: int) -> None:
        super().__init__(f"model {model!r} has {limit} requests waiting (the queue limit); retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass(eq=False)
class _Pending:
    key: Hashable
    items: list
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)


class Batcher:
    """Merges concurrent requests for one model into batched calls of `run`.

    Args:
        name: the model's name (thread name, messages).
        run: the batched function, run in this batcher's thread.
        max_batch: most items per model call, >= 1.
        max_wait_ms: longest wait for more requests once one is queued, >= 0.
        max_queue: most requests waiting, >= 1.
        on_batch: called with (items, seconds) after each model call (metrics).
    """

    def __init__(self, name: str, run: BatchFunction, max_batch: int, max_wait_ms: float, max_queue: int,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        self.name, self.run = name, run
        self.max_batch, self.max_wait, self.max_queue = max_batch, max_wait_ms / 1000, max_queue
        self.on_batch = on_batch
        self._pending: deque[_Pending] = deque()
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{name}")
        self._task: asyncio.Task | None = None
        self._closing = False
        self._seconds_per_batch = 0.01  # running mean, for Retry-After

    def __len__(self) -> int:
        """Requests waiting (not yet in a model call)."""
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"batcher-{self.name}")

    async def submit(self, key: Hashable, items: list, deadline: float | None = None) -> list:
        """Queue `items` under batch `key` and wait for their answers (in order); past `deadline`
        (the event loop's clock) raise TimeoutError, and the request leaves the queue."""
        if self._closing:
            raise Retired(self.name)
        if len(self._pending) >= self.max_queue:
            waits = math.ceil(len(self._pending) / self.max_batch) * self._seconds_per_batch
            raise QueueFull(self.name, self.max_queue, max(1, math.ceil(waits)))
        loop = asyncio.get_running_loop()
        pending = _Pending(key, items, loop.create_future())
        self._pending.append(pending)
        self._arrived.set()
        expiry = loop.call_at(deadline, self._expire, pending) if deadline is not None else None
        try:
            return await pending.future
        except asyncio.CancelledError:  # the caller went away: its place in the queue is freed
            self._drop(pending)
            raise
        finally:
            if expiry is not None:
                expiry.cancel()

    def _expire(self, pending: _Pending) -> None:
        self._drop(pending)
        _settle(pending.future, error=TimeoutError())

    def _drop(self, pending: _Pending) -> None:
        if pending in self._pending:
            self._pending.remove(pending)

    async def close(self) -> None:
        """Answer what is queued, then stop the task and the thread."""
        self._closing = True
        self._arrived.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def _loop(self) -> None:
        while True:
            while not self._pending:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
            batch = await self._collect()
            try:
                await self._execute(batch)
            except Exception as err:  # noqa: BLE001 - never leave a request waiting, keep serving
                for pending in batch:
                    _settle(pending.future, error=err)

    async def _collect(self) -> list[_Pending]:
        """The oldest request's key, and every queued request with it up to `max_batch` items,
        after waiting up to `max_wait` (from the oldest request's arrival) for the batch to fill."""
        key = self._pending[0].key
        deadline = self._pending[0].queued_at + self.max_wait
        while not self._closing and self._items_with(key) < self.max_batch:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                break
        batch, total, kept = [], 0, deque()
        while self._pending:
            pending = self._pending.popleft()
            fits = not batch or total + len(pending.items) <= self.max_batch
            if pending.key == key and fits and not pending.future.done():
                batch.append(pending)
                total += len(pending.items)
            elif not pending.future.done():
                kept.append(pending)
        self._pending = kept
        return batch

    def _items_with(self, key: Hashable) -> int:
        return sum(len(p.items) for p in self._pending if p.key == key)

    async def _execute(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        loop = asyncio.get_running_loop()
        items = [item for pending in batch for item in pending.items]
        started = time.perf_counter()
        try:
            answers = await loop.run_in_executor(self._executor, self.run, batch[0].key, items)
        except Exception as err:  # noqa: BLE001 - isolate the request that caused it
            if len(batch) > 1:
                for pending in batch:
                    await self._execute([pending])
                return
            _settle(batch[0].future, error=err)
            return
        seconds = time.perf_counter() - started
        self._seconds_per_batch = 0.8 * self._seconds_per_batch + 0.2 * seconds
        if self.on_batch is not None:
            self.on_batch(len(items), seconds)
        start = 0
        for pending in batch:
            _settle(pending.future, result=list(answers[start:start + len(pending.items)]))
            start += len(pending.items)


def _settle(future: asyncio.Future, result: Any = None, error: BaseException | None = None) -> None:
    """Answer a future unless its caller already gave up on it."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
