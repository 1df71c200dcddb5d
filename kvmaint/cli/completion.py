"""`kvmaint completion bash|zsh`: a completion script made by shtab from the parser itself, so every
command, alias and flag completes exactly as it parses."""

from __future__ import annotations

import argparse

from kvmaint.cli.context import Context

SHELLS = ("bash", "zsh")

# Readline splits words at ':' (it is in COMP_WORDBREAKS), so "data:maintenances:in<Tab>" would reach the
# completion function as three words. kvmaint's commands contain colons: treat them as part of a word, as
# npm's and Heroku's completions do.
_BASH_PREAMBLE = """# kvmaint's commands contain ':'; keep readline from splitting words there.
COMP_WORDBREAKS=${COMP_WORDBREAKS//:/}
"""


def script(shell: str) -> str:
    import shtab

    from kvmaint.cli.parser import build_parser

    parser = build_parser()
    text = str(shtab.complete(parser, shell=shell))
    return _BASH_PREAMBLE + text if shell == "bash" else text


def completion(ctx: Context, args: argparse.Namespace) -> int:
    ctx.out.line(script(args.shell).rstrip("\n"))
    return 0
