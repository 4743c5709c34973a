"""Benchmarks: each `python -m bench.<name>` prints a table; `python -m bench.run_all` runs them all."""
