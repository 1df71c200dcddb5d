"""kvmaint: planned maintenance for fleets of Redis servers."""

__version__ = "0.1.0"
