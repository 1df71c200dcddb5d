"""`kvmaint completion bash|zsh`: a completion script made by shtab from the parser itself, so every
command, alias and flag completes exactly as it parses."""

from __future__ import annotations

import argparse
import re

from kvmaint.cli.context import Context

SHELLS = ("bash", "zsh")

# Readline splits words at ':' (it is in COMP_WORDBREAKS), so "data:maintenances:in<Tab>" would reach the
# completion function as three words. kvmaint's commands contain colons: treat them as part of a word, as
# npm's and Heroku's completions do.
_BASH_PREAMBLE = """# kvmaint's commands contain ':'; keep readline from splitting words there.
COMP_WORDBREAKS=${COMP_WORDBREAKS//:/}
"""


# zsh's _describe reads "name:description" and splits at the first unescaped ':', so shtab's
# `data:maintenances:info:'...'` would offer "data". Escape the colons inside each command name, with
# a doubled backslash: the array is unquoted shell words, whose quote removal eats a single one.
_ZSH_COMMAND = re.compile(r"^(\s+)([A-Za-z0-9:_-]+):'", re.MULTILINE)


def _zsh_escape_names(text: str) -> str:
    start = text.index("_commands=(")
    end = text.index(")\n", start)
    block = _ZSH_COMMAND.sub(lambda m: f"{m[1]}{m[2].replace(':', 2 * chr(92) + ':')}:'", text[start:end])
    return text[:start] + block + text[end:]


def script(shell: str) -> str:
    import shtab

    from kvmaint.cli.parser import build_parser

    text = str(shtab.complete(build_parser(), shell=shell))
    return _BASH_PREAMBLE + text if shell == "bash" else _zsh_escape_names(text)


def completion(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.line(script(args.shell).rstrip("\n"))
    return 0
