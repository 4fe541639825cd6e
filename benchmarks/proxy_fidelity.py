"""Does the light proxy rank architectures like a 4x longer schedule? Spearman and Kendall over n architectures.

Trains each architecture twice on the light preset's dataset: with the light schedule and with `--factor`
times its epochs (same everything else), and correlates the two mAP50-95 rankings. The architectures are the
stock model plus distinct random ones of the light space (seeded). Each `--init` is measured on the same
architectures: `scratch` (random init) and `warm` (every trial inherits matching tensors from the unmodified
base trained once for the preset's `warm_epochs`). Writes results/proxy_fidelity.json, one entry per init
and at the top level the figures of the init that ranks better.

    python -m benchmarks.proxy_fidelity [--n 8] [--factor 4] [--seed 0] [--study light] [--init warm scratch]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import optuna

from benchmarks.common import diverse_architectures, kendall, parser, say, spawn_pool, spearman, write_result
from nas.config import load_preset
from nas.measure import remove_run, train_proxy, warm_start_weights


def measure(study: str, n: int, init: str, warm_epochs: int, factor: int, seed: int, device: str, work: Path) -> dict:
    """Train every architecture with the proxy and the reference schedule from ``init``; return the figures.

    Runs in its own process (one per init), so it loads the preset and draws the architectures itself.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = load_preset(study)
    archs = diverse_architectures(cfg.space, n, seed)
    work = work / init
    work.mkdir(parents=True, exist_ok=True)
    data = cfg.dataset.data_yaml()
    proxy = dict(cfg.schedule)
    reference = {**proxy, "epochs": proxy["epochs"] * factor}
    weights, warm_s = None, 0.0
    if init == "warm":
        t = time.perf_counter()
        weights = warm_start_weights(cfg, work, device, seed, warm_epochs, log=say)
        warm_s = round(time.perf_counter() - t, 1)
        print(f"[{init}] base trained {warm_epochs} epochs in {warm_s} s", flush=True)
    rows = []
    for i, arch in enumerate(archs):
        yaml_path = work / f"{arch.key}.yaml"
        yaml_path.write_text(arch.to_yaml(cfg.dataset.nc))
        row = {"key": arch.key, "summary": arch.summary()}
        for label, schedule in (("proxy", proxy), ("reference", reference)):
            t = time.perf_counter()
            run = work / f"{arch.key}-{init}-{label}"
            r = train_proxy(yaml_path, data, schedule, run, device, seed, weights=weights)
            remove_run(run)
            row[f"{label}_map50_95"] = round(r.map50_95, 5)
            row[f"{label}_s"] = round(time.perf_counter() - t, 1)
        rows.append(row)
        print(
            f"[{init} {i + 1}/{len(archs)}] {arch.key} proxy {row['proxy_map50_95']:.4f} ({row['proxy_s']} s)  "
            f"reference {row['reference_map50_95']:.4f} ({row['reference_s']} s)  {arch.summary()}",
            flush=True,
        )
    a = [r["proxy_map50_95"] for r in rows]
    b = [r["reference_map50_95"] for r in rows]
    figures = {
        "spearman": round(spearman(a, b), 4),
        "kendall": round(kendall(a, b), 4),
        "n_architectures": len(rows),
        "init": init,
        "warm_epochs": warm_epochs if init == "warm" else None,
        "warm_base_s": warm_s,
        "mean_proxy_s": round(sum(r["proxy_s"] for r in rows) / len(rows), 1),
        "proxy": proxy,
        "reference": reference,
        "architectures": rows,
    }
    print(f"[{init}] Spearman {figures['spearman']}, Kendall {figures['kendall']} over {len(rows)} architectures")
    (work / "figures.json").write_text(json.dumps(figures, indent=2))  # kept should the other init fail
    return figures


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--study", default="light")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--init", nargs="+", choices=("scratch", "warm"), default=["warm", "scratch"])
    ap.add_argument("--warm-epochs", type=int, default=None, help="default: the preset's, else 4x the proxy's")
    ap.add_argument("--workdir", default="nas_runs/benchmarks/proxy_fidelity")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = load_preset(args.study)
    warm_epochs = args.warm_epochs or cfg.warm_epochs or 4 * cfg.schedule["epochs"]
    work = Path(args.workdir)
    # Ultralytics trains with one thread on a 2-core machine, so the inits run side by side, one process each
    with spawn_pool(len(args.init)) as pool:
        jobs = {
            init: pool.submit(measure, args.study, args.n, init, warm_epochs, args.factor, args.seed, args.device, work)
            for init in args.init
        }
        by_init = {init: job.result() for init, job in jobs.items()}
    # the top-level figures are the better init's: the one the light preset should use by default
    best = max(by_init.values(), key=lambda f: f["spearman"])
    figures = {
        **{k: best[k] for k in ("spearman", "kendall", "n_architectures", "init", "proxy", "reference")},
        "preset": cfg.name,
        "preset_init": cfg.init,
        "dataset": cfg.dataset.description,
        "bar_spearman": 0.6,
        "parallel_processes": len(args.init),
        "by_init": by_init,
    }
    write_result("proxy_fidelity", figures)


if __name__ == "__main__":
    main()
