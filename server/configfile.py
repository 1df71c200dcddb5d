"""`kvmaint-scheduler --config FILE`: a TOML file whose keys are the scheduler's flags.

A key is a flag's name without the leading dashes, with `_` or `-` (`catch_up_timeout = 30`); each value
goes through the flag's own parser, so the file accepts exactly what the command line accepts and says
which key is wrong. The values become the parser's defaults: a flag given on the command line wins over
the file, and the file wins over `KVMAINT_*` environment variables and built-in defaults.
"""

from __future__ import annotations

import argparse
import difflib
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kvmaint.errors import InvalidArgument

# Flags that make no sense inside the file (the file itself, argparse's own).
NOT_IN_FILE = frozenset({"config", "help", "version"})


def file_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The settable options by key (argparse dest), flags-only: positionals and meta flags left out."""
    return {
        action.dest: action
        for action in parser._actions
        if action.option_strings and action.dest not in NOT_IN_FILE and action.dest != argparse.SUPPRESS
    }


def config_path(argv: Sequence[str]) -> Path | None:
    """The `--config FILE` of a command line, read before the full parse (its values are defaults)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(list(argv))
    path: Path | None = known.config
    return path


def load(path: Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Reads FILE and returns {dest: parsed value}; raises `InvalidArgument` naming the file and key."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as err:
        raise InvalidArgument.field("config", f"cannot read {path}: {err.strerror}") from err
    except tomllib.TOMLDecodeError as err:
        raise InvalidArgument.field("config", f"{path} is not valid TOML: {err}") from err
    options = file_options(parser)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        dest = key.replace("-", "_")
        action = options.get(dest)
        if action is None:
            known = sorted(options)
            close = difflib.get_close_matches(dest, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            raise InvalidArgument.field(key, f"{path}: unknown key {key!r}{hint}")
        values[dest] = _convert(path, key, action, value)
    return values


def _convert(path: Path, key: str, action: argparse.Action, value: Any) -> Any:
    """One value through its flag's own rules: booleans for switches, the flag's `type` for the rest."""
    where = f"{path}: {key}"
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        if not isinstance(value, bool):
            raise InvalidArgument.field(key, f"{where} must be true or false, not {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidArgument.field(key, f"{where} must be a string or a number, not {value!r}")
    text = str(value)
    if action.choices is not None and text not in action.choices:
        choices = ", ".join(str(c) for c in action.choices)
        raise InvalidArgument.field(key, f"{where} must be one of {choices}, not {text!r}")
    convert: Any = action.type
    if convert is None:
        return text
    try:
        return convert(text)
    except (argparse.ArgumentTypeError, TypeError, ValueError) as err:
        detail = str(err) or f"{text!r} is not valid"
        raise InvalidArgument.field(key, f"{where}: {detail}") from None


def apply(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Makes the `--config` file's values the parser's defaults (flags then override them); a bad file
    exits 2 with one line naming the key (the usage screen would bury it)."""
    path = config_path(argv)
    if path is None:
        return
    try:
        parser.set_defaults(**load(path, parser))
    except InvalidArgument as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
