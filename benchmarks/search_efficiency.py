"""Does the default sampler beat random search? Hypervolume after 25, 50 and 100 trials, several seeds per sampler,
and how many trials the default sampler needs to reach random search's hypervolume at the last checkpoint.

Each (sampler, seed) runs a real study through the library entry point (``nas.study.run_study``) with the
preset's proxy (default light: its supernet, validation, GFLOPs and ONNX Runtime latency at 640 px). Trial 0 of
every study is the stock model. A preset with a one-off step (``init: supernet`` or ``warm``) has it done once,
with the first seed, before the studies start; every study then starts from a copy of that file, so every sampler
searches the same landscape and the comparison is not blurred by supernets trained differently. --smoke-fast runs
the older cheap setting instead: the smoke preset's schedule (1 epoch on 32 images at 64 px, mAP mostly 0), GFLOPs
and latency at 160 px, 5 latency runs on 1 thread.

Every study uses the same objectives, so the hypervolumes are comparable: all are computed with one common scaling
(the range of each objective over every trial of every run) and a reference point of 1.1 in each scaled objective
(``nas.objectives.hypervolume``). "trials_to_match_random" is the first trial count at which the default sampler's
hypervolume, averaged over the seeds, reaches random search's average at the last checkpoint.

Runs go two at a time. Writes results/search_efficiency.json (results/search_efficiency_smoke.json with
--smoke-fast).

    python -m benchmarks.search_efficiency [--study light] [--trials 100] [--seeds 0 1 2] [--samplers tpe random]
    python -m benchmarks.search_efficiency --smoke-fast [--samplers tpe random nsga2]
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from dataclasses import replace
from pathlib import Path
from statistics import mean, stdev

import torch

from benchmarks.common import parser, run_fresh_study, say, spawn_pool, stop_workers, write_result
from nas.config import DEFAULT_SAMPLER, SAMPLERS, StudyConfig, load_preset
from nas.measure import warm_start_weights
from nas.measure.backends import choose_backend
from nas.measure.supernet import train_supernet
from nas.objectives import NAMES, bounds, hypervolume, hypervolume_history, values_of
from nas.settings import LatencySettings
from nas.study import StudyRun, completed

CHECKPOINTS = (25, 50, 100)
SMOKE_IMGSZ = 160
SMOKE_LATENCY = LatencySettings(runs=5, warmup=1, threads=1)  # half: False, as before (CPU)


def preset(study: str, smoke_fast: bool) -> StudyConfig:
    """Return the preset the studies run: ``study``'s, or the smoke schedule at 160 px (``smoke_fast``)."""
    if smoke_fast:
        return replace(load_preset("smoke"), imgsz=SMOKE_IMGSZ, latency=SMOKE_LATENCY)
    return load_preset(study)


def one_off(cfg: StudyConfig, workdir: Path, seed: int) -> tuple[Path | None, float]:
    """Do the preset's one-off step (train its supernet or warm base with ``seed``) once in
    ``workdir/shared/<preset>-s<seed>``; return the file (None if the preset has none) and the seconds it took (0 if
    it was there already)."""
    t = time.perf_counter()
    folder = workdir / "shared" / f"{cfg.name}-s{seed}"
    if cfg.init == "supernet":
        path = train_supernet(cfg, folder, "cpu", seed, log=say)
    elif cfg.init == "warm":
        path = warm_start_weights(cfg, folder, "cpu", seed, log=say)
    else:
        return None, 0.0
    return path, time.perf_counter() - t


