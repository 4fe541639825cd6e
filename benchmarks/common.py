"""What the benchmarks share: the machine, package versions and command they record with their figures, the
command line, the architecture draw, rank correlations, process pools and a study run in a fresh SQLite file."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import optuna
import torch

from modules.ultralytics_adapter import ProxyTrainer
from nas.config import StudyConfig
from nas.measure import device_name
from nas.space import Architecture, SearchSpace
from nas.study import StudyRun, TrialReport, open_storage, run_study
from nas.study.records import versions

RESULTS = Path(__file__).resolve().parent / "results"


def invocation() -> str:
    """Return how this benchmark was started: ``python -m benchmarks.<name>`` (without its arguments)."""
    return "python -m benchmarks." + Path(sys.argv[0]).stem


def parser(doc: str | None) -> argparse.ArgumentParser:
    """Return the argument parser of a benchmark whose module docstring is ``doc`` (shown as is by ``--help``)."""
    return argparse.ArgumentParser(
        prog=invocation(), description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def host(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """Return what tells this host's training arithmetic apart: the CPU model, its family/model/stepping from
    ``cpuinfo`` (None where it is not readable), the vector instructions torch's kernels use (``AVX2``,
    ``AVX512``, ...) and the Adam step a training takes (``fused``, or ``for-loop`` as before the fused step). A
    seeded training reproduces its result only with all of them equal: the stock model's 16-epoch seed 1 gave
    0.59811 on one AMD EPYC VM and 0.6115 on another (benchmarks/README.md)."""
    fields = {}
    with contextlib.suppress(OSError), cpuinfo.open() as f:
        for line in f:
            name, _, value = (part.strip() for part in line.partition(":"))
            if name in ("model name", "cpu family", "model", "stepping"):
                fields.setdefault(name, value)
            elif not line.strip():
                break  # the first processor's block is enough
    known = [fields.get(k) for k in ("cpu family", "model", "stepping")]
    return {
        "cpu": fields.get("model name") or device_name("cpu"),
        "cpu_family_model_stepping": "/".join(known) if all(known) else None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "adam_step": "fused" if ProxyTrainer.fused_adam else "for-loop",  # the trainer's default, for Adam/AdamW
    }


def dataset_digest(data_yaml: Path) -> str:
    """Return the SHA-256 (first 16 hex digits) of the files beside ``data_yaml`` and below (the embedded dataset
    keeps its images, labels and spec there), by relative path and content, leaving out the YAML itself (it names
    the folder, which differs between machines) and Ultralytics' ``.cache`` files. Trainings on two hosts saw the
    same data where their digests are equal.

    Raises:
        OSError: a file could not be read.
    """
    root = data_yaml.parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p != data_yaml and p.suffix != ".cache"):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def machine() -> dict:
    """Return the CPU (``host()``), its thread count, torch's thread setting and the GPU (if any)."""
    gpu = device_name("cuda") if torch.cuda.is_available() else None
    return {
        **host(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "python": platform.python_version(),
    }


def write_result(name: str, figures: dict, directory: Path | None = None) -> Path:
    """Write ``figures`` plus machine, versions, command and date (UTC, when written) to
    ``<directory>/<name>.json`` (default ``benchmarks/results``); return the path."""
    directory = Path(directory) if directory is not None else RESULTS
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    command = invocation() + "".join(f" {a}" for a in sys.argv[1:])
    date = datetime.now(UTC).isoformat(timespec="seconds")
    record = {**figures, "machine": machine(), "versions": versions(), "command": command, "date": date}
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def say(message: str) -> None:
    """Print a progress line on stderr at once (the ``log`` of the library calls that take one)."""
    print(message, file=sys.stderr, flush=True)


def random_architectures(space: SearchSpace, seed: int) -> Iterator[Architecture]:
    """Yield random architectures of ``space`` without end, drawn by Optuna's RandomSampler seeded ``seed``."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    while True:
        yield space.sample(study.ask())


def diverse_architectures(space: SearchSpace, n: int, seed: int) -> list[Architecture]:
    """Return the stock architecture plus n-1 distinct random ones of the space (seeded)."""
    chosen = [space.stock()]
    draw = random_architectures(space, seed)
    while len(chosen) < n:
        arch = next(draw)
        if all(arch.key != c.key for c in chosen):
            chosen.append(arch)
    return chosen


def spawn_pool(workers: int) -> ProcessPoolExecutor:
    """Return a pool of ``workers`` fresh (spawned) processes: Ultralytics trains with one thread on a 2-core
    machine, so independent trainings run side by side."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def stop_workers() -> None:
    """Terminate this process's children (a pool's workers, on Ctrl-C or a kill) and wait up to 10 s for each;
    a pool's own shutdown would let their running trainings or studies go on to the end."""
    for p in multiprocessing.active_children():
        p.terminate()
    for p in multiprocessing.active_children():
        p.join(10)


def run_fresh_study(
    cfg: StudyConfig,
    db: Path,
    run: StudyRun,
    on_trial: Callable[[TrialReport, int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[optuna.Study, float]:
    """Run ``cfg``'s study in a new SQLite file ``db`` (any old one removed) with ``nas.study.run_study``; return
    the study and the seconds ``run_study`` took."""
    db.parent.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    storage = open_storage(f"sqlite:///{db}", worker=True)
    try:
        t0 = time.perf_counter()
        outcome = run_study(cfg, storage, run, on_trial, log)
        seconds = time.perf_counter() - t0
    finally:
        storage.close()
    return outcome.study, seconds
