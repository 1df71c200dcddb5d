"""`kvmaint` entry point: parse, run one handler, and turn every failure into one sentence and an exit code.

Exit codes: 0 success, 1 any error (server refusal, unreachable scheduler, bad value), 2 a command line
argparse cannot parse, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from kvmaint.channel import ChannelOptions
from kvmaint.cli.context import Context
from kvmaint.cli.output import Output
from kvmaint.cli.parser import build_parser, commands, resolve_app
from kvmaint.errors import KvmaintError, RPCError


def error_sentence(err: KvmaintError) -> str:
    """The server's sentence; for a rejected argument, with the field violations' descriptions that
    it does not already contain."""
    message = str(err).strip()
    if not isinstance(err, RPCError):
        return message
    extra = [
        v.description.strip()
        for v in err.violations
        if v.description.strip() and v.description.strip().rstrip(".") not in message
    ]
    if not extra:
        return message
    if not message:
        return "; ".join(extra)
    return f"{message.rstrip('.')}: {'; '.join(d.rstrip('.') for d in extra)}."


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(list(argv) if argv is not None else None)
        own = commands(parser).get(str(getattr(args, "command", "")), parser)
        if extras:  # reported by the command's own parser, which names its own help
            own.unknown_arguments(extras)
        missing = resolve_app(args, os.environ)
        if missing:
            own.error(missing)
    except SystemExit as exit_:  # -h, --version, or a usage mistake already reported by the parser
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    options = ChannelOptions.resolve(
        getattr(args, "scheduler", None), getattr(args, "token", None), getattr(args, "ca", None)
    )
    ctx = Context(options=options, out=Output(json_mode=getattr(args, "json", False)))
    try:
        return int(args.handler(ctx, args))
    except KvmaintError as err:
        print(error_sentence(err), file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (head, less) left: stop quietly, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    finally:
        try:
            ctx.close()
        except KeyboardInterrupt:
            pass
