"""Bearer tokens: an operator token may do everything, an app token only reads and acts on its app."""

from __future__ import annotations

import contextvars
import hmac
import tomllib
from dataclasses import dataclass
from pathlib import Path

from kvmaint.errors import InvalidArgument, PermissionDenied, Unauthenticated


@dataclass(frozen=True)
class Principal:
    role: str  # "operator" or "app"
    app: str = ""

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


# Without tokens (loopback development), everyone is an operator.
ANONYMOUS_OPERATOR = Principal("operator")
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
        """Reads `[[token]]` tables with `token`, `role` ("operator" or "app") and, for apps, `app`."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise InvalidArgument(f"Cannot read the tokens file {path}: {err}") from err
        tokens: dict[str, Principal] = {}
        for i, entry in enumerate(data.get("token", [])):
            token, role, app = entry.get("token", ""), entry.get("role", ""), entry.get("app", "")
            if len(token) < 8:
                raise InvalidArgument(f"Token #{i + 1} in {path} is shorter than 8 characters.")
            if role not in ("operator", "app") or (role == "app") != bool(app):
                raise InvalidArgument(
                    f'Token #{i + 1} in {path} needs role = "operator", or role = "app" with app = NAME.'
                )
            tokens[token] = Principal(role, app)
        return cls(tokens)

    def authenticate(self, header: str | None) -> Principal:
        if not self.enabled:
            return ANONYMOUS_OPERATOR
        if not header or not header.lower().startswith("bearer "):
            raise Unauthenticated("A bearer token is required: pass --token or set KVMAINT_TOKEN.")
        presented = header[7:].strip()
        for token, principal in self._tokens.items():
            if hmac.compare_digest(token.encode(), presented.encode()):
                return principal
        raise Unauthenticated("The token is not valid.")


def require_operator(action: str) -> None:
    if not current_principal.get().is_operator:
        raise PermissionDenied(f"Only an operator token may {action}.")


def scope_app(app: str) -> str:
    """The app a request may act on: an app token is confined to its own app."""
    p = current_principal.get()
    if p.is_operator:
        return app
    if app and app != p.app:
        raise PermissionDenied(f"This token may act only on app {p.app}, not {app[:80]}.")
    return p.app
