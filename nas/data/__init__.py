"""Datasets: the embedded procedural detection set and validation of user datasets."""
