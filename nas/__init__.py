"""The search engine: search spaces, measurement of one architecture, the Optuna study, objectives, report, CLIs.

Importing ``nas`` imports ``modules`` first, so Ultralytics is version-checked, kept offline and patched before
any code of the engine imports it. An Ultralytics outside the tested range (or none) stops a CLI with one
``error:`` line and exit status 2.
"""

import sys

try:
    import modules  # noqa: F401
except ImportError as _e:  # UnsupportedUltralyticsError, or Ultralytics missing: a CLI prints one line, no traceback
    if _e.name != "ultralytics":
        raise
    print(f"error: {_e}", file=sys.stderr)
    raise SystemExit(2) from None
