"""The endpoint page's chart: delivered vs failed per hour, drawn as SVG on the server."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django_hooks.internal.display import time_text
from django_hooks.outbound.operations import HourlyCounts

__all__: list[str] = []

WIDTH, HEIGHT = 760, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 28


@dataclass
class Bar:
    x: float
    width: float
    succeeded_y: float
    succeeded_height: float
    failed_y: float
    failed_height: float
    title: str


@dataclass
class Tick:
    position: float
    label: str


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 × 10^n at or above ``value`` (a readable axis maximum)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover


def delivery_chart(series: list[HourlyCounts]) -> dict[str, object]:
    """Template context for ``django_hooks/admin/delivery_chart.html``."""
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_height
    top = nice_ceiling(max((h.succeeded + h.failed for h in series), default=0))
    slot = plot_width / max(len(series), 1)
    bars, x_ticks = [], []
    for index, hour in enumerate(series):
        x = LEFT + index * slot
        succeeded = plot_height * hour.succeeded / top
        failed = plot_height * hour.failed / top
        bars.append(
            Bar(
                x=round(x + 1, 1),
                width=round(max(slot - 2, 1), 1),
                succeeded_y=round(baseline - succeeded, 1),
                succeeded_height=round(succeeded, 1),
                failed_y=round(baseline - succeeded - failed, 1),
                failed_height=round(failed, 1),
                title=f"{time_text(hour.hour, dt.UTC)}: {hour.succeeded} delivered, "
                f"{hour.failed} failed",
            )
        )
        if hour.hour.hour % 6 == 0:
            x_ticks.append(Tick(round(x + slot / 2, 1), f"{hour.hour:%H:00}"))
    y_ticks = [
        Tick(round(baseline - plot_height * value / top, 1), str(value))
        for value in sorted({0, top // 2, top} if top > 1 else {0, 1})
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "baseline": baseline,
        "label_y": baseline + 18,
        "bars": bars,
        "x_ticks": x_ticks,
        "y_ticks": y_ticks,
        "hours": len(series),
        "delivered": sum(h.succeeded for h in series),
        "failed": sum(h.failed for h in series),
    }
