"""Does the proxy rank architectures like a long training from scratch? Spearman and Kendall against a reference.

Architectures: the stock model plus n-1 distinct random ones of the preset's space (seeded draw); the script
checks that every operator form of the space appears and names the ones that do not.
Reference: each architecture trained from scratch for --reference-epochs with the preset's training size, data
and schedule otherwise; the first of --reference-seeds on every architecture, the others on the first
--second-seed-on architectures. The Spearman between two reference seeds is the repeatability ceiling: no proxy
can be expected to agree with the reference better than the reference agrees with itself.
Proxy modes (--modes), each on the same architectures: the first of --proxy-seeds on every one, the others on the
same first --second-seed-on ones (the mode's own seed-to-seed spread; a seed of a mode with a one-off step is a
second study: its warm base or supernet is trained again with that seed). A mode is one entry of MODES, a function
(bench, arch, seed, workdir) -> (mAP50-95, seconds), with the settings its results depend on and an optional
one-off step run once before its trials (a unit of its own, "<mode>:<step>"):
  scratch  random init, the preset's schedule for --proxy-epochs (init: scratch)
  warm     inherits every tensor it shares with the unmodified base, trained once per proxy seed for
           --warm-epochs, then the preset's schedule for --proxy-epochs (init: warm); one-off step "warm:base"
  supernetN[-eE][-shared]  inherits its path of the weight-sharing supernet trained once for E epochs (default 16;
           one-off step "supernetN:base[-eE][-shared]"), -shared: one largest Conv2Former kernel whose centre
           the smaller kernels take (supernet_kernels: shared), BatchNorm recalibrated, N fine-tune epochs without
           warm-up (init: supernet)
  supernet1-lr0.0003[-f0.25]  the same with one fine-tune epoch at lr0 0.0003, a tenth of light's (-f0.25: on
           the first quarter of the training images)
  supernet0-eE-fair  the same without fine-tune from a supernet trained E epochs with strict fairness (FairNAS:
           every operator of every point once per batch; E 3: about the 16 uniform epochs' work, E 6: twice it,
           E 12: four times; supernet_sampling: fair)
  fewshot0-P-fF  few-shot NAS (Zhao et al., ICML 2021): the 16-epoch supernet split on insertion point P into one
           sub-supernet per operator of P (P always takes it), each trained F more epochs from the supernet's
           weights; a candidate inherits its path from the sub-supernet of its operator at P, BatchNorm
           recalibrated, no fine-tune; one-off step "fewshot0-P-fF:split-P-fF" (the supernet, then the
           sub-supernets); F 0 evaluates the supernet itself like supernet0
  scratch-eE-Spx  random init, E epochs at S px (training and validation), the preset's schedule otherwise:
           more epochs at a lower resolution (E 4 and 8 at 64 px: about half and all of the scratch mode's
           convolution work)
  tse      the scratch mode's training ranked by minus its mean training loss over every batch (training speed
           estimate, Ru et al. 2021); its records keep every batch's loss and its mAP
  zico, synflow  zero-cost scores of the seeded random initialisation (nas.measure.zero_cost), no training
  gflops   minus the GFLOPs at the deployment size (the cost objective itself): how far cost alone ranks
A score mode's record holds its value under "score" (the zero-cost and cost modes no mAP); it is ranked like an mAP
(higher: better).

Work is split into units (architecture, role, seed), the role being "reference" or a mode. --workers spawned
processes run them (the parent gives each unit its threads: the worker's share of the cores, every core to a
unit that runs alone because the rest waits on it); each finished unit is appended at once as one JSON line to
--runs-file. On start the runs file is read and the units already there with the same settings are skipped: stop
the command at any time and run it again to resume. A unit that fails is recorded with its error and is not run
again unless --retry-failed. After every unit the summary (<--out>/proxy_fidelity.json) is recomputed from the
runs file, partial data included: per mode Spearman and Kendall against the reference's mean over its seeds (each
with a bootstrap 90% interval), whether the mode's top 3 contains the reference's best, its mean seconds per trial,
its seed-to-seed Spearman and (where the gflops mode ran) its partial Spearman given minus GFLOPs: what it ranks
right beyond the cost objective; the reference's repeatability (also beyond GFLOPs), per-architecture spread and
the hosts its trainings ran on (each record names its host: a seeded result reproduces only on the same kind).

The summary's headline (spearman, kendall, spearman_ci90) is the mode that measures the preset's own proxy
(default_mode); every mode is under by_mode.

    python -m benchmarks.proxy_fidelity [--study light] [--n 12] [--reference-epochs 16] [--reference-seeds 0 1] \\
        [--proxy-seeds 0 1] [--second-seed-on 6] [--modes scratch warm] [--workers 2] [--runs-file F] [--out DIR]
    python -m benchmarks.proxy_fidelity --only-summary    # recompute the summary from the runs file, train nothing
"""

from __future__ import annotations

import collections
import fcntl
import functools
import itertools
import json
import math
import os
import random
import signal
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NamedTuple

import optuna

from benchmarks.common import (
    RESULTS,
    dataset_digest,
    diverse_architectures,
    host,
    invocation,
    parser,
    say,
    spawn_pool,
    stop_workers,
    write_result,
)
from modules.table import is_stock
from modules.ultralytics_adapter import ProxyTrainer
from nas.config import StudyConfig, load_preset
from nas.data.datasets import synthetic_dataset
from nas.measure import architecture_cost, remove_run, train_proxy, warm_base_path, warm_start_weights
from nas.measure import threads as cpu_threads
from nas.measure.supernet import (
    fine_tune_schedule,
    split_file,
    supernet_file,
    supernet_proxy,
    train_split,
    train_supernet,
)
from nas.measure.zero_cost import ZICO_BATCH, ZICO_BATCHES, labelled_batches, synflow, zico
from nas.ranking import kendall, partial_spearman, spearman
from nas.space import Architecture, Choice

NAME = "proxy_fidelity"
RUNS_FILE = RESULTS / f"{NAME}_runs.jsonl"
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 0
MIN_RANKED = 3  # fewer architectures give no correlation (two points always correlate +-1)
MIN_PARTIAL = 5  # a partial correlation on 3 points is always +-1 or 0: one variable held fixed leaves too few
TOP = 3
BAR_SPEARMAN = 0.8
SUPERNET_EPOCHS = 16
# the supernets of the modes: (epochs, kernels, sampling, fine-tune epochs of a mode each). A fair supernet's step
# runs each of light's 6 operators: 3 epochs do about the work of the 16 uniform ones, 6 twice that, 12 four times
SUPERNETS = (
    (SUPERNET_EPOCHS, "separate", "uniform", (0, 1)),
    (SUPERNET_EPOCHS, "shared", "uniform", (0, 1)),
    (48, "separate", "uniform", (0, 1)),
    (32, "separate", "uniform", (0,)),  # the 6-epoch fair supernet's work, uniformly sampled
    (3, "separate", "fair", (0,)),
    (6, "separate", "fair", (0,)),
    (12, "separate", "fair", (0,)),
)
# issue 12's protocol: what the summary checks the command against
REFERENCE_EPOCHS = 16  # the reference's default schedule (proxy_fidelity.json)
PROTOCOL = {"n": 12, "reference_epochs": 16, "reference_seeds": 2, "second_seed_on": 6}

UnitId = tuple[str, str, int]  # (architecture key, role, seed)
Tune = tuple[tuple[str, float], ...]  # a supernet mode's changes to the fine-tune schedule (lr0, fraction)
LOW_LR = 0.0003  # a tenth of light's lr0 (0.003): the inherited weights are meant to move little
# the low-resolution scratch modes: (epochs, image size). 8 epochs at 64 px cost about the scratch mode's 2 at
# 128 px in convolutions (a quarter of the pixels), 4 epochs about half of it
LOW_RES = ((4, 64), (8, 64))
# few-shot modes: (the point the supernet is split on, epochs each sub-supernet trains from the supernet). down_p2:
# its operators' work differs most of light's points (0.256-0.308 GFLOPs at 128 px: a spread of 0.052, at most 0.033
# elsewhere), chosen before any few-shot result; 0 epochs is the supernet itself, evaluated on the split's host
FEW_SHOT = (("down_p2", 0), ("down_p2", 4))


class Outcome(NamedTuple):
    """What a mode returns: mAP50-95 and seconds (a plain 2-tuple is accepted too), optionally mAP50, epochs,
    threads, a ``score`` for a mode ranked by something else than the mAP, and the training's batch losses."""

    map50_95: float
    seconds: float
    map50: float | None = None
    epochs: int | None = None
    threads: int | None = None  # torch's CPU threads while it trained
    score: float | None = None  # what a mode ranked by something else than the mAP ranks by (higher: better)
    batch_losses: tuple[float, ...] = ()  # each training batch's loss, in order (kept in the record when set)


class Score(NamedTuple):
    """What a score mode returns: a value ranked like an mAP (higher: better) and the seconds it took."""

    value: float
    seconds: float


@dataclass(frozen=True)
class Bench:
    """What every unit of one command shares. Sent to the workers, so it holds names and numbers only."""

    study: str
    device: str
    reference_epochs: int
    warm_epochs: int
    workdir: Path
    proxy_epochs: int = 2  # the scratch and warm modes' epochs
    val_images: int | None = None  # the embedded dataset with this many validation images (same training images)

    @property
    def proxy_schedule(self) -> dict:
        """Return the scratch and warm modes' schedule: the preset's, for ``proxy_epochs``."""
        return {**self.cfg.schedule, "epochs": self.proxy_epochs}

    @property
    def cfg(self) -> StudyConfig:
        """Return the preset (loaded once per process), with ``val_images`` validation images when set."""
        return _preset(self.study, self.val_images)

    def warm_root(self, seed: int) -> Path:
        """Return the folder of the warm-start base trained with ``seed`` (one per preset and seed)."""
        return self.workdir / f"warm-{self.study}-s{seed}"

    def supernet_cfg(self, epochs: int, kernels: str = "separate", sampling: str = "uniform") -> StudyConfig:
        """Return the preset as an ``init: supernet`` study whose supernet trains ``epochs`` with ``kernels`` and
        ``sampling``."""
        return replace(
            self.cfg, init="supernet", supernet_epochs=epochs, supernet_kernels=kernels, supernet_sampling=sampling
        )

    def supernet_root(self, seed: int) -> Path:
        """Return the folder of the supernets trained with ``seed`` (one per preset and seed)."""
        return self.workdir / f"supernet-{self.study}-s{seed}"


