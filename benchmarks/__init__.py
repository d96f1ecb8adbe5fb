"""Benchmarks: scripts that measure and print tables; results go to benchmarks/RESULTS.md."""
