"""Does a proxy training use the machine? Its training time per image against the compute floor.

Compute floor: a bare loop of forward and backward passes (the sum of the raw outputs as the loss, no data
loading, no assigner, no optimizer) of the preset's stock model, at the preset's batch and training size, on real
letterboxed training images, with all usable cores as torch threads. Reported in ms per image (median step / batch).
Proxy: ``nas.measure.train_proxy`` of the same model with the preset's schedule for --epochs epochs, thread
count as a trial gets it (``nas.measure.threads``) or --threads; its training epochs (set-up and validation
excluded) divided by the images seen. Ratio = proxy / floor (bar: <= 1.3). Each variant of --variants adds train
arguments (``cache``: decoded images kept in memory). Run it on an otherwise idle machine.

Writes results/train_speed.json.

    python -m benchmarks.train_speed [--study light] [--epochs 2] [--steps 20] [--variants plain cache]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import parser, say, write_result
from nas.config import load_preset
from nas.measure import build_model, train_proxy
from nas.measure.supernet import calibration_images
from nas.measure.threads import usable_cpus

VARIANTS = {"plain": {}, "cache": {"cache": True}}


def floor_ms_per_image(cfg, steps: int, threads: int) -> float:
    """Return the median forward+backward step time per image of the stock model with ``threads`` threads."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(cfg.space.stock().model_dict(cfg.dataset.nc)).train()
    batch = cfg.schedule["batch"]
    x = next(calibration_images(cfg.dataset.data_yaml(), cfg.schedule["imgsz"], count=batch))
    times = []
    for step in range(steps + 3):
        t = time.perf_counter()
        out = model(x)
        outputs = out.values() if isinstance(out, dict) else out
        loss = sum(o.sum() for o in outputs if torch.is_tensor(o))
        loss.backward()
        model.zero_grad(set_to_none=True)
        if step >= 3:  # warm-up steps excluded
            times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times) / batch


def proxy_ms_per_image(cfg, epochs: int, extra: dict, seed: int) -> tuple[float, int, float]:
    """Return the proxy's training ms per image, its thread count and its mAP50-95 (a determinism check)."""
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.yaml"
        model.write_text(cfg.space.stock().to_yaml(cfg.dataset.nc))
        schedule = {**cfg.schedule, "epochs": epochs, **extra}
        r = train_proxy(model, cfg.dataset.data_yaml(), schedule, Path(tmp) / "run", "cpu", seed)
    images = epochs * cfg.dataset.synthetic.train_images * schedule.get("fraction", 1.0)
    return 1000 * r.train_s / images, r.threads, r.map50_95


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--study", default="light")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = ap.parse_args()
    cfg = load_preset(args.study)
    if cfg.dataset.synthetic is None:
        ap.error(f"--study {args.study}: needs the embedded synthetic dataset (its image count is known)")
    cpus = usable_cpus()
    floor = {threads: floor_ms_per_image(cfg, args.steps, threads) for threads in sorted({1, cpus})}
    say("floor: " + ", ".join(f"{ms:.2f} ms/image with {n} thread(s)" for n, ms in floor.items()))
    rows = {}
    for name in args.variants:
        ms, threads, map50_95 = proxy_ms_per_image(cfg, args.epochs, VARIANTS[name], args.seed)
        rows[name] = {
            "ms_per_image": round(ms, 2),
            "threads": threads,
            "ratio_to_floor": round(ms / floor[cpus], 2),
            "map50_95": map50_95,
            "train_args": VARIANTS[name],
        }
        say(f"{name}: {ms:.2f} ms/image with {threads} thread(s), {ms / floor[cpus]:.2f}x the floor, mAP {map50_95}")
    figures = {
        "study": cfg.name,
        "batch": cfg.schedule["batch"],
        "imgsz": cfg.schedule["imgsz"],
        "epochs": args.epochs,
        "floor_ms_per_image": {str(k): round(v, 2) for k, v in floor.items()},
        "proxy": rows,
        "bar_ratio": 1.3,
    }
    say(f"wrote {write_result('train_speed', figures)}")


if __name__ == "__main__":
    main()