@functools.cache
def _preset(study: str, val_images: int | None = None) -> StudyConfig:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = load_preset(study)
    if val_images is None:
        return cfg
    if cfg.dataset.synthetic is None:
        raise SystemExit(f"--val-images needs a preset on the embedded dataset; {study} uses {cfg.dataset.description}")
    # generated images depend on (seed, index) only: the training images stay the same, validation gets more
    return replace(cfg, dataset=synthetic_dataset(replace(cfg.dataset.synthetic, val_images=val_images)))


# ---------------------------------------------------------------------------------------------------------------
# roles: the reference and the proxy modes


def _train(
    bench: Bench, arch: Architecture, schedule: dict, seed: int, workdir: Path, weights=None, keep_losses: bool = False
) -> Outcome:
    """Train ``arch`` with ``schedule`` in ``workdir``; the seconds are the training run's (set-up, epochs, val).
    ``keep_losses``: also return every training batch's loss (the sum of Ultralytics 8.4's named loss items)."""
    cfg = bench.cfg
    model = workdir / "model.yaml"
    model.write_text(arch.to_yaml(cfg.dataset.nc))
    losses: list[float] = []

    def keep(trainer: ProxyTrainer) -> None:
        trainer.add_callback("on_train_batch_end", lambda t: losses.append(sum(map(float, t.loss_items.values()))))

    t = time.perf_counter()
    data = cfg.dataset.data_yaml()
    customize = keep if keep_losses else None
    r = train_proxy(model, data, schedule, workdir / "train", bench.device, seed, weights=weights, customize=customize)
    return Outcome(r.map50_95, time.perf_counter() - t, r.map50, r.epochs, r.threads, batch_losses=tuple(losses))


def reference(bench: Bench, arch: Architecture, seed: int, workdir: Path) -> Outcome:
    """From scratch for ``reference_epochs``, the preset's schedule otherwise."""
    return _train(bench, arch, {**bench.cfg.schedule, "epochs": bench.reference_epochs}, seed, workdir)


def scratch(bench: Bench, arch: Architecture, seed: int, workdir: Path) -> Outcome:
    """Random init, the preset's schedule."""
    return _train(bench, arch, bench.proxy_schedule, seed, workdir)


def low_res_mode(epochs: int, imgsz: int) -> str:
    """Return the name of the scratch mode training ``epochs`` at ``imgsz``, e.g. scratch-e8-64px."""
    return f"scratch-e{epochs}-{imgsz}px"


def _low_res(epochs: int, imgsz: int) -> Callable[[Bench, Architecture, int, Path], Outcome]:
    """Return the mode that trains from scratch for ``epochs`` at ``imgsz`` (training and validation), the preset's
    schedule otherwise: more epochs for a quarter of the pixels."""

    def run(bench: Bench, arch: Architecture, seed: int, workdir: Path) -> Outcome:
        schedule = _low_res_settings(bench, seed, epochs, imgsz)["schedule"]  # the one its records name
        return _train(bench, arch, schedule, seed, workdir)

    return run


def _low_res_settings(bench: Bench, seed: int, epochs: int, imgsz: int) -> dict:
    """Return what a low-resolution scratch mode's results depend on (the same for every seed)."""
    return _settings(bench, "scratch", epochs, imgsz=imgsz)


def training_speed(bench: Bench, arch: Architecture, seed: int, workdir: Path) -> Outcome:
    """Return the scratch mode's training with ``score`` minus its mean training loss over every batch (the training
    speed estimate of Ru et al., NeurIPS 2021: a network that learns faster sums less loss) and every batch's loss.

    Raises:
        FloatingPointError: no batch loss was recorded, or one is NaN/inf (a score the ranking cannot use).
    """
    out = _train(bench, arch, bench.proxy_schedule, seed, workdir, keep_losses=True)
    if not out.batch_losses or not all(math.isfinite(x) for x in out.batch_losses):
        raise FloatingPointError(f"training speed estimate: {len(out.batch_losses)} batch losses, not all finite")
    return out._replace(score=-statistics.fmean(out.batch_losses))


REUSED = "reused the existing"  # how a one-off step's note begins when it trained nothing


def one_off_fields(epochs: int, path: Path, existed: bool) -> dict:
    """Return the fields a one-off step's record adds: its epochs and, where ``path`` existed before (nothing
    trained), a note saying so: its seconds then measure no training."""
    return {"epochs": epochs, "note": f"{REUSED} {path}: its training time is not known" if existed else None}


def warm_base(bench: Bench, seed: int) -> dict:
    """Train the warm-start base once per seed (the ``warm:base`` unit); return the fields its record adds."""
    existed = warm_base_path(bench.warm_root(seed), bench.warm_epochs).is_file()
    path = warm_start_weights(bench.cfg, bench.warm_root(seed), bench.device, seed, bench.warm_epochs)
    return one_off_fields(bench.warm_epochs, path, existed)


def warm(bench: Bench, arch: Architecture, seed: int, workdir: Path) -> Outcome:
    """Inherit the matching tensors of the base trained with ``seed``, then the preset's schedule. The base comes
    from the ``warm:base`` unit; should its file be gone, it is trained again here, outside the seconds this
    returns."""
    weights = warm_start_weights(bench.cfg, bench.warm_root(seed), bench.device, seed, bench.warm_epochs)
    return _train(bench, arch, bench.proxy_schedule, seed, workdir, weights=weights)


def _supernet_base(epochs: int, kernels: str, sampling: str = "uniform") -> Callable[[Bench, int], dict]:
    """Return the one-off step that trains the supernet for ``epochs`` with ``kernels``, ``sampling`` and a seed
    (the modes of one supernet share its file)."""

    def prepare(bench: Bench, seed: int) -> dict:
        root = bench.supernet_root(seed)
        existed = supernet_file(root, epochs, kernels, sampling).is_file()
        path = train_supernet(bench.supernet_cfg(epochs, kernels, sampling), root, bench.device, seed)
        return one_off_fields(epochs, path, existed)

    return prepare


def _from_supernet(
    fine_tune: int, epochs: int, kernels: str, tune: Tune = (), sampling: str = "uniform"
) -> Callable[[Bench, Architecture, int, Path], Outcome]:
    """Return the mode that inherits a path of the supernet trained ``epochs`` with ``kernels`` (separate or
    shared Conv2Former kernels), ``sampling`` and the unit's seed, recalibrates BatchNorm and fine-tunes
    ``fine_tune`` epochs (0: validated as inherited) with the preset's schedule changed by ``tune``; the seconds are
    the trial's from inheriting to the validation. A second seed is a second study: its own supernet."""

    def run(bench: Bench, arch: Architecture, seed: int, workdir: Path) -> Outcome:
        base = bench.supernet_cfg(epochs, kernels, sampling)  # the supernet its modes share: never tuned
        weights = train_supernet(base, bench.supernet_root(seed), bench.device, seed)
        cfg = replace(base, schedule={**base.schedule, **dict(tune), "epochs": fine_tune})
        t = time.perf_counter()
        r, _ = supernet_proxy(arch, cfg, weights, workdir / "train", bench.device, seed)
        return Outcome(r.map50_95, time.perf_counter() - t, r.map50, r.epochs, r.threads)

    return run


def supernet_mode(
    fine_tune: int, epochs: int, kernels: str, step: bool = False, tune: Tune = (), sampling: str = "uniform"
) -> str:
    """Return the name of a supernet mode (``step``: of its one-off step), e.g. supernet0, supernet1-e48-shared,
    supernet0-e3-fair, supernet1-lr0.0003-f0.25 (``tune``: its fine-tune's learning rate and fraction of the
    training images)."""
    suffix = ("" if epochs == SUPERNET_EPOCHS else f"-e{epochs}") + ("" if kernels == "separate" else f"-{kernels}")
    suffix += "" if sampling == "uniform" else f"-{sampling}"
    if step:
        return "base" + suffix
    short = {"lr0": "lr", "fraction": "f"}
    return f"supernet{fine_tune}{suffix}" + "".join(f"-{short[k]}{v:g}" for k, v in tune)


def _supernet_settings(
    bench: Bench, seed: int, fine_tune: int, epochs: int, kernels: str, tune: Tune = (), sampling: str = "uniform"
) -> dict:
    """Return what a supernet mode's results depend on with ``seed`` (its fine-tune schedule as ``supernet_proxy``
    runs it)."""
    # only where not the default, so records from before each choice still count
    chosen = {"supernet_kernels": kernels} if kernels != "separate" else {}
    chosen |= {"supernet_sampling": sampling} if sampling != "uniform" else {}
    settings = _settings(bench, "supernet", fine_tune, supernet_epochs=epochs, base_seed=seed, **chosen)
    if fine_tune:
        settings["schedule"] = fine_tune_schedule({**settings["schedule"], **dict(tune)})
    return settings


def few_shot_mode(point: str, epochs: int, step: bool = False) -> str:
    """Return the name of a few-shot mode (``step``: of its one-off step), e.g. fewshot0-down_p2-f4."""
    return f"split-{point}-f{epochs}" if step else f"fewshot0-{point}-f{epochs}"


