"""SVG chart geometry: stacked bars over time and a label heat strip, drawn by templates/_charts.html."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 220, 40, 28, 8
COLOURS = 8  # CSS classes c0..c7; the rest go to "other" (c8)


@dataclass(frozen=True)
class Rect:
    """One bar segment or heat cell, with the text a screen reader and a tooltip show."""

    x: float
    y: float
    w: float
    h: float
    cls: str
    title: str
    opacity: float = 1.0


@dataclass
class Chart:
    """Everything a template needs to draw one chart."""

    width: int
    height: int
    rects: list[Rect] = field(default_factory=list)
    xlabels: list[tuple[float, str]] = field(default_factory=list)
    ylabels: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str, int]] = field(default_factory=list)  # css class, name, total
    rows: list[tuple[float, str]] = field(default_factory=list)  # heat rows: y, name
    summary: str = ""


def top_series(columns: Sequence[Mapping[str, int]], keep: int = COLOURS - 1) -> list[str]:
    """The names with the largest totals across columns, largest first."""
    totals: dict[str, int] = {}
    for col in columns:
        for name, n in col.items():
            if name != "other":  # the remainder a caller already summed
                totals[name] = totals.get(name, 0) + n
    return [n for n, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:keep]]


def _tick_every(n: int, room: int) -> int:
    return max(1, -(-n // room))


def stacked(labels: Sequence[str], columns: Sequence[Mapping[str, int]], what: str, unit: str = "articles") -> Chart:
    """Stacked bars, one per column (a day, an hour, a minute), split by series name."""
    chart = Chart(WIDTH, HEIGHT)
    names = top_series(columns)
    classes = {n: f"c{i}" for i, n in enumerate(names)}
    totals = {n: 0 for n in [*names, "other"]}
    peak = max([sum(c.values()) for c in columns] or [0]) or 1
    plot_w, plot_h = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
    step = plot_w / max(1, len(columns))
    bar = max(1.0, step * 0.8)
    for i, (label, col) in enumerate(zip(labels, columns, strict=True)):
        y: float = HEIGHT - BOTTOM
        parts = [(n, col.get(n, 0)) for n in names] + [("other", sum(v for k, v in col.items() if k not in classes))]
        for name, n in parts:
            if not n:
                continue
            totals[name] += n
            h = plot_h * n / peak
            y -= h
            chart.rects.append(
                Rect(LEFT + i * step, y, bar, h, classes.get(name, "c8"), f"{label}: {n} {unit} ({what} {name})")
            )
    every = _tick_every(len(labels), 8)
    chart.xlabels = [(LEFT + i * step + bar / 2, lab) for i, lab in enumerate(labels) if i % every == 0]
    ticks = sorted({0, peak // 2, peak}) if peak >= 2 else [0, peak]
    chart.ylabels = [(HEIGHT - BOTTOM - plot_h * t / peak, str(t)) for t in ticks]
    chart.legend = [(classes.get(n, "c8"), n, totals[n]) for n in [*names, "other"] if totals[n]]
    total = sum(sum(c.values()) for c in columns)
    chart.summary = f"{total} {unit} over {len(columns)} columns, peak {peak if total else 0}"
    return chart


def heat(labels: Sequence[str], rows: Mapping[str, Sequence[int]], row_h: int = 18) -> Chart:
    """One strip per row name (a label), one cell per column; darker is more."""
    names = sorted(rows, key=lambda n: (-sum(rows[n]), n))
    chart = Chart(WIDTH, TOP + row_h * len(names) + BOTTOM)
    left = 180
    step = (WIDTH - left) / max(1, len(labels))
    peak = max([max(v) for v in rows.values() if v] or [0]) or 1
    for r, name in enumerate(names):
        y = TOP + r * row_h
        chart.rows.append((y + row_h * 0.7, name))
        for i, n in enumerate(rows[name]):
            if n:
                title = f"{labels[i]}: {n} articles labelled {name}"
                chart.rects.append(
                    Rect(left + i * step, y, max(1.0, step - 1), row_h - 2, "c0", title, 0.15 + 0.85 * n / peak)
                )
    every = _tick_every(len(labels), 8)
    chart.xlabels = [(left + i * step, lab) for i, lab in enumerate(labels) if i % every == 0]
    chart.summary = f"{len(names)} labels over {len(labels)} days"
    return chart
