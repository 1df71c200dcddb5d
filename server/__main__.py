"""`kvmaint-scheduler`: runs the scheduler until SIGTERM or SIGINT, then stops gracefully."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import ipaddress
import logging
import os
import resource
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from kvmaint.errors import InvalidArgument, KvmaintError
from kvmaint.obs import logs
from kvmaint.obs.metrics_http import split_listen
from kvmaint.version import add_version_flag
from server import configfile
from server.app import SchedulerConfig, build_scheduler
from server.auth import TokenTable
from server.domain.planner import Limits
from server.driver.runner import DriverConfig
from server.notify.sender import NotifyConfig, SmtpConfig
from server.storage.select import db_target, describe
from server.tls import agent_credentials, client_credentials, relay_credentials

log = logging.getLogger("kvmaint.scheduler")


def positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    """An argparse type: a number above zero, or a one-line usage error naming the value."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be above zero")
        return value

    return parse


def listen_address(text: str) -> str:
    """An argparse type: HOST:PORT (empty: off), or a one-line usage error."""
    try:
        if text:
            split_listen(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The scheduler's flags; `--config FILE` sets the same keys (server/configfile.py)."""
    p = argparse.ArgumentParser(
        prog="kvmaint-scheduler",
        description=__doc__,
        epilog="Also: kvmaint-scheduler backup --db FILE --to OUT, kvmaint-scheduler restore --db FILE "
        "--from BACKUP (see --help of each).",
    )
    p.add_argument(
        "--config",
        type=Path,
        help='TOML file whose keys are these flags without the dashes (listen = "0.0.0.0:50051"); '
        "flags given here win over it (example: deploy/scheduler.toml)",
    )
    add_version_flag(p)
    p.add_argument(
        "--listen",
        default=os.environ.get("KVMAINT_LISTEN", "127.0.0.1:50051"),
        help="HOST:PORT to serve gRPC on (default 127.0.0.1:50051; port 0 picks one)",
    )
    p.add_argument(
        "--db",
        type=db_target,
        default=db_target(os.environ.get("KVMAINT_DB", ".kvmaint/state.db")),
        help="SQLite database file (default ./.kvmaint/state.db), or a PostgreSQL URL "
        "(postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE)",
    )
    p.add_argument(
        "--tokens",
        default=os.environ.get("KVMAINT_TOKENS_FILE"),
        help="TOML file of bearer tokens (env KVMAINT_TOKENS_FILE); none: no auth, loopback only",
    )
    p.add_argument(
        "--port-file",
        type=Path,
        help="write the bound ports here once serving: API, agents, and Sentinel when --sentinel-listen",
    )
    p.add_argument(
        "--sentinel-listen",
        default=os.environ.get("KVMAINT_SENTINEL_LISTEN", ""),
        help="HOST:PORT for a Redis Sentinel-compatible discovery endpoint (master name = add-on name), "
        "so stock Redis clients follow failovers; off by default; port 0 picks one",
    )
    p.add_argument(
        "--agent-listen",
        default=os.environ.get("KVMAINT_AGENT_LISTEN", ""),
        help="HOST:PORT for agents (required with TLS, where agents need client certificates; "
        "without TLS agents may use --listen)",
    )
    p.add_argument("--tls-cert", type=Path, help="scheduler certificate (PEM); with --tls-key and --tls-ca")
    p.add_argument("--tls-key", type=Path, help="scheduler private key (PEM)")
    p.add_argument("--tls-ca", type=Path, help="CA that signs agents' certificates (PEM)")
    p.add_argument(
        "--catch-up-timeout",
        type=positive(float),
        default=60.0,
        help="seconds to wait for a standby to catch up before a maintenance fails (default 60)",
    )
    p.add_argument(
        "--failover-timeout-ms",
        type=positive(int),
        default=5000,
        help="longest write pause a failover may take before it is abandoned (default 5000)",
    )
    p.add_argument(
        "--command-timeout",
        type=positive(float),
        default=60.0,
        help="seconds to wait for an agent's answer to one command (default 60)",
    )
    p.add_argument(
        "--tick-seconds",
        type=positive(float),
        default=5.0,
        help="how often due maintenances are started (default 5)",
    )
    p.add_argument(
        "--max-concurrent",
        type=positive(int),
        default=10,
        help="maintenances running at once across the fleet (default 10)",
    )
    p.add_argument(
        "--max-per-host",
        type=positive(int),
        default=2,
        help="maintenances touching one host at once (default 2)",
    )
    _notify_args(p)
    p.add_argument(
        "--metrics-listen",
        default=os.environ.get("KVMAINT_METRICS_LISTEN", ""),
        type=listen_address,
        help="HOST:PORT to serve Prometheus metrics on at /metrics (env KVMAINT_METRICS_LISTEN; "
        "default: off; port 0 picks one, logged)",
    )
    p.add_argument(
        "--http-listen",
        default=os.environ.get("KVMAINT_HTTP_LISTEN", ""),
        type=listen_address,
        help="HOST:PORT for the read-only web status page (env KVMAINT_HTTP_LISTEN; default: off; behind "
        "the same tokens as the API; port 0 picks one, logged)",
    )
    p.add_argument(
        "--lease-seconds",
        type=positive(float),
        default=5.0,
        help="PostgreSQL replicas: how long the leader's lease lasts after each renewal (about every "
        "second); a replica that cannot renew stops acting before it ends, another takes over after "
        "(default 5)",
    )
    p.add_argument(
        "--replica-id",
        default=os.environ.get("KVMAINT_REPLICA_ID", ""),
        help="this replica's name in `kvmaint schedulers` and the lease (default HOST:PID); unique per "
        "process",
    )
    p.add_argument(
        "--advertise",
        default=os.environ.get("KVMAINT_ADVERTISE", ""),
        type=listen_address,
        help="HOST:PORT other replicas, clients and agents should use for this one (default: --listen, "
        "with this host's name for 0.0.0.0); agents get its host with the --agent-listen port",
    )
    p.add_argument("--log-level", default="INFO")
    p.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=os.environ.get("KVMAINT_LOG_FORMAT", "text"),
        help="text (default) or json: one object per line with time, level, message and, where they "
        "apply, maintenance_id, addon, step, host (env KVMAINT_LOG_FORMAT)",
    )
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    configfile.apply(p, argv)
    return p.parse_args(argv)


