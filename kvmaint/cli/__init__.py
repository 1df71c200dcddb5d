"""The `kvmaint` command-line client of the scheduler."""

import os

# gRPC's C core logs some failures (a TLS handshake) straight to stderr, which would add lines to the
# one-sentence error. Quiet unless the user asks for it with GRPC_VERBOSITY; set before grpc loads.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

from kvmaint.cli.entry import main

__all__ = ["main"]
