"""The agent's settings: command-line flags win over a TOML file, which wins over defaults."""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.builds import parse_spec
from agent.redisnode.acl import Access, Credentials, RedisTls
from agent.tls import TlsFiles
from kvmaint.errors import InvalidArgument
from kvmaint.obs import logs
from kvmaint.obs.metrics_http import split_listen
from kvmaint.version import add_version_flag

DEFAULT_SCHEDULER = "127.0.0.1:50051"
DEFAULT_ADVERTISE_HOST = "127.0.0.1"
DEFAULT_HEARTBEAT_SECONDS = 5.0


@dataclass(frozen=True)
class AgentConfig:
    host_id: str
    data_dir: Path
    scheduler: str = DEFAULT_SCHEDULER
    advertise_host: str = DEFAULT_ADVERTISE_HOST
    adopt: tuple[int, ...] = ()
    redis_server: str = "redis-server"
    # (name, path) of each server build on this host, the default first; empty: `redis_server` alone.
    builds: tuple[tuple[str, str], ...] = ()
    tls: TlsFiles | None = None
    tls_server_name: str = ""
    insecure: bool = False
    # The agent token (role = "agent" in the scheduler's tokens file): needed without mTLS when the
    # scheduler has --tokens.
    token: str = ""
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    log_level: str = "INFO"
    log_format: str = "text"
    # HOST:PORT for Prometheus' /metrics; empty: not served.
    metrics_listen: str = ""
    # Managed servers listen with TLS only, with these files (the agent's client verifies with the CA).
    redis_tls: RedisTls | None = None
    # The ACL user and password file the agent uses on adopted servers (empty: no AUTH).
    adopt_user: str = ""
    adopt_password_file: Path | None = None

    def adopted_access(self) -> Access:
        """How the agent reaches adopted servers: the operator's credentials, TLS when the fleet has it."""
        if self.adopt_password_file is None:
            return Access(None, self.redis_tls)
        try:
            password = self.adopt_password_file.read_text().strip()
        except OSError as exc:
            raise InvalidArgument.field(
                "adopt_password_file", f"Cannot read {self.adopt_password_file}: {exc.strerror}."
            ) from exc
        return Access(Credentials(self.adopt_user or "default", password), self.redis_tls)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kvmaint-agent",
        description="Per-host kvmaint agent: reports local redis-servers and runs the scheduler's commands.",
        argument_default=None,
    )
    add_version_flag(p)
    p.add_argument("--host-id", help="this host's id (the CN of its certificate under mTLS)")
    p.add_argument(
        "--scheduler",
        help=f"scheduler HOST:PORT (default {DEFAULT_SCHEDULER}); replicas as a comma list a:1,b:2,c:3 "
        "(a TOML list in --config): the agent connects to the leader, moving on when a replica dies",
    )
    p.add_argument(
        "--data-dir", help="where managed servers and kept results live (default ./.kvmaint/agent-ID)"
    )
    p.add_argument(
        "--advertise-host", help=f"how others reach this host's servers (default {DEFAULT_ADVERTISE_HOST})"
    )
    p.add_argument(
        "--adopt", type=int, nargs="+", metavar="PORT", help="existing local redis-servers to watch"
    )
    p.add_argument("--redis-server", help="path of the redis-server binary when no --build is given")
    p.add_argument(
        "--adopt-password-file",
        metavar="FILE",
        help="the password the agent authenticates with on adopted servers (first line of FILE)",
    )
    p.add_argument("--adopt-user", help="the ACL user for --adopt-password-file (default: default)")
    p.add_argument("--redis-tls-ca", help="CA (PEM) of the managed servers' certificates")
    p.add_argument(
        "--redis-tls-cert",
        help="certificate (PEM) managed servers present; with --redis-tls-ca and --redis-tls-key they "
        "listen with TLS only (kvmaint-devcerts writes HOST-redis.pem)",
    )
    p.add_argument("--redis-tls-key", help="its private key (PEM)")
    p.add_argument(
        "--build",
        action="append",
        metavar="NAME=PATH",
        help="a server build on this host (repeatable; the first is the default): "
        "--build redis-7.0=/usr/bin/redis-server --build valkey-8.1=/opt/valkey/bin/valkey-server",
    )
    p.add_argument("--config", help="a TOML file with the same keys (host_id, scheduler, ...)")
    p.add_argument("--tls-ca", help="CA certificate (PEM) the scheduler's certificate must chain to")
    p.add_argument("--tls-cert", help="this host's client certificate (PEM)")
    p.add_argument("--tls-key", help="this host's private key (PEM)")
    p.add_argument("--tls-server-name", help="expected name in the scheduler's certificate, if not its host")
    p.add_argument(
        "--token",
        help="agent token, needed without mTLS when the scheduler has --tokens (env KVMAINT_AGENT_TOKEN)",
    )
    p.add_argument(
        "--insecure", action="store_true", default=None, help="allow plain text to a non-loopback scheduler"
    )
    p.add_argument(
        "--heartbeat-seconds", type=float, help=f"heartbeat period (default {DEFAULT_HEARTBEAT_SECONDS:g})"
    )
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING (default INFO)")
    p.add_argument(
        "--log-format",
        help="text (default) or json: one object per line with time, level, message, host and, for a "
        "command's lines, maintenance_id, addon, step",
    )
    p.add_argument(
        "--metrics-listen",
        help="HOST:PORT to serve Prometheus metrics on at /metrics (default: off; port 0 picks one, logged)",
    )
    return p


