"""Weight sharing (``init: supernet``): one supernet per study, trained once; every trial inherits its path.

The supernet is the base model in which every insertion point holds all of its options (every operator, every
Conv2Former kernel with weights of its own) side by side in a ``ChoiceLayer``. It is trained once through
Ultralytics' own trainer with single-path uniform sampling (Guo et al., "Single Path One-Shot NAS", ECCV 2020):
before every batch each point draws one of its operators uniformly (then a kernel uniformly, where the operator
takes one), so only that path is run and updated. Its weights are cached in the study's run folder like the warm
base (``made_once``).

A trial builds its plain candidate from ``Architecture.to_yaml()`` (never containing supernet layers), copies every
tensor of its path from the supernet (``inherit``: nothing starts fresh), recalibrates the BatchNorm statistics on
training images (the supernet's are averages over all paths) and is then fine-tuned for the preset's
``train.epochs`` (0: validated as inherited).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from ultralytics import YOLO
from ultralytics.data.augment import LetterBox
from ultralytics.data.utils import IMG_FORMATS, check_det_dataset
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import LOGGER

from modules.ultralytics_adapter import ProxyTrainer

from ..config import StudyConfig
from ..errors import UserError
from ..space import Architecture, Choice, SearchSpace
from ..space.space import takes_kernel
from .cost import build_model
from .proxy import ProxyResult, remove_run, train_proxy
from .threads import training_threads
from .warm_start import made_once

BN_IMAGES = 256  # training images whose statistics replace the supernet's BatchNorm averages
BN_BATCH = 16


class ChoiceLayer(nn.Module):
    """One layer of an insertion point in the supernet: every option's module, the ``active`` one runs."""

    def __init__(self, options: list[nn.Module], i: int, f: int | list[int]) -> None:
        super().__init__()
        self.options = nn.ModuleList(options)
        self.active = 0
        self.i, self.f, self.type = i, f, f"{__name__}.ChoiceLayer"  # what Ultralytics' forward and logs read
        self.np = sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the active option's output."""
        return self.options[self.active](x)


def build_supernet(space: SearchSpace, nc: int) -> DetectionModel:
    """Return the supernet of ``space`` for ``nc`` classes: a ``DetectionModel`` whose insertion-point layers are
    ``ChoiceLayer``s holding ``point.options()`` in order (option j of every point comes from one build)."""
    options = {p.name: p.options() for p in space.points}
    builds = []
    for j in range(max(len(o) for o in options.values())):
        picks = {name: opts[j] for name, opts in options.items() if j < len(opts)}
        builds.append(build_model(space.architecture(picks).model_dict(nc)))
    net = builds[0]
    for point in space.points:
        for layer in point.layers:
            template = builds[0].model[layer]
            choices = [builds[j].model[layer] for j in range(len(options[point.name]))]
            net.model[layer] = ChoiceLayer(choices, template.i, template.f)
    return net


def path_of(space: SearchSpace, arch: Architecture) -> dict[int, int]:
    """Return {layer index: option index} of ``arch``'s choices in the supernet of ``space``."""
    chosen = dict(arch.choices)
    return {layer: p.options().index(chosen[p.name]) for p in space.points for layer in p.layers}


def random_path(space: SearchSpace, rng: random.Random) -> dict[int, int]:
    """Return a path drawn like the search's categorical variables: an operator uniformly per point, then a kernel
    uniformly where the operator takes one (so Conv2Former's nine kernels do not get nine times the steps)."""
    path = {}
    for p in space.points:
        op = rng.choice(p.choices)
        index = p.options().index(Choice(op, rng.choice(p.kernels) if takes_kernel(op) else None))
        path.update(dict.fromkeys(p.layers, index))
    return path


def set_path(net: nn.Module, path: dict[int, int]) -> None:
    """Make ``path`` the active one in a supernet (a ``DetectionModel`` with ``ChoiceLayer``s)."""
    for layer, index in path.items():
        net.model[layer].active = index


def supernet_file(run_root: Path, epochs: int) -> Path:
    """Return where the study whose run folder is ``run_root`` keeps its supernet trained ``epochs``."""
    return run_root / f"supernet_e{epochs}.pt"


