"""The training loader that loads the next batch in a thread: same batches, same results, nothing left running."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
import torch

from modules.ultralytics_adapter import PrefetchingLoader, ProxyTrainer
from nas.config import load_preset
from nas.measure import train_proxy


class FakeLoader:
    """An epoch-by-epoch loader like Ultralytics' (one persistent stream of batches, ``len`` of them per epoch)
    that records which thread loaded each batch and how many batches were taken."""

    def __init__(self, n: int, slow: float = 0.0, fail_at: int | None = None) -> None:
        self.n, self.slow, self.fail_at = n, slow, fail_at
        self.taken = 0
        self.threads: list[str] = []
        self.collated_in: list[str] = []
        self.dataset = "the dataset"
        self.closed = False
        self.iterator = None
        self.collate_fn = self.collate

    def collate(self, samples: list[int]) -> int:
        self.collated_in.append(threading.current_thread().name)
        return samples[0]

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        for _ in range(self.n):
            time.sleep(self.slow)
            if self.taken == self.fail_at:
                raise OSError(f"cannot read image {self.taken}")
            self.threads.append(threading.current_thread().name)
            self.taken += 1
            yield self.collate_fn([self.taken - 1])

    def close(self) -> None:
        self.closed = True


def test_prefetch_yields_every_batch_in_order_from_another_thread_and_stops_at_the_epoch() -> None:
    inner = FakeLoader(5)
    loader = PrefetchingLoader(inner)
    assert len(loader) == 5 and loader.dataset == "the dataset"
    assert list(loader) == [0, 1, 2, 3, 4]
    assert inner.taken == 5  # nothing read ahead into the next epoch
    assert list(loader) == [5, 6, 7, 8, 9]
    assert all(name.startswith("prefetch") for name in inner.threads)
    # stacked into a batch where it trains: no torch op large enough for a second team of threads in the loader
    assert inner.collated_in == ["MainThread"] * 10
    loader.close()
    assert inner.closed


def test_prefetch_raises_a_loading_error_at_its_batch() -> None:
    loader = PrefetchingLoader(FakeLoader(5, fail_at=3))
    got = []
    with pytest.raises(OSError, match="cannot read image 3"):
        for batch in loader:
            got.append(batch)
    assert got == [0, 1, 2]
    loader.close()


def test_a_loop_that_breaks_off_leaves_no_batch_loading() -> None:
    inner = FakeLoader(5, slow=0.05)
    loader = PrefetchingLoader(inner)
    batches = iter(loader)
    assert next(batches) == 0
    batches.close()  # the loop broke off while batch 1 was being loaded
    taken = inner.taken
    time.sleep(0.1)
    assert taken == inner.taken == 2  # batch 1 finished before close returned; nothing read after
    loader.close()


def test_a_loader_already_iterated_is_not_wrapped() -> None:
    inner = FakeLoader(2)
    inner.iterator = iter(inner)
    with pytest.raises(ValueError, match="before its first iteration"):
        PrefetchingLoader(inner)


def test_a_prefetching_loader_can_be_copied() -> None:
    loader = PrefetchingLoader(FakeLoader(2))
    assert len(copy.copy(loader)) == 2  # copy probes the bare instance's attributes before it has a loader


def test_a_training_that_fails_mid_epoch_leaves_no_prefetch_thread(tmp_path: Path) -> None:
    cfg = load_preset("smoke")
    model = tmp_path / "model.yaml"
    model.write_text(cfg.space.stock().to_yaml(cfg.dataset.nc))
    schedule = {**cfg.schedule, "batch": 8, "nbs": 8}  # 4 batches an epoch

    def fail_after_the_first_batch(trainer: ProxyTrainer) -> None:
        def boom(_: ProxyTrainer) -> None:
            raise RuntimeError("stopped mid-epoch")

        trainer.add_callback("on_train_batch_end", boom)

    with pytest.raises(RuntimeError, match="stopped mid-epoch"):
        train_proxy(model, cfg.dataset.data_yaml(), schedule, tmp_path / "run", customize=fail_after_the_first_batch)
    assert not [t for t in threading.enumerate() if t.name.startswith("prefetch")]


def _trained_state(tmp_path: Path, seed: int, prefetch: bool) -> tuple[dict[str, torch.Tensor], type]:
    """Return the EMA weights of a 2-epoch smoke training (mosaic on, closed for the last epoch) and the class of
    the training loader it used."""
    cfg = load_preset("smoke")
    model = tmp_path / "model.yaml"
    model.write_text(cfg.space.stock().to_yaml(cfg.dataset.nc))
    schedule = {**cfg.schedule, "epochs": 2, "mosaic": 1.0, "close_mosaic": 1, "batch": 8, "nbs": 8}
    out: dict = {}

    def capture(trainer: ProxyTrainer) -> None:
        def at_end(t: ProxyTrainer) -> None:
            out.update(t.ema.ema.state_dict())
            out["loader"] = type(t.train_loader)

        trainer.add_callback("on_train_end", at_end)

    with mock.patch.object(ProxyTrainer, "prefetch", prefetch):
        train_proxy(
            model, cfg.dataset.data_yaml(), schedule, tmp_path / f"run{seed}{prefetch}", seed=seed, customize=capture
        )
    loader = out.pop("loader")
    return out, loader


def test_a_training_with_prefetch_ends_with_the_weights_of_one_without(tmp_path: Path) -> None:
    with_thread, loader = _trained_state(tmp_path, 0, True)
    assert loader is PrefetchingLoader
    without, loader = _trained_state(tmp_path, 0, False)
    assert loader is not PrefetchingLoader
    other_seed, _ = _trained_state(tmp_path, 1, True)
    assert with_thread.keys() == without.keys()
    assert all(torch.equal(with_thread[k], without[k]) for k in with_thread)
    assert not all(torch.equal(with_thread[k], other_seed[k]) for k in with_thread)  # the comparison can tell
