"""Does a port speak TLS? Asked when a plaintext connection to the scheduler fails, so the error can say
"pass --ca" instead of leaving a person to guess from "socket closed"."""

from __future__ import annotations

import socket
import ssl

# A probe that is slower than this says "no": it only adds a hint to an error already being reported.
PROBE_SECONDS = 2.0


def split_address(address: str) -> tuple[str, int] | None:
    """"host:port", "[::1]:port" -> (host, port); None when there is no usable port."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def speaks_tls(address: str, timeout: float = PROBE_SECONDS) -> bool:
    """True when the server at address answers a TLS ClientHello with a TLS handshake (whether or not its
    certificate would be trusted, or it wants a client certificate); False for a plaintext server, a
    closed port or no answer in time."""
    target = split_address(address)
    if target is None:
        return False
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection(target, timeout=timeout) as raw:
            raw.settimeout(timeout)
            with context.wrap_socket(raw, server_hostname=target[0]):
                return True
    except ssl.SSLError as err:
        # A TLS server that refuses this client (no client certificate, no common version) sends an
        # alert, which is TLS too; a plaintext server's bytes are no TLS record at all.
        return "ALERT" in str(err.reason or "").upper()
    except OSError:
        return False
