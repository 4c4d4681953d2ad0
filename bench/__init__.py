"""Benchmarks (``make bench``): measured, never asserted in unit tests. Results go to docs/benchmarks.md."""
