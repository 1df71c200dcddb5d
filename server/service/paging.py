"""Opaque page tokens (Google AIP-158): base64 of the last key of the previous page."""

from __future__ import annotations

import base64
import binascii
import json

from kvmaint.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page_size(value: int) -> int:
    if value < 0:
        raise InvalidArgument.field("page_size", f"page_size must not be negative (got {value}).")
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode(kind: str, after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": kind, "a": after}).encode()).decode()


def decode(kind: str, token: str) -> str:
    if not token:
        return ""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        if data["k"] != kind or not isinstance(data["a"], str):
            raise ValueError
        return str(data["a"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise InvalidArgument.field("page_token", "The page_token is not one this list returned.") from None


def kind_of(token: str) -> str:
    """Which list a token is from ("" when it is none): one RPC may page more than one list."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(data["k"]) if isinstance(data, dict) else ""
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        return ""
