"""Ultralytics' download paths stay closed after ``import modules``: fonts and the trainer's AMP check."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import modules  # noqa: F401  (installs the adapter)
from modules import ultralytics_adapter as adapter


def test_the_trainer_checks_amp_without_downloading_a_model() -> None:
    import ultralytics.engine.trainer as trainer

    assert trainer.check_amp is adapter.local_check_amp
    assert adapter.local_check_amp(nn.Conv2d(3, 4, 3)) is False  # CPU: no AMP, and no yolo26n.pt fetched


def test_amp_agreement_compares_the_model_itself() -> None:
    steady = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    assert adapter.amp_agrees(steady, torch.device("cpu"), torch.bfloat16, imgsz=32)

    class Overflows(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x + 1.0) * 1e5 * 1e5 if torch.is_autocast_enabled("cpu") else x  # inf in a low precision

    assert not adapter.amp_agrees(Overflows(), torch.device("cpu"), torch.bfloat16, imgsz=32)


def test_fonts_are_never_downloaded(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import ultralytics.utils.plotting as plotting

    monkeypatch.setattr(adapter, "USER_CONFIG_DIR", tmp_path)
    assert plotting.check_font is adapter.local_font
    assert plotting.check_font("Arial.ttf") is None  # absent locally: None, not a download
