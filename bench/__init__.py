"""The opening-day rush benchmark (see docs/benchmarks.md)."""