def run(
    preset_name: str, smoke_fast: bool, sampler: str, seed: int, trials: int, workdir: Path, shared: Path | None
) -> dict:
    """Run one study to ``trials`` complete trials, starting from a copy of the ``shared`` one-off file; return its
    trials' values in order, and its wall time. A run already finished with the same settings (its
    ``<sampler>-s<seed>.json`` in ``workdir``) is read back instead: an interrupted benchmark resumes.

    The values are lists in the order of ``nas.objectives.NAMES`` (mAP50-95, GFLOPs, latency_ms).
    """
    cfg = preset(preset_name, smoke_fast)
    name = f"{sampler}-s{seed}"
    done = workdir / f"{name}.json"
    setting = {"preset": cfg.name, "smoke_fast": smoke_fast, "trials": trials, "one_off": shared and str(shared)}
    if done.is_file():
        try:
            old = json.loads(done.read_text())
        except json.JSONDecodeError:
            old = {}
        if old.get("setting") == setting:
            print(f"{name}: finished before ({done}), read back", flush=True)
            return {"sampler": sampler, "seed": seed, "values": old["values"], "seconds": old["seconds"]}
    if shared is not None:  # where run_study looks for it: the study's run folder
        (workdir / "runs" / name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared, workdir / "runs" / name / shared.name)
    # a fresh study: the sampler is seeded with ``seed`` itself, trial n trains with seed + n, no initial weights
    run = StudyRun(trials=trials, study_name=name, seed=seed, sampler=sampler, run_dir=workdir / "runs")
    study, seconds = run_fresh_study(cfg, workdir / f"{name}.db", run)
    ordered = sorted(completed(study), key=lambda t: t.number)
    values = [[values_of(t)[n] for n in NAMES] for t in ordered]
    partial = done.with_suffix(".part")
    partial.write_text(json.dumps({"setting": setting, "values": values, "seconds": round(seconds, 1)}))
    partial.replace(done)  # a kill while writing leaves no half-written result
    print(f"{name}: {len(values)} trials in {seconds:.0f} s", flush=True)
    return {"sampler": sampler, "seed": seed, "values": values, "seconds": round(seconds, 1)}


def by_name(values: list[float]) -> dict[str, float]:
    """Return one stored value list (``NAMES`` order) as {objective name: value}."""
    return dict(zip(NAMES, values, strict=True))


def trials_to_match(runs: list[dict], lo: dict, hi: dict, at: int) -> int | None:
    """Return the first trial count at which the default sampler's hypervolume, averaged over its seeds, reaches
    random search's average at ``at`` trials (None if it never does within its trials)."""

    def histories(sampler: str) -> list[list[float]]:
        return [hypervolume_history([by_name(v) for v in r["values"]], lo, hi) for r in runs if r["sampler"] == sampler]

    target = mean(h[min(at, len(h)) - 1] for h in histories("random"))
    mine = histories(DEFAULT_SAMPLER)
    for c in range(1, min(len(h) for h in mine) + 1):
        if mean(h[c - 1] for h in mine) >= target:
            return c
    return None


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--study", default="light", help="the preset whose proxy the studies run (default light)")
    ap.add_argument("--smoke-fast", action="store_true", help="the older cheap setting (smoke schedule, 160 px)")
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=[DEFAULT_SAMPLER, "random"])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--workdir", default="nas_runs/benchmarks/search_efficiency")
    ap.add_argument("--out", type=Path, default=None, help="folder of the summary (default benchmarks/results)")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    cfg = preset(args.study, args.smoke_fast)
    shared, one_off_s = one_off(cfg, work, args.seeds[0])
    jobs = [(s, seed) for seed in args.seeds for s in args.samplers]
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill stops the workers too, as Ctrl-C does
    with spawn_pool(args.jobs) as pool:
        try:
            futures = [
                pool.submit(run, args.study, args.smoke_fast, s, seed, args.trials, work, shared) for s, seed in jobs
            ]
            runs = [f.result() for f in futures]
        except BaseException:
            stop_workers()
            raise
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
    to_match = trials_to_match(runs, lo, hi, int(last)) if {DEFAULT_SAMPLER, "random"} <= set(args.samplers) else None
    print(f"trials the default sampler needs to reach random search's hypervolume at {last}: {to_match}")
    if args.smoke_fast:
        setting = (
            f"light space (yolo11_backbone, n) with the smoke schedule; GFLOPs and latency at {SMOKE_IMGSZ} px, "
            f"latency {SMOKE_LATENCY.runs} runs on {SMOKE_LATENCY.threads} thread; {args.jobs} runs side by side"
        )
    else:
        setting = (
            f"the {cfg.name} preset as it is (init {cfg.init}, GFLOPs and latency at {cfg.imgsz} px, latency "
            f"{choose_backend(cfg.latency.backend, torch.device('cpu'))}); {args.jobs} runs side by side"
        )
    write_result(
        "search_efficiency_smoke" if args.smoke_fast else "search_efficiency",
        {
            "default_sampler": DEFAULT_SAMPLER,
            "default_vs_random_hv_ratio": round(ratio, 4) if ratio else None,
            "trials_to_match_random": to_match,
            "one_off": {"file": shared and shared.name, "seconds": round(one_off_s, 1), "seed": args.seeds[0]},
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
            "setting": setting,
            "runs": runs,
        },
        directory=args.out,
    )


if __name__ == "__main__":
    main()
