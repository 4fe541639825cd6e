"""Helpers that write small Ultralytics model YAMLs with operators at chosen layers (for the tests)."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from ultralytics.nn.tasks import yaml_model_load

from nas.space import SearchSpace, load_space

YOLO11_CONV_LAYERS = (1, 3, 5, 7)
YOLO11_BLOCK_LAYERS = (2, 4, 6, 8)


def yolo11_dict(scale: str = "n", replace: dict[int, str] | None = None, nc: int = 8) -> dict:
    """Return yolo11.yaml as a dict pinned to ``scale`` with the rows at ``replace``'s indices renamed."""
    d = copy.deepcopy(yaml_model_load("yolo11.yaml"))
    d.pop("yaml_file", None)
    d["scales"] = {scale: d["scales"][scale]}
    d["scale"] = scale
    d["nc"] = nc
    rows = d["backbone"] + d["head"]
    for i, name in (replace or {}).items():
        rows[i][2] = name
    return d


def write_yaml(d: dict, path: Path) -> Path:
    """Write ``d`` as YAML to ``path`` and return the path."""
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


def operator_layout(conv_op: str, block_op: str) -> dict[int, str]:
    """Return {layer: name} putting ``conv_op`` at YOLO11's layers 1/3/5/7 and ``block_op`` at 2/4/6/8."""
    return {**dict.fromkeys(YOLO11_CONV_LAYERS, conv_op), **dict.fromkeys(YOLO11_BLOCK_LAYERS, block_op)}


# every operator once: conv slot at 1, 3, 5, 7 and the PAN conv 17; block slot at 2, 4, 6, 8 and the neck's 13
MIXED_LAYOUT = {
    1: "DynamicConv",
    3: "GhostV2",
    5: "ACmix",
    7: "Conv2Former",
    17: "ConvNeXt",
    2: "C3k2_DynamicConv",
    4: "C3k2_GhostV2",
    6: "C3k2_ACmix",
    8: "C3k2_Conv2Former",
    13: "C3k2_ConvNeXt",
}


def train_one_epoch(model_yaml: Path, data: Path, folder: Path) -> Path:
    """Train ``model_yaml`` for one epoch on ``data`` at 64 px with plain Ultralytics (CPU, seed 0) in ``folder``;
    return the path of its ``best.pt``."""
    from ultralytics import YOLO

    YOLO(str(model_yaml)).train(
        data=str(data),
        epochs=1,
        imgsz=64,
        batch=8,
        workers=0,
        device="cpu",
        plots=False,
        project=str(folder),
        name="t",
        exist_ok=True,
        verbose=False,
        amp=False,
        seed=0,
    )
    return folder / "t" / "weights" / "best.pt"


def space_from_dict(d: dict, path: Path) -> SearchSpace:
    """Write the search space ``d`` as YAML to ``path`` and return it loaded (raises what ``load_space`` raises)."""
    return load_space(str(write_yaml(d, path)))
