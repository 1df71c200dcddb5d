"""The events command: stored events, then with --follow new ones as they happen, one line each."""

from __future__ import annotations

import argparse
import time

from kvmaint.cli import format as fmt
from kvmaint.cli.context import Context
from kvmaint.errors import ErrorReason, RPCError
from kvmaint.v1 import events_pb2

# A follow stream that lasted this long had been under way when it broke.
RESUME_AFTER = 2.0


def events(ctx: Context, args: argparse.Namespace) -> int:
    request = events_pb2.StreamEventsRequest(
        app=args.app or "", addon=args.addon or "", since_sequence=args.since or 0, follow=args.follow
    )
    while True:
        began, printed = time.monotonic(), False
        try:
            for resp in ctx.conn.stream(ctx.conn.events.StreamEvents, request):
                view = fmt.event_view(resp.event)
                if ctx.out.json_mode:
                    ctx.out.json_line(view)  # JSON Lines: a follower can parse each line as it arrives
                else:
                    ctx.out.line(fmt.event_line(view))
                request.since_sequence = resp.event.sequence
                printed = True
            return 0
        except RPCError as err:
            # Following replicas (--scheduler a,b,c): the one streaming died; resume on the next from the
            # last event printed, so nothing is missed or printed twice (sequences are gapless).
            # A stream that was never under way (every address refused at once) is an error, not a resume.
            streamed = printed or time.monotonic() - began > RESUME_AFTER
            unreachable = err.reason == ErrorReason.SCHEDULER_UNREACHABLE
            if not unreachable or len(ctx.conn.addresses) == 1 or not streamed:
                raise
            ctx.conn.next_address()
