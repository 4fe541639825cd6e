"""Is latency measured reliably, on the runtime a user deploys, and is it more than GFLOPs in disguise?

1. Repeat-to-repeat spread, per backend (PyTorch eager and ONNX Runtime): the latency protocol of the light preset
   (CPU: its thread count, warm-up, median of its timed runs; one attempt each, no repeat for spread) taken
   ``--repeats`` times (5) for 3 architectures (the stock YOLO11n and two random ones of the light space);
   spread = IQR / median of the repeated medians.
2. Over 20 architectures of the light space (seeded draw): the preset's latency (its default backend, ONNX Runtime
   on a CPU; one attempt), GFLOPs, the PyTorch-eager latency, the export seconds; Spearman and Kendall between
   GFLOPs and latency and Kendall between PyTorch-eager and ONNX Runtime latency (does the eager order predict
   the deployed one?). Measured first, and written before the other parts run.
3. ``--under-load``: the stock model's ONNX Runtime latency alone, then while a second process trains (the light
   preset's proxy training of the stock model), measured without and with the host's latency lock (the lock
   pauses the training between batches); inflation = loaded median / lone median - 1.

Writes results/latency.json.

    python -m benchmarks.latency [--device cpu|cuda] [--repeats 5] [--n 20] [--under-load]
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import statistics
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from benchmarks.common import diverse_architectures, parser, say, write_result
from nas.config import StudyConfig, load_preset
from nas.measure import Latency, build_model, measure_latency, model_cost, quartiles
from nas.ranking import kendall, spearman

BACKENDS = ("torch", "onnxruntime")
LOAD_REPEATS = 3


def repeat_spread(medians: list[float]) -> float:
    """Return IQR / median of repeated medians."""
    q1, med, q3 = quartiles(medians)
    return (q3 - q1) / med


def spread_by_backend(cfg: StudyConfig, archs: list, models: list, device: str, repeats: int) -> dict[str, Any]:
    """Return, per backend, the repeat spread of the first 3 architectures (single attempts, no re-measuring)."""
    out: dict[str, Any] = {}
    for backend in BACKENDS:
        settings = dataclasses.replace(cfg.latency, backend=backend, max_spread=float("inf"))
        rows = []
        for arch, model in zip(archs[:3], models, strict=False):
            reps = [measure_latency(model, cfg.imgsz, device, settings) for _ in range(repeats)]
            medians = [r.median_ms for r in reps]
            rows.append(
                {
                    "key": arch.key,
                    "summary": arch.summary(),
                    "medians_ms": [round(x, 3) for x in medians],
                    "repeat_spread_iqr_over_median": round(repeat_spread(medians), 4),
                    "within_run_iqr_over_median": [round(r.spread, 4) for r in reps],
                }
            )
            say(f"{backend:11} {arch.summary()[:50]:50} medians {rows[-1]['medians_ms']} spread "
                f"{rows[-1]['repeat_spread_iqr_over_median']}")  # fmt: skip
        spreads = [r["repeat_spread_iqr_over_median"] for r in rows]
        out[backend] = {"max_repeat_spread": max(spreads), "median_repeat_spread": statistics.median(spreads),
                        "rows": rows}  # fmt: skip
    return out


def _train_forever(stop: Any, started: Any) -> None:
    """Train the stock model as a worker of the light preset would (its dataset and schedule, more epochs) until
    ``stop`` is set: the second worker of ``--under-load``."""
    import tempfile

    from nas.measure import train_proxy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = load_preset("light")
    data = cfg.dataset.data_yaml()
    schedule = {**cfg.schedule, "epochs": 1000}

    def customize(trainer: Any) -> None:
        trainer.add_callback("on_train_batch_start", lambda _: started.set())
        trainer.add_callback("on_train_batch_end", lambda t: setattr(t, "stop", t.stop or stop.is_set()))

    with tempfile.TemporaryDirectory() as folder:
        model_yaml = Path(folder) / "stock.yaml"
        model_yaml.write_text(cfg.space.stock().to_yaml(cfg.dataset.nc))
        with contextlib.suppress(Exception):  # stopped in the middle: its metrics do not matter
            train_proxy(model_yaml, data, schedule, Path(folder) / "run", customize=customize)


def under_load(cfg: StudyConfig, model: torch.nn.Module, device: str) -> dict[str, Any]:
    """Return the stock model's latency alone, and beside a training process without and with the lock."""
    settings = dataclasses.replace(cfg.latency, backend="onnxruntime", max_spread=float("inf"))

    def sample(serialise: bool = True) -> Latency:
        return measure_latency(model, cfg.imgsz, device, settings, serialise=serialise)

    lone = [sample() for _ in range(LOAD_REPEATS)]
    ctx = multiprocessing.get_context("spawn")
    stop, started = ctx.Event(), ctx.Event()
    trainer = ctx.Process(target=_train_forever, args=(stop, started), daemon=True)
    trainer.start()
    loaded: dict[bool, list[Latency]] = {False: [], True: []}
    try:
        if not started.wait(600):
            raise RuntimeError("the training process did not start a batch in 10 minutes")
        time.sleep(2.0)
        for _ in range(LOAD_REPEATS):
            for serialise in (False, True):  # interleaved: both see the same background
                loaded[serialise].append(sample(serialise))
    finally:
        stop.set()
        trainer.join(300)  # it validates once after its last batch
        if trainer.is_alive():
            trainer.terminate()
    lone += [sample() for _ in range(LOAD_REPEATS)]
    lone_ms = statistics.median(x.median_ms for x in lone)

    def summary(xs: list[Latency]) -> dict[str, Any]:
        med = statistics.median(x.median_ms for x in xs)
        return {
            "medians_ms": [round(x.median_ms, 3) for x in xs],
            "median_ms": round(med, 3),
            "inflation_vs_lone": round(med / lone_ms - 1, 4),
            "within_run_iqr_over_median": round(statistics.median(x.spread for x in xs), 4),
            "lock_wait_s": round(statistics.median(x.wait_s for x in xs), 3),
        }

    out = {
        "backend": "onnxruntime",
        "repeats": LOAD_REPEATS,
        "lone": summary(lone),
        "beside_training_unserialised": summary(loaded[False]),
        "beside_training_serialised": summary(loaded[True]),
    }
    say(f"under load: lone {out['lone']['median_ms']} ms, beside a training "
        f"{out['beside_training_unserialised']['median_ms']} ms unserialised, "
        f"{out['beside_training_serialised']['median_ms']} ms with the lock")  # fmt: skip
    return out


