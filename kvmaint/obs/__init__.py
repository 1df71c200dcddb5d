"""Observability shared by both daemons: log formats with per-task context, traces, a /metrics server.

The metric definitions themselves live beside what they measure (`server/metrics.py`,
`agent/metrics.py`); this package holds only the plumbing both need.
"""
