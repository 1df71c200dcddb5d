"""`kvmaint apps:exec`: a program that knows nothing of kvmaint, restarted onto the new primary."""

from __future__ import annotations

import argparse

from kvmaint.cli.context import Context
from kvmaint.cli.values import UsageError
from kvmaint.supervise.run import ExecSpec, exec_app


def apps_exec(ctx: Context, args: argparse.Namespace) -> int:
    command = list(args.cmd)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("Name the command to run after --, e.g. kvmaint apps:exec -a APP -- ./web", "CMD")
    if args.grace is not None and not args.grace >= 0:
        raise UsageError(f"--grace must be 0 or more seconds, not {args.grace:g}", "--grace")
    grace = 30.0 if args.grace is None else float(args.grace)
    return exec_app(ExecSpec(args.app, command, grace), ctx.options)
