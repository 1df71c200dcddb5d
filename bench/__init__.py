"""Benchmarks of kvmaint against the switchovers Redis ships with; see bench/README.md."""
