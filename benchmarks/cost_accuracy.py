"""Are the cost numbers right? Stock models against Ultralytics' own; each operator against its reference formula.

1. Params and GFLOPs (640) of stock YOLO11 n/s/m, YOLOv8 n/s and YOLO26 n/s/m as the search counts them (the
   stock architecture of a shipped space) against what Ultralytics reports for its own YAML (``model.info()``:
   the model as built, so YOLO26 with both its one-to-many and one-to-one heads, unfused).
2. For each operator of the table in YOLO11n (every insertion point of its kind in the backbone space set to it,
   Conv2Former with kernel 11): every instance's MACs as we count them, from the reference formula
   (tests/reference_formulas.py, from the papers and the authors' code) and as plain thop counts them (what
   Ultralytics would report); and the whole model's GFLOPs by us and by plain Ultralytics: how much plain
   Ultralytics undercounts each operator. The formulas leave out BatchNorm, which Ultralytics' convention
   counts (it dominates at the narrow inner widths of the C3k2 blocks), so the comparison is also made with
   BatchNorm fused into the convolutions, as deployed.

Writes results/cost_accuracy.json.

    python -m benchmarks.cost_accuracy
"""

from __future__ import annotations

import contextlib
import copy
import io

import thop
import torch
from ultralytics.nn.tasks import DetectionModel

from benchmarks.common import parser, write_result
from modules.acmix import ACmixMixer
from modules.conv2former import Conv2FormerBlock
from modules.convnext import ConvNeXtBlock
from modules.dynamic_conv import DynamicConv2d
from modules.flops import profile_macs
from modules.ghostv2 import GhostModuleV2
from modules.table import BLOCK_SLOT, CONV_SLOT
from modules.ultralytics_adapter import get_flops, stock_get_flops
from nas.measure import architecture_cost
from nas.space import Choice, load_space
from nas.space.base_models import MODELS_DIR
from nas.space.space import takes_kernel
from tests import reference_formulas as formulas

IMGSZ = 640
STOCK = (
    [("yolo11_backbone", s) for s in "nsm"]
    + [("yolov8_downsample", s) for s in "ns"]
    + [("yolo26_backbone", s) for s in "nsm"]
)
OPERATORS = {**dict.fromkeys(CONV_SLOT, "conv"), **dict.fromkeys(BLOCK_SLOT, "block")}  # the table's, in its order
CONV2FORMER_KERNEL = 11  # the kernel size measured for the operators that take one


def reference_macs(m: torch.nn.Module, x: torch.Tensor) -> int | None:
    """Return the reference formula's MACs for one core operator module on input ``x`` (None: no formula)."""
    _, c1, h, w = x.shape
    if isinstance(m, DynamicConv2d):
        return formulas.dynamic_conv_macs(m.c1, m.c2, m.k, m.s, h, w, m.g, m.num_experts)
    if isinstance(m, GhostModuleV2):
        conv = m.primary.conv
        return formulas.ghost_module_v2_macs(c1, m.c2, conv.kernel_size[0], conv.stride[0], h, w, m.dfc is not None)
    if isinstance(m, ACmixMixer):
        return formulas.acmix_macs(c1, m.c2, m.s, h, w, m.heads)
    if isinstance(m, Conv2FormerBlock):
        return formulas.conv2former_block_macs(c1, m.attn.a[2].kernel_size[0], h, w)
    if isinstance(m, ConvNeXtBlock):
        return formulas.convnext_block_macs(c1, h, w, m.dwconv.kernel_size[0])
    return None


CORE = (DynamicConv2d, GhostModuleV2, ACmixMixer, Conv2FormerBlock, ConvNeXtBlock)


def core_inputs(model: DetectionModel) -> list[tuple[str, torch.nn.Module, torch.Tensor]]:
    """Return (name, module, input) of every core operator module in one 640 x 640 forward of ``model``."""
    seen: list[tuple[str, torch.nn.Module, torch.Tensor]] = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out, name=name: seen.append((name, mod, inp[0].detach())))
        for name, m in model.named_modules()
        if isinstance(m, CORE)
    ]
    with torch.no_grad():
        model(torch.zeros(1, 3, IMGSZ, IMGSZ))
    for h in hooks:
        h.remove()
    return seen


def stock_rows() -> list[dict]:
    """Our params/GFLOPs of each stock model against Ultralytics' for its own YAML."""
    rows = []
    for space_name, scale in STOCK:
        space = load_space(space_name, scale)
        ours = architecture_cost(space.stock(), 80, IMGSZ)
        yaml_path = next(MODELS_DIR.rglob(f"{space.identity[:-1]}.yaml"))  # yolo11.yaml, yolov8.yaml, yolo26.yaml
        with contextlib.redirect_stdout(io.StringIO()):
            ref_model = DetectionModel(_with_scale(yaml_path, scale), verbose=False)
        ref_params = sum(p.numel() for p in ref_model.parameters())
        ref_gflops = stock_get_flops(ref_model, IMGSZ)
        rows.append(
            {
                "model": space.identity,
                "params": ours.params,
                "ultralytics_params": ref_params,
                "gflops": round(ours.gflops, 4),
                "ultralytics_gflops": round(ref_gflops, 4),
                "rel_error_params": abs(ours.params - ref_params) / ref_params,
                "rel_error_gflops": abs(ours.gflops - ref_gflops) / ref_gflops,
            }
        )
    return rows


