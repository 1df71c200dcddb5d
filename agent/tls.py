"""How the agent may talk to the scheduler: mTLS, or plain text only where that cannot leak."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc

from kvmaint.errors import InvalidArgument


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def scheduler_host(address: str) -> str:
    """The host part of HOST:PORT, [IPv6]:PORT, or a dns:/// target."""
    target = address.split("///", 1)[-1] if "///" in address else address
    if target.startswith("["):
        return target[1:].split("]", 1)[0]
    if target.count(":") > 1:  # bare IPv6 without port
        return target
    return target.rsplit(":", 1)[0] if ":" in target else target


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plaintext_warning(address: str, tls: TlsFiles | None, insecure: bool) -> str | None:
    """None when the transport is fine, a warning when tolerated; raises when plain text is refused."""
    if tls is not None:
        return None
    host = scheduler_host(address)
    if is_loopback(host):
        return f"Talking to the scheduler at {address} in plain text (loopback only); use --tls-* elsewhere."
    if insecure:
        return f"Talking to the scheduler at {address} in PLAIN TEXT over the network, as --insecure asked."
    raise InvalidArgument.field(
        "scheduler",
        f"Refusing plain text to the non-loopback scheduler {address}: give --tls-ca, --tls-cert and "
        "--tls-key, or --insecure.",
    )


def channel_credentials(tls: TlsFiles) -> grpc.ChannelCredentials:
    """mTLS: trust only the given CA, and present this host's certificate."""
    try:
        root, cert, key = tls.ca.read_bytes(), tls.cert.read_bytes(), tls.key.read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"Cannot read a TLS file: {exc.filename}: {exc.strerror}.") from exc
    return grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=cert)