def _split_base(point: str, epochs: int) -> Callable[[Bench, int], dict]:
    """Return the one-off step that trains the supernet (if not yet there), then its sub-supernets split on
    ``point``, each ``epochs`` more, with a seed. Its record's ``epochs`` are the supernet's; ``split_epochs`` and
    ``sub_supernets`` give the rest of the work."""

    def prepare(bench: Bench, seed: int) -> dict:
        cfg, root = bench.supernet_cfg(SUPERNET_EPOCHS), bench.supernet_root(seed)
        base = supernet_file(root, SUPERNET_EPOCHS)
        ops = next(p for p in cfg.space.points if p.name == point).choices
        files = [base] + [split_file(base, point, op, epochs) for op in ops if epochs]
        existed = all(f.is_file() for f in files)
        train_supernet(cfg, root, bench.device, seed)
        for op in ops:
            train_split(cfg, base, point, op, epochs, bench.device, seed)
        fields = one_off_fields(SUPERNET_EPOCHS, base, existed)
        return {**fields, "split": point, "split_epochs": epochs, "sub_supernets": len(ops) if epochs else 0}

    return prepare


def _from_split(point: str, epochs: int) -> Callable[[Bench, Architecture, int, Path], Outcome]:
    """Return the few-shot mode: a candidate inherits its path from the sub-supernet of its operator at ``point``
    (trained ``epochs`` from the unit's seed's supernet), recalibrates BatchNorm and is validated; the seconds are
    the trial's from inheriting to the validation."""

    def run(bench: Bench, arch: Architecture, seed: int, workdir: Path) -> Outcome:
        cfg = bench.supernet_cfg(SUPERNET_EPOCHS)
        base = train_supernet(cfg, bench.supernet_root(seed), bench.device, seed)
        op = dict(arch.choices)[point].op
        weights = train_split(cfg, base, point, op, epochs, bench.device, seed)
        t = time.perf_counter()
        r, _ = supernet_proxy(
            arch, replace(cfg, schedule={**cfg.schedule, "epochs": 0}), weights, workdir / "v", bench.device, seed
        )
        return Outcome(r.map50_95, time.perf_counter() - t, r.map50, r.epochs, r.threads)

    return run


def _few_shot_settings(bench: Bench, seed: int, point: str, epochs: int) -> dict:
    """Return what a few-shot mode's results depend on with ``seed``: the supernet's, its split point and the
    sub-supernets' schedule."""
    split_schedule = fine_tune_schedule({**bench.cfg.schedule, "epochs": epochs})
    split = {"point": point, "epochs": epochs, "schedule": split_schedule if epochs else None}
    return _supernet_settings(bench, seed, 0, SUPERNET_EPOCHS, "separate") | {"split": split}


def _settings(bench: Bench, init: str, epochs: int | None = None, imgsz: int | None = None, **extra: Any) -> dict:
    """Return what a role's results depend on: a record counts for a unit only if its settings are equal.
    ``epochs`` and ``imgsz`` replace the preset schedule's where given."""
    cfg = bench.cfg
    schedule = {**cfg.schedule, "epochs": cfg.schedule["epochs"] if epochs is None else epochs}
    if imgsz is not None:
        schedule["imgsz"] = imgsz
    return {
        "study": cfg.name,
        "dataset": cfg.dataset.description,
        "device": bench.device,
        "init": init,
        "schedule": schedule,
        **extra,
    }


@functools.cache
def _batches(data_yaml: Path, imgsz: int) -> list[dict]:
    """Return ZiCo's labelled training batches (read once per process)."""
    return labelled_batches(data_yaml, imgsz)


def zico_score(bench: Bench, arch: Architecture, seed: int, workdir: Path) -> Score:
    """ZiCo of the initialisation seeded ``seed``; the seconds leave out reading the batches (once per process)."""
    cfg = bench.cfg
    batches = _batches(cfg.dataset.data_yaml(), cfg.schedule["imgsz"])
    t = time.perf_counter()
    return Score(zico(arch, cfg.dataset.nc, batches, seed), time.perf_counter() - t)


def synflow_score(bench: Bench, arch: Architecture, seed: int, workdir: Path) -> Score:
    """SynFlow of the initialisation seeded ``seed`` at the training size."""
    t = time.perf_counter()
    return Score(synflow(arch, bench.cfg.dataset.nc, bench.cfg.schedule["imgsz"], seed), time.perf_counter() - t)


def gflops_score(bench: Bench, arch: Architecture, seed: int, workdir: Path) -> Score:
    """Minus the GFLOPs at the preset's deployment size: a search's cost objective read as an accuracy ranking."""
    t = time.perf_counter()
    return Score(-architecture_cost(arch, bench.cfg.dataset.nc, bench.cfg.imgsz).gflops, time.perf_counter() - t)


def _score_settings(bench: Bench, score: str, **extra: Any) -> dict:
    """Return what a score mode's results depend on."""
    cfg = bench.cfg
    return {"study": cfg.name, "dataset": cfg.dataset.description, "device": "cpu", "score": score, **extra}


@dataclass(frozen=True)
class Mode:
    """One role: how a unit runs, what its results depend on, and an optional one-off step (``step``: its name)."""

    run: Callable[[Bench, Architecture, int, Path], Outcome | Score | tuple[float, float]]
    about: str
    settings: Callable[[Bench, int], dict]  # of a unit with this seed
    prepare: Callable[[Bench, int], dict] | None = None  # the one-off step for a seed
    step: str = ""
    makes: str = ""  # what the one-off step makes: modes making the same (one supernet file) share one step unit
    field: str = "map50_95"  # the record's value this mode is ranked by ("score" for a score mode)


REFERENCE = Mode(
    reference,
    "from scratch for --reference-epochs",
    lambda b, _seed: _settings(b, "scratch", b.reference_epochs),
)
MODES: dict[str, Mode] = {
    "scratch": Mode(
        scratch,
        "random init, the preset's schedule for --proxy-epochs",
        lambda b, _seed: _settings(b, "scratch", b.proxy_epochs),
    ),
    **{
        low_res_mode(epochs, imgsz): Mode(
            _low_res(epochs, imgsz),
            f"random init, the preset's schedule for {epochs} epochs at {imgsz} px (training and validation)",
            functools.partial(_low_res_settings, epochs=epochs, imgsz=imgsz),
        )
        for epochs, imgsz in LOW_RES
    },
    "tse": Mode(
        training_speed,
        "the scratch mode's training ranked by minus its mean training loss over every batch (training speed estimate)",
        lambda b, _seed: _settings(b, "scratch", b.proxy_epochs, rank_by="mean training loss"),
        field="score",
    ),
    "warm": Mode(
        warm,
        "inherits the tensors of the unmodified base trained once for --warm-epochs, then the preset's schedule for "
        "--proxy-epochs",
        lambda b, seed: _settings(b, "warm", b.proxy_epochs, warm_epochs=b.warm_epochs, base_seed=seed),
        prepare=warm_base,
        step="base",
        makes="warm-base",
    ),
    **{
        supernet_mode(n, epochs, kernels, sampling=sampling): Mode(
            _from_supernet(n, epochs, kernels, sampling=sampling),
            f"inherits its path of the supernet trained once for {epochs} epochs ({kernels} Conv2Former kernels, "
            f"{sampling} sampling), BatchNorm recalibrated, {n} fine-tune epoch(s) without warm-up",
            functools.partial(_supernet_settings, fine_tune=n, epochs=epochs, kernels=kernels, sampling=sampling),
            prepare=_supernet_base(epochs, kernels, sampling),
            step=supernet_mode(n, epochs, kernels, step=True, sampling=sampling),
            makes=f"supernet-e{epochs}-{kernels}" + ("" if sampling == "uniform" else f"-{sampling}"),
        )
        for epochs, kernels, sampling, fine_tunes in SUPERNETS
        for n in fine_tunes
    },
    **{
        supernet_mode(1, SUPERNET_EPOCHS, "separate", tune=tune): Mode(
            _from_supernet(1, SUPERNET_EPOCHS, "separate", tune),
            f"inherits its path of the supernet trained once for {SUPERNET_EPOCHS} epochs, BatchNorm recalibrated, "
            f"1 fine-tune epoch without warm-up at lr0 {LOW_LR:g}"
            + (f" on the first {dict(tune)['fraction']:.0%} of the training images" if len(tune) > 1 else ""),
            functools.partial(_supernet_settings, fine_tune=1, epochs=SUPERNET_EPOCHS, kernels="separate", tune=tune),
            prepare=_supernet_base(SUPERNET_EPOCHS, "separate"),
            step=supernet_mode(1, SUPERNET_EPOCHS, "separate", step=True),
            makes=f"supernet-e{SUPERNET_EPOCHS}-separate",
        )
        for tune in ((("lr0", LOW_LR),), (("lr0", LOW_LR), ("fraction", 0.25)))
    },
    **{
        few_shot_mode(point, epochs): Mode(
            _from_split(point, epochs),
            f"inherits its path of the sub-supernet of its operator at {point}, trained {epochs} epochs from the "
            f"{SUPERNET_EPOCHS}-epoch supernet with {point} fixed (few-shot NAS), BatchNorm recalibrated, no fine-tune",
            functools.partial(_few_shot_settings, point=point, epochs=epochs),
            prepare=_split_base(point, epochs),
            step=few_shot_mode(point, epochs, step=True),
            makes=f"supernet-e{SUPERNET_EPOCHS}-separate-split-{point}-f{epochs}",
        )
        for point, epochs in FEW_SHOT
    },
    "zico": Mode(
        zico_score,
        f"ZiCo at the seeded initialisation, {ZICO_BATCHES} batches of {ZICO_BATCH} training images (no training)",
        lambda b, _seed: _score_settings(
            b, "zico", batches=ZICO_BATCHES, batch=ZICO_BATCH, imgsz=b.cfg.schedule["imgsz"]
        ),
        field="score",
    ),
    "synflow": Mode(
        synflow_score,
        "log SynFlow at the seeded initialisation (no data, no training)",
        lambda b, _seed: _score_settings(b, "synflow", imgsz=b.cfg.schedule["imgsz"]),
        field="score",
    ),
    "gflops": Mode(
        gflops_score,
        "minus the GFLOPs at the deployment size (the cost objective ranked as if it were accuracy)",
        lambda b, _seed: _score_settings(b, "gflops", imgsz=b.cfg.imgsz),
        field="score",
    ),
}