def _with_scale(yaml_path, scale: str) -> dict:
    """Return Ultralytics' model dict for ``yaml_path`` at ``scale``, as YOLO('yolo11<scale>.yaml') loads it."""
    from ultralytics.nn.tasks import yaml_model_load

    d = yaml_model_load(yaml_path)
    d["scale"] = scale
    return d


def operator_rows() -> list[dict]:
    """Per operator in YOLO11n: instance MACs ours/reference/plain thop, and whole-model GFLOPs ours/Ultralytics."""
    space = load_space("yolo11_backbone", "n")
    rows = []
    for op, kind in OPERATORS.items():
        choice = Choice(op, CONV2FORMER_KERNEL) if takes_kernel(op) else Choice(op)
        arch = space.architecture({p.name: choice for p in space.points if p.kind == kind})
        with contextlib.redirect_stdout(io.StringIO()):
            model = DetectionModel(arch.model_dict(80), verbose=False).eval()
        ours = reference = plain = 0.0
        instances = 0
        for _, m, x in core_inputs(model):
            ref = reference_macs(m, x)
            assert ref is not None
            ours += profile_macs(m, x)
            reference += ref
            with torch.no_grad():
                plain += float(thop.profile(m, inputs=[x], verbose=False)[0])
            instances += 1
        # the formulas leave out BatchNorm, which thop (and Ultralytics' convention) counts; fused, it is gone
        with contextlib.redirect_stdout(io.StringIO()):
            fused = copy.deepcopy(model).fuse(verbose=False)
        ours_fused = sum(profile_macs(m, x) for _, m, x in core_inputs(fused))
        model_ours = get_flops(model, IMGSZ)
        model_plain = stock_get_flops(model, IMGSZ)
        rows.append(
            {
                "operator": op,
                "layers": [layer for p in space.points if p.kind == kind for layer in p.layers],
                "instances": instances,
                "gmacs_ours": round(ours / 1e9, 5),
                "gmacs_reference": round(reference / 1e9, 5),
                "gmacs_plain_thop": round(plain / 1e9, 5),
                "gmacs_ours_bn_fused": round(ours_fused / 1e9, 5),
                "rel_error_vs_reference": round(abs(ours - reference) / reference, 5),
                "rel_error_fused_vs_reference": round(abs(ours_fused - reference) / reference, 5),
                "plain_thop_share_of_ours": round(plain / ours, 4),
                "model_gflops_ours": round(model_ours, 4),
                "model_gflops_plain_ultralytics": round(model_plain, 4),
                "model_undercount_gflops": round(model_ours - model_plain, 4),
            }
        )
    return rows


def main() -> None:
    parser(__doc__).parse_args()
    stock = stock_rows()
    print(f"{'model':10} {'params':>10} {'ultralytics':>11} {'GFLOPs':>8} {'ultralytics':>11}")
    for r in stock:
        print(
            f"{r['model']:10} {r['params']:>10,} {r['ultralytics_params']:>11,} "
            f"{r['gflops']:>8.3f} {r['ultralytics_gflops']:>11.3f}"
        )
    ops = operator_rows()
    print(
        f"\n{'operator':18} {'n':>2} {'GMACs ours':>10} {'reference':>10} {'rel.err':>8} {'fused err':>9} "
        f"{'thop as-is':>10} "
        f"{'share':>6} {'model GFLOPs':>12} {'plain Ultr.':>11}"
    )
    for r in ops:
        print(
            f"{r['operator']:18} {r['instances']:>2} {r['gmacs_ours']:>10.4f} {r['gmacs_reference']:>10.4f} "
            f"{r['rel_error_vs_reference']:>8.4f} {r['rel_error_fused_vs_reference']:>9.4f} "
            f"{r['gmacs_plain_thop']:>10.4f} {r['plain_thop_share_of_ours']:>6.3f} "
            f"{r['model_gflops_ours']:>12.3f} {r['model_gflops_plain_ultralytics']:>11.3f}"
        )
    max_rel = max(max(r["rel_error_params"], r["rel_error_gflops"]) for r in stock)
    write_result(
        "cost_accuracy",
        {
            "imgsz": IMGSZ,
            "max_rel_error_vs_ultralytics": max_rel,
            "bar_max_rel_error_vs_ultralytics": 0.005,
            "max_rel_error_vs_reference_formula": max(r["rel_error_vs_reference"] for r in ops),
            "max_rel_error_bn_fused_vs_reference_formula": max(r["rel_error_fused_vs_reference"] for r in ops),
            "stock": stock,
            "operators": ops,
        },
    )


if __name__ == "__main__":
    main()
