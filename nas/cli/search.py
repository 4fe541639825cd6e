"""``python -m nas.search``: run (or inspect with ``--dry-run``) a multi-objective architecture search."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from ..caveats import study_caveats
from ..config import SAMPLERS, StudyConfig, load_preset
from ..errors import UserError
from ..measure import resolve_device, validate_weights
from ..measure.space_cost import SpaceReport, report
from ..space.space import takes_kernel
from ..study import DEFAULT_STORAGE, StudyRun, completed, open_storage, run_study
from . import EXIT_INTERRUPTED, ArgumentParser, cli, log
from .progress import PhaseBar, Progress


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``nas.search``."""
    p = ArgumentParser(prog="python -m nas.search", description=__doc__)
    p.add_argument("--study", default="light", help="preset name in studies/ or a preset YAML path (default: light)")
    p.add_argument("--trials", type=int, help="total COMPLETE trials wanted (a resumed study runs only the rest)")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default: {DEFAULT_STORAGE})")
    p.add_argument("--study-name", help="name of the study in the storage (default: the preset's name)")
    p.add_argument("--data", help="a local Ultralytics data YAML instead of the preset's dataset")
    p.add_argument(
        "--space",
        metavar="NAME|PATH",
        help="a search space (shipped name such as yolo26_backbone, or a space YAML path) instead of the preset's, "
        "at the preset's scale; a resumed study must use the space it was created with",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed; trial n trains with seed + n (default: 0)")
    p.add_argument("--sampler", choices=SAMPLERS, help="override the preset's sampler")
    p.add_argument("--weights", help="a local checkpoint of the base model: every trial inherits its matching tensors")
    p.add_argument("--run-dir", default="nas_runs", help="where trial run folders live (default: nas_runs)")
    p.add_argument("--keep-runs", action="store_true", help="keep each trial's run folder")
    p.add_argument(
        "--fail-running",
        action="store_true",
        help="first mark every RUNNING trial of the study failed and retry it (after a crash with journal storage; "
        "only when no other worker is alive)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the search space and its cost range, then exit")
    p.add_argument("--json", action="store_true", help="with --dry-run: print one JSON object")
    return p


def dry_run_dict(cfg: StudyConfig, rep: SpaceReport) -> dict:
    """Return the dry-run description of a study as a JSON-ready dict."""
    space = cfg.space
    return {
        "study": cfg.name,
        "space": space.name,
        "base_model": space.identity,
        "scale": space.scale,
        "dataset": cfg.dataset.description,
        "nc": cfg.dataset.nc,
        "imgsz": cfg.imgsz,
        "space_size": space.size(),
        "base": {"params": rep.base.params, "gflops": round(rep.base.gflops, 4)},
        "points": [
            {
                "name": p.name,
                "layers": list(p.layers),
                "kind": p.kind,
                "choices": list(p.choices),
                "kernels": list(p.kernels) if any(takes_kernel(c) for c in p.choices) else [],
                "options": [
                    {"choice": str(o.choice), "gflops_delta": round(o.gflops_delta, 4), "params_delta": o.params_delta}
                    for o in rep.options[p.name]
                ],
            }
            for p in space.points
        ],
        "cheapest": _extreme(rep.cheapest),
        "dearest": _extreme(rep.dearest),
    }


def _extreme(pair: tuple) -> dict:
    arch, cost = pair
    return {"key": arch.key, "summary": arch.summary(), "params": cost.params, "gflops": round(cost.gflops, 4)}


def print_dry_run(d: dict) -> None:
    """Print the dry-run description as a human-readable table."""
    print(f"study {d['study']}: space {d['space']} over {d['base_model']} (nc={d['nc']}, imgsz={d['imgsz']})")
    print(f"dataset: {d['dataset']}")
    print(f"base: {d['base']['params']:,} params, {d['base']['gflops']:.3f} GFLOPs")
    print(f"{'point':<14}{'layers':<10}choices (GFLOPs delta vs base)")
    for p in d["points"]:
        opts = ", ".join(f"{o['choice']} {o['gflops_delta']:+.3f}" for o in p["options"] if "k=" not in o["choice"])
        kernels = [o for o in p["options"] if "k=" in o["choice"]]
        if kernels:
            lo, hi = min(o["gflops_delta"] for o in kernels), max(o["gflops_delta"] for o in kernels)
            opts += f", {kernels[0]['choice'].split('(')[0]} k={p['kernels']} {lo:+.3f}..{hi:+.3f}"
        print(f"{p['name']:<14}{','.join(map(str, p['layers'])):<10}{opts}")
    print(f"distinct architectures: {d['space_size']:,}")
    for label in ("cheapest", "dearest"):
        e = d[label]
        print(f"{label}: {e['gflops']:.3f} GFLOPs, {e['params']:,} params [{e['key']}] {e['summary']}")


@cli
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nas.search``; return the process exit status (0 ok, 2 bad input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    if args.json and not args.dry_run:
        raise UserError("--json is only valid with --dry-run")
    if args.trials is not None and args.trials < 1:
        raise UserError(f"--trials must be at least 1, got {args.trials}")
    if args.seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {args.seed}")
    cfg = load_preset(args.study, data=args.data, space=args.space)
    if args.dry_run:
        d = dry_run_dict(cfg, report(cfg.space, cfg.dataset.nc, cfg.imgsz))
        if args.json:
            print(json.dumps(d))
        else:
            print_dry_run(d)
        return 0
    if args.trials is None:
        raise UserError("--trials is required (the total number of complete trials wanted)")
    run = StudyRun(
        trials=args.trials,
        study_name=args.study_name,
        device=resolve_device(args.device),
        seed=args.seed,
        sampler=args.sampler,
        weights=validate_weights(args.weights),
        run_dir=Path(args.run_dir),
        keep_runs=args.keep_runs,
        fail_running=args.fail_running,
    )
    storage = open_storage(args.storage, worker=True)
    try:
        outcome = run_study(cfg, storage, run, on_trial=Progress(cfg.space), log=log, on_phase=PhaseBar())
    except KeyboardInterrupt:  # the running trial is already recorded as failed (TrialRunner.run_one)
        log("interrupted: the complete trials are stored; run again to resume")
        return EXIT_INTERRUPTED
    finally:
        storage.close()
    log(
        f"done: ran {outcome.ran} trial(s); {len(completed(outcome.study))} complete; Pareto front "
        f"{len(outcome.front)} trial(s): {', '.join(f'#{t.number}' for t in outcome.front)}"
    )
    for warning in study_caveats(outcome.study):
        log(f"warning: {warning}")
    return 0
