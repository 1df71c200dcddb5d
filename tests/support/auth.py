"""Managed servers require authentication: tests reach a server with its add-on's REDIS_URL credentials."""

from __future__ import annotations

from kvmaint.client import with_address


def url_at(app_url: str, endpoint: str) -> str:
    """`app_url` (redis://USER:PASSWORD@HOST:PORT) pointed at another server `endpoint` (HOST:PORT) of the
    same add-on: both carry the same users."""
    host, port = endpoint.rsplit(":", 1)
    return with_address(app_url, host, int(port))
