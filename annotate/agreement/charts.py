"""Inline SVG charts for the agreement dashboard, built server-side (no JS library, no downloads)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 420, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 16, 36
COLOURS = {"alignment": "#2f6fb0", "musicality": "#d07a1f"}
FLAGGED, OK = "#c0392b", "#2f6fb0"


def _svg(title: str, body: Iterable[str], *, height: int = HEIGHT) -> SafeString:
    parts = "".join(body)
    return mark_safe(  # noqa: S308 - every interpolated text goes through escape()
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{parts}</svg>'
    )


def _y_axis(top: float, bottom: float, ticks: Sequence[tuple[float, str]]) -> list[str]:
    out = []
    for value, label in ticks:
        y = bottom - value * (bottom - top)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">{escape(label)}</text>')
    return out


def _legend(items: Sequence[tuple[str, str]]) -> list[str]:
    out = []
    for index, (label, colour) in enumerate(items):
        x = LEFT + 8 + index * 110
        out.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text class="tick" x="{x + 14}" y="13">{escape(label)}</text>')
    return out


def confidence_histogram(confidence: dict[str, Any]) -> SafeString:
    """Grouped bars: share of votes at each confidence level, per question."""
    plot_w, top, bottom = WIDTH - LEFT - RIGHT, TOP + 8, HEIGHT - BOTTOM
    shares = {}
    for question in COLOURS:
        counts = confidence[question]["distribution"]
        total = sum(counts.values()) or 1
        shares[question] = [counts[str(level)] / total for level in range(1, 6)]
    peak = max([0.0001, *shares["alignment"], *shares["musicality"]])
    scale = math.ceil(peak * 10) / 10
    body = _y_axis(top, bottom, [(f, f"{f * scale:.0%}") for f in (0, 0.5, 1)])
    group = plot_w / 5
    for level in range(5):
        for offset, question in enumerate(COLOURS):
            share = shares[question][level]
            h = share / scale * (bottom - top)
            x = LEFT + level * group + group * (0.15 + 0.35 * offset)
            tip = f"{question} confidence {level + 1}: {share:.1%}"
            body.append(
                f'<rect x="{x:.1f}" y="{bottom - h:.1f}" width="{group * 0.33:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[question]}"><title>{tip}</title></rect>'
            )
        body.append(
            f'<text class="tick" x="{LEFT + (level + 0.5) * group:.1f}" y="{bottom + 14}" '
            f'text-anchor="middle">{level + 1}</text>'
        )
    body.append(f'<text class="label" x="{LEFT + plot_w / 2}" y="{HEIGHT - 4}" text-anchor="middle">confidence</text>')
    body += _legend([(q, c) for q, c in COLOURS.items()])
    return _svg("Confidence distribution per question", body)


def agreement_by_confidence(confidence: dict[str, Any]) -> SafeString:
    """Pairwise agreement rate of votes at each confidence level (lines with points; gaps where no pairs)."""
    plot_w, top, bottom = WIDTH - LEFT - RIGHT, TOP + 8, HEIGHT - BOTTOM
    body = _y_axis(top, bottom, [(f, f"{f:.0%}") for f in (0, 0.25, 0.5, 0.75, 1)])
    step = plot_w / 5
    for question, colour in COLOURS.items():
        points = []
        for row in confidence[question]["agreement_by_confidence"]:
            if row["agreement_rate"] is None:
                continue
            x = LEFT + (row["confidence"] - 0.5) * step
            y = bottom - row["agreement_rate"] * (bottom - top)
            points.append((x, y))
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"><title>{question}, confidence '
                f"{row['confidence']}: {row['agreement_rate']:.1%} of {row['pairs']} pairs</title></circle>"
            )
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
    for level in range(1, 6):
        body.append(
            f'<text class="tick" x="{LEFT + (level - 0.5) * step:.1f}" y="{bottom + 14}" '
            f'text-anchor="middle">{level}</text>'
        )
    body.append(
        f'<text class="label" x="{LEFT + plot_w / 2}" y="{HEIGHT - 4}" text-anchor="middle">'
        "confidence of the vote</text>"
    )
    body += _legend([(q, c) for q, c in COLOURS.items()])
    return _svg("Agreement rate by confidence", body)


def annotator_scatter(annotators: list[dict[str, Any]]) -> SafeString:
    """Leave-one-out majority agreement (x) against gold accuracy (y), flagged annotators in red."""
    plot_w, top, bottom = WIDTH - LEFT - RIGHT, TOP + 8, HEIGHT - BOTTOM
    body = _y_axis(top, bottom, [(f, f"{f:.0%}") for f in (0, 0.5, 1)])
    for f in (0, 0.5, 1):
        x = LEFT + f * plot_w
        body.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 14}" text-anchor="middle">{f:.0%}</text>')
    plotted = 0
    for row in annotators:
        if row["loo_agreement"] is None or row["gold_accuracy"] is None:
            continue
        plotted += 1
        x = LEFT + row["loo_agreement"] * plot_w
        y = bottom - row["gold_accuracy"] * (bottom - top)
        colour = FLAGGED if row["flags"] else OK
        r = 3 + min(6, math.sqrt(row["votes"]) / 2)
        tip = (
            f"{row['username']}: agreement {row['loo_agreement']:.1%}, gold {row['gold_accuracy']:.1%}, "
            f"{row['votes']} votes {' '.join(row['flags'])}"
        )
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{colour}" fill-opacity="0.7">'
            f"<title>{escape(tip)}</title></circle>"
        )
    if not plotted:
        body.append(
            f'<text class="label" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            "no annotator has both shared and gold votes yet</text>"
        )
    body.append(
        f'<text class="label" x="{LEFT + plot_w / 2}" y="{HEIGHT - 4}" text-anchor="middle">'
        "agreement with leave-one-out majority (y: gold accuracy)</text>"
    )
    return _svg("Per-annotator agreement against gold accuracy", body)


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    centre = (k + z * z / 2) / (n + z * z)
    half = z * math.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
    return max(0.0, centre - half), min(1.0, centre + half)


def position_bias(annotators: list[dict[str, Any]]) -> SafeString:
    """Fraction of choices of the left clip per annotator, with a 95% Wilson interval and the 0.5 line."""
    rows = [row for row in annotators if row["choices"]]
    row_h, top = 18, TOP + 6
    height = max(HEIGHT // 2, top + row_h * len(rows) + BOTTOM)
    name_w = 150
    plot_l, plot_w = name_w, WIDTH - name_w - RIGHT
    bottom = height - BOTTOM + 8
    body = []
    for f in (0, 0.25, 0.5, 0.75, 1):
        x = plot_l + f * plot_w
        css = "mid" if f == 0.5 else "grid"
        body.append(f'<line class="{css}" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}"/>')
        body.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 12}" text-anchor="middle">{f:.0%}</text>')
    for index, row in enumerate(rows):
        y = top + row_h * (index + 0.5)
        low, high = _wilson(row["left_choices"], row["choices"])
        colour = FLAGGED if "position_bias" in row["flags"] else OK
        x = plot_l + row["left_fraction"] * plot_w
        body.append(
            f'<text class="tick" x="{name_w - 6}" y="{y + 3:.1f}" text-anchor="end">'
            f"{escape(row['username'][:24])}</text>"
        )
        body.append(
            f'<line x1="{plot_l + low * plot_w:.1f}" x2="{plot_l + high * plot_w:.1f}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="{colour}" stroke-width="2"/>'
        )
        p_value = row["position_bias_p"]
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"><title>{escape(row["username"])}: '
            f"{row['left_fraction']:.1%} left of {row['choices']} choices, p = {p_value:.3g}</title></circle>"
        )
    body.append(
        f'<text class="label" x="{plot_l + plot_w / 2}" y="{height - 4}" text-anchor="middle">'
        "share of choices for the clip shown on the left (95% CI)</text>"
    )
    return _svg("Position bias per annotator", body, height=height)


HUMAN, MODEL = "#2f6fb0", "#d07a1f"


def leaderboard(systems: list[dict[str, Any]], question: str) -> SafeString:
    """Strength with its 95% interval per ranked system: humans (blue) and, below, the reward model (orange)."""
    rows = [row for row in systems if row["ranked"]]
    row_h, top, name_w = 26, TOP + 10, 150
    height = max(HEIGHT // 2, top + row_h * len(rows) + BOTTOM)
    plot_l, plot_w = name_w, WIDTH - name_w - RIGHT
    bottom = height - BOTTOM + 8
    ends = [
        v for row in rows for side in ("human", "model") if row[side] for v in (row[side]["lower"], row[side]["upper"])
    ]
    lo, hi = (min(ends), max(ends)) if ends else (-1.0, 1.0)
    pad = max(0.1, (hi - lo) * 0.05)
    lo, hi = lo - pad, hi + pad

    def x_of(value: float) -> float:
        return plot_l + (value - lo) / (hi - lo) * plot_w

    body = []
    for tick in _nice_ticks(lo, hi):
        css = "mid" if tick == 0 else "grid"
        x = x_of(tick)
        body.append(f'<line class="{css}" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}"/>')
        body.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 12}" text-anchor="middle">{tick:g}</text>')
    for index, row in enumerate(rows):
        y = top + row_h * (index + 0.5)
        human = row["human"]
        label = f"{human['rank']}. {row['system'][:22]}"
        body.append(f'<text class="tick" x="{name_w - 6}" y="{y + 3:.1f}" text-anchor="end">{escape(label)}</text>')
        for side, colour, dy in (("human", HUMAN, -4), ("model", MODEL, 5)):
            pos = row[side]
            if not pos:
                continue
            tip = (
                f"{row['system']} ({side}): strength {pos['strength']:.2f} [{pos['lower']:.2f}, {pos['upper']:.2f}], "
                f"rank {pos['rank']} (range {pos['rank_best']}–{pos['rank_worst']}), {row['votes']} votes"
            )
            body.append(
                f'<line x1="{x_of(pos["lower"]):.1f}" x2="{x_of(pos["upper"]):.1f}" y1="{y + dy:.1f}" '
                f'y2="{y + dy:.1f}" stroke="{colour}" stroke-width="2"/>'
            )
            body.append(
                f'<circle cx="{x_of(pos["strength"]):.1f}" cy="{y + dy:.1f}" r="4" fill="{colour}">'
                f"<title>{escape(tip)}</title></circle>"
            )
    if not rows:
        body.append(
            f'<text class="label" x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle">'
            "no system has enough votes to be ranked yet</text>"
        )
    body.append(
        f'<text class="label" x="{plot_l + plot_w / 2}" y="{height - 4}" text-anchor="middle">'
        "Bradley–Terry strength (logit), 95% bootstrap interval</text>"
    )
    body += _legend([("humans", HUMAN), ("reward model", MODEL)])
    return _svg(f"Leaderboard, {question}", body, height=height)


def _nice_ticks(lo: float, hi: float) -> list[float]:
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-9) / 2))
    for factor in (1, 2, 5, 10):
        if (hi - lo) / (step * factor) <= 6:
            step *= factor
            break
    first = math.ceil(lo / step) * step
    return [round(first + n * step, 10) for n in range(int((hi - first) / step) + 1)]
