"""Progress lines while datasets and encodings are prepared (tens of seconds, once)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

log = logging.getLogger("graphformer.data")

T = TypeVar("T")


def progress(items: Iterable[T], total: int, what: str, every: float = 5.0) -> Iterator[T]:
    """Yield ``items``, logging ``what: i/total (s)`` every ``every`` seconds and at the end.

    Logged at INFO on ``graphformer.data``: the console scripts show it (and write it to the
    run's log); a library user sees it only after ``logging.basicConfig(level=logging.INFO)``.
    """
    start = last = time.perf_counter()
    done = 0
    for done, item in enumerate(items, start=1):
        yield item
        now = time.perf_counter()
        if now - last >= every and done < total:
            log.info("%s: %d/%d (%.0f s)", what, done, total, now - start)
            last = now
    log.info("%s: %d/%d (%.1f s)", what, done, total, time.perf_counter() - start)
