"""Is the embedded dataset a real detection task? The unmodified YOLO11n trained from scratch on the light
preset's dataset, validated every epoch: mAP50-95 should pass 0.30 within 15 epochs (learnable) and stay
below 0.9 after long training (architectures can still differ). Writes results/dataset_difficulty.json.

    python -m benchmarks.dataset_difficulty [--epochs 15] [--study light]
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from ultralytics import YOLO

from benchmarks.common import parser, write_result
from nas.config import load_preset
from nas.measure import remove_run


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--study", default="light")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workdir", default="nas_runs/benchmarks/dataset_difficulty")
    args = ap.parse_args()
    cfg = load_preset(args.study)
    model_yaml = Path(args.workdir).resolve() / "stock.yaml"
    model_yaml.parent.mkdir(parents=True, exist_ok=True)
    model_yaml.write_text(cfg.space.stock().to_yaml(cfg.dataset.nc))
    schedule = {**cfg.schedule, "epochs": args.epochs}
    run = model_yaml.parent / "run"
    t = time.perf_counter()
    YOLO(str(model_yaml)).train(
        data=str(cfg.dataset.data_yaml()),
        device=args.device,
        seed=args.seed,
        project=str(run.parent),
        name=run.name,
        exist_ok=True,
        plots=False,
        val=True,
        save=False,
        verbose=False,
        workers=0,
        **schedule,
    )
    seconds = time.perf_counter() - t
    with (run / "results.csv").open() as f:
        rows = [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(f)]
    curve = [round(float(r["metrics/mAP50-95(B)"]), 4) for r in rows]
    remove_run(run)
    first = next((i + 1 for i, m in enumerate(curve) if m >= 0.30), None)
    figures = {
        "model": cfg.space.identity,
        "dataset": cfg.dataset.description,
        "schedule": schedule,
        "map50_95_by_epoch": curve,
        "final_map50_95": curve[-1],
        "first_epoch_at_0_30": first,
        "seconds": round(seconds, 1),
    }
    print(f"mAP50-95 by epoch: {curve}; first >= 0.30 at epoch {first}; {seconds:.0f} s")
    write_result("dataset_difficulty", figures)


if __name__ == "__main__":
    main()