def train_supernet(
    cfg: StudyConfig, run_root: Path, device: str, seed: int, log: Callable[[str], None] | None = None
) -> Path:
    """Return the study's supernet weights, trained ``cfg.supernet_epochs`` once (cached in ``run_root``).

    Raises:
        UserError: the supernet's training failed.
    """
    out = supernet_file(run_root, cfg.supernet_epochs)

    def train(partial: Path) -> None:
        if log:
            log(f"init: supernet - training the supernet for {cfg.supernet_epochs} epochs, once for this study...")
        rng = random.Random(seed)
        trained: dict[str, torch.Tensor] = {}

        def customize(trainer: ProxyTrainer) -> None:
            trainer.model_factory = lambda nc: build_supernet(cfg.space, nc)
            trainer.add_callback("on_train_batch_start", lambda t: set_path(t.model, random_path(cfg.space, rng)))
            trainer.add_callback("on_train_end", lambda t: trained.update(t.ema.ema.float().state_dict()))

        model_yaml = out.with_name(out.stem + "_stock.yaml")
        model_yaml.write_text(cfg.space.stock().to_yaml(cfg.dataset.nc))
        run_dir = out.with_suffix("")
        schedule = {**cfg.schedule, "epochs": cfg.supernet_epochs}
        try:
            t = time.perf_counter()
            r = train_proxy(model_yaml, cfg.dataset.data_yaml(), schedule, run_dir, device, seed, customize=customize)
            if log:
                log(f"init: supernet - trained in {time.perf_counter() - t:.0f} s ({r.threads} CPU thread(s))")
            record = {"state_dict": {k: v.detach().cpu() for k, v in trained.items()}, "space": cfg.space.identity}
            torch.save({**record, "nc": cfg.dataset.nc, "epochs": cfg.supernet_epochs}, partial)
        except (OSError, RuntimeError, FloatingPointError) as e:
            raise UserError(f"init: supernet - training the supernet failed: {e}") from e
        finally:
            remove_run(run_dir)
            model_yaml.unlink(missing_ok=True)

    return made_once(out, train)


def inherit(candidate: DetectionModel, supernet_state: dict[str, torch.Tensor], path: dict[int, int]) -> int:
    """Copy every tensor of ``candidate`` from its ``path`` in the supernet's state dict; return how many.

    Raises:
        KeyError: the supernet lacks a tensor of the candidate (another space or class count).
        ValueError: a tensor's shape differs.
    """
    own = candidate.state_dict()
    copied = {}
    for key, tensor in own.items():
        parts = key.split(".")
        layer = int(parts[1]) if parts[0] == "model" and parts[1].isdigit() else None
        source = f"model.{layer}.options.{path[layer]}.{'.'.join(parts[2:])}" if layer in path else key
        value = supernet_state[source]
        if value.shape != tensor.shape:
            raise ValueError(f"{key}: the supernet's {source} is {tuple(value.shape)}, not {tuple(tensor.shape)}")
        copied[key] = value
    candidate.load_state_dict(copied, strict=True)
    return len(copied)


def calibration_images(data_yaml: Path, imgsz: int, count: int = BN_IMAGES) -> Iterator[torch.Tensor]:
    """Yield batches of the first ``count`` training images (sorted by name), letterboxed to ``imgsz`` as
    Ultralytics feeds them (RGB, 0..1, NCHW)."""
    train = check_det_dataset(str(data_yaml), autodownload=False)["train"]
    folders = [Path(p) for p in (train if isinstance(train, list) else [train])]
    files = sorted(f for d in folders for f in d.rglob("*") if f.suffix.lower().lstrip(".") in IMG_FORMATS)[:count]
    letterbox = LetterBox(new_shape=(imgsz, imgsz), auto=False)
    for start in range(0, len(files), BN_BATCH):
        images = [letterbox(image=cv2.imread(str(f)))[..., ::-1] for f in files[start : start + BN_BATCH]]
        yield torch.from_numpy(np.ascontiguousarray(np.stack(images))).permute(0, 3, 1, 2).float() / 255.0


def recalibrate_bn(model: nn.Module, batches: Iterator[torch.Tensor]) -> int:
    """Replace every BatchNorm's running statistics by the exact average over ``batches`` (forwarded in train mode,
    no gradient); nothing else changes. Returns how many BatchNorm layers were recalibrated."""
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    momenta = [m.momentum for m in norms]
    device = next(model.parameters()).device
    was_training = model.training
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
        model.train()
        with torch.no_grad():
            for x in batches:
                model(x.to(device))
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)
    return len(norms)


