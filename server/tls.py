"""Scheduler TLS: one port for token-carrying clients and certificate-carrying agents."""

from __future__ import annotations

from pathlib import Path

import grpc

from kvmaint import devcerts


def client_credentials(cert: Path, key: Path) -> grpc.ServerCredentials:
    """For the clients' port: TLS without client certificates (clients carry bearer tokens)."""
    return grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])


def agent_credentials(cert: Path, key: Path, ca: Path) -> grpc.ServerCredentials:
    """For the agents' port: a client certificate signed by the CA is required and verified; the hub
    then checks that its name is the host id the agent claims."""
    return devcerts.server_credentials(ca.read_bytes(), cert.read_bytes(), key.read_bytes())


def relay_credentials(ca: Path) -> grpc.ChannelCredentials:
    """How a non-leader replica dials the leader's clients' port to relay a call: TLS, trusting the CA
    (the replicas' certificates are expected to be signed by the one CA that signs the agents')."""
    return grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
