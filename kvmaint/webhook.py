"""Webhook signatures the Standard Webhooks way (standardwebhooks.com), so a receiver in any language
verifies a delivery with a library (Python: `standardwebhooks.Webhook(secret).verify(body, headers)`).

Every POST carries

    webhook-id:        the delivery id (stable across retries: dedupe on it)
    webhook-timestamp: Unix seconds when this attempt was signed
    webhook-signature: v1,BASE64 of the HMAC-SHA256, keyed with the secret, of ID.TIMESTAMP.BODY
    X-Kvmaint-Event:   the event type, e.g. maintenance_scheduled

The secret is `whsec_` + the base64 of the key (32 random bytes when the scheduler makes it). A
receiver refuses timestamps more than a few minutes away (a replay) and ids it has already seen.
Secrets registered before this scheme (plain strings) still work: their UTF-8 bytes are the key
(`Webhook(secret.encode())`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping

from kvmaint.errors import InvalidArgument

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
EVENT_HEADER = "X-Kvmaint-Event"
SECRET_PREFIX = "whsec_"
KEY_BYTES = 32
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
DEFAULT_TOLERANCE = 300.0


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def check_secret(secret: str) -> str:
    """A secret an app owner chose: `whsec_` + base64 of 24 to 64 bytes, as Standard Webhooks has it."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidArgument.field(
            "secret", "The secret must be whsec_ followed by base64 (or omitted: one is made)."
        )
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument.field("secret", "The secret after whsec_ is not valid base64.") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise InvalidArgument.field(
            "secret", f"The secret must hold {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes; it holds {len(key)}."
        )
    return secret


def key_of(secret: str) -> bytes:
    """The HMAC key: the base64 after whsec_, or a pre-Standard-Webhooks secret's own bytes."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX) :] + "==")
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key_of(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str, body: bytes, received: Mapping[str, str], now: float, tolerance: float = DEFAULT_TOLERANCE
) -> bool:
    """True when one of the `v1` signatures in `received` is this body's, signed with `secret`, with a
    timestamp within `tolerance` seconds of `now`. (A receiver may use the standardwebhooks package.)"""
    lowered = {k.lower(): v for k, v in received.items()}
    msg_id, stamp = lowered.get(ID_HEADER, ""), lowered.get(TIMESTAMP_HEADER, "")
    try:
        ts = int(stamp)
    except ValueError:
        return False
    if not msg_id or abs(now - ts) > tolerance:
        return False
    expected = sign(secret, msg_id, ts, body)
    return any(hmac.compare_digest(expected, given) for given in lowered.get(SIGNATURE_HEADER, "").split())
