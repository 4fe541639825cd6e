"""Turn one architecture into its numbers: cost and latency first, then (if feasible) proxy training.

Phases are timed separately (build, cost, export for the latency backend, latency, train, val). A constraint
violation is decided before any training and the candidate is not trained. Any failure of the candidate itself (a
shape error, out of memory, NaN loss) is caught and returned with its reason, so only its own trial fails.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import StudyConfig
from ..errors import UserError
from ..space import Architecture
from .cost import Cost, build_model, model_cost
from .latency import Latency, measure_latency
from .proxy import ProxyResult, remove_run, train_proxy
from .supernet import supernet_proxy


@dataclass(frozen=True)
class Runtime:
    """Where and how this process evaluates, beyond the preset: device, run folders, initial weights."""

    device: str = "cpu"
    run_root: Path = Path("nas_runs")
    keep_runs: bool = False
    weights: Path | None = None  # a checkpoint whose matching tensors every candidate inherits
    supernet: Path | None = None  # init: supernet - the study's trained supernet every candidate inherits its path of


@dataclass
class Evaluation:
    """The outcome of evaluating one architecture."""

    cost: Cost | None = None
    latency: Latency | None = None
    proxy: ProxyResult | None = None
    violations: dict[str, float] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    inherited_tensors: int | None = None  # init: supernet - tensors copied from the supernet (all of the candidate's)

    @property
    def feasible(self) -> bool:
        """Return True when every constraint is satisfied (and the cheap phases succeeded)."""
        return self.error is None and all(v <= 0 for v in self.violations.values())


def evaluate(
    arch: Architecture, cfg: StudyConfig, runtime: Runtime, seed: int, run_name: str, train_infeasible: bool = False
) -> Evaluation:
    """Evaluate ``arch`` as preset ``cfg`` says: build, cost, latency, then proxy training unless a constraint of
    ``cfg`` is violated (``train_infeasible``: train anyway, as for the stock reference). Training runs under
    ``runtime.run_root / run_name`` with ``seed``.

    Never raises for a failing candidate (a model that does not build, a shape error, out of memory, NaN loss):
    the reason is in ``Evaluation.error``. Other ``UserError``s (bad input) and ``KeyboardInterrupt`` propagate.
    """
    ev = Evaluation()
    stage = "build"
    try:
        t = time.perf_counter()
        nc = cfg.dataset.nc
        model = build_model(arch.model_dict(nc))
        ev.phases["build_s"] = time.perf_counter() - t
        stage = "cost"
        t = time.perf_counter()
        ev.cost = model_cost(model, cfg.imgsz)
        ev.phases["cost_s"] = time.perf_counter() - t
        stage = "latency"
        t = time.perf_counter()
        ev.latency = measure_latency(model, cfg.imgsz, runtime.device, cfg.latency)
        export_s = ev.latency.export_s or 0.0
        if ev.latency.export_s is not None:  # the deployment export and runtime build, apart from the timed runs
            ev.phases["export_s"] = export_s
        ev.phases["latency_s"] = time.perf_counter() - t - export_s
        del model
        ev.violations = cfg.constraints.violations(ev.cost.gflops, ev.cost.params, ev.latency.median_ms)
        if not ev.feasible and not train_infeasible:
            return ev
        stage = "train"
        run_dir = runtime.run_root / run_name
        model_yaml = runtime.run_root / f"{run_name}.yaml"
        model_yaml.parent.mkdir(parents=True, exist_ok=True)
        model_yaml.write_text(arch.to_yaml(nc))
        try:
            if runtime.supernet is not None:
                ev.proxy, inherited = supernet_proxy(arch, cfg, runtime.supernet, run_dir, runtime.device, seed)
                ev.inherited_tensors = int(inherited.pop("inherited_tensors"))
                ev.phases.update(inherited)
            else:
                data = cfg.dataset.data_yaml()
                ev.proxy = train_proxy(model_yaml, data, cfg.schedule, run_dir, runtime.device, seed, runtime.weights)
        finally:
            if not runtime.keep_runs:
                remove_run(run_dir)
                model_yaml.unlink(missing_ok=True)
        ev.phases["train_setup_s"] = ev.proxy.setup_s
        ev.phases["train_s"] = ev.proxy.train_s
        ev.phases["val_s"] = ev.proxy.val_s
    except KeyboardInterrupt:
        raise
    except UserError as e:
        if stage != "build":  # bad input, not the candidate's fault
            raise
        ev.error = f"build: {e}"
    except torch.cuda.OutOfMemoryError as e:
        ev.error = f"{stage}: out of memory ({str(e).splitlines()[0]})"
    except Exception as e:  # the candidate's own failure: contained to its trial
        last = traceback.extract_tb(e.__traceback__)[-1]
        ev.error = f"{stage}: {type(e).__name__}: {e} (at {Path(last.filename).name}:{last.lineno})"
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return ev
