"""Passwords are not for terminals, logs, events or emails: every printed URL goes through here.

`redact_url` hides the password of one URL (redis://user:***@host:port); `redact` does the same for
every redis:// or rediss:// URL inside a sentence (an error message, a log line, a step's note).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

HIDDEN = "***"
# scheme://user:password@ : the password runs to the last @ before the host.
_URL_WITH_PASSWORD = re.compile(r"(?P<head>\brediss?://[^\s:/@]*:)(?P<password>[^\s@]*)@")


def redact_url(value: str) -> str:
    """The URL with its password shown as ***; a value that is not a URL with a password as it is."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return redact(value)
    if not parts.scheme or parts.password is None:
        return value
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:{HIDDEN}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact(text: str) -> str:
    """Every redis:// / rediss:// URL's password in `text` shown as ***."""
    return _URL_WITH_PASSWORD.sub(lambda m: f"{m['head']}{HIDDEN}@", text)
