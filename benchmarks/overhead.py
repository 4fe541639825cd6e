"""How much of a light trial is not training? Per-phase times of real light trials, through `run_study`.

Runs the preset's study for N trials with the library entry point `nas.study.run_study` (in-process, a throwaway
SQLite file and run folder, as `python -m nas.search --study light --trials N` would) and reads each trial's
stored phase times: build, cost, latency, trainer set-up, training epochs, validation, storage. The wall time of
a trial is its stored start-to-complete time. overhead_share = (wall - training epochs - final validation) /
wall, per trial and over all trials (bar: <= 0.10). With init: warm the base training happens once per study,
before the first trial, and is reported apart.

Writes results/overhead.json.

    python -m benchmarks.overhead [--trials 3] [--study light]
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from benchmarks.common import parser, run_fresh_study, say, write_result
from nas.config import load_preset
from nas.measure import warm_base_path
from nas.study import StudyRun, TrialReport, completed

PHASES = ("build_s", "cost_s", "latency_s", "train_setup_s", "train_s", "val_s", "storage_s")


def progress(report: TrialReport, complete: int, total: int) -> None:
    """Print one line per finished trial on stderr."""
    say(f"trial #{report.number} ({complete}/{total}) {report.seconds:.1f} s {report.status}: {report.summary}")


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
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db, run_dir = Path(tmp) / "overhead.db", Path(tmp) / "runs"
        cfg = load_preset(args.study)
        if args.warm_base and cfg.init == "warm":
            cached = warm_base_path(run_dir / cfg.name, cfg.warm_epochs)
            cached.parent.mkdir(parents=True)
            shutil.copy2(args.warm_base, cached)
        run = StudyRun(trials=args.trials, seed=args.seed, run_dir=run_dir)
        study, total = run_fresh_study(cfg, db, run, on_trial=progress, log=say)
        trials = completed(study)
        init = study.user_attrs.get("runtime", {}).get("init")
        db_bytes = db.stat().st_size
        left = sum(f.stat().st_size for f in run_dir.rglob("*") if f.is_file() and f.suffix != ".pt")
    rows = []
    for t in trials:
        phases = {k: round(t.user_attrs["phases"].get(k, 0.0), 3) for k in PHASES}
        wall = (t.datetime_complete - t.datetime_start).total_seconds()
        core = phases["train_s"] + phases["val_s"]
        rows.append({"trial": t.number, "summary": t.user_attrs.get("summary"), "wall_s": round(wall, 2),
                     **phases, "overhead_share": round((wall - core) / wall, 4)})  # fmt: skip
    print(f"{'trial':>5} {'wall':>7} " + " ".join(f"{p[:-2]:>11}" for p in PHASES) + f" {'overhead':>8}")
    for r in rows:
        print(
            f"{r['trial']:>5} {r['wall_s']:>7.1f} " + " ".join(f"{r[p]:>11.2f}" for p in PHASES)
            + f" {r['overhead_share']:>8.3f}"
        )  # fmt: skip
    wall = sum(r["wall_s"] for r in rows)
    core = sum(r["train_s"] + r["val_s"] for r in rows)
    share = (wall - core) / wall
    print(f"overhead share over {len(rows)} trials: {share:.3f} (bar 0.10); whole run {total:.0f} s")
    write_result(
        "overhead",
        {
            "preset": args.study,
            "overhead_share": round(share, 4),
            "bar_overhead_share": 0.10,
            "max_trial_overhead_share": max(r["overhead_share"] for r in rows),
            "trials": rows,
            "run_s": round(total, 1),
            "database_bytes_per_trial": round(db_bytes / len(rows)),
            "run_folder_bytes_left_besides_warm_base": left,
            "init": init,
        },
    )


if __name__ == "__main__":
    main()
