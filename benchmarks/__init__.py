"""Benchmarks: one script per question, each writing benchmarks/results/<name>.json."""
