"""Scheduler TLS: one port for token-carrying clients and certificate-carrying agents."""

from __future__ import annotations

from pathlib import Path

import grpc


def server_credentials(cert: Path, key: Path, ca: Path) -> grpc.ServerCredentials:
    """Client certificates are requested and verified against the CA when presented, but not required:
    the CLI authenticates with tokens, while AgentService refuses a stream without a certificate."""
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())], root_certificates=ca.read_bytes(), require_client_auth=False
    )
