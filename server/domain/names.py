"""Validation of user-chosen names and Heroku-style generated add-on names."""

from __future__ import annotations

import random
import re

from kvmaint.errors import InvalidArgument

_APP = re.compile(r"^[a-z][a-z0-9-]{1,29}$")
_ADDON = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
_CONFIG_VAR = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")

_ADVERBS = (
    "softly",
    "lively",
    "cleanly",
    "quietly",
    "boldly",
    "swiftly",
    "gently",
    "brightly",
    "calmly",
    "deeply",
    "fairly",
    "kindly",
    "neatly",
    "plainly",
    "rapidly",
    "smoothly",
    "steadily",
    "warmly",
)


def check_app_name(name: str, field: str = "app") -> str:
    if not _APP.match(name):
        raise InvalidArgument.field(
            field,
            f"'{name[:80]}' is not a valid app name: use 2 to 30 lowercase letters, digits and dashes, "
            "starting with a letter.",
        )
    return name


def check_addon_name(name: str, field: str = "name") -> str:
    if not _ADDON.match(name):
        raise InvalidArgument.field(
            field,
            f"'{name[:80]}' is not a valid add-on name: use 2 to 63 lowercase letters, digits and dashes, "
            "starting with a letter.",
        )
    return name


def check_config_var(name: str, field: str = "attachments") -> str:
    if not _CONFIG_VAR.match(name):
        raise InvalidArgument.field(
            field, f"'{name[:80]}' is not a valid config var name: use uppercase letters, digits and _."
        )
    return name


def check_email(email: str, field: str = "owner_email") -> str:
    if email and not _EMAIL.match(email):
        raise InvalidArgument.field(field, f"'{email[:80]}' is not an email address.")
    return email


def check_host(host: str, field: str) -> str:
    if not _HOST.match(host):
        raise InvalidArgument.field(field, f"'{host[:80]}' is not a valid agent host id.")
    return host


def check_port(port: int, field: str) -> int:
    if not 1 <= port <= 65535:
        raise InvalidArgument.field(field, f"{port} is not a TCP port (1 to 65535).")
    return port


def generate_addon_name(rng: random.Random) -> str:
    return f"redis-{rng.choice(_ADVERBS)}-{rng.randrange(1000, 100000)}"
