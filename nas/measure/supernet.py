"""Weight sharing (``init: supernet``): one supernet per study, trained once; every trial inherits its path.

The supernet is the base model in which every insertion point holds all of its options side by side in a
``ChoiceLayer``: every operator and, with ``supernet_kernels: separate``, every Conv2Former kernel with weights of
its own; with ``shared``, the kernels of one operator form share one module built with the point's largest kernel,
whose depthwise k x k convs run the centre k x k crop of the large weight (``ElasticKernel``). It is trained once
through Ultralytics' own trainer, with one of two samplings (``supernet_sampling``):

- ``uniform``, single-path uniform sampling (Guo et al., "Single Path One-Shot NAS", ECCV 2020): before every batch
  each point draws one of its operators uniformly (then a kernel uniformly, where the operator takes one), so only
  that path is run and updated;
- ``fair``, strict fairness (Chu et al., "FairNAS", ICCV 2021): before every batch each point shuffles its m
  operators into m paths, the batch runs through all of them and its loss is the mean of theirs, so every operator
  of every point is updated once per batch (once per optimizer step where ``nbs`` equals the batch, as in light; a
  Conv2Former operator with a kernel drawn uniformly) and a batch costs m paths' work.

Its weights are cached in the study's run folder like the warm base (``made_once``).

A trial builds its plain candidate from ``Architecture.to_yaml()`` (never containing supernet layers), copies every
tensor of its path from the supernet (``inherit``: nothing starts fresh), recalibrates the BatchNorm statistics on
training images (the supernet's are averages over all paths) and is then fine-tuned for the preset's
``train.epochs`` (0: validated as inherited).

``train_split`` makes the sub-supernets of few-shot NAS (one per operator of one insertion point, each trained on
from the supernet with that point fixed). Only the proxy-fidelity benchmark uses them: measured on light they did
not rank measurably better than the supernet they start from (benchmarks/README.md, proxy_fidelity).
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
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from ultralytics import YOLO
from ultralytics.data.augment import LetterBox
from ultralytics.data.utils import IMG_FORMATS, check_det_dataset
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import LOGGER

from modules.conv2former import ConvMod
from modules.ultralytics_adapter import ProxyTrainer

from ..config import SUPERNET_KERNELS, StudyConfig
from ..errors import UserError
from ..space import Architecture, Choice, SearchSpace
from ..space.space import InsertionPoint, takes_kernel
from .cost import build_model
from .latency_lock import paused_batches, pausing_for_measurements
from .phase_progress import PhaseProgress, report_epochs
from .proxy import ProxyResult, remove_run, train_proxy
from .threads import training_threads
from .warm_start import made_once

BN_IMAGES = 256  # training images whose statistics replace the supernet's BatchNorm averages
BN_BATCH = 16


def centre_crop(weight: torch.Tensor, k: int) -> torch.Tensor:
    """Return the centre ``k`` x ``k`` of a conv weight (``... x K x K``, K - k even).

    Raises:
        ValueError: ``k`` is larger than the weight's kernel or not centred in it.
    """
    big = weight.shape[-1]
    if k > big or (big - k) % 2:
        raise ValueError(f"a {k}x{k} kernel is not the centre of a {big}x{big} one")
    o = (big - k) // 2
    return weight[..., o : o + k, o : o + k]


class ElasticKernel(nn.Module):
    """A depthwise conv holding the largest kernel's weight that runs the centre ``kernel`` x ``kernel`` of it
    (padding ``kernel // 2``), so one weight serves every smaller kernel. Its tensors are named like the
    ``nn.Conv2d`` it replaces (``weight``, ``bias``)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.groups != conv.in_channels or conv.kernel_size[0] != conv.kernel_size[1] or conv.stride != (1, 1):
            raise ValueError(f"ElasticKernel needs a square stride-1 depthwise conv, got {conv}")
        self.weight, self.bias = conv.weight, conv.bias
        self.groups = conv.groups
        self.kernel = conv.kernel_size[0]  # the active kernel, set by ChoiceLayer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the depthwise conv of ``x`` with the active kernel's centre crop, same size as ``x``."""
        weight = centre_crop(self.weight, self.kernel)
        return F.conv2d(x, weight, self.bias, padding=self.kernel // 2, groups=self.groups)


def make_elastic(module: nn.Module) -> nn.Module:
    """Replace the depthwise kernel conv of every ``ConvMod`` in ``module`` by an ``ElasticKernel``; return
    ``module``."""
    for m in module.modules():
        if isinstance(m, ConvMod):
            m.a[2] = ElasticKernel(m.a[2])
    return module


class Supernet(DetectionModel):
    """The supernet's ``DetectionModel``: with several ``paths`` set (fair sampling), its training loss is the mean
    of the losses of the same batch run through each path in turn; otherwise Ultralytics' loss on the active path."""

    paths: tuple[dict[int, int], ...] = ()  # set before each batch by fair sampling

    def loss(self, batch: dict, preds: Any = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return (loss, detached loss items by name) of ``batch``: the mean over ``paths`` when they are set and no
        ``preds`` are given (each path's graph is kept until the trainer's backward), else Ultralytics' own."""
        if preds is not None or not self.paths:
            return super().loss(batch, preds)
        losses, items = [], []
        for path in self.paths:
            set_path(self, path)
            loss, parts = super().loss(batch)
            losses.append(loss)
            items.append(parts)
        n = len(losses)
        return sum(losses) / n, {k: sum(p[k] for p in items) / n for k in items[0]}


class ChoiceLayer(nn.Module):
    """One layer of an insertion point in the supernet: every option's module, the ``active`` option runs.

    ``slots[j]`` is option j's (module index, kernel): with shared kernels several options run one module, each
    with its own kernel (0: the module as built). Then the slots are also stored as the buffer ``option_map``, so
    a saved state dict tells ``inherit`` where an option's tensors are; each module's tensors appear once in the
    state dict (an EMA over it updates every tensor once).
    """

    def __init__(
        self, options: list[nn.Module], i: int, f: int | list[int], slots: list[tuple[int, int]] | None = None
    ) -> None:
        super().__init__()
        self.options = nn.ModuleList(options)
        self.slots = slots or [(j, 0) for j in range(len(options))]
        if slots:
            self.register_buffer("option_map", torch.tensor(slots, dtype=torch.long))
        self.active = 0
        self.i, self.f, self.type = i, f, f"{__name__}.ChoiceLayer"  # what Ultralytics' forward and logs read
        self.np = sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the active option's output."""
        index, kernel = self.slots[self.active]
        module = self.options[index]
        if kernel:  # set here, not in set_path, so every copy of the supernet (the EMA's) runs its own path
            for m in module.modules():
                if isinstance(m, ElasticKernel):
                    m.kernel = kernel
        return module(x)


def build_supernet(space: SearchSpace, nc: int, kernels: str = "separate") -> Supernet:
    """Return the supernet of ``space`` for ``nc`` classes: a ``Supernet`` whose insertion-point layers are
    ``ChoiceLayer``s holding ``point.options()`` in order (option j of every point comes from one build).

    ``kernels``: ``separate`` gives every (operator, kernel) option a module of its own; ``shared`` gives the
    kernels of one operator one module, built with the point's largest kernel, whose ``ElasticKernel``s run the
    centre crop of the option's kernel.

    Raises:
        ValueError: ``kernels`` is neither.
    """
    if kernels not in SUPERNET_KERNELS:
        raise ValueError(f"supernet kernels must be one of {', '.join(SUPERNET_KERNELS)}, got {kernels!r}")
    options = {p.name: p.options() for p in space.points}
    builds = []
    for j in range(max(len(o) for o in options.values())):
        picks = {name: opts[j] for name, opts in options.items() if j < len(opts)}
        builds.append(build_model(space.architecture(picks).model_dict(nc), Supernet if j == 0 else DetectionModel))
    net = builds[0]
    for point in space.points:
        opts = options[point.name]
        for layer in point.layers:
            template = builds[0].model[layer]
            if kernels == "separate":
                choices = [builds[j].model[layer] for j in range(len(opts))]
                net.model[layer] = ChoiceLayer(choices, template.i, template.f)
                continue
            modules: list[nn.Module] = []
            slots: list[tuple[int, int]] = []
            owner: dict[str, int] = {}  # operator -> index of its one module
            for j, choice in enumerate(opts):
                if choice.kernel is None:
                    slots.append((len(modules), 0))
                    modules.append(builds[j].model[layer])
                    continue
                if choice.op not in owner:
                    largest = opts.index(Choice(choice.op, max(point.kernels)))
                    owner[choice.op] = len(modules)
                    modules.append(make_elastic(builds[largest].model[layer]))
                slots.append((owner[choice.op], choice.kernel))
            net.model[layer] = ChoiceLayer(modules, template.i, template.f, slots)
    return net


def path_of(space: SearchSpace, arch: Architecture) -> dict[int, int]:
    """Return {layer index: option index} of ``arch``'s choices in the supernet of ``space``."""
    chosen = dict(arch.choices)
    return {layer: p.options().index(chosen[p.name]) for p in space.points for layer in p.layers}


def random_path(space: SearchSpace, rng: random.Random, fixed: dict[str, str] | None = None) -> dict[int, int]:
    """Return a path drawn like the search's categorical variables: an operator uniformly per point, then a kernel
    uniformly where the operator takes one (so Conv2Former's nine kernels do not get nine times the steps).
    ``fixed`` (point name -> operator): points that always take that operator (a kernel is still drawn)."""
    fixed = fixed or {}
    path: dict[int, int] = {}
    for p in space.points:
        op = fixed[p.name] if p.name in fixed else rng.choice(p.choices)
        path.update(dict.fromkeys(p.layers, _option_index(p, op, rng)))
    return path


def fair_paths(space: SearchSpace, rng: random.Random) -> list[dict[int, int]]:
    """Return m paths (m: the most operators a point of ``space`` has) in which every point takes each of its
    operators exactly once, in a random order (a point with fewer operators draws the rest uniformly); a kernel is
    drawn uniformly where the operator takes one."""
    m = max(len(p.choices) for p in space.points)
    paths: list[dict[int, int]] = [{} for _ in range(m)]
    for p in space.points:
        ops = rng.sample(p.choices, len(p.choices)) + [rng.choice(p.choices) for _ in range(m - len(p.choices))]
        for path, op in zip(paths, ops, strict=True):
            path.update(dict.fromkeys(p.layers, _option_index(p, op, rng)))
    return paths


def _option_index(point: InsertionPoint, op: str, rng: random.Random) -> int:
    """Return the index in ``point.options()`` of ``op``, with a kernel drawn uniformly where ``op`` takes one."""
    return point.options().index(Choice(op, rng.choice(point.kernels) if takes_kernel(op) else None))


def set_path(net: nn.Module, path: dict[int, int]) -> None:
    """Make ``path`` the active one in a supernet (a ``DetectionModel`` with ``ChoiceLayer``s)."""
    for layer, index in path.items():
        net.model[layer].active = index


def supernet_file(run_root: Path, epochs: int, kernels: str = "separate", sampling: str = "uniform") -> Path:
    """Return where the study whose run folder is ``run_root`` keeps its supernet trained ``epochs`` with
    ``kernels`` and ``sampling`` (``supernet_e<N>.pt`` for separate kernels and uniform sampling, as before either
    choice existed; ``_shared`` and ``_fair`` added otherwise)."""
    suffix = "".join(f"_{v}" for v, default in ((kernels, "separate"), (sampling, "uniform")) if v != default)
    return run_root / f"supernet_e{epochs}{suffix}.pt"


def train_supernet(
    cfg: StudyConfig,
    run_root: Path,
    device: str,
    seed: int,
    log: Callable[[str], None] | None = None,
    progress: PhaseProgress | None = None,
) -> Path:
    """Return the study's supernet weights, trained ``cfg.supernet_epochs`` once (cached in ``run_root``);
    ``progress`` follows its epochs (phase ``supernet``).

    Raises:
        UserError: the supernet's training failed.
    """
    out = supernet_file(run_root, cfg.supernet_epochs, cfg.supernet_kernels, cfg.supernet_sampling)
    rng, space = random.Random(seed), cfg.space

    def draw_fair(trainer: ProxyTrainer) -> None:
        trainer.model.paths = tuple(fair_paths(space, rng))

    def draw_uniform(trainer: ProxyTrainer) -> None:
        set_path(trainer.model, random_path(space, rng))

    def train(partial: Path) -> None:
        if log:
            log(
                f"init: supernet - training the supernet ({cfg.supernet_kernels} kernels, {cfg.supernet_sampling} "
                f"sampling) for {cfg.supernet_epochs} epochs, once for this study..."
            )
        draw = draw_fair if cfg.supernet_sampling == "fair" else draw_uniform
        schedule = {**cfg.schedule, "epochs": cfg.supernet_epochs}
        extra = {"epochs": cfg.supernet_epochs, "kernels": cfg.supernet_kernels, "sampling": cfg.supernet_sampling}
        _train_into(partial, out, cfg, schedule, device, seed, draw, extra, log=log, progress=progress)

    return made_once(out, train)


def split_file(supernet: Path, point: str, op: str, epochs: int) -> Path:
    """Return where the sub-supernet of ``supernet`` in which ``point`` takes ``op``, trained ``epochs`` more, is
    kept (beside ``supernet``)."""
    return supernet.with_name(f"{supernet.stem}_split-{point}-{op}_e{epochs}.pt")


def train_split(
    cfg: StudyConfig,
    supernet: Path,
    point: str,
    op: str,
    epochs: int,
    device: str,
    seed: int,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Return the few-shot sub-supernet of ``supernet`` whose insertion point ``point`` always takes the operator
    ``op`` (Zhao et al., "Few-shot Neural Architecture Search", ICML 2021): the supernet's weights, trained ``epochs``
    more with single-path uniform sampling at every other point (a kernel drawn uniformly where ``op`` takes one)
    and the preset's schedule without warm-up (``fine_tune_schedule``). Made once and cached beside ``supernet``;
    ``epochs`` 0 returns ``supernet`` itself.

    Raises:
        ValueError: ``point`` is not a point of the space, or ``op`` not one of its operators.
        UserError: the training failed.
    """
    points = {p.name: p for p in cfg.space.points}
    if point not in points or op not in points[point].choices:
        raise ValueError(f"no operator {op!r} at insertion point {point!r} of {cfg.space.name}")
    if epochs == 0:
        return supernet
    out = split_file(supernet, point, op, epochs)
    rng, space, fixed = random.Random(seed), cfg.space, {point: op}

    def draw(trainer: ProxyTrainer) -> None:
        set_path(trainer.model, random_path(space, rng, fixed))

    def train(partial: Path) -> None:
        if log:
            log(f"init: supernet - training the sub-supernet {point}={op} for {epochs} epochs...")
        schedule = fine_tune_schedule({**cfg.schedule, "epochs": epochs})
        extra = {"epochs": epochs, "kernels": cfg.supernet_kernels, "split": {point: op}, "from": supernet.name}
        _train_into(partial, out, cfg, schedule, device, seed, draw, extra, start=_state(supernet), log=log)

    return made_once(out, train)


def _train_into(
    partial: Path,
    out: Path,
    cfg: StudyConfig,
    schedule: dict,
    device: str,
    seed: int,
    draw: Callable[[ProxyTrainer], None],
    extra: dict[str, Any],
    start: dict[str, torch.Tensor] | None = None,
    log: Callable[[str], None] | None = None,
    progress: PhaseProgress | None = None,
) -> None:
    """Train a supernet of ``cfg``'s space through Ultralytics' trainer with ``schedule``, ``draw`` setting the
    paths before every batch, from ``start`` (a supernet's state dict) or a fresh initialisation; save its EMA
    weights with ``extra`` to ``partial``. Scratch files are named after ``out`` and removed.

    Raises:
        UserError: the training failed.
    """
    trained: dict[str, torch.Tensor] = {}

    def model(nc: int) -> Supernet:
        net = build_supernet(cfg.space, nc, cfg.supernet_kernels)
        if start is not None:
            net.load_state_dict(start, strict=True)
        return net

    def customize(trainer: ProxyTrainer) -> None:
        trainer.model_factory = model
        trainer.add_callback("on_train_batch_start", draw)
        trainer.add_callback("on_train_end", lambda t: trained.update(t.ema.ema.float().state_dict()))
        if progress:
            report_epochs(trainer, "supernet", progress)

    model_yaml = out.with_name(out.stem + "_stock.yaml")
    model_yaml.write_text(cfg.space.stock().to_yaml(cfg.dataset.nc))
    run_dir = out.with_suffix("")
    try:
        t = time.perf_counter()
        r = train_proxy(model_yaml, cfg.dataset.data_yaml(), schedule, run_dir, device, seed, customize=customize)
        if log:
            log(f"init: supernet - trained in {time.perf_counter() - t:.0f} s ({r.threads} CPU thread(s))")
        record = {"state_dict": {k: v.detach().cpu() for k, v in trained.items()}, "space": cfg.space.identity}
        torch.save({**record, "nc": cfg.dataset.nc, **extra}, partial)
    except (OSError, RuntimeError, FloatingPointError) as e:
        raise UserError(f"init: supernet - training the supernet failed: {e}") from e
    finally:
        remove_run(run_dir)
        model_yaml.unlink(missing_ok=True)


def inherit(candidate: DetectionModel, supernet_state: dict[str, torch.Tensor], path: dict[int, int]) -> int:
    """Copy every tensor of ``candidate`` from its ``path`` in the supernet's state dict; return how many.

    An option whose kernel runs a shared larger one (``option_map``) gets the centre crop of the large weight.

    Raises:
        KeyError: the supernet lacks a tensor of the candidate (another space or class count).
        ValueError: a tensor's shape differs (and is not a shared kernel's centre).
    """
    own = candidate.state_dict()
    copied = {}
    for key, tensor in own.items():
        parts = key.split(".")
        layer = int(parts[1]) if parts[0] == "model" and parts[1].isdigit() else None
        source, kernel = key, 0
        if layer in path:
            index, kernel = _slot(supernet_state, layer, path[layer])
            source = f"model.{layer}.options.{index}.{'.'.join(parts[2:])}"
        value = supernet_state[source]
        if kernel and value.dim() == 4 and tensor.shape == (*value.shape[:2], kernel, kernel):
            value = centre_crop(value, kernel)
        if value.shape != tensor.shape:
            raise ValueError(f"{key}: the supernet's {source} is {tuple(value.shape)}, not {tuple(tensor.shape)}")
        copied[key] = value
    candidate.load_state_dict(copied, strict=True)
    return len(copied)


def _slot(supernet_state: dict[str, torch.Tensor], layer: int, option: int) -> tuple[int, int]:
    """Return (module index, kernel) of ``option`` of the supernet's ``layer``: its ``option_map`` entry, or the
    option itself with the module's kernel (0) where the layer has none (separate kernels)."""
    mapping = supernet_state.get(f"model.{layer}.option_map")
    if mapping is None:
        return option, 0
    index, kernel = mapping[option].tolist()
    return index, kernel


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
        images = calibration_images(cfg.dataset.data_yaml(), cfg.schedule["imgsz"])
        recalibrate_bn(candidate, paused_batches(images))  # never beside another worker's latency measurement
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
    ``warmup_bias_lr`` 0.1, a schedule meant for random weights. Measured on the light fidelity set, one fine-tune
    epoch at light's learning rate lowered the inherited mAP50-95 with or without the warm-up (benchmarks/README.md,
    proxy_fidelity): light does not fine-tune.
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
            with pausing_for_measurements(model):
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
