"""The command line: Heroku-style command names ("data:maintenances:run") and flags, one handler each."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn

from kvmaint.cli import apps, campaigns, completion, events, fleet, freezes, maintenance, webhooks
from kvmaint.cli.context import Context
from kvmaint.cli.suggest import did_you_mean
from kvmaint.version import add_version_flag

Handler = Callable[[Context, argparse.Namespace], int]

DESCRIPTION = "Planned maintenance for fleets of Redis servers, driven through the kvmaint scheduler."
ENV_APP = "KVMAINT_APP"
EPILOG = ("Connection: --scheduler HOST:PORT[,HOST:PORT...] or $KVMAINT_SCHEDULER (default 127.0.0.1:50051; "
          "several addresses: scheduler replicas, the next tried when one is unreachable); "
          "--token or $KVMAINT_TOKEN; --ca FILE or $KVMAINT_CA for TLS. -a APP defaults to $KVMAINT_APP. "
          "Shell completion: kvmaint completion bash|zsh. -j/--json prints the same fields "
          "as the human output under snake_case keys, as plain JSON (not the protobuf messages): an "
          "object for one item, a list for tables and redis:info, one object per line (JSON Lines) for "
          "events. Progress and errors go to stderr; an error is one sentence and exit code 1.")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one sentence on stderr (exit 2) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        sentence = message[:1].upper() + message[1:]
        if not sentence.endswith("?"):
            sentence = f"{sentence.rstrip('.')}."
        print(f"{sentence} See '{self.prog} -h'.", file=sys.stderr)
        raise SystemExit(2)

    def _check_value(self, action: argparse.Action, value: object) -> None:
        """An unknown command: the close ones ("did you mean"), not a dump of every command."""
        if isinstance(action, argparse._SubParsersAction) and value not in (action.choices or {}):
            known = list(action.choices or {})
            hint = did_you_mean(str(value), known)
            self.error(f"'{value}' is not a {self.prog} command.{hint}" if hint
                       else f"'{value}' is not a {self.prog} command")
        super()._check_value(action, value)

    def option_strings(self) -> list[str]:
        return [o for a in self._actions for o in a.option_strings]

    def unknown_arguments(self, extras: list[str]) -> NoReturn:
        """Arguments this (sub)command does not take, with the closest flag it does take."""
        first = extras[0]
        if first.startswith("-") and len(first) > 1:
            flag = first.split("=", 1)[0]
            hint = did_you_mean(flag, [o for o in self.option_strings() if o.startswith("--")]
                                if flag.startswith("--") else self.option_strings())
            self.error(f"unknown flag {flag}.{hint}" if hint else f"unknown flag {flag}")
        self.error(f"unexpected argument{'s' if len(extras) > 1 else ''}: {' '.join(extras)}")


def _common() -> Parser:
    """Global options, accepted before or after the command. SUPPRESS keeps a subcommand's unset copy
    from overwriting a value given before the command."""
    common = Parser(add_help=False)
    common.add_argument("--scheduler", metavar="HOST:PORT", default=argparse.SUPPRESS,
                        help="scheduler address, or replicas' addresses a:1,b:2,c:3 tried in turn "
                             "(env KVMAINT_SCHEDULER, default 127.0.0.1:50051)")
    common.add_argument("--token", metavar="TOKEN", default=argparse.SUPPRESS,
                        help="bearer token (env KVMAINT_TOKEN)")
    common.add_argument("--ca", metavar="FILE", default=argparse.SUPPRESS,
                        help="CA certificate: connect with TLS (env KVMAINT_CA)")
    common.add_argument("-j", "--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the result as JSON")
    return common


def _app(p: argparse.ArgumentParser, required: bool, help: str = "app name") -> None:
    """-a/--app, else $KVMAINT_APP (resolved by `resolve_app` after parsing, so the variable can
    satisfy a required app)."""
    p.add_argument("-a", "--app", metavar="APP", help=f"{help} (env {ENV_APP})")
    p.set_defaults(app_required=required)


def resolve_app(args: argparse.Namespace, env: Mapping[str, str]) -> str | None:
    """The app of a command that takes -a: the flag, else $KVMAINT_APP; a usage error (returned as the
    sentence) when the command needs one and neither is set."""
    if not hasattr(args, "app"):
        return None
    if not args.app and env.get(ENV_APP):
        args.app = env[ENV_APP]
    if getattr(args, "app_required", False) and not args.app:
        return f"Missing required flag -a/--app APP (or set {ENV_APP})"
    return None


def commands(parser: argparse.ArgumentParser) -> dict[str, Parser]:
    """Each command's own parser, by name and alias."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def build_parser() -> Parser:
    common = _common()
    parser = Parser(prog="kvmaint", description=DESCRIPTION, epilog=EPILOG, parents=[common])
    add_version_flag(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    def command(name: str, handler: Handler, help: str,
                aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common], aliases=list(aliases))
        p.set_defaults(handler=handler)
        return p

    p = command("apps:create", fleet.apps_create, "create an app")
    p.add_argument("name", metavar="APP")
    p.add_argument("--owner-email", metavar="EMAIL")
    command("apps", fleet.apps_list, "list apps")
    p = command("apps:destroy", fleet.apps_destroy, "destroy an app and its add-ons")
    p.add_argument("name", metavar="APP")
    p.add_argument("-c", "--confirm", metavar="APP", help="the app's name again")
    p = command("apps:exec", apps.apps_exec,
                "run CMD with the app's config vars; restart it when one changes (SIGTERM, grace, SIGKILL)")
    _app(p, True)
    p.add_argument("--grace", type=float, metavar="SECONDS",
                   help="how long a restart or a passed-on signal waits before SIGKILL (default 30)")
    p.add_argument("cmd", metavar="-- CMD [ARGS...]", nargs=argparse.REMAINDER, help="the command to run")
    p = command("maintenance", fleet.maintenance_status,
                "show whether an app is in maintenance mode (on/off)")
    _app(p, True)
    p = command("maintenance:on", fleet.maintenance_on, "put an app into maintenance mode")
    _app(p, True)
    p = command("maintenance:off", fleet.maintenance_off, "take an app out of maintenance mode")
    _app(p, True)

    p = command("addons:create", fleet.addons_create, "create a Redis add-on")
    p.add_argument("plan", metavar="PLAN", help="mini, premium-N, private-N or shield-N")
    _app(p, True)
    p.add_argument("--primary", metavar="HOST:PORT", help="register an existing server as the primary")
    p.add_argument("--standby", metavar="HOST:PORT", help="register an existing server as the HA standby")
    p.add_argument("--name", dest="addon_name", metavar="NAME", help="add-on name (generated when omitted)")
    p.add_argument("--as", dest="attachments", metavar="REDIS_URL", action="append",
                   help="attachment (config var) name; repeatable; default REDIS_URL")
    p = command("addons", fleet.addons_list, "list add-ons (of every app without -a)")
    _app(p, False)
    p = command("config", fleet.config, "show an app's config vars")
    _app(p, True)
    p = command("config:get", fleet.config_get, "print one config var's value (REDIS_URL, with its password)")
    p.add_argument("key", metavar="KEY")
    _app(p, True)

    p = command("redis:info", maintenance.redis_info,
                "show add-on info (every add-on of the app without ADDON)", aliases=["redis"])
    p.add_argument("addon", metavar="ADDON", nargs="?")
    _app(p, False)

    p = command("data:maintenances", maintenance.maintenances_list, "list an app's maintenances")
    _app(p, False)
    p.add_argument("--filing", metavar="ID",
                   help="what one maintenances:require filed, across apps (operators; -a narrows it)")
    p = command("data:maintenances:info", maintenance.maintenance_info, "show an add-on's maintenance")
    _addon(p)
    p = command("data:maintenances:window", maintenance.window_show, "show an add-on's maintenance window")
    _addon(p)
    p = command("data:maintenances:window:update", maintenance.window_update,
                "set the weekly maintenance window (4 hours, UTC)")
    _addon(p)
    p.add_argument("day", metavar="DAY", help="Monday .. Sunday")
    p.add_argument("time", metavar="TIME", help="start time in UTC, e.g. 14:30")
    p = command("data:maintenances:schedule", maintenance.schedule, "reschedule the pending maintenance")
    _addon(p)
    when = p.add_mutually_exclusive_group()
    when.add_argument("--weeks", type=int, metavar="N", help="delay by N weeks (default 2)")
    when.add_argument("--week", metavar="YYYY-MM-DD", help="into the window of the week of this date")
    p = command("data:maintenances:run", maintenance.run, "start the pending maintenance now")
    _addon(p)
    p.add_argument("-c", "--confirm", metavar="APP",
                   help="the app's name, when it is not in maintenance mode")
    p.add_argument("-w", "--wait", action="store_true", help="follow progress until the maintenance ends")
    p = command("data:maintenances:wait", maintenance.wait,
                "follow a running maintenance until it ends (exit 1 at once when none is running)")
    _addon(p)
    p = command("data:maintenances:history", maintenance.history, "list an add-on's past maintenances")
    _addon(p)
    p.add_argument("-n", "--num", dest="limit", type=int, metavar="N", help="how many (1..20, default 5)")

    p = command("data:maintenances:freezes", freezes.freezes_list,
                "list freezes in force: periods in which no maintenance starts (emergencies excepted)")
    _app(p, False, "app (its freezes and the fleet's); without it, every freeze (operators)")
    p = command("data:maintenances:freezes:add", freezes.freezes_add,
                "freeze maintenance of an app (or of the fleet) between two times")
    _app(p, False)
    p.add_argument("--fleet", action="store_true", help="freeze every app (operators)")
    p.add_argument("--from", dest="start", required=True, metavar="TIME", help="ISO 8601, UTC when naive")
    p.add_argument("--to", dest="end", required=True, metavar="TIME", help="ISO 8601, UTC when naive")
    p.add_argument("--reason", metavar="TEXT")
    p = command("data:maintenances:freezes:remove", freezes.freezes_remove, "remove a freeze")
    p.add_argument("id", metavar="ID")
    _app(p, False)
    p.add_argument("--fleet", action="store_true", help="the freeze is fleet-wide (operators)")

    p = command("maintenances:require", fleet.maintenances_require,
                "file a maintenance for add-ons (operators)")
    p.add_argument("--reason", required=True, metavar="REASON",
                   help="routine_maintenance, security_patch, redis_upgrade, infrastructure or emergency")
    p.add_argument("--required-by", metavar="TIME", help="ISO 8601 date or time, UTC when naive")
    p.add_argument("--method", metavar="METHOD", help="failover (default) or restart")
    p.add_argument("--build", metavar="NAME",
                   help="move the servers onto this build (kvmaint builds); default: their current one")
    p.add_argument("--allow-downgrade", action="store_true",
                   help="allow a --build older than what an add-on runs")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--addon", dest="addons", metavar="NAME", nargs="+", action="extend")
    target.add_argument("--plan", metavar="PLAN")
    target.add_argument("--all", action="store_true")

    p = command("campaigns:create", campaigns.campaigns_create,
                "roll a build out over the fleet in waves that halt themselves (operators)")
    p.add_argument("--build", required=True, metavar="NAME", help="the build to move the servers onto")
    p.add_argument("--reason", required=True, metavar="REASON", help="redis_upgrade, security_patch, ...")
    p.add_argument("--required-by", required=True, metavar="T", help="ISO 8601 date or time, UTC when naive")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--all", action="store_true", help="every add-on")
    target.add_argument("--plan", metavar="P", help="every add-on of plan P")
    target.add_argument("-a", "--app", dest="apps", metavar="APP", action="append", help="an app's add-ons")
    p.add_argument("--canary", type=int, metavar="N", help="add-ons in the canary wave (default 1)")
    p.add_argument("--waves", metavar="10%,50%,100%",
                   help="cumulative shares of the rest, one per wave (default 10%%,50%%,100%%)")
    p.add_argument("--soak", metavar="DURATION",
                   help="how long after a wave ended the next is released: 30s, 15m, 2h (default 1h)")
    p.add_argument("--halt-on-failures", type=int, metavar="K",
                   help="halt after K failed attempts in a wave (default 1)")
    p.add_argument("--halt-on-pause-ms", type=int, metavar="MS",
                   help="halt when a maintenance paused writes longer than MS (default 1000; 0: never)")
    p.add_argument("--allow-downgrade", action="store_true", help="allow a build older than what runs")
    p.add_argument("--dry-run", action="store_true",
                   help="write nothing; print each add-on's wave, window and deadline, and a per-day count")
    command("campaigns", campaigns.campaigns_list, "list campaigns with each wave's counts (operators)")
    for name, handler, text in (
        ("campaigns:info", campaigns.campaigns_info, "show a campaign: waves, counts, add-ons, halt reason"),
        ("campaigns:resume", campaigns.campaigns_resume, "resume a halted campaign from its current wave"),
        ("campaigns:cancel", campaigns.campaigns_cancel,
         "cancel a campaign: its pending maintenances are canceled, running ones finish"),
    ):
        p = command(name, handler, text)
        p.add_argument("id", metavar="ID")

    command("agents", fleet.agents, "list the database hosts' agents and their servers (operators)")
    command("builds", fleet.builds, "list the server builds on the fleet's hosts (operators)")
    command("schedulers", fleet.schedulers,
            "list the scheduler replicas: which one leads, its term, each one's last heartbeat (operators)")

    p = command("events", events.events, "show stored events; --follow streams new ones")
    _app(p, False)
    p.add_argument("--addon", metavar="ADDON")
    p.add_argument("--since", type=int, metavar="SEQ", help="only events after this sequence number")
    p.add_argument("--follow", action="store_true", help="keep streaming new events")

    p = command("webhooks", webhooks.webhooks_list, "list the endpoints an app's maintenance notices go to")
    _app(p, False, "app name (an app token may omit it)")
    p = command("webhooks:add", webhooks.webhooks_add,
                "POST an app's maintenance notices to URL, signed with a secret (shown once if made)")
    p.add_argument("url", metavar="URL", help="https://... or http://...")
    _app(p, False, "app name (an app token may omit it)")
    p.add_argument("--secret", metavar="S", help="signing secret, 16+ characters (default: one is made)")
    p = command("webhooks:remove", webhooks.webhooks_remove, "stop sending an app's notices to a webhook")
    p.add_argument("id", metavar="ID")
    _app(p, False, "app name (an app token may omit it)")

    p = command("completion", completion.completion,
                "print a shell completion script: eval \"$(kvmaint completion bash)\" (or zsh)")
    p.add_argument("shell", metavar="SHELL", choices=completion.SHELLS, help=" or ".join(completion.SHELLS))
    return parser


def _addon(p: argparse.ArgumentParser) -> None:
    p.add_argument("addon", metavar="ADDON", help="add-on name or attachment name (REDIS_URL)")
    _app(p, False)
