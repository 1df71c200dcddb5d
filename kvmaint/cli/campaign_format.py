"""Campaign messages to what the CLI prints (the `format.py` of campaigns: protos stop here)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from kvmaint.cli.format import Column, enum_label, render_block, render_table, ts_iso
from kvmaint.clock import iso
from kvmaint.v1 import campaigns_pb2 as cpb
from kvmaint.v1 import resources_pb2

PLAN_COLUMNS: list[Column] = [
    ("ADDON", "addon"),
    ("APP", "app"),
    ("WAVE", "wave_label"),
    ("WINDOW START", "window_start"),
    ("WINDOW END", "window_end"),
    ("MEETS DEADLINE", "meets_deadline"),
]
DAY_COLUMNS: list[Column] = [("DAY", "day"), ("ADD-ONS", "count")]
WAVE_COLUMNS: list[Column] = [
    ("WAVE", "label"),
    ("ADD-ONS", "size"),
    ("PENDING", "pending"),
    ("RUNNING", "running"),
    ("COMPLETED", "completed"),
    ("FAILED", "failed"),
    ("SKIPPED", "skipped"),
    ("ENDED AT", "ended_at"),
    ("SOAKED AT", "soaked_at"),
]
LIST_COLUMNS: list[Column] = [
    ("ID", "id"),
    ("STATUS", "status"),
    ("BUILD", "build"),
    ("WAVE", "label"),
    ("ADD-ONS", "size"),
    ("PENDING", "pending"),
    ("RUNNING", "running"),
    ("COMPLETED", "completed"),
    ("FAILED", "failed"),
    ("HALT REASON", "halt_reason"),
]
MEMBER_COLUMNS: list[Column] = [
    ("ADDON", "addon"),
    ("APP", "app"),
    ("WAVE", "wave_label"),
    ("PLANNED WINDOW", "planned_window_start"),
    ("STATUS", "status"),
    ("ATTEMPTS", "attempts"),
    ("WRITE PAUSE (MS)", "write_pause_ms"),
    ("MAINTENANCE", "maintenance_id"),
    ("NOTE", "note"),
]


def wave_label(wave: int, has_canary: bool) -> str:
    return "canary" if has_canary and wave == 0 else f"wave {wave}"


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def plan_view(plan: cpb.CampaignPlan, has_canary: bool) -> dict[str, Any]:
    span = timedelta(hours=plan.window_hours)
    addons = []
    for addon, app, wave, start, meets, has_window in zip(
        plan.addons,
        plan.apps,
        plan.waves,
        plan.window_starts_ms,
        plan.meets_deadline,
        plan.has_window,
        strict=True,
    ):
        at = datetime.fromtimestamp(start / 1000, UTC)
        addons.append(
            {
                "addon": addon,
                "app": app,
                "wave": wave,
                "wave_label": wave_label(wave, has_canary),
                "window_start": iso(at),
                "window_end": iso(at + span) if has_window else None,
                "meets_deadline": _yes(meets),
            }
        )
    sizes = Counter(plan.waves)
    waves = [
        {"wave": i, "label": wave_label(i, has_canary), "size": sizes[i], "earliest_start": ts_iso(t)}
        for i, t in enumerate(plan.wave_starts)
    ]
    return {
        "addons": addons,
        "per_day": [{"day": d.day, "count": d.count} for d in plan.per_day],
        "waves": waves,
        "late": sum(1 for m in plan.meets_deadline if not m),
    }


def plan_text(view: dict[str, Any]) -> str:
    waves = ", ".join(f"{w['label']} {w['size']} from {w['earliest_start']}" for w in view["waves"])
    return "\n\n".join(
        [
            render_table(view["addons"], PLAN_COLUMNS),
            render_table(view["per_day"], DAY_COLUMNS),
            f"Waves: {waves}. {view['late']} add-on(s) would miss the deadline.",
        ]
    )


def _wave_view(w: cpb.WaveSummary) -> dict[str, Any]:
    return {
        "wave": w.wave,
        "label": w.label,
        "size": w.size,
        "pending": w.pending,
        "running": w.running,
        "completed": w.completed,
        "failed": w.failed,
        "skipped": w.skipped,
        "ended_at": ts_iso(w.ended_at),
        "soaked_at": ts_iso(w.soaked_at),
        "planned_start": ts_iso(w.planned_start),
    }


def campaign_view(c: cpb.Campaign) -> dict[str, Any]:
    return {
        "id": c.id,
        "status": enum_label(cpb.CampaignStatus, c.status),
        "build": c.build,
        "target_version": c.target_version,
        "reason": enum_label(resources_pb2.MaintenanceReason, c.reason),
        "required_by": ts_iso(c.required_by),
        "target": c.target,
        "addons": c.addons,
        "canary": c.canary,
        "waves": ",".join(f"{p}%" for p in c.waves),
        "soak_seconds": c.soak.seconds,
        "halt_on_failures": c.halt_on_failures,
        "halt_on_pause_ms": c.halt_on_pause_ms,
        "current_wave": wave_label(c.current_wave, c.canary > 0),
        "halt_reason": c.halt_reason,
        "created_at": ts_iso(c.created_at),
        "ended_at": ts_iso(c.ended_at),
        "wave_counts": [_wave_view(w) for w in c.wave_summaries],
    }


INFO_KEYS = (
    "id",
    "status",
    "build",
    "target_version",
    "reason",
    "required_by",
    "target",
    "addons",
    "canary",
    "waves",
    "soak_seconds",
    "halt_on_failures",
    "halt_on_pause_ms",
    "current_wave",
    "halt_reason",
    "created_at",
    "ended_at",
)


def member_view(m: cpb.CampaignMember, has_canary: bool) -> dict[str, Any]:
    return {
        "addon": m.addon,
        "app": m.app,
        "wave": m.wave,
        "wave_label": wave_label(m.wave, has_canary),
        "planned_window_start": ts_iso(m.planned_window_start),
        "meets_deadline": _yes(m.meets_deadline),
        "maintenance_id": m.maintenance_id,
        "status": enum_label(resources_pb2.MaintenanceStatus, m.status) or "not filed",
        "scheduled_for": ts_iso(m.scheduled_for),
        "attempts": m.attempts,
        "write_pause_ms": m.write_pause_ms if m.write_pause_ms >= 0 else None,
        "note": m.note,
    }


def info_text(view: dict[str, Any]) -> str:
    parts = [
        render_block([(k, view.get(k)) for k in INFO_KEYS]),
        render_table(view["wave_counts"], WAVE_COLUMNS),
    ]
    if view.get("members"):
        parts.append(render_table(view["members"], MEMBER_COLUMNS))
    return "\n\n".join(parts)


def list_rows(views: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per wave; the campaign's id, status, build and halt reason on its first row."""
    rows: list[dict[str, Any]] = []
    for v in views:
        for i, w in enumerate(v["wave_counts"]):
            head = {k: v[k] for k in ("id", "status", "build", "halt_reason")} if i == 0 else {}
            rows.append({**head, **w})
    return rows
