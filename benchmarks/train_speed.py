"""Does a proxy training use the machine? Its training time per image against the compute floor.

Compute floor: a bare loop of forward and backward passes (the sum of the raw outputs as the loss, no data
loading, no assigner, no optimizer) of the preset's stock model, at the preset's batch and training size, on real
letterboxed training images, with all usable cores as torch threads. Reported in ms per image (median step / batch).
Proxy: ``nas.measure.train_proxy`` of the same model with the preset's schedule for --epochs epochs, thread
count as a trial gets it (``nas.measure.threads``); its training epochs (set-up and validation
excluded) divided by the images seen. Ratio = proxy / floor (bar: <= 1.3). Variants (--variants): ``plain``, the
proxy as it runs (Adam/AdamW with torch's fused step); ``for-loop``, with the for-loop step Ultralytics gets on a
CPU (the proxy before the fused step); ``cache``, with Ultralytics' ``cache=True`` (its RAM cache; the mosaic then
draws from the whole dataset instead of its buffer of recent images, so results differ). One AdamW step of each
kind over the model's parameters is timed alone too.

The machine's speed drifts by several percent from one minute to the next, so the floor is measured before the
first training and again after every one: a training's ratio is its time over the mean of the two floors either
side of it. --repeats rounds run every variant once each (in a rotated order); the figures are the medians over
rounds. Run it on an otherwise idle machine.

Writes results/train_speed.json.

    python -m benchmarks.train_speed [--study light] [--epochs 2] [--steps 20] [--repeats 3]
        [--variants plain for-loop cache]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from benchmarks.common import parser, say, write_result
from modules.ultralytics_adapter import ProxyTrainer, fused_on_cpu
from nas.config import load_preset
from nas.measure import build_model, train_proxy
from nas.measure.supernet import calibration_images
from nas.measure.threads import usable_cpus


@dataclass(frozen=True)
class Variant:
    """A way to run the proxy: Ultralytics train arguments added to the schedule, and the optimizer's step."""

    train_args: dict = field(default_factory=dict)
    fused_adam: bool = True


VARIANTS = {
    "plain": Variant(),  # the proxy as it runs
    "for-loop": Variant(fused_adam=False),  # the Adam step Ultralytics builds on a CPU
    "cache": Variant({"cache": True}),  # Ultralytics' RAM cache: changes what the mosaic draws
}


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


def adam_step_ms(cfg, steps: int, threads: int) -> dict[str, float]:
    """Return the median time of one AdamW step over the stock model's parameters (random gradients) with
    ``threads`` threads, in ms: {"for-loop": the step Ultralytics builds on a CPU, "fused": ``fused_on_cpu``'s}."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    params = list(build_model(cfg.space.stock().model_dict(cfg.dataset.nc)).parameters())
    grads = [torch.randn_like(p) * 1e-3 for p in params]
    out = {}
    for name, fused in (("for-loop", False), ("fused", True)):
        copies = [p.detach().clone().requires_grad_() for p in params]
        for c, g in zip(copies, grads, strict=True):
            c.grad = g.clone()
        optimizer = torch.optim.AdamW(copies, foreach=False)
        optimizer = fused_on_cpu(optimizer) if fused else optimizer
        times = []
        for step in range(steps + 3):
            t = time.perf_counter()
            optimizer.step()
            if step >= 3:  # warm-up steps excluded
                times.append(time.perf_counter() - t)
        out[name] = round(1000 * statistics.median(times), 2)
    return out


def proxy_ms_per_image(cfg, epochs: int, variant: Variant, seed: int) -> tuple[float, int, float]:
    """Return the proxy's training ms per image, its thread count and its mAP50-95 (a determinism check)."""

    def customize(trainer: ProxyTrainer) -> None:
        trainer.fused_adam = variant.fused_adam

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.yaml"
        model.write_text(cfg.space.stock().to_yaml(cfg.dataset.nc))
        schedule = {**cfg.schedule, "epochs": epochs, **variant.train_args}
        r = train_proxy(model, cfg.dataset.data_yaml(), schedule, Path(tmp) / "run", "cpu", seed, customize=customize)
    images = epochs * cfg.dataset.synthetic.train_images * schedule.get("fraction", 1.0)
    return 1000 * r.train_s / images, r.threads, r.map50_95


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--study", default="light")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3, help="rounds of floor + every variant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = ap.parse_args()
    args.variants = list(dict.fromkeys(args.variants))  # each once
    if args.repeats < 1 or args.epochs < 1:
        ap.error("--repeats and --epochs must be at least 1")
    cfg = load_preset(args.study)
    if cfg.dataset.synthetic is None:
        ap.error(f"--study {args.study}: needs the embedded synthetic dataset (its image count is known)")
    cpus = usable_cpus()
    one_thread = floor_ms_per_image(cfg, args.steps, 1) if cpus > 1 else None
    adam = adam_step_ms(cfg, args.steps, cpus)
    say(f"one AdamW step with {cpus} thread(s): {adam['for-loop']} ms for-loop, {adam['fused']} ms fused")
    floors = [floor_ms_per_image(cfg, args.steps, cpus)]
    say(f"floor {floors[-1]:.2f} ms/image with {cpus} thread(s)")
    runs: dict[str, list[tuple[float, float, int, float]]] = {name: [] for name in args.variants}
    for round_ in range(args.repeats):
        shift = round_ % len(args.variants)
        for name in args.variants[shift:] + args.variants[:shift]:
            ms, threads, map50_95 = proxy_ms_per_image(cfg, args.epochs, VARIANTS[name], args.seed)
            floors.append(floor_ms_per_image(cfg, args.steps, cpus))
            floor = statistics.mean(floors[-2:])  # the floors measured just before and just after
            runs[name].append((ms, ms / floor, threads, map50_95))
            say(
                f"round {round_ + 1}: {name}: {ms:.2f} ms/image with {threads} thread(s), {ms / floor:.2f}x the "
                f"floor around it ({floors[-2]:.2f}, {floors[-1]:.2f}), mAP50-95 {map50_95}"
            )
    rows = {}
    for name, results in runs.items():
        ms = [r[0] for r in results]
        ratios = [r[1] for r in results]
        rows[name] = {
            "ms_per_image": round(statistics.median(ms), 2),
            "ratio_to_floor": round(statistics.median(ratios), 2),
            "ms_per_round": [round(m, 2) for m in ms],
            "ratio_per_round": [round(r, 3) for r in ratios],
            "threads": sorted({r[2] for r in results}),
            "map50_95": sorted({r[3] for r in results}),  # one value: deterministic for the seed and threads
            "train_args": VARIANTS[name].train_args,
            "fused_adam": VARIANTS[name].fused_adam,
        }
        say(f"{name}: median {rows[name]['ms_per_image']} ms/image, {rows[name]['ratio_to_floor']}x the floor")
    floor_ms = {str(cpus): round(statistics.median(floors), 2)}
    if one_thread is not None:
        floor_ms = {"1": round(one_thread, 2), **floor_ms}
    figures = {
        "study": cfg.name,
        "batch": cfg.schedule["batch"],
        "imgsz": cfg.schedule["imgsz"],
        "epochs": args.epochs,
        "repeats": args.repeats,
        "floor_ms_per_image": floor_ms,
        "floor_ms_in_order": [round(f, 2) for f in floors],  # before the first training, then after each
        "proxy": rows,
        "adam_step_ms": adam,
        "bar_ratio": 1.3,
    }
    say(f"wrote {write_result('train_speed', figures)}")


if __name__ == "__main__":
    main()