def rank_rows(cfg: StudyConfig, archs: list, models: list, device: str) -> list[dict[str, Any]]:
    """Return GFLOPs, ONNX Runtime (the preset's default on a CPU) and PyTorch-eager latency and the export seconds
    of every architecture: one attempt each (no repeat for spread), the preset's runs, warm-up and threads."""
    rows = []
    for arch, model in zip(archs, models, strict=True):
        once = dataclasses.replace(cfg.latency, max_spread=float("inf"))
        cost, deployed = model_cost(model, cfg.imgsz), measure_latency(model, cfg.imgsz, device, once)
        eager = measure_latency(model, cfg.imgsz, device, dataclasses.replace(once, backend="torch"))
        rows.append({"key": arch.key, "summary": arch.summary(), "gflops": round(cost.gflops, 4),
                     "latency_ms": round(deployed.median_ms, 3), "backend": deployed.backend,
                     "backend_version": deployed.backend_version, "provider": deployed.provider,
                     "dtype": deployed.dtype, "threads": deployed.threads, "device": deployed.device_name,
                     "latency_torch_ms": round(eager.median_ms, 3), "export_s": round(deployed.export_s or 0.0, 3),
                     "spread": round(deployed.spread, 4), "spread_torch": round(eager.spread, 4)})  # fmt: skip
        say(
            f"{arch.key} {cost.gflops:7.2f} GFLOPs {deployed.median_ms:9.2f} ms {deployed.backend} "
            f"{eager.median_ms:9.2f} ms torch, export {deployed.export_s or 0:4.1f} s {arch.summary()[:40]}"
        )
    return rows


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--under-load", action="store_true", help="also measure beside a training, with and without lock")
    ap.add_argument("--note", help="a remark stored with the figures (for example: what else loaded the machine)")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = load_preset("light")
    lat = cfg.latency
    archs = diverse_architectures(cfg.space, args.n, args.seed)
    models = [build_model(arch.model_dict(cfg.dataset.nc)) for arch in archs]  # build_model is quiet
    rows = rank_rows(cfg, archs, models, args.device)
    g, t, e = ([r[k] for r in rows] for k in ("gflops", "latency_ms", "latency_torch_ms"))
    rho, tau, tau_rt = spearman(g, t), kendall(g, t), kendall(e, t)
    say(f"Spearman(GFLOPs, latency) = {rho:.3f}, Kendall = {tau:.3f}; Kendall(torch, onnxruntime) = {tau_rt:.3f} "
        f"over {len(rows)} architectures")  # fmt: skip
    exports = [r["export_s"] for r in rows]
    first = rows[0]
    figures: dict[str, Any] = {
        "device": first["device"],
        "dtype": first["dtype"],
        "threads": first["threads"],
        "imgsz": cfg.imgsz,
        "runs": lat.runs,
        "warmup": lat.warmup,
        "repeats": args.repeats,
        "backend": first["backend"],
        "backend_version": first["backend_version"],
        "provider": first["provider"],
        "spearman_gflops_latency": round(rho, 4),
        "kendall_gflops_latency": round(tau, 4),
        "kendall_torch_vs_onnxruntime": round(tau_rt, 4),
        "spearman_torch_vs_onnxruntime": round(spearman(e, t), 4),
        "export_s_median": round(statistics.median(exports), 3),
        "export_s_max": round(max(exports), 3),
        "n_architectures": len(rows),
        "architectures": rows,
        "cuda": torch.cuda.is_available(),
        "note": args.note,
    }
    write_result("latency", {**figures, "complete": False})  # the figures so far, should a later part not finish
    by_backend = spread_by_backend(cfg, archs, models, args.device, args.repeats)
    default = by_backend.get(first["backend"], by_backend["onnxruntime"])
    figures.update(max_repeat_spread=default["max_repeat_spread"], spread=default["rows"], spread_by_backend=by_backend)
    if args.under_load:
        write_result("latency", {**figures, "complete": False})
        figures["under_load"] = under_load(cfg, models[0], args.device)
    write_result("latency", {**figures, "complete": True})


if __name__ == "__main__":
    main()
