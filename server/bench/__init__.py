"""Benchmarks: each prints ratios measured in one run (never a timed test)."""
