"""Where does a light trial's time go? Per-phase times of real light trials, through `run_study`.

Runs the preset's study for N trials with the library entry point `nas.study.run_study` (in-process, a throwaway
SQLite file and run folder, as `python -m nas.search --study light --trials N` would), or reads the trials of a
study a `nas.search` run already stored (--from-storage URL --study-name NAME), and reads each trial's stored
phase times: build, cost, latency (and the export it measures), trainer set-up, training epochs, validation,
inheriting from the supernet and recalibrating BatchNorm, storage. The wall time of a trial is its stored
start-to-complete time; the summary gives its median and maximum. proxy = training epochs + validation +
inheriting + recalibration; overhead_share = (wall - proxy) / wall, per trial and over all trials. The one-off
warm base or supernet is trained once per study, before the first trial, and is not part of any trial.

Writes results/overhead.json.

    python -m benchmarks.overhead [--trials 3] [--study light]
    python -m benchmarks.overhead --from-storage sqlite:///light.db --study-name light
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from optuna.trial import FrozenTrial

from benchmarks.common import parser, run_fresh_study, say, write_result
from nas.config import load_preset
from nas.measure import warm_base_path
from nas.study import StudyRun, TrialReport, completed, load_study
from nas.study.records import record

PHASES = (
    "build_s",
    "cost_s",
    "export_s",
    "latency_s",
    "train_setup_s",
    "train_s",
    "val_s",
    "inherit_s",
    "bn_recal_s",
    "storage_s",
)
PROXY = ("train_s", "val_s", "inherit_s", "bn_recal_s")


def progress(report: TrialReport, complete: int, total: int) -> None:
    """Print one line per finished trial on stderr."""
    say(f"trial #{report.number} ({complete}/{total}) {report.seconds:.1f} s {report.status}: {report.summary}")


def fresh_run(args: argparse.Namespace) -> tuple[list[FrozenTrial], dict, float, int, int]:
    """Run the preset's study in a throwaway folder; return its complete trials, its attributes, the run's seconds,
    the database's bytes and the bytes left in the run folder besides the one-off weights."""
    with tempfile.TemporaryDirectory() as tmp:
        db, run_dir = Path(tmp) / "overhead.db", Path(tmp) / "runs"
        cfg = load_preset(args.study)
        if args.warm_base and cfg.init == "warm":
            cached = warm_base_path(run_dir / cfg.name, cfg.warm_epochs)
            cached.parent.mkdir(parents=True)
            shutil.copy2(args.warm_base, cached)
        run = StudyRun(trials=args.trials, seed=args.seed, run_dir=run_dir)
        study, total = run_fresh_study(cfg, db, run, on_trial=progress, log=say)
        left = sum(f.stat().st_size for f in run_dir.rglob("*") if f.is_file() and f.suffix != ".pt")
        return completed(study), study.user_attrs, total, db.stat().st_size, left


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--study", default="light")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--warm-base",
        help="init: warm only: a base checkpoint trained exactly as the study would (same preset, seed), reused "
        "instead of training it again (the base is trained once per study, not per trial)",
    )
    ap.add_argument("--from-storage", help="read the trials of this stored study instead of running one")
    ap.add_argument("--study-name", help="with --from-storage: the study's name (default: the preset's)")
    args = ap.parse_args()
    if args.from_storage:
        study = load_study(args.from_storage, args.study_name or args.study)
        trials, attrs, total, db_bytes, left = completed(study), study.user_attrs, None, None, None
        if args.from_storage.startswith("sqlite:///"):
            db_bytes = Path(args.from_storage.removeprefix("sqlite:///")).stat().st_size
    else:
        trials, attrs, total, db_bytes, left = fresh_run(args)
    init = attrs.get("runtime", {}).get("init")
    if not trials:
        ap.error("the study has no complete trial to time")
    rows = []
    for t in trials:
        phases = {k: round(record(t, "phases", {}).get(k, 0.0), 3) for k in PHASES}
        wall = (t.datetime_complete - t.datetime_start).total_seconds()
        core = sum(phases[p] for p in PROXY)
        rows.append({"trial": t.number, "summary": t.user_attrs.get("summary"), "wall_s": round(wall, 2),
                     **phases, "overhead_share": round((wall - core) / wall, 4)})  # fmt: skip
    print(f"{'trial':>5} {'wall':>7} " + " ".join(f"{p[:-2]:>11}" for p in PHASES) + f" {'overhead':>8}")
    for r in rows:
        print(
            f"{r['trial']:>5} {r['wall_s']:>7.1f} " + " ".join(f"{r[p]:>11.2f}" for p in PHASES)
            + f" {r['overhead_share']:>8.3f}"
        )  # fmt: skip
    wall = sum(r["wall_s"] for r in rows)
    core = sum(sum(r[p] for p in PROXY) for r in rows)
    share = (wall - core) / wall
    walls = [r["wall_s"] for r in rows]
    print(
        f"{len(rows)} trials: median {statistics.median(walls):.1f} s, max {max(walls):.1f} s a trial; overhead "
        f"share {share:.3f}" + (f"; whole run {total:.0f} s" if total is not None else "")
    )
    write_result(
        "overhead",
        {
            "preset": args.study,
            "init": init,
            "n_trials": len(rows),
            "median_trial_s": round(statistics.median(walls), 2),
            "max_trial_s": round(max(walls), 2),
            "bar_median_trial_s": 30,
            "overhead_share": round(share, 4),
            "max_trial_overhead_share": max(r["overhead_share"] for r in rows),
            "median_phase_s": {p: round(statistics.median(r[p] for r in rows), 3) for p in PHASES},
            "trials": rows,
            "run_s": None if total is None else round(total, 1),
            "source": args.from_storage or "a fresh run",
            "database_bytes_per_trial": None if db_bytes is None else round(db_bytes / len(rows)),
            "run_folder_bytes_left_besides_one_off_weights": left,
        },
    )


if __name__ == "__main__":
    main()
