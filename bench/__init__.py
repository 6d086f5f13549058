"""Benchmarks; `make bench` runs them all and writes a JSON report."""
