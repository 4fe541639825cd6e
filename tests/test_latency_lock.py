"""The host's latency lock: a measurement waits for the running training batch, holds off the next one, and
measurements never run side by side, across threads and processes; a training that fails leaves it free."""

from __future__ import annotations

import fcntl
import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nas.measure import train_proxy
from nas.measure.latency_lock import (
    BatchLock,
    lock_folder,
    lock_path,
    measuring,
    paused_batches,
    pausing_for_measurements,
)
from tests.yolo_yaml import write_yaml, yolo11_dict

HOLD_S = 0.4


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))


def _blocked(name: str, mode: int) -> bool:
    """Return True when lock file ``name`` cannot be had at once in ``mode`` (someone else holds it)."""
    with open(lock_folder() / name, "a+b") as f:
        try:
            fcntl.flock(f, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def _held_exclusively_elsewhere(name: str) -> bool:
    """Return True when someone else holds lock file ``name`` so that a shared lock cannot be had at once."""
    return _blocked(name, fcntl.LOCK_SH)


def _wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_measurement_waits_for_the_running_batch_and_holds_off_the_next() -> None:
    events: list[str] = []
    batch = BatchLock()
    batch.acquire()
    events.append("batch 1 starts")

    def measure() -> None:
        with measuring():
            events.append("measurement starts")
            time.sleep(HOLD_S)
            events.append("measurement ends")

    thread = threading.Thread(target=measure, daemon=True)
    thread.start()
    _wait_until(lambda: _held_exclusively_elsewhere("latency.turnstile"))  # the measurement is waiting
    time.sleep(HOLD_S)  # the batch runs on; the measurement must not start
    events.append("batch 1 ends")
    batch.release()
    batch.acquire()  # batch 2 must wait for the whole measurement
    events.append("batch 2 starts")
    batch.close()
    thread.join(10)
    assert events == ["batch 1 starts", "batch 1 ends", "measurement starts", "measurement ends", "batch 2 starts"]


def _measure_in_child(log: str, hold_s: float) -> None:
    with measuring():
        with open(log, "a") as f:
            f.write(f"start {time.time()}\n")
        time.sleep(hold_s)
        with open(log, "a") as f:
            f.write(f"end {time.time()}\n")


def test_measurements_of_two_processes_never_overlap_and_wait_for_a_batch_of_a_third(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    batch = BatchLock()
    batch.acquire()
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_measure_in_child, args=(str(log), HOLD_S)) for _ in range(2)]
    for child in children:
        child.start()
    _wait_until(lambda: _held_exclusively_elsewhere("latency.turnstile"))  # a child waits on the batch
    time.sleep(HOLD_S)
    released = time.time()
    batch.close()
    for child in children:
        child.join(30)
    stamps = [(line.split()[0], float(line.split()[1])) for line in log.read_text().splitlines()]
    assert [kind for kind, _ in stamps] == ["start", "end", "start", "end"]  # one after the other
    assert stamps[0][1] >= released  # both waited for the batch
    assert stamps[2][1] >= stamps[1][1]


def _measurement_blocked() -> bool:
    """Return True when a measurement could not take the lock now (a batch holds it shared)."""
    return _blocked(lock_path().name, fcntl.LOCK_EX)


def test_each_batch_of_a_calibration_holds_the_lock_while_it_is_worked_on() -> None:
    lock_folder().mkdir(parents=True, exist_ok=True)
    held = [_measurement_blocked() for _ in paused_batches(range(3))]
    assert held == [True, True, True]
    assert not _measurement_blocked()  # free once the batches are done
    batches = paused_batches(range(3))
    next(batches)
    batches.close()  # the caller stopped early (an error): the lock is given back
    assert not _measurement_blocked()


def test_validation_batches_hold_the_lock_too() -> None:
    owner = _Trainer()
    with pausing_for_measurements(owner):
        for callback in owner.callbacks["on_val_batch_start"]:
            callback(owner)
        assert _measurement_blocked()
        for callback in owner.callbacks["on_val_batch_end"]:
            callback(owner)
        assert not _measurement_blocked()


class _Trainer:
    """The callback interface of an Ultralytics trainer, with a training that fails in the middle of a batch."""

    def __init__(self) -> None:
        self.callbacks: dict[str, list] = {}

    def add_callback(self, event: str, callback: Any) -> None:
        self.callbacks.setdefault(event, []).append(callback)

    def train(self) -> None:
        for callback in self.callbacks["on_train_batch_start"]:
            callback(self)
        raise RuntimeError("out of memory")


def test_a_training_that_fails_mid_batch_leaves_the_lock_free() -> None:
    trainer = _Trainer()
    with pytest.raises(RuntimeError), pausing_for_measurements(trainer):
        trainer.train()
    done = threading.Event()

    def measure() -> None:
        with measuring():
            done.set()

    threading.Thread(target=measure, daemon=True).start()
    assert done.wait(10), "the failed training still holds the latency lock"


def test_train_proxy_holds_the_lock_shared_during_each_batch(tmp_path: Path, tiny_dataset: Path) -> None:
    seen: list[bool] = []

    def blocked_for_a_measurement(_: object) -> None:
        with open(lock_path(), "a+b") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
                seen.append(False)
            except BlockingIOError:
                seen.append(True)

    def customize(trainer: Any) -> None:  # registered before the lock's callbacks: runs while a batch holds it
        trainer.add_callback("on_train_batch_end", blocked_for_a_measurement)

    model_yaml = write_yaml(yolo11_dict("n", nc=5), tmp_path / "m.yaml")
    schedule = {"epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "warmup_epochs": 0, "mosaic": 0.0}
    train_proxy(model_yaml, tiny_dataset, schedule, tmp_path / "run", customize=customize)
    assert seen and all(seen)
    blocked_for_a_measurement(None)
    assert seen[-1] is False  # free once the training is over
