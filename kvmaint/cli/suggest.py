""""Did you mean": the known words closest to a mistyped command or flag (pure, no I/O)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# How alike two words must be (difflib's ratio) to be offered at all; difflib's own default.
CUTOFF = 0.6
# Others are offered beside the best match only when they are about as close as it is.
TIE = 0.02


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def closest(word: str, known: Iterable[str]) -> list[str]:
    """The known words most like `word`, best first: the best one, and any about as close. When no
    whole name is close, the last part of a command is compared ("histroy" -> "data:maintenances:history")."""
    names = sorted(set(known))
    for last_part in (False, True):
        scored = sorted(((_ratio(word, n.rsplit(":", 1)[-1] if last_part else n), n) for n in names),
                        key=lambda s: (-s[0], s[1]))
        scored = [s for s in scored if s[0] >= CUTOFF]
        if scored:
            best = scored[0][0]
            return [n for r, n in scored if r >= best - TIE][:3]
    return []


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """" Did you mean X?" / " Did you mean X or Y?", or "" when nothing is close."""
    matches = closest(word, known)
    if not matches:
        return ""
    if len(matches) == 1:
        return f" Did you mean {matches[0]}?"
    return f" Did you mean {', '.join(matches[:-1])} or {matches[-1]}?"
