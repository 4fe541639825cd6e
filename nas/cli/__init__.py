"""The command lines: argparse and printing only; the work is done by the library packages.

Every ``main(argv) -> int`` is wrapped by ``cli``: a ``UserError`` prints one ``error: ...`` line on stderr and
returns exit status 2. ``python -m nas.search|export|report`` run them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from typing import NoReturn

import optuna

from ..errors import UserError, one_line
from ..objectives import GFLOPS, LATENCY, MAP

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT


def cli(main: Callable[[Sequence[str] | None], int]) -> Callable[[Sequence[str] | None], int]:
    """Wrap a CLI ``main(argv) -> int`` so a ``UserError`` prints one ``error:`` line and returns 2.

    Optuna's own logging is kept to warnings while the command runs.
    """

    @wraps(main)
    def wrapper(argv: Sequence[str] | None = None) -> int:
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            return main(argv)
        except UserError as e:
            print(f"error: {one_line(str(e))}", file=sys.stderr)
            return EXIT_USAGE
        finally:
            optuna.logging.set_verbosity(verbosity)

    return wrapper


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports bad flags as a ``UserError`` (one ``error:`` line, exit status 2)."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing usage and exiting."""
        raise UserError(message)


def format_change(delta: Mapping[str, float] | None) -> str:
    """Return a change against the stock model as 'mAP +1.20 pt, GFLOPs -3.1%, latency +4.0%' ('-' if none)."""
    if not delta:
        return "-"
    return f"mAP {delta[MAP]:+.2f} pt, GFLOPs {delta[GFLOPS]:+.1f}%, latency {delta[LATENCY]:+.1f}%"


def log(message: str) -> None:
    """Print a one-line status message on stderr."""
    print(message, file=sys.stderr, flush=True)
