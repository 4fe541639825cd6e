"""Does the default sampler beat random search? Hypervolume after 25, 50 and 100 trials, several seeds per sampler.

Each (sampler, seed) runs a real study through the library entry point (``nas.study.run_study``) on the light
space (YOLO11n backbone) with the smoke preset's schedule, so that several hundred trials fit this CPU: 1 epoch
on 32 images at 64 px. To fit further, the deployment size for GFLOPs and latency is 160 (not 640) and latency
takes 5 timed runs (1 warm-up) on 1 thread. Every study uses the same objectives, so the hypervolumes are
comparable: all are computed with one common scaling (the range of each objective over every trial of every run)
and a reference point of 1.1 in each scaled objective (``nas.objectives.hypervolume``).

Runs go two at a time (training uses one thread each). Writes results/search_efficiency.json.

    python -m benchmarks.search_efficiency [--trials 100] [--seeds 0 1 2] [--samplers tpe random nsga2]
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from statistics import mean, stdev

from benchmarks.common import parser, run_fresh_study, spawn_pool, write_result
from nas.config import DEFAULT_SAMPLER, SAMPLERS, load_preset
from nas.objectives import NAMES, bounds, hypervolume, values_of
from nas.settings import LatencySettings
from nas.study import StudyRun, completed

CHECKPOINTS = (25, 50, 100)
IMGSZ = 160
LATENCY = LatencySettings(runs=5, warmup=1, threads=1)  # half: False, as before (CPU)


def run(sampler: str, seed: int, trials: int, workdir: Path) -> dict:
    """Run one study to ``trials`` complete trials; return its trials' values in order, and its wall time.

    The values are lists in the order of ``nas.objectives.NAMES`` (mAP50-95, GFLOPs, latency_ms).
    """
    import torch

    torch.set_num_threads(1)
    cfg = replace(load_preset("smoke"), imgsz=IMGSZ, latency=LATENCY)  # the smoke schedule and constraints
    name = f"{sampler}-s{seed}"
    # a fresh study: the sampler is seeded with ``seed`` itself, trial n trains with seed + n, no initial weights
    run = StudyRun(trials=trials, study_name=name, seed=seed, sampler=sampler, run_dir=workdir / "runs")
    study, seconds = run_fresh_study(cfg, workdir / f"{name}.db", run)
    ordered = sorted(completed(study), key=lambda t: t.number)
    values = [[values_of(t)[n] for n in NAMES] for t in ordered]
    (workdir / f"{name}.json").write_text(json.dumps({"values": values, "seconds": seconds}))
    print(f"{name}: {len(values)} trials in {seconds:.0f} s", flush=True)
    return {"sampler": sampler, "seed": seed, "values": values, "seconds": round(seconds, 1)}


def by_name(values: list[float]) -> dict[str, float]:
    """Return one stored value list (``NAMES`` order) as {objective name: value}."""
    return dict(zip(NAMES, values, strict=True))


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=list(SAMPLERS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--workdir", default="nas_runs/benchmarks/search_efficiency")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    jobs = [(s, seed) for seed in args.seeds for s in args.samplers]
    with spawn_pool(args.jobs) as pool:
        runs = list(pool.map(run, *zip(*jobs, strict=True), [args.trials] * len(jobs), [work] * len(jobs)))
    lo, hi = bounds(by_name(v) for r in runs for v in r["values"])  # one scaling for every run
    checkpoints = sorted({c for c in CHECKPOINTS if c <= args.trials} | {args.trials})
    table: dict[str, dict] = {}
    for sampler in args.samplers:
        mine = [r for r in runs if r["sampler"] == sampler]
        row = {}
        for c in checkpoints:
            hvs = [hypervolume([by_name(v) for v in r["values"][:c]], lo, hi) for r in mine]
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
            "scaling": {
                "lo": [lo[n] for n in NAMES],
                "hi": [hi[n] for n in NAMES],
                "reference_point": 1.1,
                "objectives": list(NAMES),
            },
            "setting": (
                f"light space (yolo11_backbone, n) with the smoke schedule; GFLOPs and latency at {IMGSZ} px, "
                f"latency {LATENCY.runs} runs on {LATENCY.threads} thread; {args.jobs} runs side by side"
            ),
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
