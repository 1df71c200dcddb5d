"""An agent's builds: flags and TOML, the version banners, and the real binaries' versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.builds import Build, Builds, parse_banner, parse_spec, probe, probe_all
from agent.config import parse_config
from agent.redisnode.status import parse_status
from kvmaint.errors import FailedPrecondition, InvalidArgument
from tests.support.builds import REDIS_SERVER, REDIS_VERSION, VALKEY_VERSION, lying_build, valkey_server


@pytest.mark.parametrize(
    ("banner", "kind", "version"),
    [
        ("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=f8b4c3ee5fe7d1c7", "redis", "7.0.15"),
        ("Valkey server v=8.1.8 sha=00000000:1 malloc=libc bits=64 build=7eb4ebc9d7e91f4e\n", "valkey", "8.1.8"),
        ("  Redis server v=6.2 sha=x", "redis", "6.2"),
    ],
)
def test_banners(banner: str, kind: str, version: str) -> None:
    assert parse_banner(banner) == (kind, version)


@pytest.mark.parametrize("banner", ["redis-check-rdb 7.0.15", "", "Redis server", "v=7.0.15"])
def test_not_a_banner(banner: str) -> None:
    with pytest.raises(InvalidArgument, match="Not a Redis or Valkey --version banner"):
        parse_banner(banner)


def test_the_real_binaries_report_their_versions(tmp_path: Path) -> None:
    redis = probe("redis-7.0", REDIS_SERVER)
    valkey = probe("valkey-8.1", valkey_server())
    assert (redis.kind, redis.version) == ("redis", REDIS_VERSION)
    assert (valkey.kind, valkey.version) == ("valkey", VALKEY_VERSION)
    # Debian's /usr/bin/redis-server is a link that acts on its name: the path keeps the link.
    assert Path(redis.path).name == "redis-server"
    assert probe("fake", lying_build(tmp_path)).version == VALKEY_VERSION
    with pytest.raises(InvalidArgument, match="is not an executable file"):
        probe("gone", str(tmp_path / "nothing-here"))
    with pytest.raises(InvalidArgument, match="Build name"):
        probe("Bad Name", REDIS_SERVER)


def test_without_builds_the_redis_server_is_the_one_build() -> None:
    builds = probe_all((), REDIS_SERVER, "db-1")
    assert [(b.name, b.version) for b in builds] == [("redis", REDIS_VERSION)]


def test_builds_resolve_with_a_sentence() -> None:
    a = Build("redis-7.0", "/r", "redis", "7.0.15")
    b = Build("valkey-8.1", "/v", "valkey", "8.1.8")
    builds = Builds([a, b], "db-2")
    assert builds.default == a and builds.resolve("") == a and builds.resolve("valkey-8.1") == b
    with pytest.raises(FailedPrecondition) as err:
        builds.resolve("valkey-9")
    assert str(err.value) == "Host db-2 has no build valkey-9 (it has redis-7.0 (redis 7.0.15), valkey-8.1 (valkey 8.1.8))."
    with pytest.raises(InvalidArgument, match="given twice"):
        Builds([a, a])


@pytest.mark.parametrize("spec", ["redis", "=x", "redis=", ""])
def test_bad_build_flags(spec: str) -> None:
    with pytest.raises(InvalidArgument, match="NAME=PATH"):
        parse_spec(spec)


def test_builds_from_flags_and_toml(tmp_path: Path) -> None:
    toml = tmp_path / "agent.toml"
    toml.write_text('host_id = "db-1"\n\n[builds]\n"redis-7.0" = "/usr/bin/redis-server"\n"valkey-8.1" = "/opt/valkey"\n')
    assert parse_config(["--config", str(toml)]).builds == (
        ("redis-7.0", "/usr/bin/redis-server"), ("valkey-8.1", "/opt/valkey"),
    )
    # Flags win over the file, in their order (the first is the default).
    flags = parse_config(["--config", str(toml), "--build", "v=/opt/v", "--build", "r=/usr/bin/redis-server"])
    assert flags.builds == (("v", "/opt/v"), ("r", "/usr/bin/redis-server"))
    toml.write_text('host_id = "db-1"\nbuilds = ["x"]\n')
    with pytest.raises(InvalidArgument, match=r"\[builds\] maps each build name"):
        parse_config(["--config", str(toml)])


def test_a_valkey_server_reports_its_valkey_version() -> None:
    info = {"role": "master", "master_repl_offset": 0}
    valkey = parse_status(7001, info, {"redis_version": "7.2.4", "valkey_version": "8.1.8"})
    redis = parse_status(7001, info, {"redis_version": "7.0.15"})
    assert (valkey.version, valkey.redis_version, redis.version) == ("8.1.8", "7.2.4", "7.0.15")
