"""An architecture: one choice per insertion point of a search space, its stable key and its model YAML."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from modules.table import OPERATORS, is_stock, short_name


class SpaceLike(Protocol):
    """What an architecture reads of its search space (``space.SearchSpace``)."""

    name: str
    base: dict
    points: tuple[Any, ...]

    @property
    def identity(self) -> str: ...


@dataclass(frozen=True, order=True)
class Choice:
    """An operator name and, for Conv2Former choices, its kernel."""

    op: str
    kernel: int | None = None

    def __str__(self) -> str:
        return f"{self.op}(k={self.kernel})" if self.kernel else self.op

    def short(self) -> str:
        """Return a compact label, e.g. ``Ghost`` or ``C2F13``."""
        label = short_name(self.op)
        return f"{label}{self.kernel}" if self.kernel else label


@dataclass(frozen=True)
class Architecture:
    """The canonical (sorted by point name) choices of a space; equal choices give equal keys."""

    space: SpaceLike = field(compare=False, repr=False)
    choices: tuple[tuple[str, Choice], ...]

    @property
    def key(self) -> str:
        """Return a stable 12-hex-digit key of the base model, scale and choices (order-independent)."""
        canonical = {"base": self.space.identity, "choices": {p: [c.op, c.kernel] for p, c in sorted(self.choices)}}
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:12]

    def in_layer_order(self) -> list[tuple[str, Choice]]:
        """Return the (point, choice) pairs ordered by each point's first layer: the order of the model's rows.

        ``choices`` itself stays sorted by point name (the canonical form that equality and the key rely on).
        """
        first = {p.name: min(p.layers) for p in self.space.points}
        return sorted(self.choices, key=lambda pc: (first.get(pc[0], float("inf")), pc[0]))

    def as_dict(self) -> dict[str, str]:
        """Return ``{point: "Op" or "Op(k=13)"}`` in layer order."""
        return {p: str(c) for p, c in self.in_layer_order()}

    def operators(self) -> list[str]:
        """Return the sorted distinct non-stock operator names used."""
        return sorted({c.op for _, c in self.choices if not is_stock(c.op)})

    def summary(self) -> str:
        """Return a one-line summary naming only the replaced points in layer order, e.g. ``down_p2=Ghost
        c3k2_p3=C2F13``; ``stock`` if none."""
        parts = [f"{p}={c.short()}" for p, c in self.in_layer_order() if not is_stock(c.op)]
        return " ".join(parts) or "stock"

    def model_dict(self, nc: int) -> dict:
        """Return the Ultralytics model dict: the base with each point's layers replaced, ``nc`` classes."""
        d = copy.deepcopy(self.space.base)
        d["nc"] = int(nc)
        rows = d["backbone"] + d["head"]
        by_name = dict(self.choices)
        for point in self.space.points:
            choice = by_name[point.name]
            op = OPERATORS.get(choice.op)
            for layer in point.layers:
                row = rows[layer]
                row[2] = choice.op
                if op is not None and op.extra:  # extra args follow the slot's own, padded with their defaults
                    extra = {"kernel": choice.kernel}
                    row[3] = [*op.slot.full_args(row[3]), *(extra.get(a.name, a.default) for a in op.extra)]
        return d

    def to_yaml(self, nc: int) -> str:
        """Return the one model YAML for this architecture: what trains, is stored with the trial, and is exported.

        It declares a single scale, so it loads with that scale whatever the file is called.
        """
        d = self.model_dict(nc)
        d.pop("yaml_file", None)
        header = f"# architecture {self.key} of space {self.space.name} ({self.space.identity}): {self.summary()}\n"
        body = {k: d[k] for k in ("nc", "scale", "scales") if k in d}
        body.update({k: v for k, v in d.items() if k not in body and k not in ("backbone", "head")})
        text = yaml.safe_dump(body, sort_keys=False)
        text += "backbone:\n" + _rows(d["backbone"], 0) + "head:\n" + _rows(d["head"], len(d["backbone"]))
        return header + text


def _rows(rows: list, start: int) -> str:
    """Format model rows one per line, in flow style, each with its layer index as a comment."""
    lines = []
    for i, row in enumerate(rows, start):
        lines.append(f"  - {yaml.safe_dump(row, default_flow_style=True, width=1_000).strip()}  # {i}")
    return "\n".join(lines) + "\n"
