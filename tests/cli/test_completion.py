"""`kvmaint completion bash|zsh`, loaded into a real bash and a real zsh, asked for completions the way
the shell asks on Tab."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = str(Path(sys.executable).parent)
ENV = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}


def bash(script: str) -> str:
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True,
                          env=ENV, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


LOAD_BASH = 'eval "$(kvmaint completion bash)"\n'


def readline_words(line: str, breaks: str) -> list[str]:
    """The words readline hands a completion function: split at blanks, and at each COMP_WORDBREAKS
    character (which is a word of its own)."""
    others = "".join(re.escape(c) for c in breaks if not c.isspace())
    pattern = rf"[^\s{others}]+|[{others}]" if others else r"\S+"
    words = re.findall(pattern, line)
    return [*words, ""] if not line or line[-1].isspace() else words


def bash_complete(line: str) -> list[str]:
    """What Tab offers after `line` in a bash that loaded the script (through `complete -p kvmaint`)."""
    breaks = bash(LOAD_BASH + 'printf %s "$COMP_WORDBREAKS"')
    words = readline_words(line, breaks)
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    out = bash(LOAD_BASH + f"""
spec=$(complete -p kvmaint); fn=${{spec#*-F }}; fn=${{fn%% *}}
COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}
COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}
"$fn" kvmaint "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\\n' "${{COMPREPLY[@]}}"
""")
    return sorted(w.strip() for w in out.splitlines() if w.strip())


def test_bash_completes_commands_with_colons_and_flags() -> None:
    assert ":" not in bash(LOAD_BASH + 'printf %s "$COMP_WORDBREAKS"')
    assert bash_complete("kvmaint data:maintenances:w") == [
        "data:maintenances:wait", "data:maintenances:window", "data:maintenances:window:update"]
    assert bash_complete("kvmaint red") == ["redis", "redis:info"]
    assert bash_complete("kvmaint data:maintenances:run REDIS_URL --w") == ["--wait"]
    assert "--num" in bash_complete("kvmaint data:maintenances:history REDIS_URL --")
    assert bash_complete("kvmaint completion ") == ["bash", "zsh"]


# Loads the script into an interactive zsh with the completion system, and prints every match that
# completion adds instead of inserting it (the technique of zsh-capture-completion).
ZSH_SETUP = r"""
PROMPT=''; RPROMPT=''
fpath=({fpath} $fpath)
autoload -Uz compinit && compinit -u -D
compadd () {{
  if [[ ${{@[1,(i)(-|--)]}} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a __hits
  builtin compadd -A __hits "$@"
  local h; for h in $__hits; do print -r -- "<<HIT>>$h"; done
}}
bindkey '^I' complete-word
comppostfuncs=( __done ); __done () {{ print -r -- '<<END>>'; exit }}
"""


def zsh_complete(line: str, fpath: Path) -> list[str]:
    pid, fd = pty.fork()
    if pid == 0:  # the child: an interactive zsh without rc files
        os.execvpe("zsh", ["zsh", "-f", "-i"], {**ENV, "TERM": "dumb"})
    try:
        for setup in ZSH_SETUP.format(fpath=fpath).strip().splitlines():
            os.write(fd, (setup + "\n").encode())
        os.write(fd, (line + "\t").encode())
        out, deadline = b"", time.monotonic() + 30
        while b"<<END>>\r\n" not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        assert b"<<END>>\r\n" in out, out[-2000:]
    finally:
        os.close(fd)
        os.waitpid(pid, 0)
    hits = (raw.split("<<HIT>>", 1)[1].strip() for raw in out.decode(errors="replace").splitlines()
            if "<<HIT>>" in raw and "print -r" not in raw)
    return sorted(set(hits))


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (.ci/run installs it)")
def test_zsh_completes_commands_with_colons_and_flags(tmp_path: Path) -> None:
    script = subprocess.run([f"{BIN}/kvmaint", "completion", "zsh"], capture_output=True, text=True,
                            check=True, timeout=60).stdout
    (tmp_path / "_kvmaint").write_text(script)
    assert zsh_complete("kvmaint data:maintenances:w", tmp_path) == [
        "data:maintenances:wait", "data:maintenances:window", "data:maintenances:window:update"]
    assert zsh_complete("kvmaint apps:c", tmp_path) == ["apps:create"]
    flags = zsh_complete("kvmaint data:maintenances:run REDIS_URL -", tmp_path)
    assert {"-c", "--confirm", "-w", "--wait", "-j", "--json", "-a", "--app"} <= set(flags)
    assert zsh_complete("kvmaint completion ", tmp_path) == ["bash", "zsh"]
