"""The server builds installed on this host: a name, a binary, and the version that binary reports.

`kvmaint-agent --build NAME=PATH` (repeatable) or a `[builds]` table in the TOML; the first one is the
default for new servers. Without any, the one build is `--redis-server` under its kind's name. Versions are
read by running `PATH --version` once at start ("Redis server v=7.0.15 sha=...", "Valkey server v=8.1.8
..."), so the hello tells the scheduler what each host can install.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from kvmaint.errors import FailedPrecondition, InvalidArgument

VERSION_TIMEOUT_SECONDS = 10.0
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
_BANNER = re.compile(r"^(?P<kind>\w+) server v=(?P<version>\d+(?:\.\d+)*)", re.IGNORECASE)


@dataclass(frozen=True)
class Build:
    name: str
    path: str
    # "redis" or "valkey", as the banner says.
    kind: str
    version: str

    def describe(self) -> str:
        return f"{self.name} ({self.kind} {self.version})"


def parse_banner(text: str) -> tuple[str, str]:
    """(kind, version) of a `--version` banner."""
    m = _BANNER.match(text.strip())
    if m is None:
        raise InvalidArgument(f"Not a Redis or Valkey --version banner: {text.strip()[:120]!r}.")
    return m["kind"].lower(), m["version"]


def probe(name: str, path: str) -> Build:
    """Runs `path --version` and reads its banner."""
    if not _NAME.match(name):
        raise InvalidArgument.field(
            "build", f"Build name {name[:60]!r}: 1 to 40 of a-z, 0-9, '.', '_' and '-', starting alnum."
        )
    found = shutil.which(path)
    if found is None:
        raise InvalidArgument.field("build", f"Build {name}: {path} is not an executable file.")
    # Absolute, but not through symlinks: Debian's redis-server is a link to a binary that acts on argv[0].
    path = str(Path(found).absolute())
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InvalidArgument.field("build", f"Build {name}: cannot run {path} --version ({exc}).") from exc
    try:
        kind, version = parse_banner(out.stdout or out.stderr)
    except InvalidArgument as exc:
        raise InvalidArgument.field("build", f"Build {name}: {path} --version: {exc}") from exc
    return Build(name, path, kind, version)


def parse_spec(spec: str) -> tuple[str, str]:
    """ "NAME=PATH" -> (name, path)."""
    name, sep, path = spec.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise InvalidArgument.field("build", f"--build takes NAME=PATH (got {spec[:80]!r}).")
    return name.strip(), path.strip()


class Builds:
    """This host's builds in the order given; the first is the default."""

    def __init__(self, builds: Sequence[Build], host: str = "this host") -> None:
        if not builds:
            raise InvalidArgument.field("build", "An agent needs at least one server build.")
        names = [b.name for b in builds]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise InvalidArgument.field("build", f"Build {dup} is given twice.")
        self._builds = {b.name: b for b in builds}
        self.default = builds[0]
        self.host = host

    def __iter__(self) -> Iterator[Build]:
        return iter(self._builds.values())

    def get(self, name: str) -> Build | None:
        return self._builds.get(name)

    def resolve(self, name: str) -> Build:
        """The named build, the default for an empty name; a sentence naming what the host has if absent."""
        if not name:
            return self.default
        build = self._builds.get(name)
        if build is None:
            have = ", ".join(b.describe() for b in self)
            raise FailedPrecondition(f"Host {self.host} has no build {name} (it has {have}).")
        return build


def probe_all(specs: Sequence[tuple[str, str]], fallback: str, host: str) -> Builds:
    """The host's builds from (name, path) pairs; without any, `fallback` under its kind's name."""
    if not specs:
        build = probe("default", fallback)
        return Builds([Build(build.kind, build.path, build.kind, build.version)], host)
    return Builds([probe(name, path) for name, path in specs], host)
