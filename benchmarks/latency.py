"""Is latency measured reliably, and is it more than GFLOPs in disguise?

1. Repeat-to-repeat spread: the latency protocol of the light preset (CPU: its thread count, warm-up, median
   of its timed runs; CUDA when present: CUDA events, fp32) repeated 5 times for 3 architectures (the stock
   YOLO11n, and two random ones of the light space); spread = IQR / median of the 5 medians.
2. Rank correlation (Spearman) between GFLOPs and latency over 20 random architectures of the light space.

Writes results/latency.json.

    python -m benchmarks.latency [--device cpu|cuda] [--repeats 5] [--n 20]
"""

from __future__ import annotations

import optuna
import torch

from benchmarks.common import diverse_architectures, parser, write_result
from nas.config import load_preset
from nas.measure import Latency, build_model, measure_latency, model_cost, quartiles
from nas.ranking import kendall, spearman


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = load_preset("light")
    lat = cfg.latency
    archs = diverse_architectures(cfg.space, args.n, args.seed)

    def latency(model) -> Latency:
        return measure_latency(model, cfg.imgsz, args.device, lat)  # the preset's runs, warm-up, threads, half

    models = [build_model(arch.model_dict(cfg.dataset.nc)) for arch in archs]  # build_model is quiet
    spread_rows = []
    for arch, model in zip(archs[:3], models, strict=False):
        reps = [latency(model) for _ in range(args.repeats)]
        medians = [r.median_ms for r in reps]
        q1, med, q3 = quartiles(medians)
        row = {
            "key": arch.key,
            "summary": arch.summary(),
            "medians_ms": [round(x, 3) for x in medians],
            "repeat_spread_iqr_over_median": round((q3 - q1) / med, 4),
            "within_run_iqr_over_median": [round(r.iqr_ms / r.median_ms, 4) for r in reps],
        }
        spread_rows.append(row)
        print(f"{arch.summary()[:60]:60} medians {row['medians_ms']} spread {row['repeat_spread_iqr_over_median']}")
    rank_rows = []
    sample = None
    for arch, model in zip(archs, models, strict=True):
        cost, sample = model_cost(model, cfg.imgsz), latency(model)
        rank_rows.append({"key": arch.key, "summary": arch.summary(), "gflops": round(cost.gflops, 4),
                          "latency_ms": round(sample.median_ms, 3)})  # fmt: skip
        print(f"{arch.key} {cost.gflops:7.2f} GFLOPs {sample.median_ms:9.2f} ms  {arch.summary()[:70]}")
    g = [r["gflops"] for r in rank_rows]
    t = [r["latency_ms"] for r in rank_rows]
    rho, tau = spearman(g, t), kendall(g, t)
    print(f"Spearman(GFLOPs, latency) = {rho:.3f}, Kendall = {tau:.3f} over {len(rank_rows)} architectures")
    assert sample is not None
    write_result(
        "latency",
        {
            "device": sample.device_name,
            "dtype": sample.dtype,
            "threads": sample.threads,
            "imgsz": cfg.imgsz,
            "runs": lat.runs,
            "warmup": lat.warmup,
            "repeats": args.repeats,
            "max_repeat_spread": max(r["repeat_spread_iqr_over_median"] for r in spread_rows),
            "spread": spread_rows,
            "spearman_gflops_latency": round(rho, 4),
            "kendall_gflops_latency": round(tau, 4),
            "n_architectures": len(rank_rows),
            "architectures": rank_rows,
            "cuda": torch.cuda.is_available(),
        },
    )


if __name__ == "__main__":
    main()
