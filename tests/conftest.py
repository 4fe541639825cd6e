"""Shared fixtures: offline guard, small tensors, torch determinism."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

os.environ["YOLO_OFFLINE"] = "1"  # before Ultralytics is imported: no connectivity probe at import

import pytest
import torch

import modules  # noqa: F401  (registers the operators with Ultralytics)
import nas  # noqa: F401  (closes Ultralytics' font/telemetry network paths)
from nas.measure.threads import usable_cpus
from tests.study_once import session_search, study_copy

LOOPBACK = ("127.", "localhost", "::1")


def _is_local(address: object) -> bool:
    """Return True for loopback TCP addresses and for UNIX socket paths."""
    if isinstance(address, (str, bytes)):
        return True  # AF_UNIX path
    host = address[0] if isinstance(address, tuple) and address else ""
    return isinstance(host, str) and host.startswith(LOOPBACK)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to reach beyond this machine (loopback is allowed for the dashboard test)."""
    connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def guard(original):
        def checked(self: socket.socket, address: object, *args: object) -> object:
            if not _is_local(address):
                raise AssertionError(f"network access attempted: {address!r}")
            return original(self, address, *args)

        return checked

    def checked_getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if not (host is None or (isinstance(host, str) and host.startswith(LOOPBACK))):
            raise AssertionError(f"network lookup attempted: {host!r}")
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guard(connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guard(connect_ex))
    monkeypatch.setattr(socket, "getaddrinfo", checked_getaddrinfo)


def _test_threads() -> int:
    """Return torch's threads for a test: two, or the cores' share of each pytest-xdist worker if less."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, min(2, usable_cpus() // workers))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(_test_threads())


SHARED_SEARCHES = {"_smoke_study_once", "_yolo26_study_once"}  # searches made once for the session (study_once)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the tests on a shared search to the front, in their order. pytest-xdist hands each worker a run of
    consecutive tests to start with, so one worker makes the searches while the other runs the rest instead of
    waiting on the lock for a search made at the same time."""
    first = [item for item in items if SHARED_SEARCHES & set(getattr(item, "fixturenames", ()))]
    moved = set(map(id, first))
    items[:] = first + [item for item in items if id(item) not in moved]


@pytest.fixture(scope="session", autouse=True)
def _cache_of_its_own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Give each test process (each xdist worker) a cache folder of its own (``NAS_CACHE_DIR``; a test may set
    another): two workers' first trainings on one generated dataset would race on Ultralytics' label cache file,
    and a test run leaves the user's cache as it was."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NAS_CACHE_DIR", str(tmp_path_factory.mktemp("session-cache")))
        yield


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16-image generated detection dataset at 64 px (its data YAML path)."""
    from nas.data.synthetic import SyntheticSpec, generate

    return generate(SyntheticSpec(train_images=16, val_images=8, imgsz=64, seed=1), tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def _smoke_study_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run ``python -m nas.search --study smoke --trials 3`` (in-process) once per test session (all xdist workers
    together); return its work dir (SQLite file ``nas.db``, ``runs/``, its own cache), never handed to a test."""
    return session_search(tmp_path_factory, "smoke-once", ["--study", "smoke", "--trials", "3"])


@pytest.fixture(scope="module")
def smoke_study(_smoke_study_once: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A finished 3-trial smoke study in a work dir of its own per test module (a copy of the one the session ran,
    so what one module writes no other sees) with a cache of its own; yields (storage URL, work dir)."""
    with study_copy(_smoke_study_once, tmp_path_factory, "smoke") as study:
        yield study
