"""What a dry run shows about a space: per-point costs of every option, and the cheapest/dearest architectures.

Every option keeps its slot's input and output shapes, so a model's cost is the base cost plus the sum of
per-point deltas. The deltas come from a handful of full builds (build j takes each point's j-th option), and
the cheapest and dearest architectures are then built and measured to report exact figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..space import Architecture, Choice, SearchSpace
from .cost import Cost, architecture_cost, build_model, layer_costs, model_cost


@dataclass(frozen=True)
class OptionCost:
    """An option of a point and what it adds to the base model (GFLOPs, params) at the deployment size."""

    choice: Choice
    gflops_delta: float
    params_delta: int


@dataclass(frozen=True)
class SpaceReport:
    """Base cost, per-point option costs and the exact cost of the cheapest and dearest architectures."""

    base: Cost
    options: dict[str, list[OptionCost]]
    cheapest: tuple[Architecture, Cost]
    dearest: tuple[Architecture, Cost]


def report(space: SearchSpace, nc: int, imgsz: int) -> SpaceReport:
    """Return the space's cost report for ``nc`` classes at ``imgsz`` (several model builds; seconds)."""
    stock_model = build_model(space.stock().model_dict(nc))
    base_cost = model_cost(stock_model, imgsz)  # includes functional products outside any layer (C2PSA)
    base_layers = layer_costs(stock_model, imgsz)
    options = {p.name: p.options() for p in space.points}
    deltas: dict[str, list[OptionCost]] = {p.name: [] for p in space.points}
    for j in range(max(len(o) for o in options.values())):
        picks = {name: opts[j] for name, opts in options.items() if j < len(opts)}
        arch = space.architecture(picks)
        layers = layer_costs(build_model(arch.model_dict(nc)), imgsz)
        for point in space.points:
            if point.name not in picks:
                continue
            g = sum(layers[i][0] - base_layers[i][0] for i in point.layers)
            n = sum(layers[i][1] - base_layers[i][1] for i in point.layers)
            deltas[point.name].append(OptionCost(picks[point.name], g, n))

    def extreme(pick: Callable[..., OptionCost]) -> tuple[Architecture, Cost]:
        """Return the architecture taking ``pick`` (min or max) of each point's GFLOPs delta, and its exact cost."""
        arch = space.architecture({n: pick(opts, key=lambda o: o.gflops_delta).choice for n, opts in deltas.items()})
        return arch, architecture_cost(arch, nc, imgsz)

    return SpaceReport(base_cost, deltas, extreme(min), extreme(max))
