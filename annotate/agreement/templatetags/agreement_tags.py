"""Number formatting for the agreement dashboard: a missing statistic shows as an en dash, never 'None'."""

from __future__ import annotations

from typing import Any

from django import template

from annotate.labeling.models import Vote

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


@register.inclusion_tag("agreement/_simulated.html")
def simulated_votes_notice(campaign: Any) -> dict[str, Any]:
    """A banner on staff pages of a campaign whose votes include simulated ones (the demo's personas)."""
    from annotate.agreement.selectors import simulated_vote_count

    count = simulated_vote_count(campaign_id=campaign.pk)
    total = Vote.objects.filter(comparison__campaign_id=campaign.pk).count() if count else 0
    return {"simulated": count, "total": total}
