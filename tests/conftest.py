"""Shared fixtures: offline guard, small tensors, torch determinism."""

from __future__ import annotations

import os
import socket
from pathlib import Path

os.environ["YOLO_OFFLINE"] = "1"  # before Ultralytics is imported: no connectivity probe at import

import pytest
import torch

import modules  # noqa: F401  (registers the operators with Ultralytics)
import nas  # noqa: F401  (closes Ultralytics' font/telemetry network paths)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to open a network connection (everything here must work offline)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16-image generated detection dataset at 64 px (its data YAML path)."""
    from nas.data.synthetic import SyntheticSpec, generate

    return generate(SyntheticSpec(train_images=16, val_images=8, imgsz=64, seed=1), tmp_path_factory.mktemp("cache"))
