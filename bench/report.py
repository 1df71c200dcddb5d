"""Turns run results into the summary table (or JSON): one row per contender and metric."""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from bench.runs import RunResult, Stat, stat


@dataclass
class Row:
    contender: str
    metric: str
    stat: Stat | None = None
    # For rows that count runs: (how many runs had it, out of how many).
    count: tuple[int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"contender": self.contender, "metric": self.metric}
        if self.count is not None:
            out["runs"], out["of"] = self.count
        elif self.stat is not None:
            out.update(min=self.stat.min, median=self.stat.median, max=self.stat.max, n=self.stat.n)
        else:
            out.update(min=None, median=None, max=None, n=0)
        return out


def summarize(name: str, anchors: list[tuple[str, str]], results: list[RunResult]) -> list[Row]:
    rows = [
        Row(name, "longest write pause (ms)", stat([r.longest_pause_ms for r in results])),
        Row(name, "acknowledged writes lost", stat([r.lost for r in results])),
    ]
    for key, label in anchors:
        rows.append(
            Row(
                name,
                f"{label} -> 1st write on new primary (ms)",
                stat([r.to_new_primary_ms.get(key) for r in results]),
            )
        )
    for key, label in anchors:
        rows.append(
            Row(
                name,
                f"{label} -> new primary is master (ms)",
                stat([r.promoted_ms.get(key) for r in results]),
            )
        )
    if any("write_pause_ms" in r.figures for r in results):
        rows.append(
            Row(
                name,
                "write_pause_ms reported by kvmaint",
                stat([r.figures.get("write_pause_ms") for r in results]),
            )
        )
    rows += [
        Row(name, "masters seen at once (max)", stat([float(r.max_masters) for r in results])),
        Row(name, "longest pause before trigger (ms)", stat([r.baseline_pause_ms for r in results])),
        Row(name, "writes/s before trigger", stat([r.write_rate for r in results])),
        # The role watcher's resolution: two masters for less than about twice this could go unseen.
        Row(
            name,
            "role watcher: longest gap between reads (ms)",
            stat([r.watcher_max_gap_ms for r in results]),
        ),
        Row(name, "runs with two masters", count=(sum(r.max_masters >= 2 for r in results), len(results))),
        Row(name, "failed switchovers", count=(sum(not r.ok for r in results), len(results))),
    ]
    return rows


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.1f}"


def table(rows: list[Row]) -> str:
    header = ("contender", "metric", "min", "median", "max", "runs")
    lines: list[tuple[str, ...]] = [header]
    for row in rows:
        if row.count is not None:
            lines.append((row.contender, row.metric, "", "", "", f"{row.count[0]}/{row.count[1]}"))
        elif row.stat is None:
            lines.append((row.contender, row.metric, "-", "-", "-", "0"))
        else:
            s = row.stat
            lines.append((row.contender, row.metric, _num(s.min), _num(s.median), _num(s.max), str(s.n)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        cells = [cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(line)]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def run_line(r: RunResult) -> str:
    """One line per run for --verbose: what happened, when, and where the writes went."""
    anchors = " ".join(f"{k}->new={_opt(v)}ms" for k, v in r.to_new_primary_ms.items())
    promoted = " ".join(f"{k}->master={_opt(v)}ms" for k, v in r.promoted_ms.items())
    lost = f"lost={_opt(r.lost)}"
    if r.lost:
        lost += f" (acked {r.lost_first_ack_ms}..{r.lost_last_ack_ms} ms after trigger)"
    figures = " ".join(f"{k}={_num(v)}" for k, v in r.figures.items())
    retries = ",".join(f"{k}:{v}" for k, v in sorted(r.retries.items())) or "none"
    parts = [
        f"{r.contender} run {r.run}: {'ok' if r.ok else 'FAILED'}",
        f"trigger at +{r.trigger_after_s:.2f}s",
        f"writes={r.writes} ({r.write_rate:.0f}/s)",
        f"pause={_opt(r.longest_pause_ms)}ms at {_opt(r.longest_pause_at_ms)}ms",
        f"baseline={_opt(r.baseline_pause_ms)}ms",
        lost,
        anchors,
        promoted,
        f"masters={r.max_masters}" + (f" (two for {r.two_master_span_ms} ms)" if r.max_masters >= 2 else ""),
        f"watch-gap={r.watcher_max_gap_ms}ms",
        f"retries={retries}",
        f"{r.old_primary}->{r.new_primary}",
    ]
    if figures:
        parts.append(figures)
    if r.failure:
        parts.append(f"failure: {r.failure}")
    parts += r.notes
    return "  ".join(p for p in parts if p)


def _opt(value: float | int | None) -> str:
    return "-" if value is None else _num(float(value))


def machine() -> dict[str, str]:
    def version(cmd: str) -> str:
        path = shutil.which(cmd)
        if path is None:
            return "not installed"
        try:
            return subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            return repr(exc)

    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis-py": metadata.version("redis"),
        "redis-server": version("redis-server"),
        "redis-sentinel": version("redis-sentinel"),
    }
