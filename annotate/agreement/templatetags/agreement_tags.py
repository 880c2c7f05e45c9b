"""Number formatting for the agreement dashboard: a missing statistic shows as an en dash, never 'None'."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def pct(value: float | None, digits: int = 1) -> str:
    # Not a number (None, or a key a stored snapshot predates): a dash.
    return f"{value * 100:.{digits}f}%" if isinstance(value, int | float) else "–"


@register.filter
def num(value: float | None, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "–"


@register.filter
def sortkey(value: float | None) -> str:
    """A data-sort attribute: missing values sort last ascending."""
    return "" if value is None else repr(float(value))


@register.filter
def lookup(mapping: dict, key: str) -> object:
    return mapping.get(key)
