"""The per-host kvmaint agent: watches local redis-servers, runs the scheduler's commands."""

__version__ = "0.1.0"
