"""Every change this project makes to Ultralytics at run time, in one place, for the tested Ultralytics versions.

Nothing in the installed package is edited. ``install()`` (run by ``import modules``) does, once:

- **version check**: outside ``TESTED_ULTRALYTICS`` the import fails with one clear line (the patches below rely
  on 8.4 internals: ``parse_model``'s channel rules, ``get_flops``, the trainer's ``final_eval``);
- **offline**: ``YOLO_OFFLINE`` is set before Ultralytics is first imported (no connectivity probe, no
  telemetry), its font helpers never download Arial.ttf, and the trainer's AMP check never downloads yolo26n.pt
  (it answers as Ultralytics does offline, keeping its list of GPUs that misbehave under AMP);
- **parser**: ``tasks.parse_model`` is wrapped so rows naming an operator of the table are parsed as the stock
  layer of their slot (Ultralytics resolves c1, width scaling, repeats, C3k2's c3k forcing at m/l/x and Detect's
  ``legacy`` flag exactly as for the stock model) and the stock layer is then replaced by the operator built from
  the resolved arguments plus the row's extra ones. The names are *not* added to ``ultralytics.nn.tasks``: the
  stock parser, if ever called directly, rejects them instead of wiring their channels wrongly;
- **GFLOPs**: ``torch_utils.get_flops`` counts the operators in full (``modules.flops``); stock models keep
  Ultralytics' own function and numbers;
- **safe loading**: ``torch.load(weights_only=True)`` accepts checkpoints that contain the operators.

``ProxyTrainer`` (a ``DetectionTrainer`` overriding internal hooks) lives here for the same reason; its optimizer
takes torch's fused Adam/AdamW step on a CPU too, as Ultralytics' own takes it on CUDA.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

os.environ.setdefault("YOLO_OFFLINE", "1")  # before the first ``import ultralytics``: no connectivity probe

TESTED_ULTRALYTICS = ">=8.4.190,<8.5"  # the range the tests and benchmarks ran on


class UnsupportedUltralyticsError(ImportError):
    """The installed Ultralytics is outside the tested range (its message is one line)."""


def check_version(version: str | None = None) -> str:
    """Return the installed Ultralytics version (or ``version``) if it is within ``TESTED_ULTRALYTICS``.

    Raises:
        UnsupportedUltralyticsError: it is not installed, or its version is outside the range.
    """
    wanted = f"ultralytics{TESTED_ULTRALYTICS}"
    try:
        version = version or metadata.version("ultralytics")
    except metadata.PackageNotFoundError:
        message = f"Ultralytics is not installed; pip install '{wanted}'"
        raise UnsupportedUltralyticsError(message, name="ultralytics") from None
    if not SpecifierSet(TESTED_ULTRALYTICS).contains(Version(version), prereleases=True):
        raise UnsupportedUltralyticsError(
            f"Ultralytics {version} is installed, but the operators are tested with {wanted} (they patch its "
            f"parser, FLOPs counter and trainer); pip install '{wanted}'",
            name="ultralytics",
        )
    return version


check_version()

import torch  # noqa: E402  (after the version check and YOLO_OFFLINE)
from torch import nn  # noqa: E402
from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.nn import tasks  # noqa: E402
from ultralytics.nn.modules.block import C3k2  # noqa: E402
from ultralytics.nn.modules.conv import Conv  # noqa: E402
from ultralytics.utils import LOGGER, USER_CONFIG_DIR, torch_utils  # noqa: E402

from .flops import RULES, count_macs  # noqa: E402
from .table import OPERATORS, Operator  # noqa: E402

STOCK_CLASSES = {"Conv": Conv, "C3k2": C3k2}
stock_parse_model = tasks.parse_model  # Ultralytics' own functions, before install() replaces them
stock_get_flops = torch_utils.get_flops


# --- parser -----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _recording_init(classes: tuple[type[nn.Module], ...]) -> Iterator[dict[int, tuple[tuple, dict]]]:
    """Temporarily record the constructor arguments of every instance of ``classes``, keyed by ``id(instance)``."""
    records: dict[int, tuple[tuple, dict]] = {}
    originals = {cls: cls.__dict__["__init__"] for cls in classes}

    def wrap(cls: type, init: Any) -> Any:
        def recording_init(self: nn.Module, *args: Any, **kwargs: Any) -> None:
            if type(self) is cls:
                records[id(self)] = (args, kwargs)
            init(self, *args, **kwargs)

        return recording_init

    try:
        for cls, init in originals.items():
            cls.__init__ = wrap(cls, init)
        yield records
    finally:
        for cls, init in originals.items():
            cls.__init__ = init


def _single_scale(d: dict) -> None:
    """Pin ``d['scale']`` when the YAML declares exactly one scale, so the file name cannot change it."""
    scales = d.get("scales")
    if isinstance(scales, dict) and len(scales) == 1:
        d["scale"] = next(iter(scales))


def _build(op: Operator, i: int, stock_args: tuple, stock_kwargs: dict, extra: list[Any]) -> nn.Module:
    """Return ``op.cls`` built from the resolved stock arguments plus the row's extra ones.

    Raises:
        ValueError: the operator rejects its arguments; the message names the layer.
    """
    try:
        return op.cls(*stock_args, *extra, **stock_kwargs)
    except (ValueError, TypeError) as e:
        raise ValueError(f"layer {i} ({op.name}): {e}") from e


def parse_model(d: dict, ch: int, verbose: bool = True) -> tuple[nn.Sequential, list[int]]:
    """Ultralytics' ``parse_model`` extended with the operator table's names.

    Returns:
        (model, save): the ``nn.Sequential`` of layers and the sorted indices whose outputs are kept, as
        Ultralytics' own function returns them.

    Raises:
        ValueError: an operator rejects its arguments (message names the layer index and operator).
    """
    d = copy.deepcopy(d)
    _single_scale(d)
    rows = d.get("backbone", []) + d.get("head", [])
    ours: dict[int, tuple[Operator, list[Any]]] = {}
    for i, row in enumerate(rows):
        op = OPERATORS.get(row[2]) if isinstance(row[2], str) else None
        if op is not None:
            stock_args, extra = op.slot.split(row[3])
            row[2], row[3] = op.slot.stock, stock_args
            ours[i] = (op, extra)
    if not ours:
        return stock_parse_model(d, ch, verbose)

    with _recording_init(tuple(STOCK_CLASSES.values())) as records:
        model, save = stock_parse_model(d, ch, verbose=False)
    default_act = Conv.default_act
    if d.get("activation"):  # as Ultralytics does while parsing, so our Conv units use the YAML's activation too
        Conv.default_act = tasks._SafeLoad.activation(d["activation"])
    try:
        for i, (op, extra) in ours.items():
            stock = model[i]
            copies = list(stock) if isinstance(stock, nn.Sequential) else [stock]
            built = [_build(op, i, *records[id(m)], extra) for m in copies]
            layer = nn.Sequential(*built) if isinstance(stock, nn.Sequential) else built[0]
            layer.i, layer.f = stock.i, stock.f
            layer.type = f"{op.cls.__module__}.{op.cls.__name__}"
            layer.np = sum(p.numel() for p in layer.parameters())
            model[i] = layer
    finally:
        Conv.default_act = default_act
    if verbose:
        LOGGER.info(f"\n{'':>3}{'from':>20}{'params':>10}  {'module':<45}")
        for m in model:
            LOGGER.info(f"{m.i:>3}{m.f!s:>20}{m.np:10.0f}  {m.type:<45}")
    return model, save


# --- GFLOPs -----------------------------------------------------------------------------------------------------


def uses_operators(model: nn.Module) -> bool:
    """Return True if any submodule of ``model`` is one of the layers ``modules.flops`` has a rule for."""
    return any(isinstance(m, tuple(RULES)) for m in model.modules())


def get_flops(model: nn.Module, imgsz: int | list[int] | tuple[int, int] = 640) -> float:
    """Return GFLOPs like ``ultralytics.utils.torch_utils.get_flops``, counting the operators in full.

    Models without an operator get Ultralytics' own function and numbers; returns 0.0 if counting fails,
    as Ultralytics does.
    """
    model = torch_utils.unwrap_model(model)
    if not uses_operators(model):
        return stock_get_flops(model, imgsz)
    size = tuple(imgsz) if isinstance(imgsz, (list, tuple)) else (int(imgsz), int(imgsz))
    try:
        return count_macs(model, size) * 2 / 1e9
    except Exception:  # Ultralytics' contract: FLOPs are informative and never break model.info()
        return 0.0


# --- offline ----------------------------------------------------------------------------------------------------


def local_font(font: str = "Arial.ttf") -> Path | None:
    """Return a locally available font file for ``font`` or None, never downloading (replaces ``check_font``)."""
    file = USER_CONFIG_DIR / Path(font).name
    return file if file.exists() else None


# GPUs Ultralytics knows to give NaN losses or zero mAP under AMP (GTX 16xx, T400-T2000, K40m)
AMP_UNSAFE_GPUS = re.compile(
    r"(nvidia|geforce|quadro|tesla).*?(1660|1650|1630|t400|t550|t600|t1000|t1200|t2000|k40m)", re.I
)


def local_check_amp(model: nn.Module) -> bool:
    """Return whether training on the model's device may use mixed precision, never downloading (replaces
    ``check_amp``, which fetches yolo26n.pt to compare FP32 with AMP): False on CPU and MPS and on the GPUs known
    to misbehave under AMP; True on other CUDA devices, as Ultralytics itself answers when it cannot download."""
    device = next(model.parameters()).device
    if device.type in {"cpu", "mps"}:
        return False
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    if AMP_UNSAFE_GPUS.search(name):
        LOGGER.warning(f"AMP: disabled on {name} (known NaN losses or zero mAP under mixed precision)")
        return False
    return True


# --- the yolo command line --------------------------------------------------------------------------------------


def run_yolo_cli(argv: list[str]) -> None:
    """Run Ultralytics' ``yolo`` command line on ``argv`` (without the program name), operators registered.

    ``ultralytics.cfg.entrypoint`` reads the module's ``ARGV`` (its copy of ``sys.argv``); it is set for the call
    (its ``debug`` string would split arguments that contain spaces).

    Raises:
        SyntaxError: Ultralytics rejects an argument (an unknown key, a missing '=').
        SystemExit, Exception: whatever the mode raises once it runs.
    """
    import ultralytics.cfg

    saved = ultralytics.cfg.ARGV
    ultralytics.cfg.ARGV = ["yolo", *argv]
    try:
        ultralytics.cfg.entrypoint()
    finally:
        ultralytics.cfg.ARGV = saved


# --- safe loading -----------------------------------------------------------------------------------------------


def operator_classes() -> list[type[nn.Module]]:
    """Return every ``nn.Module`` class of this package (operators, their parts, the table-built C3k2 forms)."""
    classes = {op.cls for op in OPERATORS.values()}
    for name, module in list(sys.modules.items()):
        if name.startswith(f"{__package__}.") and module is not None:
            classes.update(
                obj
                for obj in vars(module).values()
                if isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__ == name
            )
    return sorted(classes, key=lambda c: f"{c.__module__}.{c.__qualname__}")


# --- training ---------------------------------------------------------------------------------------------------

_STEP_KEYS = ("foreach", "fused", "capturable", "differentiable")  # how a step is computed, not what it computes


def fused_on_cpu(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """Return ``optimizer`` rebuilt with torch's fused step if it is a fresh Adam or AdamW over CPU tensors without
    one, else ``optimizer`` itself (same groups and hyperparameters).

    The fused step computes the same update as the for-loop one Ultralytics gets on a CPU in one multi-threaded
    kernel (4.3 times faster a step on YOLO11n's parameters here: benchmarks/README.md, train_speed); results differ
    from the for-loop's in the last bits and are as deterministic for a seed.
    """
    if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW) or optimizer.state:
        return optimizer
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if not params or any(g.get("fused") for g in optimizer.param_groups):
        return optimizer
    if any(p.device.type != "cpu" or not p.is_floating_point() for p in params):
        return optimizer
    groups = [{k: v for k, v in group.items() if k not in _STEP_KEYS} for group in optimizer.param_groups]
    return type(optimizer)(groups, fused=True)


class ProxyTrainer(DetectionTrainer):
    """DetectionTrainer that saves only when asked, skips the re-validation of best.pt, times validation and steps
    Adam/AdamW on a CPU with torch's fused kernel (``fused_on_cpu``).

    With ``val=False`` Ultralytics validates at the final epoch (and at an epoch where early stopping could
    trigger, which a proxy's ``patience`` larger than its epochs rules out). ``epochs_start`` is set when the
    set-up (dataloaders, model, optimizer) ends, just before the first epoch. ``model_factory`` (nc -> model), when
    set, builds the model to train instead of the YAML (a weight-sharing supernet).
    """

    save_checkpoints = False
    model_factory: Callable[[int], nn.Module] | None = None
    fused_adam = True  # Adam and AdamW on a CPU take torch's fused step (Ultralytics fuses it on CUDA only)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.val_seconds = 0.0
        self.epochs_start: float | None = None
        self.add_callback("on_train_start", ProxyTrainer._mark_epochs_start)

    @staticmethod
    def _mark_epochs_start(trainer: ProxyTrainer) -> None:
        trainer.epochs_start = time.perf_counter()

    def get_model(self, cfg: Any = None, weights: Any = None, verbose: bool = True) -> nn.Module:
        """Return Ultralytics' model for ``cfg``, or ``model_factory``'s when it is set."""
        if self.model_factory is None:
            return super().get_model(cfg, weights, verbose)
        return self.set_model_names_for_load(self.model_factory(self.data["nc"]))

    def build_optimizer(self, *args: Any, **kwargs: Any) -> torch.optim.Optimizer:
        """Return Ultralytics' optimizer, with torch's fused step where ``fused_on_cpu`` allows and ``fused_adam``."""
        optimizer = super().build_optimizer(*args, **kwargs)
        return fused_on_cpu(optimizer) if self.fused_adam else optimizer

    def save_model(self) -> bool:
        """Save only when checkpoints are wanted (the warm-start base)."""
        return super().save_model() if self.save_checkpoints else False

    def final_eval(self) -> None:
        """Skip Ultralytics' re-validation of best.pt: the final epoch's validation already gave the metrics."""

    def validate(self) -> tuple[dict | None, float | None]:
        """Validate as Ultralytics does, accumulating the time spent."""
        t = time.perf_counter()
        try:
            return super().validate()
        finally:
            self.val_seconds += time.perf_counter() - t


# --- install ----------------------------------------------------------------------------------------------------


def install() -> None:
    """Apply every patch above to Ultralytics (idempotent)."""
    import ultralytics.data.utils as data_utils
    import ultralytics.engine.trainer as trainer
    import ultralytics.utils.plotting as plotting

    os.environ["YOLO_OFFLINE"] = "1"
    data_utils.check_font = local_font
    plotting.check_font = local_font
    trainer.check_amp = local_check_amp
    tasks.parse_model = parse_model
    torch_utils.get_flops = get_flops
    with contextlib.suppress(AttributeError):  # torch < 2.4 has no allow-list
        torch.serialization.add_safe_globals(operator_classes())
