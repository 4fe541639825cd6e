"""Decoded images kept in memory during proxy trainings: each decoded once, results those of reading from disk."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import ultralytics.data.base as dataset_base

from modules import ultralytics_adapter as adapter
from nas.config import load_preset
from nas.data.synthetic import CLASSES
from nas.measure import train_proxy

SCHEDULE = {"epochs": 2, "imgsz": 64, "batch": 4, "nbs": 4, "warmup_epochs": 0, "mosaic": 1.0, "close_mosaic": 1}


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A fresh, empty store of decoded images; returns the list of files Ultralytics' reader really decoded."""
    calls: list[str] = []
    stock = adapter.stock_imread

    def counting(filename: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
        calls.append(os.fspath(filename))
        return stock(filename, flags)

    monkeypatch.setattr(adapter, "stock_imread", counting)
    monkeypatch.setattr(adapter, "_decoded", adapter._DecodedImages())
    return calls


def _image(folder: Path, value: int) -> Path:
    path = folder / "im.png"
    cv2.imwrite(str(path), np.full((8, 8, 3), value, np.uint8))
    return path


def test_ultralytics_datasets_read_through_the_adapter() -> None:
    assert dataset_base.imread is adapter.imread  # installed by `import modules`


def test_an_image_is_decoded_once_while_kept_and_every_caller_gets_its_own_copy(
    tmp_path: Path, decodes: list[str]
) -> None:
    path = _image(tmp_path, 7)
    with adapter.decoded_images_kept():
        first = adapter.imread(str(path))
        first[:] = 0  # an augmentation writing into the array it was given
        second = adapter.imread(str(path))
    assert len(decodes) == 1
    assert second is not first and (second == 7).all() and second.shape == (8, 8, 3)
    with adapter.decoded_images_kept():  # kept for later trainings of the process
        assert (adapter.imread(str(path)) == 7).all()
    assert len(decodes) == 1


def test_outside_the_block_every_read_decodes(tmp_path: Path, decodes: list[str]) -> None:
    path = _image(tmp_path, 7)
    adapter.imread(str(path))
    adapter.imread(str(path))
    assert len(decodes) == 2 and not adapter._decoded.images


def test_an_edited_image_is_decoded_again(tmp_path: Path, decodes: list[str]) -> None:
    path = _image(tmp_path, 7)
    with adapter.decoded_images_kept():
        adapter.imread(str(path))
        _image(tmp_path, 9)
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
        assert (adapter.imread(str(path)) == 9).all()
    assert len(decodes) == 2


def test_a_missing_file_reads_as_none_as_in_ultralytics(tmp_path: Path, decodes: list[str]) -> None:
    with adapter.decoded_images_kept():
        assert adapter.imread(str(tmp_path / "gone.png")) is None


def test_the_byte_budget_bounds_what_is_kept(
    tmp_path: Path, decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapter, "DECODED_IMAGES_MAX_BYTES", 8 * 8 * 3 - 1)
    path = _image(tmp_path, 7)
    with adapter.decoded_images_kept():
        adapter.imread(str(path))
        adapter.imread(str(path))
    assert len(decodes) == 2 and adapter._decoded.bytes == 0


def _trained(tiny_dataset: Path, run: Path) -> dict[str, torch.Tensor]:
    """Train the smoke space's stock model on the tiny dataset with mosaic (its image buffer in play); return its
    EMA weights."""
    run.parent.mkdir(parents=True)
    model = run.parent / "model.yaml"
    model.write_text(load_preset("smoke").space.stock().to_yaml(len(CLASSES)))
    train_proxy(model, tiny_dataset, SCHEDULE, run, "cpu", seed=3, save=True)
    return torch.load(run / "weights" / "last.pt", map_location="cpu", weights_only=False)["ema"].state_dict()


def test_a_training_with_images_kept_equals_one_reading_from_disk(
    tmp_path: Path, tiny_dataset: Path, decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAS_TRAIN_THREADS", "1")
    monkeypatch.setattr(adapter, "DECODED_IMAGES_MAX_BYTES", 0)
    from_disk = _trained(tiny_dataset, tmp_path / "disk" / "run")
    monkeypatch.setattr(adapter, "DECODED_IMAGES_MAX_BYTES", 1 << 30)
    kept = _trained(tiny_dataset, tmp_path / "kept" / "run")
    decoded = len(decodes)
    reused = _trained(tiny_dataset, tmp_path / "reused" / "run")  # a later trial of the same worker process
    assert len(decodes) == decoded, "a second training decoded images again"
    assert from_disk.keys() == kept.keys() == reused.keys()
    for k in from_disk:
        assert torch.equal(from_disk[k], kept[k]) and torch.equal(kept[k], reused[k]), f"{k} changed"
