"""Which build a maintenance installs, and whether a fleet can take it. Pure: agents' reports in, a
version or a refusal out.

Agents report the builds on their hosts (name, version) in their hello, and each server's running build
and version (INFO server) in their heartbeats. A maintenance `--build NAME` targets the version the
hosts report for NAME; a target older than what an add-on's servers run is a downgrade, refused unless
asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kvmaint.errors import ErrorReason, FailedPrecondition, InvalidArgument


@dataclass(frozen=True)
class HostBuild:
    host: str
    name: str
    version: str
    kind: str = ""


@dataclass(frozen=True)
class Running:
    """What one server runs, as its agent last saw it."""

    build: str
    version: str


def version_key(version: str) -> tuple[int, ...]:
    """ "8.1.8" -> (8, 1, 8)."""
    return tuple(int(p) for p in re.findall(r"\d+", version))


def target_version(name: str, builds: Iterable[HostBuild]) -> str:
    """The version the fleet's hosts report for build `name`; refused when none has it, or they differ."""
    found = [b for b in builds if b.name == name]
    if not found:
        names = sorted({b.name for b in builds})
        known = f"known builds: {', '.join(names)}" if names else "no agent has reported any build"
        raise InvalidArgument.field("build", f"No connected host has a build named {name[:60]} ({known}).")
    versions = sorted({b.version for b in found}, key=version_key)
    if len(versions) > 1:
        where = "; ".join(
            f"{v} on {', '.join(sorted(b.host for b in found if b.version == v))}" for v in versions
        )
        raise FailedPrecondition(
            f"Build {name} is not the same version on every host ({where}): install one version first.",
            reason=ErrorReason.BUILD_VERSIONS_DIFFER,
        )
    return versions[0]


def downgrades(servers: Iterable[str], running: Mapping[str, Running], target: str) -> list[tuple[str, str]]:
    """(server, version) of the servers that run a newer version than `target`."""
    return [
        (key, running[key].version)
        for key in servers
        if key in running and running[key].version and version_key(running[key].version) > version_key(target)
    ]


def check_downgrade(
    addon: str, servers: Iterable[str], running: Mapping[str, Running], build: str, target: str, allow: bool
) -> None:
    newer = downgrades(servers, running, target)
    if newer and not allow:
        which = ", ".join(f"{key} runs {version}" for key, version in newer)
        raise FailedPrecondition(
            f"Build {build} ({target}) would downgrade {addon} ({which}); "
            "pass --allow-downgrade to do it anyway.",
            reason=ErrorReason.BUILD_DOWNGRADE,
        )
