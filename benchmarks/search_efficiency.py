"""Does the default sampler beat random search? Hypervolume after 25, 50 and 100 trials, several seeds per sampler.

Each (sampler, seed) runs a real study through the search loop (``nas.study.search``) on the light space
(YOLO11n backbone) with the smoke preset's schedule, so that several hundred trials fit this CPU: 1 epoch on
32 images at 64 px. To fit further, the deployment size for GFLOPs and latency is 160 (not 640) and latency
takes 5 timed runs on 1 thread. Every study uses the same objectives, so the hypervolumes are comparable:
all are computed with one common scaling (the range of each objective over every trial of every run) and a
reference point of 1.1 in each scaled objective.

Runs go two at a time (training uses one thread each). Writes results/search_efficiency.json.

    python -m benchmarks.search_efficiency [--trials 100] [--seeds 0 1 2] [--samplers tpe random nsga2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from statistics import mean, stdev

import nas  # noqa: F401  (offline guard before Ultralytics)
from benchmarks.common import write_result
from nas.config import DEFAULT_SAMPLER, SAMPLERS, load_preset
from nas.evaluate import EvalSettings
from nas.pareto import hypervolume
from nas.storage import open_storage
from nas.study import completed, make_sampler, open_study, search

CHECKPOINTS = (25, 50, 100)
IMGSZ = 160
LATENCY_RUNS = 5


def run(sampler: str, seed: int, trials: int, workdir: Path) -> dict:
    """Run one study to ``trials`` complete trials; return its trials' values in order, and its wall time."""
    import torch

    torch.set_num_threads(1)
    cfg = load_preset("smoke")
    cfg = replace(cfg, imgsz=IMGSZ)
    name = f"{sampler}-s{seed}"
    db = workdir / f"{name}.db"
    db.unlink(missing_ok=True)
    storage = open_storage(f"sqlite:///{db}", worker=True)
    study = open_study(cfg, storage, name, {"benchmark": "search_efficiency"})
    study.sampler = make_sampler(sampler, seed)
    settings = EvalSettings(
        imgsz=IMGSZ,
        schedule=cfg.schedule,
        latency_runs=LATENCY_RUNS,
        latency_warmup=1,
        latency_threads=1,
        constraints=cfg.constraints,
        run_root=workdir / "runs" / name,
    )
    t0 = time.perf_counter()
    search(study, cfg, settings, storage, trials, seed)
    seconds = time.perf_counter() - t0
    storage.close()
    ordered = sorted(completed(study), key=lambda t: t.number)
    values = [list(t.values) for t in ordered]
    (workdir / f"{name}.json").write_text(json.dumps({"values": values, "seconds": seconds}))
    print(f"{name}: {len(values)} trials in {seconds:.0f} s", flush=True)
    return {"sampler": sampler, "seed": seed, "values": values, "seconds": round(seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=list(SAMPLERS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--workdir", default="nas_runs/benchmarks/search_efficiency")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    jobs = [(s, seed) for seed in args.seeds for s in args.samplers]
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = list(pool.map(run, *zip(*jobs, strict=True), [args.trials] * len(jobs), [work] * len(jobs)))
    every = [v for r in runs for v in r["values"]]
    cols = list(zip(*every, strict=True))
    lo, hi = [min(c) for c in cols], [max(c) for c in cols]
    checkpoints = sorted({c for c in CHECKPOINTS if c <= args.trials} | {args.trials})
    table: dict[str, dict] = {}
    for sampler in args.samplers:
        mine = [r for r in runs if r["sampler"] == sampler]
        row = {}
        for c in checkpoints:
            hvs = [hypervolume(r["values"][:c], lo, hi) for r in mine]
            row[str(c)] = {
                "mean": round(mean(hvs), 5),
                "std": round(stdev(hvs), 5) if len(hvs) > 1 else 0.0,
                "per_seed": [round(h, 5) for h in hvs],
            }
        row["mean_seconds_per_trial"] = round(mean(r["seconds"] for r in mine) / args.trials, 2)
        table[sampler] = row
    last = str(checkpoints[-1])
    ratio = table[DEFAULT_SAMPLER][last]["mean"] / table["random"][last]["mean"] if "random" in table else None
    print(f"{'sampler':8} " + " ".join(f"{'HV@' + str(c):>16}" for c in checkpoints))
    for sampler, row in table.items():
        cells = " ".join(f"{row[str(c)]['mean']:>8.4f} ± {row[str(c)]['std']:<5.3f}" for c in checkpoints)
        print(f"{sampler:8} {cells}")
    print(f"default ({DEFAULT_SAMPLER}) / random hypervolume at {last} trials: {ratio}")
    write_result(
        "search_efficiency",
        {
            "default_sampler": DEFAULT_SAMPLER,
            "default_vs_random_hv_ratio": round(ratio, 4) if ratio else None,
            "trials": args.trials,
            "seeds": args.seeds,
            "checkpoints": checkpoints,
            "hypervolume": table,
            "scaling": {"lo": lo, "hi": hi, "reference_point": 1.1, "objectives": ["mAP50-95", "GFLOPs", "latency_ms"]},
            "setting": (
                f"light space (yolo11_backbone, n) with the smoke schedule; GFLOPs and latency at {IMGSZ} px, "
                f"latency {LATENCY_RUNS} runs on 1 thread; {args.jobs} runs side by side"
            ),
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
