"""An add-on's Redis credentials: generated once, carried by both its servers, put in its REDIS_URL.

The scheduler generates them with `secrets` when it places the add-on's servers, keeps them in the
`addon_credentials` table (the only copy besides the servers and their agents), sends them in the
StartServerCommands that create the add-on's servers (the hidden standby of a maintenance included),
and builds every REDIS_URL from them, so the new primary after a maintenance answers the same URL's
user and password. Anything printed goes through kvmaint/redact.py.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from kvmaint.v1 import agent_pb2

AGENT_USER = "kvmaint-agent"
PASSWORD_BYTES = 32


@dataclass(frozen=True)
class AddonCredentials:
    app_user: str
    app_password: str
    agent_password: str
    agent_user: str = AGENT_USER
    # The servers listen with TLS only: REDIS_URL is rediss://.
    tls: bool = False

    def __repr__(self) -> str:  # never a password in a log line or a traceback
        return f"AddonCredentials(app_user={self.app_user!r}, tls={self.tls}, passwords='***')"

    def to_proto(self) -> agent_pb2.ServerAuth:
        return agent_pb2.ServerAuth(
            app_user=self.app_user,
            app_password=self.app_password,
            agent_user=self.agent_user,
            agent_password=self.agent_password,
        )


def generate(addon_name: str) -> AddonCredentials:
    """The app's user is named after the add-on (ACL LOG and CLIENT LIST then say whose it is)."""
    return AddonCredentials(
        app_user=addon_name,
        app_password=secrets.token_urlsafe(PASSWORD_BYTES),
        agent_password=secrets.token_urlsafe(PASSWORD_BYTES),
    )


def redis_url(endpoint: str, creds: AddonCredentials | None) -> str:
    """redis://USER:PASSWORD@HOST:PORT (rediss:// with TLS); without credentials (servers registered by
    the operator, whose clients authenticate as the operator arranged) redis://HOST:PORT."""
    if creds is None:
        return f"redis://{endpoint}"
    scheme = "rediss" if creds.tls else "redis"
    return f"{scheme}://{creds.app_user}:{creds.app_password}@{endpoint}"
