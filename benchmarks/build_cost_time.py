"""How long building and costing one YOLO11n candidate takes (target: <= 2 s on a 2-core CPU).

Samples random architectures of the light space, and for each times: building the Ultralytics model from
its YAML, and counting params + full-resolution GFLOPs at 640. Writes results/build_cost_time.json.

    python -m benchmarks.build_cost_time [--n 20] [--seed 0]
"""

from __future__ import annotations

import itertools
import statistics
import time

import optuna
import torch

from benchmarks.common import parser, random_architectures, write_result
from nas.measure import build_model, model_cost
from nas.space import load_space


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--imgsz", type=int, default=640)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space("yolo11_backbone", "n")
    rows = []
    for arch in itertools.islice(random_architectures(space, args.seed), args.n):
        t0 = time.perf_counter()
        model = build_model(arch.model_dict(8))
        t1 = time.perf_counter()
        cost = model_cost(model, args.imgsz)
        t2 = time.perf_counter()
        rows.append(
            {
                "key": arch.key,
                "summary": arch.summary(),
                "gflops": round(cost.gflops, 4),
                "build_s": round(t1 - t0, 3),
                "cost_s": round(t2 - t1, 3),
                "total_s": round(t2 - t0, 3),
            }
        )
        print(f"{arch.key}  build {t1 - t0:5.2f}s  cost {t2 - t1:5.2f}s  {cost.gflops:6.2f} GFLOPs  {arch.summary()}")
    totals = [r["total_s"] for r in rows]
    summary = {
        "n": len(rows),
        "imgsz": args.imgsz,
        "torch_threads": torch.get_num_threads(),
        "median_total_s": round(statistics.median(totals), 3),
        "max_total_s": round(max(totals), 3),
        "bar_s": 2.0,
        "meets_bar": max(totals) <= 2.0,
    }
    print(f"median {summary['median_total_s']} s, max {summary['max_total_s']} s per candidate (bar 2 s)")
    write_result("build_cost_time", {**summary, "candidates": rows})


if __name__ == "__main__":
    main()
