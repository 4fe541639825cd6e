"""How much of a light trial is not training? Per-phase times of real light trials, through `nas.search`.

Runs `python -m nas.search --study light --trials N` (in-process, a throwaway SQLite file and run folder) and
reads each trial's stored phase times: build, cost, latency, trainer set-up, training epochs, validation,
storage. The wall time of a trial is its stored start-to-complete time. overhead_share = (wall - training
epochs - final validation) / wall, per trial and over all trials (bar: <= 0.10). With init: warm the base
training happens once per study, before the first trial, and is reported apart.

Writes results/overhead.json.

    python -m benchmarks.overhead [--trials 3] [--study light]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import optuna

import nas  # noqa: F401  (offline guard before Ultralytics)
from benchmarks.common import write_result
from nas import search
from nas.config import load_preset
from nas.search import warm_base_path

PHASES = ("build_s", "cost_s", "latency_s", "train_setup_s", "train_s", "val_s", "storage_s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
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
        storage = f"sqlite:///{Path(tmp) / 'overhead.db'}"
        cfg = load_preset(args.study)
        if args.warm_base and cfg.init == "warm":
            cached = warm_base_path(Path(tmp) / "runs" / cfg.name, cfg.warm_epochs)
            cached.parent.mkdir(parents=True)
            shutil.copy2(args.warm_base, cached)
        t0 = time.perf_counter()
        code = search.main(
            ["--study", args.study, "--trials", str(args.trials), "--storage", storage, "--seed", str(args.seed),
             "--run-dir", str(Path(tmp) / "runs")]
        )  # fmt: skip
        total = time.perf_counter() - t0
        if code != 0:
            raise SystemExit(code)
        study = optuna.load_study(study_name=Path(args.study).stem, storage=storage)
        trials = [t for t in study.trials if t.state.name == "COMPLETE"]
        db_bytes = (Path(tmp) / "overhead.db").stat().st_size
        left = sum(f.stat().st_size for f in (Path(tmp) / "runs").rglob("*") if f.is_file() and f.suffix != ".pt")
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
            "init": study.user_attrs.get("runtime", {}).get("init"),
        },
    )


if __name__ == "__main__":
    main()