def _from_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise InvalidArgument.field("config", f"Cannot read {path}: {exc.strerror}.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument.field("config", f"{path} is not valid TOML: {exc}.") from exc
    section = raw.get("agent", raw)
    out = {str(k).replace("-", "_"): v for k, v in section.items() if k != "builds"}
    table = raw.get("builds", section.get("builds"))
    if table is not None:
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise InvalidArgument.field("builds", f"{path}: [builds] maps each build name to a binary path.")
        out["build"] = [f"{name}={binary}" for name, binary in table.items()]
    return out


def build_config(values: Mapping[str, Any]) -> AgentConfig:
    """Validates merged settings (pure: no file is read here except by the caller)."""
    host_id = str(values.get("host_id") or "").strip()
    if not host_id:
        raise InvalidArgument.field("host_id", "--host-id is required (or host_id in the config file).")
    tls_parts = [values.get("tls_ca"), values.get("tls_cert"), values.get("tls_key")]
    tls = None
    if any(tls_parts):
        if not all(tls_parts):
            raise InvalidArgument.field("tls", "mTLS needs all of --tls-ca, --tls-cert and --tls-key.")
        tls = TlsFiles(*(Path(str(p)) for p in tls_parts))
    try:
        adopt = tuple(int(p) for p in values.get("adopt") or ())
        heartbeat = float(values.get("heartbeat_seconds") or DEFAULT_HEARTBEAT_SECONDS)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"Bad number in the settings: {exc}.") from exc
    if heartbeat <= 0:
        raise InvalidArgument.field("heartbeat_seconds", "The heartbeat period must be positive.")
    if any(not 0 < p < 65536 for p in adopt):
        raise InvalidArgument.field("adopt", "Adopted ports must be between 1 and 65535.")
    log_format = str(values.get("log_format") or "text")
    if log_format not in logs.FORMATS:
        raise InvalidArgument.field("log_format", f"--log-format must be text or json, not {log_format!r}.")
    metrics_listen = str(values.get("metrics_listen") or "")
    if metrics_listen:
        try:
            split_listen(metrics_listen)
        except ValueError:
            raise InvalidArgument.field(
                "metrics_listen", f"--metrics-listen {metrics_listen!r} is not HOST:PORT."
            ) from None
    redis_server = str(values.get("redis_server") or shutil.which("redis-server") or "/usr/bin/redis-server")
    redis_tls_parts = [values.get("redis_tls_ca"), values.get("redis_tls_cert"), values.get("redis_tls_key")]
    redis_tls = None
    if any(redis_tls_parts):
        if not all(redis_tls_parts):
            raise InvalidArgument.field(
                "redis_tls", "TLS servers need all of --redis-tls-ca, --redis-tls-cert and --redis-tls-key."
            )
        redis_tls = RedisTls(*(Path(str(p)).resolve() for p in redis_tls_parts))
    adopt_password_file = values.get("adopt_password_file")
    if values.get("adopt_user") and not adopt_password_file:
        raise InvalidArgument.field("adopt_user", "--adopt-user needs --adopt-password-file.")
    builds = tuple(parse_spec(str(spec)) for spec in values.get("build") or ())
    return AgentConfig(
        host_id=host_id,
        data_dir=Path(str(values.get("data_dir") or f"./.kvmaint/agent-{host_id}")).resolve(),
        scheduler=scheduler_list(values.get("scheduler")),
        advertise_host=str(values.get("advertise_host") or DEFAULT_ADVERTISE_HOST),
        adopt=adopt,
        redis_server=redis_server,
        builds=builds,
        tls=tls,
        tls_server_name=str(values.get("tls_server_name") or ""),
        insecure=bool(values.get("insecure") or False),
        token=str(values.get("token") or ""),
        heartbeat_seconds=heartbeat,
        log_level=str(values.get("log_level") or "INFO").upper(),
        log_format=log_format,
        metrics_listen=metrics_listen,
        redis_tls=redis_tls,
        adopt_user=str(values.get("adopt_user") or ""),
        adopt_password_file=Path(str(adopt_password_file)) if adopt_password_file else None,
    )


def scheduler_list(value: Any) -> str:
    """`scheduler` as a comma list of HOST:PORT (a TOML list or a string), each one checked."""
    if value is None or value == "" or value == []:
        return DEFAULT_SCHEDULER
    items = [str(v) for v in value] if isinstance(value, list | tuple) else str(value).split(",")
    targets = [t.strip() for t in items if t.strip()]
    for t in targets:
        host, sep, port = t.rpartition(":")
        if "///" not in t and (not sep or not host or not port.isdigit()):
            raise InvalidArgument.field("scheduler", f"--scheduler {t!r} is not HOST:PORT.")
    if not targets:
        raise InvalidArgument.field("scheduler", "--scheduler names no HOST:PORT.")
    return ",".join(targets)


def _check_keys(path: str, values: Mapping[str, Any], known: set[str]) -> None:
    """A typo in the file is an error naming the key, not a setting silently ignored."""
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidArgument.field(key, f"{path}: unknown key {key!r}{hint}")


def parse_config(argv: Sequence[str] | None = None) -> AgentConfig:
    args = vars(_parser().parse_args(argv))
    merged: dict[str, Any] = _from_toml(args["config"]) if args.get("config") else {}
    _check_keys(str(args.get("config")), merged, set(args) - {"config"})
    if os.environ.get("KVMAINT_AGENT_TOKEN"):
        merged["token"] = os.environ["KVMAINT_AGENT_TOKEN"]
    merged.update({k: v for k, v in args.items() if v is not None and k != "config"})
    return build_config(merged)