def _state(path: Path) -> dict[str, torch.Tensor]:
    """Return the supernet's state dict stored at ``path`` (read once per process and file version)."""
    return _load_state(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=1)
def _load_state(path: Path, version: int) -> dict[str, torch.Tensor]:
    """Return the state dict in ``path``; ``version`` (its mtime) keys the cache, so a retrained file is read again.
    Tensors are only read from, never written: ``inherit`` copies them into the candidate."""
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def supernet_proxy(
    arch: Architecture, cfg: StudyConfig, supernet: Path, run_dir: Path, device: str, seed: int
) -> tuple[ProxyResult, dict[str, float]]:
    """Return the proxy result of ``arch`` inheriting from ``supernet``, and the times and counts of its phases
    (``inherit_s``, ``bn_recal_s``, ``inherited_tensors``): BatchNorm recalibrated, then fine-tuned for
    ``cfg.schedule['epochs']`` (0: validated as inherited; see ``fine_tune_schedule``). ``run_dir`` is left for the
    caller to remove.

    Raises:
        FloatingPointError, RuntimeError: training or validation failed.
    """
    with training_threads(device):
        t = time.perf_counter()
        candidate = build_model(arch.model_dict(cfg.dataset.nc))
        inherited = inherit(candidate, _state(supernet), path_of(cfg.space, arch))
        t_bn = time.perf_counter()
        recalibrate_bn(candidate, calibration_images(cfg.dataset.data_yaml(), cfg.schedule["imgsz"]))
        phases = {"inherit_s": t_bn - t, "bn_recal_s": time.perf_counter() - t_bn, "inherited_tensors": inherited}
        run_dir.mkdir(parents=True, exist_ok=True)
        weights = run_dir / "inherited.pt"
        torch.save({"model": candidate.eval(), "train_args": {}}, weights)
        model_yaml = run_dir / "model.yaml"
        model_yaml.write_text(arch.to_yaml(cfg.dataset.nc))
        if cfg.schedule["epochs"] > 0:
            data, schedule = cfg.dataset.data_yaml(), fine_tune_schedule(cfg.schedule)
            return train_proxy(model_yaml, data, schedule, run_dir, device, seed, weights), phases
        return _validate(weights, cfg, run_dir, device), phases


def fine_tune_schedule(schedule: dict) -> dict:
    """Return the schedule a candidate fine-tunes its inherited weights with: the preset's, without warm-up.

    Ultralytics' warm-up lasts at least 100 iterations (more than a light epoch) and starts the biases at
    ``warmup_bias_lr`` 0.1, thirty times the light learning rate: measured on the light fidelity set, one such
    epoch took the inherited weights from mAP50-95 0.07-0.3 down to 0.00-0.08.
    """
    return {**schedule, "warmup_epochs": 0.0}


def _validate(weights: Path, cfg: StudyConfig, run_dir: Path, device: str) -> ProxyResult:
    """Return the validation metrics of a checkpoint as a 0-epoch proxy result (Ultralytics' validator)."""
    level = LOGGER.level
    t = time.perf_counter()
    try:
        LOGGER.setLevel(logging.WARNING)
        with contextlib.redirect_stdout(io.StringIO()), training_threads(device) as threads:
            model = YOLO(str(weights))
            # Ultralytics' select_device sets its own thread count just before the validation starts
            model.add_callback("on_val_start", lambda _: torch.set_num_threads(threads))
            metrics = model.val(
                data=str(cfg.dataset.data_yaml()),
                imgsz=cfg.schedule["imgsz"],
                batch=cfg.schedule["batch"],
                device=device,
                workers=0,
                plots=False,
                verbose=False,
                project=str(run_dir.resolve()),
                name="val",
                exist_ok=True,
            )
    finally:
        LOGGER.setLevel(level)
    map50_95, map50 = float(metrics.box.map), float(metrics.box.map50)
    if not math.isfinite(map50_95):
        raise FloatingPointError("validation produced NaN metrics")
    return ProxyResult(map50_95, map50, train_s=0.0, val_s=time.perf_counter() - t, epochs=0, threads=threads)
