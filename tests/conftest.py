"""Shared fixtures: offline guard, small tensors, torch determinism."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

os.environ["YOLO_OFFLINE"] = "1"  # before Ultralytics is imported: no connectivity probe at import

import pytest
import torch

import modules  # noqa: F401  (registers the operators with Ultralytics)
import nas  # noqa: F401  (closes Ultralytics' font/telemetry network paths)

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


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16-image generated detection dataset at 64 px (its data YAML path)."""
    from nas.data.synthetic import SyntheticSpec, generate

    return generate(SyntheticSpec(train_images=16, val_images=8, imgsz=64, seed=1), tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def _smoke_study_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run ``python -m nas.search --study smoke --trials 3`` (in-process) once per test session into a fresh work
    dir (SQLite file ``nas.db``, ``runs/``, its own cache); return the work dir, never handed to a test."""
    from nas.cli import search

    work = tmp_path_factory.mktemp("smoke-once")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NAS_CACHE_DIR", str(work / "cache"))
        storage = f"sqlite:///{work / 'nas.db'}"
        argv = ["--study", "smoke", "--trials", "3", "--storage", storage, "--run-dir", str(work / "runs")]
        assert search.main(argv) == 0
    return work


@pytest.fixture(scope="module")
def smoke_study(_smoke_study_once: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A finished 3-trial smoke study in a work dir of its own per test module (a copy of the one the session ran,
    so what one module writes no other sees) with a cache of its own; yields (storage URL, work dir)."""
    work = tmp_path_factory.mktemp("smoke")
    # not the cache: its generated dataset's YAML names the folder it was made in; the copy makes its own on use
    shutil.copytree(_smoke_study_once, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns("cache"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NAS_CACHE_DIR", str(work / "cache"))
        yield f"sqlite:///{work / 'nas.db'}", work
