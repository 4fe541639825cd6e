"""How many CPU threads one training may use: the cores nobody else is using, decided once per training run.

Ultralytics sets torch to ``cpu_count - 1`` threads for any CPU training, which leaves a core idle when one
worker has the machine and oversubscribes it when several train side by side (OpenMP threads then wait on each
other: a step measured 10x slower). Here every CPU training process registers itself in a host-wide folder (a
file it holds an exclusive lock on while it trains) and takes

    min(usable cores // registered trainers, usable cores - cores other processes keep busy)

threads, at least one. Where the share is more than one core, the foreign load is sampled from ``/proc/stat`` over a
fraction of a second, and again when it shows a busy core, keeping the least (Linux; elsewhere only the registry
counts). The count is decided once, when a training starts, and kept to its end: a result is bitwise reproducible
for a given seed and thread count (gradients summed by two threads differ from one thread's in the last bits), and
the count is recorded with the result. ``NAS_TRAIN_THREADS`` pins it (for runs that must reproduce bit for bit on
any load). The cost of deciding once: a training that started alone keeps every core when a second one starts later
(which then takes one thread) until it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import torch

from ..errors import UserError

ENV = "NAS_TRAIN_THREADS"
SAMPLE_S = 0.3
RESAMPLES = 2
_BUSY_FIELDS = (0, 1, 2, 5, 6)  # user, nice, system, irq, softirq of /proc/stat's "cpu" line (not steal, not idle)
_held: int | None = None  # the count of this process's registered training, while one runs


def registry() -> Path:
    """Return the host-wide folder where CPU trainings register (one per user, in the temp folder)."""
    return Path(tempfile.gettempdir()) / f"nas-cpu-trainers-{os.getuid()}"


def usable_cpus() -> int:
    """Return the number of CPUs this process may run on (its affinity mask, else the CPU count)."""
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _jiffies() -> tuple[int, int] | None:
    """Return (busy ticks of the whole host, this process's ticks), or None without /proc."""
    try:
        with open("/proc/stat") as f:
            host = f.readline().split()[1:]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    busy = sum(int(host[i]) for i in _BUSY_FIELDS if i < len(host))
    return busy, int(own[11]) + int(own[12])  # utime, stime (fields 14 and 15 of the whole line)


def busy_elsewhere(sample_s: float = SAMPLE_S, resamples: int = RESAMPLES) -> float:
    """Return how many cores other processes keep busy: the least over consecutive samples of ``sample_s`` seconds
    (0.0 without /proc).

    An idle first sample ends it at once; a load it sees is sampled again, up to ``resamples`` times, so a burst
    (a process starting, a file being written) does not cost a whole training a core while a steady load does."""
    busy = _one_sample(sample_s)
    for _ in range(resamples):
        if round(busy) == 0:
            break
        busy = min(busy, _one_sample(sample_s))
    return busy


def _one_sample(sample_s: float) -> float:
    """Return how many cores other processes kept busy over the next ``sample_s`` seconds (0.0 without /proc)."""
    start = _jiffies()
    t = time.perf_counter()
    time.sleep(sample_s)
    end = _jiffies()
    if start is None or end is None:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK") * (time.perf_counter() - t)
    return max(0.0, ((end[0] - start[0]) - (end[1] - start[1])) / ticks)


def _live_trainers(folder: Path) -> int:
    """Return how many registered trainings are alive (their lock is held); remove the dead ones' files."""
    alive = 0
    for entry in folder.glob("*.lock"):
        try:
            with open(entry, "a") as f:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                entry.unlink(missing_ok=True)  # nobody holds it: its process is gone
        except BlockingIOError:
            alive += 1
        except OSError:
            continue
    return alive


def choose_threads(cpus: int, trainers: int, busy: float) -> int:
    """Return the threads one of ``trainers`` trainings may use on ``cpus`` cores, ``busy`` of them kept busy by
    other processes: its share of the cores, fewer if the others leave less free, at least one."""
    share = cpus // max(1, trainers)
    free = cpus - round(busy)
    return max(1, min(share, free))


def pinned_threads() -> int | None:
    """Return the thread count ``NAS_TRAIN_THREADS`` pins, or None when it is unset.

    Raises:
        UserError: the variable is not a positive integer.
    """
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise UserError(f"{ENV}={value!r}: expected a positive number of threads")
    return int(value)


@contextlib.contextmanager
def training_threads(device: str) -> Iterator[int]:
    """Register this process as a CPU training for the duration of the block and yield the thread count it should
    use (set in torch on entry; the previous count is restored on exit). On a GPU nothing is registered and
    torch's current count is yielded.

    Raises:
        UserError: ``NAS_TRAIN_THREADS`` is not a positive integer.
    """
    global _held
    before = torch.get_num_threads()
    if torch.device(device).type != "cpu":
        yield before
        return
    if _held is not None:  # nested (a supernet trial's calibration around its fine-tune): one registration
        torch.set_num_threads(_held)
        yield _held
        return
    folder = registry()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    pending, entry = folder / f"{name}.pending", folder / f"{name}.lock"
    with open(pending, "w") as held:
        # locked before it is visible as *.lock: another process clearing dead entries must never see it unlocked
        fcntl.flock(held, fcntl.LOCK_EX)
        pending.rename(entry)
        try:
            threads = pinned_threads()
            if threads is None:
                cpus, trainers = usable_cpus(), _live_trainers(folder)
                # a single core's share needs no load sample: nothing it sees could lower it
                busy = busy_elsewhere() if cpus // max(1, trainers) > 1 else 0.0
                threads = choose_threads(cpus, trainers, busy)
            torch.set_num_threads(threads)
            _held = threads
            yield threads
        finally:
            _held = None
            torch.set_num_threads(before)
            entry.unlink(missing_ok=True)
