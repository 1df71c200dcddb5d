"""The installed kvmaint version, and the `--version` flag every kvmaint binary takes."""

from __future__ import annotations

import argparse
from importlib import metadata


def version() -> str:
    """The version of the installed distribution (pyproject.toml's), so every binary reports the same."""
    try:
        return metadata.version("kvmaint")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def add_version_flag(parser: argparse.ArgumentParser) -> None:
    """`PROG --version` prints "PROG 0.1.0" and exits 0, before any required option is checked."""
    parser.add_argument("--version", action="version", version=f"{parser.prog} {version()}",
                        help="print the version and exit")
