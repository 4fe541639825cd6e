"""``nas-yolo``: Ultralytics' ``yolo`` command with this project's operators registered.

``nas-yolo train model=best.yaml data=data.yaml epochs=300`` works like ``yolo train`` on a YAML that
``nas.export`` wrote (so do ``val``, ``predict`` and ``export``). Only local files are used: ``model=`` and
``data=`` must exist here (Ultralytics would otherwise download a model or dataset by that name), and
``YOLO_OFFLINE`` stays set, as for the searches.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import ultralytics.cfg
from ultralytics import YOLO

import modules  # noqa: F401  (registers the operators with Ultralytics; nas imported it already, said here)
from modules.table import OPERATORS
from modules.ultralytics_adapter import run_yolo_cli

from ..data.datasets import local_dataset
from ..errors import UserError, one_line
from . import cli

USAGE = "usage: nas-yolo MODE model=EXPORTED.yaml|weights.pt [data=DATA.yaml] [ARG=VALUE ...] (modes as yolo's)"
MODES_NEEDING_DATA = ("train",)


def arguments(argv: Sequence[str]) -> dict[str, str]:
    """Return the ``key=value`` arguments of a yolo command line (the bare words, such as the mode, are left out)."""
    out = {}
    for a in argv:
        key, sep, val = a.lstrip("-").partition("=")
        if sep:
            out[key.strip()] = val.strip()
    return out


def check_local(argv: Sequence[str]) -> list[str]:
    """Return ``argv`` with ``data=`` pointing at the checked local data YAML (its ``path:`` made absolute, as a
    search trains on it), after checking that the files it names exist here and that a model YAML builds.

    Raises:
        UserError: ``model=`` is missing or not a local file, a YAML model does not build (an unknown module,
            a bad row), ``data=`` is missing for training or is not a local dataset.
    """
    args = arguments(argv)
    mode = next((a for a in argv if "=" not in a and a in ultralytics.cfg.MODES), None)
    model = args.get("model")
    if not model:
        raise UserError(f"model= is required (nas-yolo never downloads one); {USAGE}")
    if not Path(model).is_file():
        raise UserError(
            f"model {model} is not a local file: nas-yolo uses only local files (write one with python -m nas.export)"
        )
    if Path(model).suffix in (".yaml", ".yml"):
        build_check(Path(model))
    data = args.get("data")
    if not data:
        if mode in MODES_NEEDING_DATA:
            raise UserError(f"data= is required to {mode} (a local data YAML; nas-yolo never downloads a dataset)")
        return list(argv)
    # the same offline checks as a search's --data; Ultralytics would resolve a relative path: under its own
    # datasets folder and download what it does not find there
    resolved = local_dataset(data).data_yaml()
    return [f"data={resolved}" if a.lstrip("-").partition("=")[0].strip() == "data" else a for a in argv]


def build_check(model: Path) -> None:
    """Build the model YAML once, so a bad file ends in one line instead of a traceback from inside a mode.

    Raises:
        UserError: the YAML does not build; an unknown module name is said with the operators this project adds.
    """
    try:
        YOLO(str(model))
    except KeyError as e:  # Ultralytics' parser looks every module name up by key
        known = ", ".join(OPERATORS)
        raise UserError(
            f"model {model}: unknown module {e.args[0]!r} (neither an Ultralytics module nor one of this project's "
            f"operators: {known})"
        ) from e
    except Exception as e:  # any failure to build a user's YAML is bad input, not a crash of this tool
        raise UserError(f"model {model} does not build: {type(e).__name__}: {one_line(str(e))}") from e


@cli
def run(argv: Sequence[str] | None = None) -> int:
    """Check the command line, then run it with Ultralytics' CLI; return the exit status (0 ok, 2 bad input).

    Raises:
        SystemExit, Exception: whatever Ultralytics' CLI raises once it runs (a crash while training).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    special = not argv or argv[0].lstrip("-").lower() in {"help", "h", "version", "cfg", "settings", "checks"}
    if not special:
        try:  # Ultralytics' own joining of 'data = x.yaml' and split brackets, so the checks see what it will use
            argv = ultralytics.cfg.merge_equals_args(argv)
        except SyntaxError as e:
            raise UserError(str(e).splitlines()[0] if str(e) else "invalid arguments") from e
        argv = check_local(argv)
    try:
        run_yolo_cli(argv)
    except SyntaxError as e:  # Ultralytics' way to reject an argument (unknown key, missing '=')
        raise UserError(str(e).splitlines()[0] if str(e) else "invalid arguments") from e
    return 0


def main() -> None:
    """The ``nas-yolo`` console script: exit with ``run``'s status."""
    sys.exit(run())
