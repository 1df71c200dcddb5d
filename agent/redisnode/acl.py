"""The one place that decides who may do what on a managed server, and how the agent connects to one.

Every managed server carries two ACL users, the same on both servers of an add-on (so a failover
changes no credentials): the app's, allowed all keys, all pub/sub channels and ordinary commands but
nothing that reconfigures, replicates, shuts down or disconnects others; and the agent's, allowed
everything, which is also the replication user (`masteruser` / `masterauth`). The `default` user is
off, so an unauthenticated client gets NOAUTH. The app's password is written hashed (`#sha256`); the
agent's must be readable by the agent and by a replica (masterauth), so it stays in the config and a
0600 file beside it.

With TLS the server listens on TLS only (`port 0`, `tls-port`), replicates over TLS, and asks clients
for no certificate (apps authenticate with their password, as on Heroku).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Commands (or subcommands) the app's user may not run: the server's shape is the agent's business.
APP_DENIED = (
    "config",
    "shutdown",
    "replicaof",
    "slaveof",
    "failover",
    "debug",
    "acl",
    "client|kill",
    "module",
    "sync",
    "psync",
)
APP_RULES = ("on", "~*", "&*", "+@all", *(f"-{c}" for c in APP_DENIED))
AGENT_RULES = ("on", "~*", "&*", "+@all")
AGENT_USER = "kvmaint-agent"


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str

    def __repr__(self) -> str:  # never a password in a log line or a traceback
        return f"Credentials(user={self.user!r}, password='***')"


@dataclass(frozen=True)
class ServerAuth:
    """An add-on's two users, as the scheduler generated them (StartServerCommand.auth)."""

    app: Credentials
    agent: Credentials


@dataclass(frozen=True)
class RedisTls:
    """The files a TLS server (and the agent's client to it) uses."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class Access:
    """How the agent reaches a server: its user (none: no AUTH), and TLS or not."""

    credentials: Credentials | None = None
    tls: RedisTls | None = None

    def client_kwargs(self) -> dict[str, Any]:
        """redis-py connection arguments."""
        out: dict[str, Any] = {}
        if self.credentials is not None:
            out["username"] = self.credentials.user
            out["password"] = self.credentials.password
        if self.tls is not None:
            out.update(ssl=True, ssl_ca_certs=str(self.tls.ca), ssl_check_hostname=False)
        return out


def _hashed(password: str) -> str:
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def conf_lines(auth: ServerAuth | None, port: int, tls: RedisTls | None) -> list[str]:
    """redis.conf lines for the listener and the users (pure)."""
    lines: list[str] = []
    if tls is None:
        lines.append(f"port {port}")
    else:
        lines += [
            "port 0",
            f"tls-port {port}",
            f'tls-cert-file "{tls.cert}"',
            f'tls-key-file "{tls.key}"',
            f'tls-ca-cert-file "{tls.ca}"',
            "tls-auth-clients no",
            "tls-replication yes",
        ]
    if auth is not None:
        lines += [
            "user default off",
            f"user {auth.agent.user} {' '.join(AGENT_RULES)} >{auth.agent.password}",
            f"user {auth.app.user} {' '.join(APP_RULES)} {_hashed(auth.app.password)}",
            f"masteruser {auth.agent.user}",
            f"masterauth {auth.agent.password}",
        ]
    return lines


def save_agent_credentials(path: Path, credentials: Credentials) -> None:
    """The agent's user for one server, readable by the agent's OS user only."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"user": credentials.user, "password": credentials.password}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def load_agent_credentials(path: Path) -> Credentials | None:
    """None for a server started without authentication (no file)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return Credentials(str(raw["user"]), str(raw["password"]))


NO_AUTH = Access()
