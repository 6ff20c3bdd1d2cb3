"""Rate limits and the free-disk floor of the gate.

:class:`RateLimiter` is a set of token buckets, one per client address, per
key id and per client address for wrong keys (401s): a bucket holds at most
``burst`` tokens, refills at ``rate`` tokens a second, and a call takes one; a
call that finds its bucket empty is refused with 429 and ``Retry-After``, the
seconds until a token is back.

The buckets live in the memory of one worker process. That is a choice: a
shared bucket in the operational store would cost a write on every request
(and a lock every worker waits on), which an attacker could turn against the
service itself. So with W workers a client gets up to W times the limits; the
README says so. What must hold across workers, the lock-out of a key after
repeated wrong secrets, is in the store (:mod:`stratum_ml.serving.key_lockout`).

:func:`free_bytes` and :func:`below_floor` tell whether the disks of the
audit log and the operational store have less free space than the floor
(``STRATUM_MIN_FREE_DISK_MB``); the body guard then refuses the writing
endpoints with 503, so that a write never fails half-way on a full disk.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

#: buckets kept before full (idle) ones are dropped
MAX_BUCKETS = 10_000


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets by key, thread-safe; see the module docstring.

    Parameters
    ----------
    clock
        Seconds from a monotonic clock (a test may pass its own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, key: tuple[str, str], rate: float, burst: int, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._prune(rate, burst, now)
            bucket = self._buckets[key] = _Bucket(tokens=float(burst), stamp=now)
        else:
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
        return bucket

    def _prune(self, rate: float, burst: int, now: float) -> None:
        """Drop the buckets that have refilled (they hold nothing a new bucket would not)."""
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.stamp) * rate >= burst]
        for k in full:
            del self._buckets[k]

    def take(self, kind: str, ident: str, rate: float, burst: int) -> int:
        """Take a token from bucket ``(kind, ident)``; 0 when taken, else seconds to wait.

        Parameters
        ----------
        kind, ident
            Which bucket: e.g. ``("address", "10.0.0.7")``.
        rate
            Tokens a second the bucket refills with.
        burst
            Most tokens the bucket holds (a new bucket is full).
        """
        with self._lock:
            now = self._clock()
            bucket = self._bucket((kind, ident), rate, burst, now)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0
            return max(1, math.ceil((1.0 - bucket.tokens) / rate))

    def peek(self, kind: str, ident: str, rate: float, burst: int) -> int:
        """Like :meth:`take`, but takes nothing: 0 when a token is there, else seconds to wait."""
        with self._lock:
            now = self._clock()
            bucket = self._bucket((kind, ident), rate, burst, now)
            return 0 if bucket.tokens >= 1.0 else max(1, math.ceil((1.0 - bucket.tokens) / rate))


def free_bytes(path: Path) -> int:
    """Free bytes for an unprivileged user on the file system of ``path`` (or its folder)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def below_floor(paths: Iterable[Path], floor_bytes: int) -> bool:
    """True when any of ``paths`` lies on a file system with less than ``floor_bytes`` free."""
    return floor_bytes > 0 and any(free_bytes(p) < floor_bytes for p in paths)
