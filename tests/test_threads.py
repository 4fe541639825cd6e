"""CPU threads of a training: each takes its share of the free cores, decided once, and gives them back."""

from __future__ import annotations

import fcntl
import multiprocessing
import time
from pathlib import Path

import pytest
import torch

from nas.errors import UserError
from nas.measure import threads

REAL_BUSY_ELSEWHERE = threads.busy_elsewhere


@pytest.fixture(autouse=True)
def own_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own host-wide folder, and no pinned count, and no foreign load."""
    folder = tmp_path / "trainers"
    monkeypatch.setattr(threads, "registry", lambda: folder)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: 0.0)
    monkeypatch.delenv(threads.ENV, raising=False)
    return folder


@pytest.mark.parametrize(
    ("cpus", "trainers", "busy", "expected"),
    [
        (2, 1, 0.0, 2),  # alone on an idle machine: every core
        (2, 2, 0.0, 1),  # two trainers: one core each, even before the other one is busy
        (2, 1, 0.9, 1),  # another process keeps a core busy
        (2, 1, 2.0, 1),  # all busy: still one thread
        (16, 3, 1.2, 5),
        (16, 1, 4.4, 12),
    ],
)
def test_a_training_takes_its_share_of_the_free_cores(cpus: int, trainers: int, busy: float, expected: int) -> None:
    assert threads.choose_threads(cpus, trainers, busy) == expected


def _hold(folder: str, ready, release) -> None:
    path = Path(folder) / "other.lock"
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        ready.set()
        release.wait(30)


def test_a_second_live_training_halves_the_threads_and_a_dead_ones_file_is_cleared(
    own_registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    own_registry.mkdir(parents=True)
    (own_registry / "dead.lock").write_text("")  # left by a killed process: nobody holds its lock
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold, args=(str(own_registry), ready, release))
    other.start()
    try:
        assert ready.wait(30)
        before = torch.get_num_threads()
        with threads.training_threads("cpu") as n:
            assert n == 1
            assert torch.get_num_threads() == 1
            with threads.training_threads("cpu") as nested:  # one registration per process
                assert nested == 1
            assert len(list(own_registry.glob("*.lock"))) == 2  # its own and the other's; the dead one is gone
        assert torch.get_num_threads() == before
        assert [p.name for p in own_registry.glob("*.lock")] == ["other.lock"]
    finally:
        release.set()
        other.join(30)
    with threads.training_threads("cpu") as alone:
        assert alone == 2


def test_the_environment_pins_the_count_and_a_bad_value_is_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(threads.ENV, "3")
    with threads.training_threads("cpu") as n:
        assert n == 3 == torch.get_num_threads()
    monkeypatch.setenv(threads.ENV, "two")
    with pytest.raises(UserError, match="NAS_TRAIN_THREADS='two'"), threads.training_threads("cpu"):
        pass


def test_the_foreign_load_sample_sees_a_process_that_keeps_a_core_busy() -> None:
    if not Path("/proc/stat").exists():
        pytest.skip("needs Linux's /proc")
    spinner = multiprocessing.get_context("spawn").Process(target=_spin)
    spinner.start()
    try:
        time.sleep(1.0)  # let it start spinning
        busy = REAL_BUSY_ELSEWHERE()
    finally:
        spinner.terminate()
        spinner.join()
    assert busy > 0.7  # its core (anything else the machine runs only adds)


def _spin() -> None:
    while True:
        pass


@pytest.mark.parametrize(
    ("samples", "expected", "taken"),
    [
        ([0.2], 0.2, 1),  # idle at once: one sample, no wait
        ([1.0, 0.1], 0.1, 2),  # a burst: the second sample sees the core free again
        ([1.0, 0.9, 1.1], 0.9, 3),  # a steady load: still busy after every resample
    ],
)
def test_a_busy_sample_is_taken_again_and_the_least_load_kept(
    monkeypatch: pytest.MonkeyPatch, samples: list[float], expected: float, taken: int
) -> None:
    left = list(samples)
    monkeypatch.setattr(threads, "_one_sample", lambda _s: left.pop(0))
    assert REAL_BUSY_ELSEWHERE() == expected
    assert len(samples) - len(left) == taken


def test_no_load_is_sampled_when_the_share_is_one_core_already(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    monkeypatch.setattr(threads, "_live_trainers", lambda _folder: 2)

    def never() -> float:
        raise AssertionError("sampled the load although the share was one core")

    monkeypatch.setattr(threads, "busy_elsewhere", never)
    with threads.training_threads("cpu") as n:
        assert n == 1
