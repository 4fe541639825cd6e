"""Ultralytics' download paths stay closed after ``import modules``: fonts and the trainer's AMP check."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

import modules  # noqa: F401  (installs the adapter)
from modules import ultralytics_adapter as adapter


def test_the_trainer_checks_amp_without_downloading_a_model() -> None:
    import ultralytics.engine.trainer as trainer

    assert trainer.check_amp is adapter.local_check_amp
    assert adapter.local_check_amp(nn.Conv2d(3, 4, 3)) is False  # CPU: no AMP, and no yolo26n.pt fetched


def test_amp_stays_off_on_gpus_known_to_misbehave(monkeypatch: pytest.MonkeyPatch) -> None:
    on_cuda = SimpleNamespace(parameters=lambda: iter([SimpleNamespace(device=torch.device("cuda", 0))]))
    for name, wanted in (("NVIDIA GeForce GTX 1660 Ti", False), ("Tesla T4", True), ("NVIDIA H100 80GB HBM3", True)):
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda _device, n=name: n)
        assert adapter.local_check_amp(on_cuda) is wanted, name


def test_fonts_are_never_downloaded(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import ultralytics.utils.plotting as plotting

    monkeypatch.setattr(adapter, "USER_CONFIG_DIR", tmp_path)
    assert plotting.check_font is adapter.local_font
    assert plotting.check_font("Arial.ttf") is None  # absent locally: None, not a download
