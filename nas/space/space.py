"""Search spaces: a base Ultralytics model and its insertion points, loaded and validated from YAML.

A space file::

    base: yolo11n.yaml          # Ultralytics model name or a path (relative to the space file)
    scale: n                    # optional: overrides the scale implied by the base name
    points:
      - name: down_p2           # optional; default "L<first layer>"
        layers: [1]             # one layer, or several tied to one variable
        choices: [Conv, DynamicConv, GhostV2, ACmix, Conv2Former, ConvNeXt]
        kernels: [7, 11, 15]    # optional: Conv2Former kernels (odd, 5..21); default all

Every error names the file and the point.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import search_spaces
from modules.slots import SLOTS, STOCK_SLOT
from modules.table import KERNEL, extra_args, slot_choices

from ..errors import ConfigError, UserError, read_yaml
from . import base_models
from .architecture import Architecture, Choice

SPACES_DIR = Path(search_spaces.__file__).parent


def takes_kernel(op: str) -> bool:
    """Return True if operator ``op`` takes the kernel extra argument (a point's ``kernels:`` apply to it)."""
    return KERNEL in extra_args(op)


@dataclass(frozen=True)
class InsertionPoint:
    """One search variable: the layers it sets (tied), their slot kind, the allowed choices and kernels."""

    name: str
    layers: tuple[int, ...]
    kind: str  # "conv" or "block"
    choices: tuple[str, ...]
    kernels: tuple[int, ...]

    def options(self) -> list[Choice]:
        """Return every distinct (operator, kernel) this point can take, in declaration order."""
        out: list[Choice] = []
        for op in self.choices:
            out.extend(Choice(op, k) for k in self.kernels) if takes_kernel(op) else out.append(Choice(op))
        return out


@dataclass(frozen=True)
class SearchSpace:
    """A base model (one scale) and its insertion points."""

    name: str
    path: Path
    base_name: str
    base: dict
    scale: str
    points: tuple[InsertionPoint, ...]

    @property
    def identity(self) -> str:
        """Return the base model and scale, e.g. ``yolo11n`` (a packaged family) or ``my.yaml:s`` (a file)."""
        base = Path(self.base_name)
        if base.is_relative_to(base_models.MODELS_DIR):
            return f"{base.stem}{self.scale}"
        return f"{base.name}:{self.scale}"

    def size(self) -> int:
        """Return the number of distinct architectures (kernels of Conv2Former choices count separately)."""
        n = 1
        for p in self.points:
            n *= len(p.options())
        return n

    def architecture(self, choices: dict[str, Choice | str]) -> Architecture:
        """Return the architecture for ``{point name: choice}``; unnamed points keep the stock layer.

        Raises:
            UserError: an unknown point or a choice the point does not allow.
        """
        by_name = {p.name: p for p in self.points}
        resolved: dict[str, Choice] = {}
        for name, choice in choices.items():
            point = by_name.get(name)
            if point is None:
                raise UserError(f"space {self.name}: no insertion point named {name!r}")
            choice = Choice(choice) if isinstance(choice, str) else choice
            if choice not in point.options():
                raise UserError(f"space {self.name}: point {name!r} does not allow {choice}")
            resolved[name] = choice
        for p in self.points:
            resolved.setdefault(p.name, Choice(SLOTS[p.kind].stock))
        return Architecture(self, tuple(sorted(resolved.items())))

    def stock(self) -> Architecture:
        """Return the unmodified base model as an architecture."""
        return self.architecture({})

    def stock_params(self) -> dict[str, str] | None:
        """Return the Optuna parameters that sample the unmodified base model, or None when some point does not
        offer its stock layer (the base model is then not in the space)."""
        params = {p.name: SLOTS[p.kind].stock for p in self.points}
        return params if all(params[p.name] in p.choices for p in self.points) else None

    def sample(self, trial: Any) -> Architecture:
        """Return the architecture an Optuna ``trial`` suggests: one categorical per point, and a kernel
        (``<point>.kernel``) suggested only where a Conv2Former choice is taken."""
        choices = {}
        for p in self.points:
            op = trial.suggest_categorical(p.name, list(p.choices))
            kernel = trial.suggest_categorical(f"{p.name}.kernel", list(p.kernels)) if takes_kernel(op) else None
            choices[p.name] = Choice(op, kernel)
        return self.architecture(choices)

    def all_architectures(self) -> Iterator[Architecture]:
        """Yield every architecture of the space (use only on small spaces)."""

        def rec(i: int, acc: dict[str, Choice]) -> Iterator[Architecture]:
            if i == len(self.points):
                yield self.architecture(acc)
                return
            for c in self.points[i].options():
                yield from rec(i + 1, {**acc, self.points[i].name: c})

        yield from rec(0, {})


def resolve_space_path(name_or_path: str, relative_to: Path | None = None) -> Path:
    """Return the space file for a shipped space name (``yolo11_backbone``) or a path.

    Raises:
        UserError: no such file or shipped space.
    """
    candidates = [Path(name_or_path)]
    if relative_to is not None:
        candidates.insert(0, relative_to / name_or_path)
    candidates.append(SPACES_DIR / f"{name_or_path}.yaml")
    for c in candidates:
        if c.is_file():
            return c.resolve()
    shipped = ", ".join(sorted(p.stem for p in SPACES_DIR.glob("*.yaml")))
    raise UserError(f"unknown search space {name_or_path!r} (shipped: {shipped})")


def load_space(name_or_path: str, scale: str | None = None, relative_to: Path | None = None) -> SearchSpace:
    """Load and validate a search space; ``scale`` overrides the file's.

    Raises:
        ConfigError: invalid file; the message names the file and the point.
        UserError: the file or its base model cannot be found.
    """
    path = resolve_space_path(name_or_path, relative_to)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(path, "", "a search space must be a mapping with 'base' and 'points'")
    unknown = set(raw) - {"base", "scale", "points", "description"}
    if unknown:
        raise ConfigError(path, sorted(unknown)[0], "unknown key (allowed: base, scale, points, description)")
    if not isinstance(raw.get("base"), str):
        raise ConfigError(path, "base", "required: an Ultralytics model YAML name or path")
    try:
        base, scale, base_path = base_models.load(raw["base"], scale or raw.get("scale"), path.parent)
    except UserError as e:
        raise ConfigError(path, "base", str(e)) from e
    rows = base["backbone"] + base["head"]
    points_raw = raw.get("points")
    if not isinstance(points_raw, list) or not points_raw:
        raise ConfigError(path, "points", "required: a non-empty list of insertion points")
    points = [_point(path, i, p, rows, raw["base"]) for i, p in enumerate(points_raw)]
    seen_layers: dict[int, str] = {}
    seen_names: set[str] = set()
    for p in points:
        if p.name in seen_names:
            raise ConfigError(path, f"points[{p.name}]", "duplicate point name")
        seen_names.add(p.name)
        for layer in p.layers:
            if layer in seen_layers:
                raise ConfigError(
                    path, f"points[{p.name}]", f"layer {layer} is already set by point {seen_layers[layer]}"
                )
            seen_layers[layer] = p.name
    return SearchSpace(path.stem, path, str(base_path), base, scale, tuple(points))


def _point(path: Path, index: int, raw: Any, rows: list, base_name: str) -> InsertionPoint:
    """Validate one point entry and return it. Raises ConfigError naming the point."""
    if not isinstance(raw, dict):
        raise ConfigError(path, f"points[{index}]", "must be a mapping with 'layers' and 'choices'")
    layers = raw.get("layers", raw.get("layer"))
    layers = [layers] if isinstance(layers, int) and not isinstance(layers, bool) else layers
    name = raw.get("name") or (f"L{layers[0]}" if isinstance(layers, list) and layers else f"point{index}")
    key = f"points[{name}]"
    unknown = set(raw) - {"name", "layers", "layer", "choices", "kernels"}
    if unknown:
        raise ConfigError(path, key, f"unknown key {sorted(unknown)[0]!r}")
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(path, key, "name must be letters, digits, '_' or '-'")
    if (
        not isinstance(layers, list)
        or not layers
        or not all(isinstance(x, int) and not isinstance(x, bool) for x in layers)
    ):
        raise ConfigError(path, key, "layers must be a layer index or a non-empty list of them")
    kinds = set()
    for layer in layers:
        if not 0 <= layer < len(rows):
            raise ConfigError(path, key, f"layer {layer} is out of range ({base_name} has layers 0..{len(rows) - 1})")
        module = rows[layer][2]
        slot = STOCK_SLOT.get(module)
        if slot is None:
            raise ConfigError(path, key, f"layer {layer} is a {module}; insertion points must be Conv or C3k2 layers")
        problem = slot.unsupported(rows[layer][3])
        if problem:
            raise ConfigError(path, key, f"layer {layer} ({module} {rows[layer][3]}) {problem}")
        kinds.add(slot.kind)
    if len(kinds) > 1:
        raise ConfigError(path, key, "tied layers must all be Conv or all be C3k2")
    if len(set(layers)) != len(layers):
        raise ConfigError(path, key, "a layer is listed twice")
    kind = kinds.pop()
    choices = raw.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ConfigError(path, key, "choices must be a non-empty list")
    for c in choices:
        if c not in slot_choices(kind):
            allowed = ", ".join(slot_choices(kind))
            raise ConfigError(path, key, f"unknown choice {c!r} for a {SLOTS[kind].stock} layer (allowed: {allowed})")
    if len(set(choices)) != len(choices):
        raise ConfigError(path, key, "a choice is listed twice")
    kernels = raw.get("kernels", list(KERNEL.choices))
    if not isinstance(kernels, list) or not kernels:
        raise ConfigError(path, key, "kernels must be a non-empty list of odd sizes from 5 to 21")
    for k in kernels:
        if isinstance(k, bool) or not isinstance(k, int) or k not in KERNEL.choices:
            raise ConfigError(path, key, f"kernel {k!r} is invalid: kernels must be odd integers from 5 to 21")
    if len(set(kernels)) != len(kernels):
        raise ConfigError(path, key, "a kernel is listed twice")
    return InsertionPoint(name, tuple(layers), kind, tuple(choices), tuple(kernels))
