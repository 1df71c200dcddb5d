"""Webhook signatures: how the scheduler signs each delivery, and how a receiver checks one.

Every POST carries

    X-Kvmaint-Delivery:  the delivery id (stable across retries: dedupe on it)
    X-Kvmaint-Event:     the event type, e.g. maintenance_scheduled
    X-Kvmaint-Timestamp: Unix seconds when this attempt was signed
    X-Kvmaint-Signature: sha256=HEX, the HMAC-SHA256 with the endpoint's secret of
                         TIMESTAMP + "." + the exact body bytes

Signing the timestamp with the body means a captured delivery cannot be replayed later under a fresh
timestamp: a receiver refuses timestamps older than a few minutes (`verify`'s tolerance) and, within
that, deliveries whose id it has already seen.
"""

from __future__ import annotations

import hashlib
import hmac

DELIVERY_HEADER = "X-Kvmaint-Delivery"
EVENT_HEADER = "X-Kvmaint-Event"
TIMESTAMP_HEADER = "X-Kvmaint-Timestamp"
SIGNATURE_HEADER = "X-Kvmaint-Signature"
DEFAULT_TOLERANCE = 300.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str,
    body: bytes,
    signature: str,
    timestamp: str,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """True when `signature` is this body's, signed with `secret` within `tolerance` seconds of `now`."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)
