"""domain/builds: which version a build is across the fleet, and what counts as a downgrade."""

from __future__ import annotations

import pytest

from kvmaint.errors import FailedPrecondition, InvalidArgument
from server.domain.builds import HostBuild, Running, check_downgrade, downgrades, target_version, version_key

FLEET = [
    HostBuild("db-1", "redis-7.0", "7.0.15", "redis"),
    HostBuild("db-1", "valkey-8.1", "8.1.8", "valkey"),
    HostBuild("db-2", "redis-7.0", "7.0.15", "redis"),
    HostBuild("db-2", "valkey-8.1", "8.1.8", "valkey"),
]


@pytest.mark.parametrize(
    ("a", "b", "older"),
    [("7.0.15", "8.1.8", True), ("7.0.15", "7.0.9", False), ("7.2", "7.2.4", True), ("10.0.0", "9.9.9", False)],
)
def test_version_order(a: str, b: str, older: bool) -> None:
    assert (version_key(a) < version_key(b)) is older


def test_target_version() -> None:
    assert target_version("valkey-8.1", FLEET) == "8.1.8"
    with pytest.raises(InvalidArgument) as unknown:
        target_version("valkey-9", FLEET)
    assert "No connected host has a build named valkey-9 (known builds: redis-7.0, valkey-8.1)" in str(unknown.value)
    with pytest.raises(InvalidArgument, match="no agent has reported any build"):
        target_version("valkey-8.1", [])
    mixed = [*FLEET, HostBuild("db-3", "valkey-8.1", "8.1.1", "valkey")]
    with pytest.raises(FailedPrecondition) as differ:
        target_version("valkey-8.1", mixed)
    assert "8.1.1 on db-3; 8.1.8 on db-1, db-2" in str(differ.value)


RUNNING = {"db-1:7001": Running("valkey-8.1", "8.1.8"), "db-2:7002": Running("redis-7.0", "7.0.15")}


@pytest.mark.parametrize(
    ("target", "newer"),
    [("7.0.15", [("db-1:7001", "8.1.8")]), ("8.1.8", []), ("9.0.0", []), ("7.0.9", [("db-1:7001", "8.1.8"), ("db-2:7002", "7.0.15")])],
)
def test_downgrades(target: str, newer: list[tuple[str, str]]) -> None:
    assert downgrades(["db-1:7001", "db-2:7002", "db-3:7003"], RUNNING, target) == newer


def test_a_downgrade_is_refused_unless_allowed() -> None:
    with pytest.raises(FailedPrecondition) as refused:
        check_downgrade("redis-x", ["db-1:7001", "db-2:7002"], RUNNING, "redis-7.0", "7.0.15", allow=False)
    assert str(refused.value) == (
        "Build redis-7.0 (7.0.15) would downgrade redis-x (db-1:7001 runs 8.1.8); "
        "pass --allow-downgrade to do it anyway."
    )
    check_downgrade("redis-x", ["db-1:7001"], RUNNING, "redis-7.0", "7.0.15", allow=True)