def _notify_args(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    p.add_argument(
        "--smtp-host",
        default=env("KVMAINT_SMTP_HOST", ""),
        help="SMTP server for app owners' emails (env KVMAINT_SMTP_HOST); none: no email is queued",
    )
    p.add_argument(
        "--smtp-port",
        type=int,
        default=int(env("KVMAINT_SMTP_PORT", "0")),
        help="SMTP port (env KVMAINT_SMTP_PORT; default 587 with --smtp-starttls, else 25)",
    )
    p.add_argument(
        "--smtp-user",
        default=env("KVMAINT_SMTP_USER", ""),
        help="SMTP login (env KVMAINT_SMTP_USER); the password only from env KVMAINT_SMTP_PASSWORD",
    )
    p.add_argument(
        "--smtp-starttls",
        action="store_true",
        default=env("KVMAINT_SMTP_STARTTLS", "") not in ("", "0", "false"),
        help="require STARTTLS, with the server's certificate verified (env KVMAINT_SMTP_STARTTLS=1)",
    )
    p.add_argument(
        "--smtp-from",
        default=env("KVMAINT_SMTP_FROM", "kvmaint@localhost"),
        help="sender address of notification emails (default kvmaint@localhost)",
    )
    p.add_argument(
        "--operator-email",
        default=env("KVMAINT_OPERATOR_EMAIL", ""),
        help="operators' address: a campaign that halts itself mails it why (env KVMAINT_OPERATOR_EMAIL)",
    )
    p.add_argument(
        "--notify-interval",
        type=float,
        default=5.0,
        help="seconds between checks for 24-hour reminders and due notifications (default 5)",
    )
    p.add_argument(
        "--notify-retry-max",
        type=float,
        default=300.0,
        help="longest wait between attempts to deliver a notification, in seconds (default 300)",
    )
    p.add_argument(
        "--webhook-allow-private",
        action="store_true",
        default=env("KVMAINT_WEBHOOK_ALLOW_PRIVATE", "") not in ("", "0", "false"),
        help="let webhooks reach loopback and private addresses (off: app owners could aim the "
        "scheduler at internal services)",
    )


def notify_config(args: argparse.Namespace) -> NotifyConfig:
    password = os.environ.get("KVMAINT_SMTP_PASSWORD", "")
    if args.smtp_user and not password:
        raise InvalidArgument("--smtp-user needs the password in the environment: KVMAINT_SMTP_PASSWORD.")
    if "@" not in args.smtp_from or any(c.isspace() for c in args.smtp_from):
        raise InvalidArgument(f"--smtp-from {args.smtp_from!r} is not an email address.")
    if args.notify_interval <= 0 or args.notify_retry_max <= 0:
        raise InvalidArgument("--notify-interval and --notify-retry-max must be positive.")
    smtp = SmtpConfig(
        host=args.smtp_host,
        port=args.smtp_port or (587 if args.smtp_starttls else 25),
        username=args.smtp_user,
        password=password,
        starttls=args.smtp_starttls,
        sender=args.smtp_from,
    )
    if smtp.enabled:
        log.info(
            "emails to app owners via %s:%d%s from %s",
            smtp.host,
            smtp.port,
            " (STARTTLS)" if smtp.starttls else "",
            smtp.sender,
        )
    else:
        log.warning("no --smtp-host: app owners get no email (webhooks are still sent)")
    return NotifyConfig(
        smtp=smtp,
        interval=args.notify_interval,
        retry_max=args.notify_retry_max,
        retry_base=min(1.0, args.notify_retry_max),
        allow_private_webhooks=args.webhook_allow_private,
        operator_email=args.operator_email,
    )


def _is_loopback(listen: str) -> bool:
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve(args: argparse.Namespace) -> int:
    tokens = TokenTable.load(args.tokens) if args.tokens else TokenTable({})
    if not tokens.enabled:
        for address in (args.listen, args.http_listen):
            if address and not _is_loopback(address):
                log.error("refusing to listen on %s without tokens: pass --tokens FILE", address)
                return 2
        log.warning("no tokens configured: authentication is off (allowed on loopback only)")
        if args.sentinel_listen and not _is_loopback(args.sentinel_listen):
            log.error(
                "refusing to serve Sentinel on %s without tokens: pass --tokens FILE",
                args.sentinel_listen,
            )
            return 2
    if args.sentinel_listen:
        try:
            split_listen(args.sentinel_listen)
        except ValueError as err:
            log.error("--sentinel-listen: %s", err)
            return 2
    creds = agent_creds = relay_creds = None
    tls = (args.tls_cert, args.tls_key, args.tls_ca)
    if any(tls):
        if not all(tls):
            log.error("--tls-cert, --tls-key and --tls-ca go together")
            return 2
        if not args.agent_listen:
            log.error("with TLS, agents need their own port: pass --agent-listen HOST:PORT")
            return 2
        creds = client_credentials(args.tls_cert, args.tls_key)
        agent_creds = agent_credentials(args.tls_cert, args.tls_key, args.tls_ca)
        relay_creds = relay_credentials(args.tls_ca)
    else:
        log.warning("no TLS: agents connect in plain text, accepted from loopback only")
    driver = DriverConfig(
        catch_up_timeout=args.catch_up_timeout,
        failover_timeout_ms=args.failover_timeout_ms,
        command_timeout=args.command_timeout,
    )
    scheduler = await build_scheduler(
        SchedulerConfig(
            listen=args.listen,
            db=args.db,
            tokens=tokens,
            server_credentials=creds,
            driver=driver,
            tick_seconds=args.tick_seconds,
            limits=Limits(max_running=args.max_concurrent, max_per_host=args.max_per_host),
            notify=notify_config(args),
            agent_listen=args.agent_listen,
            agent_credentials=agent_creds,
            sentinel_listen=args.sentinel_listen,
            metrics_listen=args.metrics_listen,
            http_listen=args.http_listen,
            forward_credentials=relay_creds,
            lease_seconds=args.lease_seconds,
            replica_id=args.replica_id,
            advertise=args.advertise,
        )
    )
    host = args.listen.rsplit(":", 1)[0]
    log.info(
        "scheduler serving on %s:%d (agents on port %d), state in %s",
        host,
        scheduler.port,
        scheduler.agent_port,
        describe(args.db),
    )
    if scheduler.sentinel is not None:
        log.info("Sentinel-compatible endpoint on %s:%d", host, scheduler.sentinel_port)
    settle_heap()
    # Before the port file tells anyone it is up: a SIGTERM from then on is a graceful stop.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.port_file:
        tmp = args.port_file.with_suffix(".tmp")
        sentinel = f"{scheduler.sentinel_port}\n" if scheduler.sentinel is not None else ""
        tmp.write_text(f"{scheduler.port}\n{scheduler.agent_port}\n{sentinel}")
        tmp.replace(args.port_file)
    await stop.wait()
    log.info("shutting down")
    await scheduler.stop()
    return 0


def settle_heap() -> None:
    """What startup loaded (modules, descriptors, the store's caches) lives as long as the process: moved
    out of the collector's sight, a full collection scans only what came after. Before, one took up to
    94 ms at 10k add-ons, and every API call in flight waited for it (`bench/fleet_scale.py`)."""
    gc.collect()
    gc.freeze()


def tune_process() -> None:
    """One scheduler holds one connection per agent: raise the descriptor limit as far as allowed, and
    make the collector run less often (many long-lived stream objects make full collections costly;
    young collections of 10,000 objects take a few ms, of 50,000 up to 35 ms, all calls waiting)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard)
            )
    gc.set_threshold(10_000, 50, 100)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("backup", "restore"):
        from server import backup

        sys.exit(backup.main(argv))
    args = parse_args(argv)
    tune_process()
    logs.configure(args.log_level, args.log_format, "%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        sys.exit(asyncio.run(serve(args)))
    except KvmaintError as err:
        print(f"kvmaint-scheduler: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
