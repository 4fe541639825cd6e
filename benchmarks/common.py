"""What the benchmarks share: the machine, package versions and command they record with their figures, the
command line, the architecture draw, rank correlations, process pools and a study run in a fresh SQLite file."""

from __future__ import annotations

import argparse
import itertools
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


def machine() -> dict:
    """Return the CPU model, its thread count, torch's thread setting and the GPU (if any)."""
    gpu = device_name("cuda") if torch.cuda.is_available() else None
    return {
        "cpu": device_name("cpu"),
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


def ranks(xs: list[float]) -> list[float]:
    """Return average ranks (1-based) of ``xs``, ties sharing their mean rank."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: list[float], b: list[float]) -> float:
    """Return Spearman's rho (Pearson correlation of the average ranks, so ties are handled); NaN when either side
    is constant."""
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb) if va and vb else float("nan")


def kendall(a: list[float], b: list[float]) -> float:
    """Return Kendall's tau-b (corrected for ties on either side); NaN when either side is constant."""
    conc = disc = ta = tb = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        da, db = a[i] - a[j], b[i] - b[j]
        if da == 0 and db == 0:
            continue
        if da == 0:
            ta += 1
        elif db == 0:
            tb += 1
        elif da * db > 0:
            conc += 1
        else:
            disc += 1
    denom = ((conc + disc + ta) * (conc + disc + tb)) ** 0.5
    return (conc - disc) / denom if denom else float("nan")


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
