"""One latency measurement at a time on a host, and no training batch while it runs.

A host-wide lock file in the cache folder (``$NAS_CACHE_DIR/locks``): a measurement holds it exclusively, a
training holds it shared for the duration of each batch (``on_train_batch_start`` to ``on_train_batch_end``). So
measurements of all workers of all studies are serialised, and trainings pause between two batches while one
runs (and so does a supernet trial's BatchNorm recalibration and every validation batch). A second file is a
turnstile: Linux grants a new shared ``flock`` while an exclusive request waits, so
trainers taking turns could keep a measurement waiting forever; a waiting measurement holds the turnstile, and a
batch passes it before it starts. Locks die with their process: a killed worker never blocks the host.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from ..data.synthetic import default_cache_dir
from ..errors import UserError

T = TypeVar("T")
LOCK_NAME = "latency.lock"
TURNSTILE_NAME = "latency.turnstile"


def lock_folder() -> Path:
    """Return the host-wide folder of the latency locks (``locks`` under the cache folder)."""
    return default_cache_dir() / "locks"


def _open(name: str) -> IO[bytes]:
    """Return a new open file (its own lock) for the lock file ``name``, creating the folder and the file.

    Raises:
        UserError: the cache folder cannot hold the lock file.
    """
    folder = lock_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return open(folder / name, "a+b")  # held across callbacks, closed by the caller
    except OSError as e:
        raise UserError(f"cannot create the latency lock in {folder} ({e.strerror or e}); set NAS_CACHE_DIR") from e


@contextlib.contextmanager
def measuring() -> Iterator[float]:
    """Hold the host's latency lock exclusively for the block; yield the seconds waited for it (running batches
    finish first; other measurements run before or after, never beside).

    Raises:
        UserError: the cache folder cannot hold the lock file.
    """
    t = time.perf_counter()
    with _open(TURNSTILE_NAME) as turnstile, _open(LOCK_NAME) as lock:
        fcntl.flock(turnstile, fcntl.LOCK_EX)  # no new batch starts from here on
        fcntl.flock(lock, fcntl.LOCK_EX)  # the running batches end
        try:
            yield time.perf_counter() - t
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            fcntl.flock(turnstile, fcntl.LOCK_UN)


class BatchLock:
    """A training's share of the host's latency lock: held from the start to the end of each batch."""

    def __init__(self) -> None:
        self._turnstile: IO[bytes] | None = None
        self._lock: IO[bytes] | None = None
        self._held = False

    def acquire(self, *_: Any) -> None:
        """Wait while a measurement runs or waits, then hold the lock shared (an Ultralytics callback).

        Raises:
            UserError: the cache folder cannot hold the lock file.
        """
        if self._lock is None or self._turnstile is None:
            self._turnstile, self._lock = _open(TURNSTILE_NAME), _open(LOCK_NAME)
        self.release()  # a batch that broke off without its end callback (OOM retry): never wait while holding
        fcntl.flock(self._turnstile, fcntl.LOCK_SH)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_SH)
            self._held = True
        finally:
            fcntl.flock(self._turnstile, fcntl.LOCK_UN)

    def release(self, *_: Any) -> None:
        """Let a waiting measurement run (an Ultralytics callback); nothing if not held."""
        if self._held and self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._held = False

    def close(self) -> None:
        """Release the lock and close its files (the training is over)."""
        self.release()
        for f in (self._lock, self._turnstile):
            if f is not None:
                f.close()
        self._lock = self._turnstile = None


@contextlib.contextmanager
def pausing_for_measurements(owner: Any) -> Iterator[BatchLock]:
    """Make ``owner`` (an Ultralytics trainer or ``YOLO`` model: anything with ``add_callback``) hold the latency
    lock shared during each training and validation batch for the block, and release it however the block ends;
    yield the lock."""
    lock = BatchLock()
    for phase in ("train", "val"):
        owner.add_callback(f"on_{phase}_batch_start", lock.acquire)
        owner.add_callback(f"on_{phase}_batch_end", lock.release)
    try:
        yield lock
    finally:
        lock.close()


def paused_batches(batches: Iterable[T]) -> Iterator[T]:
    """Yield ``batches``, each while holding the latency lock shared: the work the caller does with a batch (until
    it asks for the next one) never runs beside a latency measurement."""
    lock = BatchLock()
    try:
        for batch in batches:
            lock.acquire()
            yield batch
            lock.release()
    finally:
        lock.close()


def lock_path() -> Path:
    """Return the host-wide latency lock file (it may not exist yet)."""
    return lock_folder() / LOCK_NAME
