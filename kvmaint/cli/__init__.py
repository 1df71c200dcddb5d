"""The `kvmaint` command-line client of the scheduler."""

from kvmaint.cli.entry import main

__all__ = ["main"]
