"""Rate limits and the free-disk floor of the gate.

:class:`RateLimiter` is a set of token buckets, one per client address, per
key id and per client address for wrong keys (401s): a bucket holds at most
``burst`` tokens, refills at ``rate`` tokens a second, and a call takes one; a
call that finds its bucket empty is refused with 429 and ``Retry-After``, the
seconds until a token is back.

The service's buckets are shared by all its worker processes on the machine: a
small memory-mapped file (``<home>/rate_limits.bin``, :data:`SLOTS` fixed slots
of a keyed bucket each, found by a hash of the bucket's name) under an exclusive
``flock``, so a client gets the limits once however many workers answer it, at
the cost of two system calls per bucket and no database round trip. A bucket
pushed out of a full table (the slot's neighbourhood holds other buckets) starts
full again, as after a long pause; with :data:`SLOTS` slots that takes thousands of
client addresses at once. The web app's login counts its wrong keys in the same
buckets as the API (:func:`service_limiter`). Without a file (tests) the buckets are
in the memory of one process. The lock-out of a key after
repeated wrong secrets is in the store (:mod:`stratum_ml.serving.key_lockout`).

:func:`free_bytes` and :func:`below_floor` tell whether the disks of the
audit log and the operational store have less free space than the floor
(``STRATUM_MIN_FREE_DISK_MB``); the body guard then refuses the writing
endpoints with 503, so that a write never fails half-way on a full disk.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: the service's shared buckets, in its home folder
RATE_LIMITS_FILE = "rate_limits.bin"
#: buckets kept in memory before full (idle) ones are dropped
MAX_BUCKETS = 10_000
#: slots of the shared file (32 bytes each: 1 MiB)
SLOTS = 32_768
#: slots looked at from a bucket's home slot before one is taken over
PROBES = 8
#: one slot of the shared file: the bucket's name hashed, its tokens, when they were counted
_SLOT = struct.Struct("<16sdd")
_EMPTY = bytes(16)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class _MemoryTable:
    """Buckets in this process's memory."""

    def __init__(self) -> None:
        self._buckets: dict[bytes, _Bucket] = {}

    @contextmanager
    def locked(self) -> Iterator[None]:
        yield

    def get(self, key: bytes) -> _Bucket | None:
        return self._buckets.get(key)

    def put(self, key: bytes, bucket: _Bucket, rate: float, burst: int) -> None:
        if key not in self._buckets and len(self._buckets) >= MAX_BUCKETS:
            self._prune(rate, burst, bucket.stamp)
        self._buckets[key] = bucket

    def _prune(self, rate: float, burst: int, now: float) -> None:
        """Drop the buckets that have refilled (they hold nothing a new bucket would not)."""
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.stamp) * rate >= burst]
        for k in full:
            del self._buckets[k]


class _FileTable:
    """Buckets in a memory-mapped file that every worker process opens."""

    def __init__(self, path: Path, slots: int = SLOTS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._slots = slots
        size = slots * _SLOT.size
        with self.locked():
            if os.fstat(self._fd).st_size != size:
                os.ftruncate(self._fd, 0)  # another layout, or new: start empty
                os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size)

    @contextmanager
    def locked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _slots_of(self, key: bytes) -> Iterator[int]:
        home = int.from_bytes(key[:8], "little") % self._slots
        return ((home + i) % self._slots for i in range(PROBES))

    def get(self, key: bytes) -> _Bucket | None:
        for slot in self._slots_of(key):
            name, tokens, stamp = _SLOT.unpack_from(self._map, slot * _SLOT.size)
            if name == key:
                return _Bucket(tokens, stamp)
            if name == _EMPTY:
                return None
        return None

    def put(self, key: bytes, bucket: _Bucket, rate: float, burst: int) -> None:
        oldest, oldest_stamp = -1, math.inf
        for slot in self._slots_of(key):
            name, _, stamp = _SLOT.unpack_from(self._map, slot * _SLOT.size)
            if name in (key, _EMPTY):
                oldest = slot
                break
            if stamp < oldest_stamp:  # the least recently used bucket makes room
                oldest, oldest_stamp = slot, stamp
        _SLOT.pack_into(self._map, oldest * _SLOT.size, key, bucket.tokens, bucket.stamp)


class RateLimiter:
    """Token buckets by key, thread-safe; see the module docstring.

    Parameters
    ----------
    clock
        Seconds from a monotonic clock (a test may pass its own). The shared file
        needs a clock every process reads alike: ``time.monotonic`` is
        ``CLOCK_MONOTONIC``, one per machine.
    path
        The file the buckets are shared in by every process that opens it; None
        keeps them in this process's memory.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, path: Path | None = None
    ) -> None:
        self._clock = clock
        self._table: _MemoryTable | _FileTable = (
            _MemoryTable() if path is None else _FileTable(Path(path))
        )
        self._lock = threading.Lock()

    def _count(self, kind: str, ident: str, rate: float, burst: int, take: bool) -> int:
        key = hashlib.blake2b(f"{kind}\0{ident}".encode(), digest_size=16).digest()
        with self._lock, self._table.locked():
            now = self._clock()
            bucket = self._table.get(key)
            if bucket is None:
                bucket = _Bucket(tokens=float(burst), stamp=now)
            else:
                elapsed = max(0.0, now - bucket.stamp)
                bucket = _Bucket(min(float(burst), bucket.tokens + elapsed * rate), now)
            if bucket.tokens >= 1.0:
                if take:
                    bucket.tokens -= 1.0
                wait = 0
            else:
                wait = max(1, math.ceil((1.0 - bucket.tokens) / rate))
            self._table.put(key, bucket, rate, burst)
            return wait

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
        return self._count(kind, ident, rate, burst, take=True)

    def peek(self, kind: str, ident: str, rate: float, burst: int) -> int:
        """Like :meth:`take`, but takes nothing: 0 when a token is there, else seconds to wait."""
        return self._count(kind, ident, rate, burst, take=False)


def service_limiter(service: object, own: RateLimiter) -> RateLimiter:
    """The buckets a call counts against: the service's, shared by its workers
    (``ServiceState.limiter``), when it has them; else ``own``, of this process."""
    shared = getattr(service, "limiter", None)
    return shared if isinstance(shared, RateLimiter) else own


def free_bytes(path: Path) -> int:
    """Free bytes for an unprivileged user on the file system of ``path`` (or its folder)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def below_floor(paths: Iterable[Path], floor_bytes: int) -> bool:
    """True when any of ``paths`` lies on a file system with less than ``floor_bytes`` free."""
    return floor_bytes > 0 and any(free_bytes(p) < floor_bytes for p in paths)
