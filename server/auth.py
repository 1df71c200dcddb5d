"""Bearer tokens: an operator token may do everything, an app token only reads and acts on its app, an
agent token only opens the agent stream (for the hosts it names, or any host)."""

from __future__ import annotations

import contextvars
import hmac
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from kvmaint.errors import ErrorReason, InvalidArgument, PermissionDenied, Resource, Unauthenticated


@dataclass(frozen=True)
class Principal:
    role: str  # "operator", "app", "agent", or "none" (no token where none is needed)
    app: str = ""
    # An agent token's host ids; empty: any host.
    hosts: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    @property
    def is_agent(self) -> bool:
        return self.role == "agent"

    def may_be_host(self, host_id: str) -> bool:
        return self.is_agent and (not self.hosts or host_id in self.hosts)


# Without tokens (loopback development), everyone is an operator.
ANONYMOUS_OPERATOR = Principal("operator")
NO_TOKEN = Principal("none")
current_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar(
    "current_principal", default=ANONYMOUS_OPERATOR
)


class TokenTable:
    def __init__(self, tokens: dict[str, Principal]) -> None:
        self._tokens = tokens

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    @classmethod
    def load(cls, path: str | Path) -> TokenTable:
        """Reads `[[token]]` tables with `token` and `role`: "operator"; "app" with `app = NAME`; or
        "agent", optionally with `hosts = ["db-1", ...]` (the host ids it may connect as)."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise InvalidArgument(f"Cannot read the tokens file {path}: {err}") from err
        tokens: dict[str, Principal] = {}
        for i, entry in enumerate(data.get("token", [])):
            token, role, app = entry.get("token", ""), entry.get("role", ""), entry.get("app", "")
            hosts = entry.get("hosts", [])
            where = f"Token #{i + 1} in {path}"
            if len(token) < 8:
                raise InvalidArgument(f"{where} is shorter than 8 characters.")
            if role not in ("operator", "app", "agent") or (role == "app") != bool(app):
                raise InvalidArgument(
                    f'{where} needs role = "operator", role = "app" with app = NAME, or role = "agent".'
                )
            if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
                raise InvalidArgument(f"{where}: hosts must be a list of host ids.")
            if hosts and role != "agent":
                raise InvalidArgument(f'{where}: only a role = "agent" token may name hosts.')
            tokens[token] = Principal(role, app, frozenset(hosts))
        return cls(tokens)

    def authenticate(self, header: str | None) -> Principal:
        if not self.enabled:
            return ANONYMOUS_OPERATOR
        if not header or not header.lower().startswith("bearer "):
            raise Unauthenticated(
                "A bearer token is required: pass --token or set KVMAINT_TOKEN.",
                reason=ErrorReason.TOKEN_REQUIRED,
            )
        presented = header[7:].strip()
        for token, principal in self._tokens.items():
            if hmac.compare_digest(token.encode(), presented.encode()):
                return principal
        raise Unauthenticated("The token is not valid.", reason=ErrorReason.TOKEN_INVALID)


def require_operator(action: str) -> None:
    if not current_principal.get().is_operator:
        raise PermissionDenied(f"Only an operator token may {action}.", reason=ErrorReason.OPERATOR_ONLY)


def scope_app(app: str) -> str:
    """The app a request may act on: an app token is confined to its own app."""
    p = current_principal.get()
    if p.is_operator:
        return app
    if app and app != p.app:
        raise PermissionDenied(
            f"This token may act only on app {p.app}, not {app[:80]}.",
            reason=ErrorReason.OTHER_APP,
            resource=Resource("App", app[:80]),
        )
    return p.app
