"""Keep Ultralytics from reaching for the network (fonts, telemetry, online checks).

The engine must run in a network namespace with no network at all. Ultralytics checks connectivity at import
(unless ``YOLO_OFFLINE`` is set), sends telemetry when online, and ``check_font`` probes a URL with an HTTP
HEAD request before downloading Arial.ttf. ``ensure_offline()`` closes those paths; weights and datasets are
kept local by validating user input before Ultralytics sees it.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")  # must precede the first ``import ultralytics``


def _local_font(font: str = "Arial.ttf") -> Path | None:
    """Return a locally available font file for ``font`` or None, never downloading."""
    from ultralytics.utils import USER_CONFIG_DIR

    file = USER_CONFIG_DIR / Path(font).name
    return file if file.exists() else None


def ensure_offline() -> None:
    """Disable every Ultralytics code path this project reaches that would open a network connection (idempotent)."""
    os.environ["YOLO_OFFLINE"] = "1"
    import ultralytics.data.utils as data_utils
    import ultralytics.utils.plotting as plotting

    data_utils.check_font = _local_font
    plotting.check_font = _local_font
