"""Benchmarks: one script per question, each writing benchmarks/results/<name>.json (see benchmarks/README.md).

Importing the package imports ``nas`` (and so ``modules``) first, so every script gets the Ultralytics version
check, the offline guard and the operators before any of its own imports reaches Ultralytics.
"""

import nas  # noqa: F401
