"""``python -m nas.search``: run (or inspect with ``--dry-run``) a multi-objective architecture search."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .config import SAMPLERS, StudyConfig, load_preset
from .errors import ArgumentParser, UserError, cli
from .evaluate import EvalSettings
from .latency import device_name
from .proxy import train_warm_base, validate_weights
from .space_report import SpaceReport, report
from .storage import Storage, open_storage, recover_dead_trials
from .study import DEFAULT_STORAGE, Progress, completed, make_sampler, open_study, pareto_front, search

EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``nas.search``."""
    p = ArgumentParser(prog="python -m nas.search", description=__doc__)
    p.add_argument("--study", default="light", help="preset name in studies/ or a preset YAML path (default: light)")
    p.add_argument("--trials", type=int, help="total COMPLETE trials wanted (a resumed study runs only the rest)")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default: {DEFAULT_STORAGE})")
    p.add_argument("--study-name", help="name of the study in the storage (default: the preset's name)")
    p.add_argument("--data", help="a local Ultralytics data YAML instead of the preset's dataset")
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
                "kernels": list(p.kernels) if any(c.endswith("Conv2Former") for c in p.choices) else [],
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
    """Run ``nas.search``; return the process exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    if args.json and not args.dry_run:
        raise UserError("--json is only valid with --dry-run")
    if args.trials is not None and args.trials < 1:
        raise UserError(f"--trials must be at least 1, got {args.trials}")
    cfg = load_preset(args.study, data=args.data)
    if args.dry_run:
        d = dry_run_dict(cfg, report(cfg.space, cfg.dataset.nc, cfg.imgsz))
        if args.json:
            print(json.dumps(d))
        else:
            print_dry_run(d)
        return 0
    if args.trials is None:
        raise UserError("--trials is required (the total number of complete trials wanted)")
    device = resolve_device(args.device)
    weights = validate_weights(args.weights)
    storage = open_storage(args.storage, worker=True)
    try:
        return run_study(args, cfg, storage, device, weights)
    except KeyboardInterrupt:  # the running trial is already recorded as failed (study.run_one)
        print("interrupted: the complete trials are stored; run again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        storage.close()


def run_study(args: argparse.Namespace, cfg: StudyConfig, storage: Storage, device: str, weights: Path | None) -> int:
    """Open or resume the study in ``storage`` and run it to ``args.trials``; return the exit status.

    Raises:
        UserError: the stored study is incompatible, the warm start failed, or candidates keep failing.
    """
    study_name = args.study_name or cfg.name
    study = open_study(cfg, storage, study_name, runtime_record(cfg, device, weights))
    dead = recover_dead_trials(study, storage, all_running=args.fail_running)
    if dead:
        print(
            f"trial(s) {', '.join(f'#{n}' for n in dead)} of a dead worker: marked failed, queued again",
            file=sys.stderr,
        )
    # offset the seed by the trials already stored: a resumed study must not replay the same random stream; on a
    # shared storage also by the process id, or workers started together would all draw the same architectures
    offset = len(study.get_trials(deepcopy=False)) + (0 if storage.exclusive else os.getpid())
    study.sampler = make_sampler(args.sampler or cfg.sampler, args.seed + offset)
    run_root = Path(args.run_dir) / study_name
    settings = EvalSettings(
        imgsz=cfg.imgsz,
        schedule=cfg.schedule,
        device=device,
        half=cfg.latency.half,
        latency_runs=cfg.latency.runs,
        latency_warmup=cfg.latency.warmup,
        latency_threads=cfg.latency.threads,
        constraints=cfg.constraints,
        run_root=run_root,
        keep_runs=args.keep_runs,
        weights=weights,
    )
    if weights is None and cfg.init == "warm":
        settings = replace(settings, weights=warm_start_weights(cfg, run_root, device, args.seed))
    done = len(completed(study))
    print(
        f"study {study_name} in {args.storage}: {done}/{args.trials} complete trials; "
        f"space {cfg.space.name} ({cfg.space.size():,} architectures), device {device}",
        file=sys.stderr,
    )
    ran = search(study, cfg, settings, storage, args.trials, args.seed, Progress())
    front = pareto_front(study)
    print(
        f"done: ran {ran} trial(s); {len(completed(study))} complete; Pareto front {len(front)} trial(s): "
        f"{', '.join(f'#{t.number}' for t in front)}",
        file=sys.stderr,
    )
    return 0


def runtime_record(cfg: StudyConfig, device: str, weights: Path | None) -> dict:
    """Return what of the run joins the study fingerprint: device name, initial weights' digest, init."""
    return {
        "device": device_name(device),
        "weights": file_digest(weights) if weights else None,
        "init": cfg.init,
        "warm_epochs": cfg.warm_epochs,
    }


def resolve_device(device: str) -> str:
    """Return the torch device string for ``device`` (``auto``: the first GPU if any, else cpu).

    Raises:
        UserError: a CUDA device was asked for but is not available.
    """
    import torch

    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") or device.isdigit():
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA device is available")
        return device if device.startswith("cuda") else f"cuda:{device}"
    if device != "cpu":
        raise UserError(f"--device {device}: expected cpu, cuda, cuda:N or auto")
    return device


def warm_base_path(run_root: Path, epochs: int) -> Path:
    """Return where the study whose run folder is ``run_root`` keeps its warm-start base trained ``epochs``."""
    return run_root / f"warm_base_e{epochs}.pt"


def warm_start_weights(cfg: StudyConfig, run_root: Path, device: str, seed: int, epochs: int | None = None) -> Path:
    """Return the study's warm-start checkpoint: the unmodified base trained ``epochs`` (default the preset's
    ``warm_epochs``) once, cached in ``run_root``.

    The base is trained with the ``seed`` of the first run that needs it; later runs of the study reuse it
    whatever their ``--seed``, so every trial of a study starts from the same weights.

    Raises:
        UserError: the base model's training failed.
    """
    epochs = epochs or cfg.warm_epochs
    out = warm_base_path(run_root, epochs)
    if not out.is_file():
        print(f"init: warm - training the unmodified base for {epochs} epochs, once for this study...", file=sys.stderr)
        out.parent.mkdir(parents=True, exist_ok=True)
        model_yaml = out.with_suffix(".yaml")
        model_yaml.write_text(cfg.space.stock().to_yaml(cfg.dataset.nc))
        train_warm_base(model_yaml, cfg.dataset.data_yaml(), cfg.schedule, epochs, out, device, seed)
    return out


def file_digest(path: Path) -> str:
    """Return the first 16 hex digits of the SHA-256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


if __name__ == "__main__":
    sys.exit(main())
