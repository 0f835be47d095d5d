"""Smoke tests of the benchmarks: each runs briefly and reports every variant (no timing
asserted)."""
