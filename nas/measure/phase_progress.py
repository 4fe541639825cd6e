"""Progress of a long one-off training (the warm base, the supernet), reported through Ultralytics' trainer callbacks.

The library only reports ``(phase, epochs done, epochs total)``; drawing a bar is the console's job
(``nas.cli.progress.PhaseBar``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (phase name, epochs done so far (fractional within an epoch), total epochs)
PhaseProgress = Callable[[str, float, int], None]


def report_epochs(trainer: Any, phase: str, progress: PhaseProgress) -> None:
    """Add callbacks to an Ultralytics ``trainer`` that call ``progress(phase, done, total)``: 0 when training
    starts, a fraction after each batch, a whole number after each epoch, and, when the training stops early, the
    epochs it ran as both done and total (so a bar ends). Returns nothing; raises nothing."""
    batches = {"seen": 0}

    def epochs(t: Any) -> int:
        return int(getattr(t, "epochs", 0) or 0)

    def on_start(t: Any) -> None:
        progress(phase, 0.0, epochs(t))

    def on_epoch_start(_t: Any) -> None:
        batches["seen"] = 0

    def on_batch_end(t: Any) -> None:
        batches["seen"] += 1
        per_epoch = max(len(getattr(t, "train_loader", None) or ()), 1)
        # never report a whole epoch from the batches: the epoch-end callback does, once
        within = min(batches["seen"] / per_epoch, 0.999)
        progress(phase, t.epoch + within, epochs(t))

    def on_epoch_end(t: Any) -> None:
        progress(phase, float(t.epoch + 1), epochs(t))

    def on_train_end(t: Any) -> None:
        ran = t.epoch + 1
        if ran < epochs(t):  # stopped early (patience, time): the epochs it ran are the whole phase
            progress(phase, float(ran), ran)

    trainer.add_callback("on_train_start", on_start)
    trainer.add_callback("on_train_epoch_start", on_epoch_start)
    trainer.add_callback("on_train_batch_end", on_batch_end)
    trainer.add_callback("on_train_epoch_end", on_epoch_end)
    trainer.add_callback("on_train_end", on_train_end)
