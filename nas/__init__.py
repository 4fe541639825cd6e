"""The search engine: configuration, search spaces, cost model, proxy evaluation and the CLIs."""

from . import offline as _offline  # sets YOLO_OFFLINE before anything imports Ultralytics

_offline.ensure_offline()