# what a plain command runs: the modes of proxy_fidelity.json (the others are named with --modes)
DEFAULT_MODES = (
    "scratch",
    "warm",
    "supernet0",
    "supernet1",
    "supernet0-shared",
    "supernet1-shared",
    "supernet0-e48",
    "supernet1-e48",
)


COST_MODE = "gflops"  # the mode whose score is the architectures' cost (minus GFLOPs at the deployment size)


def role_mode(role: str) -> tuple[Mode, bool]:
    """Return the mode of ``role`` and whether the role is the mode's one-off step."""
    if role == "reference":
        return REFERENCE, False
    name, _, step = role.partition(":")
    return MODES[name], bool(step)


# ---------------------------------------------------------------------------------------------------------------
# one unit, in a worker process


def _worker_setup(threads: int) -> None:
    """Ctrl-C is the parent's to handle (it stops the workers), so that no interrupted training is recorded as a
    failure. The unit's trainings take ``threads`` (pinned through ``nas.measure.threads``' variable)."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)  # outside trainings (building, loading)
    os.environ[cpu_threads.ENV] = str(threads)


def unit_threads(workers: int, others_running: int, others_runnable: bool, cpus: int | None = None) -> int:
    """Return the threads of a unit about to start: every core when it runs alone and nothing else can start
    before it ends (a one-off step the others wait on), else its worker's share of the cores.

    Decided by the parent, which knows what will run side by side: a worker sampling the registry itself could
    start a moment before the other registers and keep both cores for a whole run (measured: 920 s for a reference
    unit that took 494 s with one thread, its neighbour slowed as much)."""
    cpus = cpus or cpu_threads.usable_cpus()
    if not others_running and not others_runnable:
        return cpus
    return max(1, cpus // workers)


def unit_folder(bench: Bench, key: str, role: str, seed: int) -> Path:
    """Return the run folder of one unit (removed when the unit ends)."""
    return bench.workdir / "units" / f"{key}-{role.replace(':', '-')}-s{seed}"


def run_unit(
    bench: Bench, choices: tuple[tuple[str, str, int | None], ...], role: str, seed: int, threads: int
) -> dict:
    """Run one unit in its own folder (removed afterwards), its trainings on ``threads``; return its record. Errors
    are recorded, not raised."""
    _worker_setup(threads)
    arch = bench.cfg.space.architecture({p: Choice(op, k) for p, op, k in choices})
    mode, is_step = role_mode(role)
    folder = unit_folder(bench, arch.key, role, seed)
    remove_run(folder)  # left over from an interrupted run
    folder.mkdir(parents=True)
    record: dict[str, Any] = {
        "key": arch.key,
        "summary": arch.summary(),
        "role": role,
        "seed": seed,
        "map50_95": None,
        "map50": None,
        "score": None,
        "seconds": None,
        "epochs": None,
        "error": None,
        "note": None,
    }
    t = time.perf_counter()
    try:
        if is_step:
            assert mode.prepare is not None
            record.update(mode.prepare(bench, seed), seconds=round(time.perf_counter() - t, 1))
        else:
            out = mode.run(bench, arch, seed, folder)
            if isinstance(out, Score):
                record.update(score=round(out.value, 5), seconds=round(out.seconds, 3))
                return record
            out = out if isinstance(out, Outcome) else Outcome(*out)
            record.update(
                map50_95=round(out.map50_95, 5),
                map50=None if out.map50 is None else round(out.map50, 5),
                seconds=round(out.seconds, 1),
                epochs=out.epochs,
                threads=out.threads,
            )
            if out.score is not None:
                record["score"] = round(out.score, 5)
            if out.batch_losses:
                record["batch_losses"] = [round(x, 5) for x in out.batch_losses]
    except Exception as e:  # recorded with its first line; the other units go on
        lines = str(e).strip().splitlines()
        record.update(
            error=f"{type(e).__name__}: {lines[0] if lines else ''}".strip(), seconds=round(time.perf_counter() - t, 1)
        )
    finally:
        remove_run(folder)
    return record


# ---------------------------------------------------------------------------------------------------------------
# the plan and the runs file


@dataclass(frozen=True)
class Unit:
    key: str
    role: str
    seed: int
    needs: UnitId | None = None  # a one-off step that must be done first

    @property
    def id(self) -> UnitId:
        return (self.key, self.role, self.seed)


def plan(archs: list[Architecture], args) -> list[Unit]:
    """Return every unit in the order they are started: the first seed's one-off steps; the first seeds
    architecture by architecture (a partial run already ranks its first architectures); the other reference seeds,
    the long units, before the other proxy seeds, the short ones (so the two workers finish at about the same
    time), each proxy seed after its own one-off steps (a second seed is a second study: its own base)."""
    units: list[Unit] = []
    steps: dict[tuple[str, int], UnitId] = {}  # (mode, seed): the one-off step its units wait on

    def one_off_steps(seed: int) -> None:
        made: dict[str, UnitId] = {}
        for name in args.modes:
            mode = MODES[name]
            if mode.prepare and mode.makes in made:  # another mode's step makes the same file: no second unit
                steps[name, seed] = made[mode.makes]
            elif mode.prepare:
                step = Unit(archs[0].key, f"{name}:{mode.step}", seed)
                steps[name, seed] = made[mode.makes] = step.id
                units.append(step)

    first = args.proxy_seeds[0]
    one_off_steps(first)
    for arch in archs:
        units.append(Unit(arch.key, "reference", args.reference_seeds[0]))
        units.extend(Unit(arch.key, name, first, steps.get((name, first))) for name in args.modes)
    again = archs[: args.second_seed_on]
    units.extend(Unit(a.key, "reference", seed) for seed in args.reference_seeds[1:] for a in again)
    for seed in args.proxy_seeds[1:] if again else ():
        one_off_steps(seed)
        units.extend(Unit(a.key, name, seed, steps.get((name, seed))) for a in again for name in args.modes)
    return units


def read_runs(path: Path) -> list[dict]:
    """Return the records of the runs file (none if it does not exist), skipping unreadable lines."""
    if not path.is_file():
        return []
    records, bad = [], 0
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                bad += 1
    if bad:
        say(f"{path}: {bad} unreadable line(s) skipped (an interrupted write)")
    return records


def match(records: list[dict], units: list[Unit], bench: Bench) -> tuple[dict, dict, int]:
    """Return the last successful record of each unit, the last error of each unit that never succeeded, and how
    many records belong to no unit of this plan (other settings or architectures)."""
    wanted = {u.id: role_mode(u.role)[0].settings(bench, u.seed) for u in units}
    done: dict[UnitId, dict] = {}
    errors: dict[UnitId, dict] = {}
    other = 0
    for r in records:
        uid = (r.get("key"), r.get("role"), r.get("seed"))
        if uid not in wanted or r.get("settings") != wanted[uid]:
            other += 1
        elif r.get("error") is None:
            done[uid] = r
        else:
            errors[uid] = r
    failed = {uid: r for uid, r in errors.items() if uid not in done}
    return done, failed, other


def open_runs(path: Path) -> IO[str]:
    """Open the runs file for appending, locked against a second command using it; make it end with a newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = path.open("a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        sys.exit(f"{path} is in use by another proxy_fidelity command")
    if fh.tell():
        fh.seek(fh.tell() - 1)
        if fh.read(1) != "\n":  # a line cut by a kill: end it, so the next record stays readable
            fh.write("\n")
    return fh


def append(fh: IO[str], record: dict) -> None:
    fh.write(json.dumps(record) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


# ---------------------------------------------------------------------------------------------------------------
# the summary


def _interval(xs: list[float]) -> list[float]:
    q = statistics.quantiles(xs, n=20, method="inclusive")  # 5th, 10th, ..., 95th percentile
    return [round(q[0], 4), round(q[-1], 4)]


def _no_correlation(a: list[float], b: list[float], labels: tuple[str, str]) -> str | None:
    """Return why ``a`` and ``b`` have no rank correlation (too few, or one side constant), or None."""
    if len(a) < MIN_RANKED:
        return f"{len(a)} architecture(s): no correlation below {MIN_RANKED}"
    constant = [side for side, xs in zip(labels, (a, b), strict=True) if len(set(xs)) == 1]
    if constant:
        verb = "give" if len(constant) > 1 else "gives"
        return f"constant ranks: the {' and the '.join(constant)} {verb} every architecture the same value"
    return None


def spearman_by_seed(values: dict[str, dict[int, float]], seeds: list[int], reference: dict[str, float]) -> dict:
    """Return {seed: the Spearman of that seed's values against ``reference`` (None where undefined)} and their
    mean over the seeds that have one: how far a mode's headline, taken with its first seed, depends on that seed.
    ``values``: {architecture: {seed: value}}; each seed is ranked over the architectures it ran on (fewer than the
    first seed's where --second-seed-on is below --n)."""
    by_seed: dict[str, float | None] = {}
    for seed in seeds:
        keys = [k for k, v in values.items() if seed in v and k in reference]
        a, b = [values[k][seed] for k in keys], [reference[k] for k in keys]
        by_seed[str(seed)] = None if _no_correlation(a, b, ("proxy", "reference")) else round(spearman(a, b), 4)
    found = [v for v in by_seed.values() if v is not None]
    return {"by_seed": by_seed, "mean": round(statistics.fmean(found), 4) if found else None}


def correlation(a: list[float], b: list[float], labels: tuple[str, str] = ("proxy", "reference")) -> dict:
    """Return Spearman and Kendall of ``a`` and ``b`` with bootstrap 90% intervals (resampling the pairs
    ``BOOTSTRAP_DRAWS`` times, fixed RNG seed); null with a note (naming the side by ``labels``) where undefined."""
    n = len(a)
    out: dict[str, Any] = {
        "n_architectures": n,
        "spearman": None,
        "spearman_90": None,
        "kendall": None,
        "kendall_90": None,
        "note": _no_correlation(a, b, labels),
    }
    if out["note"]:
        return out
    out["spearman"], out["kendall"] = round(spearman(a, b), 4), round(kendall(a, b), 4)
    rng = random.Random(BOOTSTRAP_SEED)
    sp, kd = [], []
    for _ in range(BOOTSTRAP_DRAWS):
        idx = [rng.randrange(n) for _ in range(n)]
        x, y = [a[i] for i in idx], [b[i] for i in idx]
        s = spearman(x, y)
        if not math.isnan(s):  # a draw of one value repeated has no ranks; left out
            sp.append(s)
            kd.append(kendall(x, y))
    if len(sp) >= 2:
        out["spearman_90"], out["kendall_90"] = _interval(sp), _interval(kd)
    if len(sp) < BOOTSTRAP_DRAWS:
        out["note"] = f"{BOOTSTRAP_DRAWS - len(sp)} of {BOOTSTRAP_DRAWS} bootstrap draws had constant ranks, left out"
    return out


def paired_difference(a: list[float], b: list[float], ref: list[float]) -> dict | None:
    """Return Spearman(a, ref) - Spearman(b, ref) with a bootstrap 90% interval, both proxies resampled on the same
    architectures in each draw (so what they share cancels out); None where either is undefined.

    An interval holding 0 means the two proxies' fidelities are not told apart by these architectures."""
    n = len(ref)
    if n < MIN_RANKED or any(len(set(xs)) == 1 for xs in (a, b, ref)):
        return None
    rng = random.Random(BOOTSTRAP_SEED)
    diffs = []
    for _ in range(BOOTSTRAP_DRAWS):
        idx = [rng.randrange(n) for _ in range(n)]
        y = [ref[i] for i in idx]
        d = spearman([a[i] for i in idx], y) - spearman([b[i] for i in idx], y)
        if not math.isnan(d):
            diffs.append(d)
    point = spearman(a, ref) - spearman(b, ref)
    return {"spearman_difference": round(point, 4), "interval_90": _interval(diffs) if len(diffs) >= 2 else None}


def beyond_cost(proxy: list[float], ref: list[float], cost: list[float]) -> dict | None:
    """Return the proxy's Spearman agreement with ``ref`` beyond what both share with ``cost`` (the architectures'
    minus-GFLOPs scores: ``partial_spearman``) with a bootstrap 90% interval; None where undefined (too few
    architectures, or a side that ranks exactly like the cost).

    The search already has GFLOPs as an objective: a proxy adds to the front only what it ranks right beyond them."""
    n = len(ref)
    point = partial_spearman(proxy, ref, cost) if n >= MIN_PARTIAL else math.nan
    if math.isnan(point):
        return None
    rng = random.Random(BOOTSTRAP_SEED)
    draws = []
    for _ in range(BOOTSTRAP_DRAWS):
        idx = [rng.randrange(n) for _ in range(n)]
        r = partial_spearman([proxy[i] for i in idx], [ref[i] for i in idx], [cost[i] for i in idx])
        if not math.isnan(r):
            draws.append(r)
    return {"partial_spearman": round(point, 4), "interval_90": _interval(draws) if len(draws) >= 2 else None}


def _seed_means(values: dict[str, dict[int, float]], keys: list[str], seeds: Sequence[int]) -> list[float]:
    """Return each architecture of ``keys``' mean value over ``seeds`` (every one of which it must have)."""
    return [statistics.fmean(values[k][s] for s in seeds) for k in keys]


def _spearman_range(rs: list[float]) -> dict:
    """Return the mean, minimum and maximum of a non-empty list of Spearman values, rounded as the summary is."""
    return {
        "mean_spearman": round(statistics.fmean(rs), 4),
        "min_spearman": round(min(rs), 4),
        "max_spearman": round(max(rs), 4),
    }


def _spread(values: dict[str, dict[int, float]], seeds: list[int], field: str = "map50_95") -> dict:
    """Return the seed-to-seed correlation (first two seeds) and the per-architecture range of ``field`` over the
    seeds."""
    both = [k for k, v in values.items() if all(s in v for s in seeds[:2])]
    a, b = ([values[k][s] for k in both] for s in seeds[:2])
    figures = correlation(a, b, (f"seed {seeds[0]}", f"seed {seeds[1]}"))
    ranges = [max(v.values()) - min(v.values()) for v in values.values() if len(v) > 1]
    figures["seeds"] = seeds[:2]
    figures[f"mean_range_{field}"] = round(statistics.fmean(ranges), 5) if ranges else None
    figures[f"max_range_{field}"] = round(max(ranges), 5) if ranges else None
    return figures


def _pairwise(values: dict[str, dict[int, float]], seeds: list[int]) -> dict | None:
    """Return the Spearman of every pair of ``seeds`` (on the architectures trained with both), their mean, and the
    Spearman-Brown estimate of how a mean over all the seeds would repeat itself, k r / (1 + (k - 1) r) with k seeds
    and r the mean pairwise Spearman: an estimate, not a measurement (None below three seeds)."""
    if len(seeds) < 3:
        return None
    pairs = []
    for i, a in enumerate(seeds):
        for b in seeds[i + 1 :]:
            both = [k for k, v in values.items() if a in v and b in v]
            if len(both) >= MIN_RANKED:
                pairs.append(
                    {
                        "seeds": [a, b],
                        "n_architectures": len(both),
                        "spearman": round(spearman([values[k][a] for k in both], [values[k][b] for k in both]), 4),
                    }
                )
    if not pairs:
        return None
    r = statistics.fmean(p["spearman"] for p in pairs)
    k = len(seeds)
    return {
        "pairs": pairs,
        "mean_pairwise_spearman": round(r, 4),
        "spearman_brown_estimate_of_mean": round(k * r / (1 + (k - 1) * r), 4) if r > -1 / (k - 1) else None,
        "seeds_in_mean": k,
    }


def _split_half(values: dict[str, dict[int, float]], seeds: list[int]) -> dict | None:
    """Return how a mean over half of ``seeds`` repeats itself: the correlation between the mean of the first half
    and the mean of the second half, on the architectures trained with every seed (None below four seeds).

    A reference averaged over all the seeds is steadier than either half, so this is a lower bound of its
    repeatability."""
    half = len(seeds) // 2
    if half < 2:
        return None
    halves = seeds[:half], seeds[half : 2 * half]
    every = [k for k, v in values.items() if all(s in v for s in seeds[: 2 * half])]
    a, b = (_seed_means(values, every, h) for h in halves)
    names = tuple(f"mean of seeds {', '.join(map(str, h))}" for h in halves)
    return correlation(a, b, names) | {"halves": [list(h) for h in halves]}


def every_split(
    values: dict[str, dict[int, float]], seeds: list[int], given: dict[str, float] | None = None
) -> dict | None:
    """Return how a mean over half of ``seeds`` repeats itself, over every way of drawing two disjoint halves of
    ``len(seeds) // 2`` seeds: the Spearman between the two halves' means on the architectures trained with every
    seed, its mean, minimum and maximum over the splits, and the Spearman-Brown estimate of how the mean over all
    the seeds would repeat itself, m r / (1 + (m - 1) r) with m = len(seeds) / half (an estimate). None below four
    seeds or with too few architectures. With ``given`` ({architecture: cost score}) the agreement is the partial
    Spearman beyond that score (the architectures without one left out): how well the reference repeats what
    the cost does not already tell.

    One split depends on which seeds fell together (two seeds that agree by chance in one half); the mean over
    all of them does not."""
    half = len(seeds) // 2
    every = [k for k, v in values.items() if all(s in v for s in seeds) and (given is None or k in given)]
    if half < 2 or len(every) < (MIN_RANKED if given is None else MIN_PARTIAL):
        return None
    rs = []
    for a in itertools.combinations(seeds, half):
        rest = [s for s in seeds if s not in a]
        for b in itertools.combinations(rest, half):
            if a < b:  # each unordered pair of halves once
                x, y = _seed_means(values, every, a), _seed_means(values, every, b)
                rs.append(spearman(x, y) if given is None else partial_spearman(x, y, [given[k] for k in every]))
    rs = [r for r in rs if not math.isnan(r)]
    if not rs:
        return None
    r = statistics.fmean(rs)
    m = len(seeds) / half
    return {
        "seeds_per_half": half,
        "n_splits": len(rs),
        "n_architectures": len(every),
        **_spearman_range(rs),
        "seeds_in_mean": len(seeds),
        "spearman_brown_estimate_of_mean": round(m * r / (1 + (m - 1) * r), 4) if r > -1 / (m - 1) else None,
    }


def against_the_rest(values: dict[str, dict[int, float]], seeds: list[int], k: int) -> dict | None:
    """Return how the mean of ``k`` of ``seeds`` ranks like the mean of all the other seeds, over every draw of ``k``
    seeds, on the architectures trained with every seed: their mean, minimum and maximum, and each draw's Spearman
    where k = 1 (one per seed). None unless 1 <= k < len(seeds) and enough architectures have every seed, or where
    no draw has a Spearman (constant values).

    With k = 1 each draw is one training of the reference's own schedule (``nas.verify``'s default) judged against
    the mean of the others: the fidelity of a single training of that schedule, which a single run of a cheaper
    proxy is not expected to pass."""
    every = [key for key, v in values.items() if all(s in v for s in seeds)]
    if not 1 <= k < len(seeds) or len(every) < MIN_RANKED:
        return None
    draws: dict[tuple[int, ...], float] = {}
    for drawn in itertools.combinations(seeds, k):
        rest = [s for s in seeds if s not in drawn]
        r = spearman(_seed_means(values, every, drawn), _seed_means(values, every, rest))
        if not math.isnan(r):
            draws[drawn] = r
    if not draws:
        return None
    rs = list(draws.values())
    return {
        "seeds_drawn": k,
        "seeds_in_rest": len(seeds) - k,
        "n_architectures": len(every),
        "n_draws": len(draws),
        **_spearman_range(rs),
        "each_seed": {str(d[0]): round(r, 4) for d, r in draws.items()} if k == 1 else None,
    }


def pooled_studies(values: dict[str, dict[int, float]], seeds: list[int], reference: dict[str, float]) -> list[dict]:
    """Return, for each k from 1 to len(seeds), how the mean of k proxy seeds' values ranks against ``reference``:
    the mean, minimum and maximum Spearman over every draw of k seeds, on the architectures run with every seed.
    Empty where fewer than two seeds or too few architectures have every seed.

    A supernet or warm mode's seed is a whole study (its one-off trained again), so k is what pooling k studies,
    k one-offs, would buy: whether a proxy's shortfall is noise, which pooling removes, or bias, which it keeps."""
    every = [key for key, v in values.items() if all(s in v for s in seeds) and key in reference]
    if len(seeds) < 2 or len(every) < MIN_RANKED:
        return []
    target = [reference[key] for key in every]
    out = []
    for k in range(1, len(seeds) + 1):
        rs = [
            r
            for drawn in itertools.combinations(seeds, k)
            if not math.isnan(r := spearman(_seed_means(values, every, drawn), target))
        ]
        if rs:
            out.append({"studies_pooled": k, "n_architectures": len(every), "n_draws": len(rs), **_spearman_range(rs)})
    return out


def _by_arch(done: dict, role: str, order: list[str], field: str = "map50_95") -> dict[str, dict[int, float]]:
    """Return {architecture key: {seed: value}} of ``role``'s finished units, in the architectures' order."""
    out: dict[str, dict[int, float]] = {}
    for (key, r, seed), rec in done.items():
        if r == role:
            out.setdefault(key, {})[seed] = rec[field]
    return {k: dict(sorted(out[k].items())) for k in order if k in out}


def _mean_seconds(done: dict, role: str) -> float | None:
    secs = [rec["seconds"] for (_, r, _), rec in done.items() if r == role]
    return round(statistics.fmean(secs), 3) if secs else None


def hosts(done: dict, role: str) -> dict[str, int]:
    """Return how many of ``role``'s finished units each host ran: {CPU, family/model/stepping and vector
    instructions (those known), Adam step: count}; ``not recorded`` for records older than the ``host`` field, and
    the for-loop step for those older than its ``adam_step`` (every training took it then)."""
    fields = ("cpu", "cpu_family_model_stepping", "cpu_capability")

    def name(h: dict) -> str:
        return " ".join(str(h[f]) for f in fields if h.get(f)) + f", {h.get('adam_step', 'for-loop')} Adam step"

    names = [
        name(h) if (h := record.get("host")) else "not recorded" for (_, r, _), record in done.items() if r == role
    ]
    return dict(collections.Counter(names).most_common())


def top_k(keys: list[str], proxy: dict[str, float], ref: dict[str, float]) -> dict:
    """Return whether the proxy's top ``TOP`` of ``keys`` holds the reference's best (any of them, if tied), and the
    reference's loss of taking the proxy's first; null with a note where that says nothing."""
    out: dict[str, Any] = {
        "top3_contains_best": None,
        "top3": None,
        "reference_best": None,
        "reference_regret_of_top1": None,
        "top3_note": None,
    }
    if len(keys) <= TOP:
        out["top3_note"] = f"{len(keys)} architecture(s) ranked: a top {TOP} holds them all"
        return out
    if len({ref[k] for k in keys}) == 1 or len({proxy[k] for k in keys}) == 1:
        out["top3_note"] = "constant ranks: the reference or the proxy gives every architecture the same value"
        return out
    ranked = sorted(keys, key=lambda k: -proxy[k])  # ties keep the draw order
    best = max(ref[k] for k in keys)
    picked = ranked[:TOP]
    out["top3_contains_best"] = any(ref[k] == best for k in picked)
    out["top3"] = picked
    out["reference_best"] = [k for k in keys if ref[k] == best]
    out["reference_regret_of_top1"] = round(best - ref[picked[0]], 5)
    if proxy[ranked[TOP - 1]] == proxy[ranked[TOP]]:
        out["top3_note"] = f"the proxy ties at place {TOP}: the draw order decides"
    return out


def summarize(archs: list[Architecture], units: list[Unit], records: list[dict], bench: Bench, args) -> dict:
    """Return the summary of every finished unit of the plan (partial data included)."""
    done, failed, other = match(records, units, bench)
    step_of = {(u.role, u.seed): u.needs for u in units if u.needs}
    cfg = bench.cfg
    order = [a.key for a in archs]
    ref = _by_arch(done, "reference", order)
    ref_mean = {k: statistics.fmean(v.values()) for k, v in ref.items()}
    roles = ["reference", *(u.role for u in units if ":" in u.role), *args.modes]
    progress = {
        "units_done": len(done),
        "units_failed": len(failed),
        "units_total": len(units),
        "by_role": {
            role: {
                "done": sum(u.role == role and u.id in done for u in units),
                "failed": sum(u.role == role and u.id in failed for u in units),
                "total": sum(u.role == role for u in units),
            }
            for role in roles
        },
        "records_of_other_settings_ignored": other,
    }
    notes = []
    if len(done) < len(units):
        notes.append(f"partial: {len(done)} of {len(units)} units done; reference means use the seeds done so far")
    modes = {}
    firsts: dict[str, dict[str, float]] = {}  # mode: {architecture: its value with the first proxy seed}
    for name in args.modes:
        mode = MODES[name]
        proxy = _by_arch(done, name, order, mode.field)
        first = {k: v[args.proxy_seeds[0]] for k, v in proxy.items() if args.proxy_seeds[0] in v}
        keys = [k for k in order if k in first and k in ref_mean]
        figures: dict[str, Any] = {
            "about": mode.about,
            "settings": mode.settings(bench, args.proxy_seeds[0]),
            "proxy_seed": args.proxy_seeds[0],
        }
        figures |= correlation([first[k] for k in keys], [ref_mean[k] for k in keys])
        figures["spearman_each_proxy_seed"] = spearman_by_seed(proxy, args.proxy_seeds, ref_mean)
        figures["pooled_studies"] = pooled_studies(proxy, args.proxy_seeds, ref_mean)
        figures |= top_k(keys, first, ref_mean)
        figures["mean_seconds_per_trial"] = _mean_seconds(done, name)
        figures["trials_done"] = sum(r == name for (_, r, _) in done)
        if mode.prepare:
            step_id = step_of.get((name, args.proxy_seeds[0]), (order[0], f"{name}:{mode.step}", args.proxy_seeds[0]))
            step = done.get(step_id)
            figures["one_off"] = {
                "step": step_id[1],
                "seconds": step and (None if (step["note"] or "").startswith(REUSED) else step["seconds"]),
                "epochs": step and step["epochs"],
                "note": step and step["note"],
            }
        spread = _spread(proxy, args.proxy_seeds, mode.field) if len(args.proxy_seeds) > 1 else None
        figures["seed_to_seed"] = spread
        modes[name] = figures
        firsts[name] = first
    default = default_mode(cfg)
    cost = firsts.get(COST_MODE)  # minus GFLOPs: what a proxy adds to the search's cost objective, if anything
    for name, figures in modes.items():  # comparisons that need every mode's values first
        if name != default and default in firsts:  # is a mode's fidelity told apart from the default's?
            keys = [k for k in order if k in firsts[name] and k in firsts[default] and k in ref_mean]
            figures["vs_default"] = paired_difference(
                [firsts[name][k] for k in keys], [firsts[default][k] for k in keys], [ref_mean[k] for k in keys]
            )
        if cost and name != COST_MODE:
            keys = [k for k in order if k in firsts[name] and k in cost and k in ref_mean]
            figures["beyond_gflops"] = beyond_cost(
                [firsts[name][k] for k in keys], [ref_mean[k] for k in keys], [cost[k] for k in keys]
            )
    roles_run = ("reference", *args.modes)
    maps = {role: _by_arch(done, role, order, role_mode(role)[0].field) for role in roles_run}
    secs = {role: _by_arch(done, role, order, "seconds") for role in roles_run}
    architectures = []
    for arch in archs:
        k = arch.key
        row: dict[str, Any] = {"key": k, "summary": arch.summary(), "operators": arch.operators()}
        row["reference_mean"] = round(ref_mean[k], 5) if k in ref_mean else None
        row |= {role: {str(s): m for s, m in maps[role].get(k, {}).items()} for role in roles_run}
        row["seconds"] = {role: {str(s): v for s, v in secs[role].get(k, {}).items()} for role in roles_run}
        architectures.append(row)
    forms = operator_forms(archs)
    short = [
        f"{what} {have} < {need}"
        for what, have, need in (
            ("architectures", args.n, PROTOCOL["n"]),
            ("reference epochs", args.reference_epochs, PROTOCOL["reference_epochs"]),
            ("reference seeds", len(args.reference_seeds), PROTOCOL["reference_seeds"]),
            ("second seed on", args.second_seed_on, PROTOCOL["second_seed_on"]),
        )
        if have < need
    ]
    headline = modes.get(default, {})
    repeatability = _spread(ref, args.reference_seeds) if len(args.reference_seeds) > 1 else None
    # the ceiling of the reference as used (a mean over its seeds), where every architecture has every seed
    of_mean = _split_half(ref, args.reference_seeds) if args.second_seed_on == args.n else None
    if of_mean and of_mean["n_architectures"] < len(archs):
        of_mean = None  # partial: a ceiling over some architectures would not be the reference's
    pairwise = _pairwise(ref, args.reference_seeds) if args.second_seed_on == args.n else None
    splits = every_split(ref, args.reference_seeds) if of_mean else None
    # k of the seeds against the mean of the rest, k below a half (a half against the other is ``splits``)
    below_half = range(1, (len(args.reference_seeds) + 1) // 2)
    rest = [r for k in below_half if (r := against_the_rest(ref, args.reference_seeds, k))] if of_mean else []
    # beyond GFLOPs only where every architecture has its cost: over fewer it would not be the reference's
    splits_beyond = every_split(ref, args.reference_seeds, cost) if of_mean and cost and set(ref) <= set(cost) else None
    ceiling, basis = repeatability and repeatability["spearman"], None
    if splits:
        ceiling = splits["mean_spearman"]
        basis = (
            f"mean over the {splits['n_splits']} ways of splitting the seeds into two halves of "
            f"{splits['seeds_per_half']}: Spearman between the halves' means ({splits['n_architectures']} "
            "architectures)"
        )
    elif of_mean and of_mean["spearman"] is not None:
        half = of_mean["halves"]
        ceiling = of_mean["spearman"]
        basis = f"mean of seeds {half[0]} vs mean of seeds {half[1]} ({of_mean['n_architectures']} architectures)"
    elif pairwise:  # every pair of single seeds, not only the first (which may have been a lucky draw)
        ceiling = pairwise["mean_pairwise_spearman"]
        basis = f"mean Spearman over the {len(pairwise['pairs'])} pairs of single seeds"
    elif repeatability:
        basis = f"seed {repeatability['seeds'][0]} vs seed {repeatability['seeds'][1]} "
        basis += f"({repeatability['n_architectures']} architectures)"
    figures = {
        "default_mode": default,
        "spearman": headline.get("spearman"),
        "kendall": headline.get("kendall"),
        "spearman_ci90": headline.get("spearman_90"),
        "repeatability_spearman": ceiling,
        "repeatability_basis": basis,
        "repeatability_single_seed_spearman": repeatability and repeatability["spearman"],
        "complete": len(done) == len(units),
        "progress": progress,
        "preset": cfg.name,
        "dataset": cfg.dataset.description,
        "n_architectures": len(archs),
        "architecture_seed": args.seed,
        "operator_forms": forms,
        "protocol": {"issue_12": PROTOCOL, "meets": not short, "short_of": short},
        "reference": {
            "init": "scratch",
            "epochs": bench.reference_epochs,
            "about": REFERENCE.about,
            "settings": REFERENCE.settings(bench, args.reference_seeds[0]),
            "seeds": args.reference_seeds,
            "second_seed_on": args.second_seed_on,
            "mean_seconds": _mean_seconds(done, "reference"),
            "hosts": hosts(done, "reference"),
            "repeatability": repeatability,
            "repeatability_of_mean": of_mean,
            "repeatability_every_split": splits,
            "repeatability_beyond_gflops": splits_beyond,
            "against_the_rest": rest,
            "pairwise": pairwise,
        },
        "by_mode": modes,
        "bar_spearman": BAR_SPEARMAN,
        "bootstrap": {
            "draws": BOOTSTRAP_DRAWS,
            "rng_seed": BOOTSTRAP_SEED,
            "interval": "5th-95th percentile of the statistic over resampled architectures",
        },
        "failed": [{"key": k, "role": r, "seed": s, "error": rec["error"]} for (k, r, s), rec in failed.items()],
        "notes": notes,
        "runs_file": str(args.runs_file),
        "workers": args.workers,
        "architectures": architectures,
    }
    return _finite(figures)


def summary_name(reference_epochs: int, val_images: int | None) -> str:
    """Return the summary's file stem: proxy_fidelity for the default reference and the preset's validation set,
    with ``_ref<N>`` for another reference schedule and ``_val<N>`` for another validation set."""
    name = NAME if reference_epochs == REFERENCE_EPOCHS else f"{NAME}_ref{reference_epochs}"
    return name if val_images is None else f"{name}_val{val_images}"


def default_mode(cfg: StudyConfig) -> str:
    """Return the name of the mode that measures the preset's own proxy (its ``init`` and epochs)."""
    if cfg.init != "supernet":
        return cfg.init
    return supernet_mode(
        cfg.schedule["epochs"], cfg.supernet_epochs, cfg.supernet_kernels, sampling=cfg.supernet_sampling
    )


def _finite(x: Any) -> Any:
    """Return ``x`` with every NaN or infinity replaced by None (the summary stays valid JSON)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def operator_forms(archs: list[Architecture]) -> dict:
    """Return the space's non-stock operator forms (conv and C3k2 forms counted apart) and those no architecture
    uses."""
    space = archs[0].space
    expected = sorted({op for p in space.points for op in p.choices if not is_stock(op)})
    present = {op for a in archs for op in a.operators()}
    return {"expected": expected, "missing": [op for op in expected if op not in present]}


def _fmt(x: float | None, interval: list[float] | None = None) -> str:
    if x is None:
        return "-"
    return f"{x:.3f} [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else f"{x:.3f}"


def _each_seed(each: dict | None) -> str:
    """Return a mode's Spearman with each proxy seed and their mean, e.g. "0.63/-0.01 (0.31)"."""
    if not each:
        return "-"
    seeds = "/".join("-" if v is None else f"{v:.2f}" for v in each["by_seed"].values())
    return seeds + ("" if each["mean"] is None else f" ({each['mean']:.2f})")


def _seconds(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}" if x >= 1 else f"{x:.3f}"


def print_table(s: dict) -> None:
    """Print the summary as a table."""
    p = s["progress"]
    print(
        f"\n{NAME}: {p['units_done']}/{p['units_total']} units done, {p['units_failed']} failed; "
        f"{s['n_architectures']} architectures of {s['preset']}"
    )
    r = s["reference"]
    print(
        f"reference: {r['about']} ({r['settings']['schedule']['epochs']} epochs), seeds {r['seeds']} "
        f"(second on {r['second_seed_on']}), mean {r['mean_seconds']} s per run"
    )
    rep = r["repeatability"]
    if rep:
        print(
            f"  repeatability ceiling (seed {rep['seeds'][0]} vs {rep['seeds'][1]}, {rep['n_architectures']} "
            f"architectures): Spearman {_fmt(rep['spearman'], rep['spearman_90'])}, "
            f"Kendall {_fmt(rep['kendall'], rep['kendall_90'])}; per-architecture range mean "
            f"{rep['mean_range_map50_95']}, max {rep['max_range_map50_95']} mAP50-95"
            + (f"  ({rep['note']})" if rep["note"] else "")
        )
    pairs = r.get("pairwise")
    if pairs:
        each = ", ".join(f"{p['seeds'][0]}-{p['seeds'][1]} {p['spearman']:.2f}" for p in pairs["pairs"])
        print(
            f"  seed pairs: {each}; mean {pairs['mean_pairwise_spearman']:.3f}; a mean over "
            f"{pairs['seeds_in_mean']} seeds would repeat itself at about {pairs['spearman_brown_estimate_of_mean']} "
            "(Spearman-Brown estimate)"
        )
    half = r.get("repeatability_of_mean")
    if half and half["spearman"] is not None:
        print(
            f"  repeatability of a mean over {len(half['halves'][0])} seeds (seeds {half['halves'][0]} vs "
            f"{half['halves'][1]}, {half['n_architectures']} architectures): Spearman "
            f"{_fmt(half['spearman'], half['spearman_90'])}, Kendall {_fmt(half['kendall'], half['kendall_90'])}; "
            f"the reference is the mean over all {len(r['seeds'])} seeds"
        )
    splits = r.get("repeatability_every_split")
    if splits:
        print(
            f"  over all {splits['n_splits']} splits into two halves of {splits['seeds_per_half']} seeds: Spearman "
            f"{splits['mean_spearman']:.3f} (min {splits['min_spearman']:.2f}, max {splits['max_spearman']:.2f}); "
            f"a mean over {splits['seeds_in_mean']} seeds would repeat itself at about "
            f"{splits['spearman_brown_estimate_of_mean']} (Spearman-Brown estimate)"
        )
    for drawn in r.get("against_the_rest", []):
        one = drawn["seeds_drawn"] == 1
        print(
            f"  {'one training' if one else 'a mean of ' + str(drawn['seeds_drawn']) + ' seeds'} against the mean of "
            f"the other {drawn['seeds_in_rest']}, over the {drawn['n_draws']} draws: Spearman "
            f"{drawn['mean_spearman']:.3f} (min {drawn['min_spearman']:.2f}, max {drawn['max_spearman']:.2f})"
            + (": how a single run of the reference's own schedule ranks" if one else "")
        )
    beyond = r.get("repeatability_beyond_gflops")
    if beyond:
        print(
            f"  beyond GFLOPs (partial Spearman given minus GFLOPs), the same splits: {beyond['mean_spearman']:.3f} "
            f"(min {beyond['min_spearman']:.2f}, max {beyond['max_spearman']:.2f}); over all {beyond['seeds_in_mean']} "
            f"seeds about {beyond['spearman_brown_estimate_of_mean']} (Spearman-Brown estimate)"
        )
    if r.get("hosts"):
        print("  trained on: " + "; ".join(f"{name} ({n})" for name, n in r["hosts"].items()))
    width = max([17, *map(len, s["by_mode"])])
    head = f"{'mode':<{width}} {'archs':>5}  {'Spearman [90%]':<22} {'ρ each seed (mean)':<20} {'Kendall [90%]':<22} "
    head += f"{'top3 best':<9}  "
    head += f"{'seed-to-seed ρ':<14} {'s/trial':>8}  {'Δ vs default [90%]':<22} {'beyond GFLOPs [90%]':<22} one-off"
    print("\n" + head)
    for name, m in s["by_mode"].items():
        top = "-" if m["top3_contains_best"] is None else ("yes" if m["top3_contains_best"] else "no")
        sts = m["seed_to_seed"]
        one = m.get("one_off")
        vs = m.get("vs_default")
        one_s = f"{one['seconds']} s ({one['step']})" if one and one["seconds"] is not None else "-"
        past = m.get("beyond_gflops")
        print(
            f"{name:<{width}} {m['n_architectures']:>5}  {_fmt(m['spearman'], m['spearman_90']):<22} "
            f"{_each_seed(m.get('spearman_each_proxy_seed')):<20} {_fmt(m['kendall'], m['kendall_90']):<22} {top:<9}  "
            f"{_fmt(sts and sts['spearman']):<14} {_seconds(m['mean_seconds_per_trial']):>8}  "
            f"{_fmt(vs and vs['spearman_difference'], vs and vs['interval_90']):<22} "
            f"{_fmt(past and past['partial_spearman'], past and past['interval_90']):<22} {one_s}"
        )
    for name, m in s["by_mode"].items():
        for what, note in (
            ("", m["note"]),
            ("top 3: ", m.get("top3_note")),
            ("seed to seed: ", m["seed_to_seed"] and m["seed_to_seed"]["note"]),
        ):
            if note:
                print(f"  {name}: {what}{note}")
    missing = s["operator_forms"]["missing"]
    if missing:
        print(f"operator forms missing from the architectures: {', '.join(missing)}")
    for f in s["failed"]:
        print(f"failed: {f['key']} {f['role']} seed {f['seed']}: {f['error']}")
    for n in s["notes"] + [f"short of issue 12's protocol: {x}" for x in s["protocol"]["short_of"]]:
        print(f"note: {n}")


# ---------------------------------------------------------------------------------------------------------------
# running


def run(bench: Bench, archs: list[Architecture], units: list[Unit], args, fh: IO[str], on_record: Callable) -> int:
    """Run the units not done yet on ``args.workers`` processes, appending each record to ``fh`` (the runs file) as
    it comes and calling ``on_record`` after it; return the exit status."""
    by_key = {a.key: a for a in archs}
    done, failed, _ = match(read_runs(args.runs_file), units, bench)
    skipped = [] if args.retry_failed else [u for u in units if u.id in failed]
    blocked = [u for u in units if u.needs in {s.id for s in skipped} and u.id not in done]
    pending = [u for u in units if u.id not in done and u not in skipped and u not in blocked]
    print(
        f"{len(units)} units: {len(done)} done, {len(skipped)} failed before (skipped; --retry-failed runs them), "
        f"{len(blocked)} waiting on a failed one-off step, {len(pending)} to run on {args.workers} worker(s)",
        flush=True,
    )
    if not pending:
        return 0
    command = invocation() + "".join(f" {a}" for a in sys.argv[1:])
    where = host()
    data_digest = dataset_digest(bench.cfg.dataset.data_yaml())
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the spawned workers
    status = 0
    pool = spawn_pool(args.workers)
    running: dict[Future, Unit] = {}
    try:
        while pending or running:
            while len(running) < args.workers:
                unit = next((u for u in pending if u.needs is None or u.needs in done), None)
                if unit is None:
                    break
                pending.remove(unit)
                choices = tuple((p, c.op, c.kernel) for p, c in by_key[unit.key].choices)
                runnable = any(u.needs is None or u.needs in done for u in pending)
                threads = unit_threads(args.workers, len(running), runnable and args.workers > 1)
                running[pool.submit(run_unit, bench, choices, unit.role, unit.seed, threads)] = unit
            if not running:  # what is left waits on a one-off step that failed
                say(f"{len(pending)} unit(s) not run: their one-off step failed ({pending[0].needs})")
                status = 1
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                unit = running.pop(future)
                record = future.result()
                settings = role_mode(unit.role)[0].settings(bench, unit.seed)
                record |= {
                    "settings": settings,
                    "host": where,  # not a setting: records of another host still count (its noise is a seed's)
                    "dataset_sha256": data_digest,  # the same data on every host (older records lack it)
                    "command": command,
                    "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                }
                append(fh, record)
                if record["error"] is None:
                    done[unit.id] = record
                else:
                    status = 1
                m, score = record["map50_95"], record.get("score")
                what = (
                    f"FAILED {record['error']}"
                    if record["error"]
                    else f"score {score:.4f}"
                    if score is not None
                    else "done"
                    if m is None
                    else f"mAP50-95 {m:.4f}"
                )
                print(
                    f"[{len(done)}/{len(units)}] {unit.key} {unit.role} seed {unit.seed}: {what} "
                    f"({record['seconds']} s) {record['summary']}",
                    flush=True,
                )
                on_record()
    except BrokenProcessPool:
        say("a worker process died (killed? out of memory?); its units are not recorded: run again to resume")
        status = 1
    except BaseException:
        stop_workers()
        for unit in running.values():
            remove_run(unit_folder(bench, *unit.id))
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return status


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--study", default="light")
    ap.add_argument("--n", type=int, default=12, help="architectures: the stock one and n-1 random ones")
    ap.add_argument("--seed", type=int, default=0, help="seed of the architecture draw")
    ap.add_argument(
        "--reference-epochs",
        type=int,
        default=REFERENCE_EPOCHS,
        help=f"default {REFERENCE_EPOCHS}; another number's summary is proxy_fidelity_ref<N>.json",
    )
    ap.add_argument("--reference-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--proxy-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--second-seed-on", type=int, default=6, help="the seeds after the first: on the first N archs")
    ap.add_argument("--modes", nargs="+", choices=list(MODES), default=list(DEFAULT_MODES))
    ap.add_argument(
        "--proxy-epochs",
        type=int,
        default=2,
        help="epochs of the scratch and warm modes (default 2: the light proxy before init: supernet)",
    )
    ap.add_argument("--warm-epochs", type=int, default=None, help="default: the preset's, else 4x the proxy's")
    ap.add_argument(
        "--val-images",
        type=int,
        help="validate every role on this many generated validation images instead of the preset's (embedded "
        "dataset only; same training images); the summary is then proxy_fidelity_val<N>.json",
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=2, help="processes training side by side, each on its share")
    ap.add_argument("--runs-file", type=Path, default=RUNS_FILE, help="default benchmarks/results/" + RUNS_FILE.name)
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder of the summary proxy_fidelity.json")
    ap.add_argument("--workdir", type=Path, default=Path("nas_runs/benchmarks/proxy_fidelity"))
    ap.add_argument("--retry-failed", action="store_true", help="run the units recorded as failed again")
    ap.add_argument("--only-summary", action="store_true", help="recompute the summary from the runs file only")
    args = ap.parse_args()
    for name in ("reference_seeds", "proxy_seeds", "modes"):
        if len(set(getattr(args, name))) != len(getattr(args, name)):
            ap.error(f"--{name.replace('_', '-')}: a value is repeated")
    if args.n < 1 or args.reference_epochs < 1 or args.workers < 1 or not 0 <= args.second_seed_on <= args.n:
        ap.error("--n, --reference-epochs and --workers must be at least 1, --second-seed-on between 0 and --n")
    cfg = _preset(args.study)
    warm_epochs = args.warm_epochs or cfg.warm_epochs or 4 * args.proxy_epochs
    bench = Bench(
        args.study,
        args.device,
        args.reference_epochs,
        warm_epochs,
        args.workdir.resolve(),
        args.proxy_epochs,
        args.val_images,
    )
    result_name = summary_name(args.reference_epochs, args.val_images)
    archs = diverse_architectures(cfg.space, args.n, args.seed)
    units = plan(archs, args)
    missing = operator_forms(archs)["missing"]
    print(f"{len(archs)} architectures of {cfg.name}; operator forms missing: {', '.join(missing) or 'none'}")

    def write_summary() -> dict:
        """Recompute the summary from the runs file; write it unless no unit of this plan has finished (an older
        summary is not replaced by an empty one)."""
        summary = summarize(archs, units, read_runs(args.runs_file), bench, args)
        if summary["progress"]["units_done"] or summary["progress"]["units_failed"]:
            write_result(result_name, summary, directory=args.out)
        else:
            say(f"no unit of this plan in {args.runs_file} yet: summary not written")
        return summary

    status = 0
    if not args.only_summary:
        bench.cfg.dataset.data_yaml()  # generated once here, not by two workers at once
        fh = open_runs(args.runs_file)
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill stops the workers too, as Ctrl-C does
        try:
            status = run(bench, archs, units, args, fh, write_summary)
        except KeyboardInterrupt:
            say("interrupted: the units in progress are not recorded; run the same command again to resume")
            status = 130
        finally:
            fh.close()
            summary = write_summary()
    else:
        summary = write_summary()
    print_table(summary)
    print(f"summary: {args.out / (result_name + '.json')}; runs: {args.runs_file}")
    sys.exit(status)


if __name__ == "__main__":
    main()
