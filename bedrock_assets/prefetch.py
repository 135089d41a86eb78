"""Work one step ahead: compute the next items on a worker thread while the caller handles this one.

raw_dataset's input slices, jsonl_shards' rendered pieces and joined_results' parsed shards: polars
prepares the next chunk while Python writes (or orders and encodes) the current one; memory stays
at `depth` + 1 chunks whatever the input size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def prefetched(
    fn: Callable[[Item], Result], items: Sequence[Item], depth: int = 2, name: str = "prefetch"
) -> Iterator[Result]:
    """`fn(item)` for each item, in order, with up to `depth` of the following items computed ahead
    on one worker thread. A result is dropped as soon as it is yielded; closing the iterator early
    (a `return` or an exception in the caller's loop) cancels what has not started."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        ahead: list[Future[Result]] = [pool.submit(fn, item) for item in items[:depth]]
        try:
            for i in range(len(items)):
                future = ahead.pop(0)
                if i + depth < len(items):
                    ahead.append(pool.submit(fn, items[i + depth]))
                yield future.result()
        finally:
            for future in ahead:
                future.cancel()
