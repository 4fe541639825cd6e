"""``python -m nas.search``: run (or inspect with ``--dry-run``) a multi-objective architecture search."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .config import StudyConfig, load_preset
from .errors import UserError, cli
from .space_report import SpaceReport, report


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``nas.search``."""
    p = argparse.ArgumentParser(prog="python -m nas.search", description=__doc__)
    p.add_argument("--study", default="light", help="preset name in studies/ or a preset YAML path (default: light)")
    p.add_argument("--data", help="a local Ultralytics data YAML instead of the preset's dataset")
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
    cfg = load_preset(args.study, data=args.data)
    if not args.dry_run:
        raise UserError("only --dry-run is available in this version: the search itself is not implemented yet")
    d = dry_run_dict(cfg, report(cfg.space, cfg.dataset.nc, cfg.imgsz))
    if args.json:
        print(json.dumps(d))
    else:
        print_dry_run(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
