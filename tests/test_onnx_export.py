"""Every searched architecture exports: static ONNX matching PyTorch, and safe (weights-only) checkpoint loading."""

from __future__ import annotations

import itertools
import json
import random
import time
from pathlib import Path

import pytest
import torch
from ultralytics import YOLO

from modules.slots import SLOTS
from nas.config import load_preset
from nas.measure import build_model
from nas.space import SearchSpace, load_space
from nas.space.architecture import Architecture, Choice
from nas.space.space import SPACES_DIR, takes_kernel
from tests.test_yolo_integration import _assert_onnx_matches_torch, _run

NC = 5


def _form_walk(space: SearchSpace) -> list[Architecture]:
    """Return architectures of ``space`` that together put every ordered pair of forms (conv form then block form,
    and block form then conv form) at some adjacent pair of its points.

    The points must alternate conv, block, conv, ... and offer the same forms at every point of a kind (the light
    space does). The pairs are the arcs of the complete bipartite digraph between the conv and the block forms; the
    walk below is an Eulerian circuit of it (for each shift d, conv i -> block i+d -> conv i+1), cut into windows of
    as many forms as there are points, each window starting on a conv form and overlapping the next by one arc.

    Raises:
        AssertionError: the points do not alternate conv and block or offer different forms.
    """
    kinds = [p.kind for p in space.points]
    assert kinds == ["conv", "block"] * (len(kinds) // 2), kinds
    conv, block = space.points[0].choices, space.points[1].choices
    assert len(conv) == len(block) and all(p.choices == (conv if p.kind == "conv" else block) for p in space.points)
    n = len(conv)
    circuit = [form for d in range(n) for i in range(n) for form in (conv[i], block[(i + d) % n])]
    step = len(space.points) - 2  # a window's last arc is the next window's first
    # any even start covers the same pairs; 2 keeps the conv form ACmix (costly on large feature maps) off the light
    # space's first two conv points: down_p2 gets DynamicConv or Conv2Former, down_p3 GhostV2 or ConvNeXt
    first = 2
    archs = []
    for k, start in enumerate(range(first, first + len(circuit), step)):
        forms = [circuit[(start + j) % len(circuit)] for j in range(len(space.points))]
        choices = {
            p.name: Choice(op, p.kernels[k % len(p.kernels)] if takes_kernel(op) else None)
            for p, op in zip(space.points, forms, strict=True)
        }
        archs.append(space.architecture(choices))
    return archs


def _adjacent_pairs(archs: list[Architecture]) -> set[tuple[str, str]]:
    """Return the ordered (form, next point's form) pairs that ``archs`` put at adjacent points."""
    pairs = set()
    for arch in archs:
        ops = [dict(arch.choices)[p.name].op for p in arch.space.points]
        pairs.update(itertools.pairwise(ops))
    return pairs


LIGHT = load_preset("light").space
WALK = _form_walk(LIGHT)


def test_the_walk_covers_every_ordered_pair_of_forms_in_few_architectures() -> None:
    conv, block = (next(p.choices for p in LIGHT.points if p.kind == kind) for kind in ("conv", "block"))
    assert SLOTS["conv"].stock in conv and SLOTS["block"].stock in block  # the stock layers are forms too
    wanted = {(c, b) for c in conv for b in block} | {(b, c) for c in conv for b in block}
    assert _adjacent_pairs(WALK) == wanted
    assert len(WALK) == -(-len(wanted) // (len(LIGHT.points) - 2))  # 72 pairs, 6 new ones per architecture: 12


@pytest.mark.parametrize("arch", WALK, ids=[a.summary().replace(" ", ",") for a in WALK])
def test_every_ordered_pair_of_forms_exports_to_static_onnx_and_matches(arch: Architecture, tmp_path: Path) -> None:
    """Every (form, next form) pair of the light space at an adjacent pair of its points, built at its scale (n).

    The failure this guards against: an operator reading its input's size from ``x.shape`` while a tracing exporter
    turns that size into a traced value, so the next searched operator gets an input (or a kernel) of unknown shape
    and the static export fails or computes another graph. Whether that happens depends on the two forms, not on
    the points they sit at (a point only changes widths and the feature size, constants in a static export), so
    every ordered pair of forms at some adjacent pair of points covers it; all pairs at all 7 adjacent pairs of
    points would be 7 x 36 architectures, too many for the fast suite. The windows of the walk
    (``_form_walk``) put all 72 pairs into 12 architectures with every point replaced. Pairs that meet through a
    stock layer in between are covered by test_yolo_integration's ONNX regressions and the slow test below.
    """
    _assert_onnx_matches_torch(build_model(arch.model_dict(NC)), tmp_path)


def _sample(space: SearchSpace, n: int, seed: int) -> list[Architecture]:
    """Return ``n`` distinct architectures of ``space`` drawn uniformly over each point's options."""
    rng = random.Random(seed)
    archs: dict[str, Architecture] = {}
    while len(archs) < n:
        arch = space.architecture({p.name: rng.choice(p.options()) for p in space.points})
        archs.setdefault(arch.key, arch)
    return list(archs.values())


SHIPPED = sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("space_name", SHIPPED)
def test_random_architectures_of_every_shipped_space_export_to_static_onnx_and_match(
    space_name: str, tmp_path: Path
) -> None:
    """50 seeded random architectures per shipped space, at the space's own scale and the helper's 160 px (every
    stride of the base models divides it; the presets deploy at 640)."""
    space = load_space(space_name)
    archs = _sample(space, 50, seed=0)
    failures = []
    t = time.perf_counter()
    for arch in archs:
        try:
            _assert_onnx_matches_torch(build_model(arch.model_dict(NC)), tmp_path)
        except Exception as e:  # collect them all: one broken architecture must not hide the others
            failures.append(f"{arch.summary()}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    seconds = time.perf_counter() - t
    print(f"{space_name}: {len(archs) - len(failures)}/{len(archs)} architectures match in {seconds:.0f} s")
    assert not failures, "\n".join(failures)


# every operator form once, at scale m, where Ultralytics forces C3k inside C3k2 (the C3kOf path)
EVERY_OPERATOR = {
    "down_p2": "DynamicConv",
    "c3k2_p2": "C3k2_DynamicConv",
    "down_p3": "GhostV2",
    "c3k2_p3": "C3k2_GhostV2",
    "down_p4": "ACmix",
    "c3k2_p4": "C3k2_ACmix",
    "down_p5": "ConvNeXt",
    "c3k2_p5": "C3k2_ConvNeXt",
    "pan_down": Choice("Conv2Former", 7),
    "neck_p4_up": Choice("C3k2_Conv2Former", 13),
}

SAFE_LOAD_SCRIPT = """
import json, sys, torch
if sys.argv[2] == "with":
    import modules
from ultralytics import YOLO
from ultralytics.utils import SAFE_LOAD
try:
    m = YOLO(sys.argv[1]).model.float().eval()
except Exception as e:
    print(json.dumps({"safe_load": SAFE_LOAD, "refused": type(e).__name__}))
    raise SystemExit(0)
with torch.no_grad():
    y = m(torch.load(sys.argv[3]))[0]
diff = (y - torch.load(sys.argv[4])).abs().max().item()
print(json.dumps({"safe_load": SAFE_LOAD, "diff": diff, "types": sorted({type(x).__name__ for x in m.modules()})}))
"""


def test_ultralytics_safe_load_reads_a_searched_checkpoint_with_every_operator_after_import_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arch = load_space("yolo11_full", scale="m").architecture(EVERY_OPERATOR)
    yaml_path = tmp_path / "arch.yaml"
    yaml_path.write_text(arch.to_yaml(NC))
    ckpt = tmp_path / "arch.pt"
    YOLO(str(yaml_path)).save(ckpt)  # Ultralytics' checkpoint format (model plus metadata), as training writes it
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        want = YOLO(str(ckpt)).model.float().eval()(x)[0]  # the default, unrestricted load
    torch.save(x, tmp_path / "x.pt")
    torch.save(want, tmp_path / "want.pt")
    monkeypatch.setenv("ULTRALYTICS_SAFE_LOAD", "1")  # Ultralytics reads it once, at import: hence the subprocesses
    args = [str(ckpt), "", str(tmp_path / "x.pt"), str(tmp_path / "want.pt")]
    outcome = {}
    for imported in ("with", "without"):
        args[1] = imported
        run = _run(SAFE_LOAD_SCRIPT, *args)
        assert run.returncode == 0, run.stderr[-2000:]
        outcome[imported] = json.loads(run.stdout.strip().splitlines()[-1])
    assert outcome["without"] == {"safe_load": True, "refused": "TypeError"}  # the restricted path was taken
    assert outcome["with"]["safe_load"] is True
    assert outcome["with"]["diff"] <= 1e-5
    wanted_types = {c.op for c in (Choice(v) if isinstance(v, str) else v for v in EVERY_OPERATOR.values())}
    assert wanted_types | {"C3kOf"} <= set(outcome["with"]["types"])
