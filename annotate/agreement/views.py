"""Staff pages of the agreement app."""

from __future__ import annotations

import contextlib

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotate.agreement import charts
from annotate.agreement.apis import FiltersSerializer
from annotate.agreement.selectors import AgreementFilters, campaign_agreement, live_max_votes
from annotate.agreement.services import agreement_snapshot_request_refresh, agreement_snapshot_schedule
from annotate.broker import BrokerUnavailable
from annotate.catalog.selectors import campaign_get_for_staff
from annotate.permissions import staff_required


@require_GET
@staff_required
def dashboard(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
    form = FiltersSerializer(data=request.GET)
    filters = form.to_filters() if form.is_valid() else AgreementFilters()
    report = campaign_agreement(campaign=campaign, filters=filters)
    is_large = report["summary"]["vote_count"] > live_max_votes()
    if is_large and filters.is_empty and report["freshness"]["source"] == "live":
        # A large campaign with no snapshot yet: store one so the next visit needn't recompute. Without a
        # broker the live report still shows; the next visit tries again.
        with contextlib.suppress(BrokerUnavailable):
            agreement_snapshot_schedule(campaign_id=campaign.pk)
    context = {
        "campaign": campaign,
        "report": report,
        "filter_errors": form.errors,
        "query": {key: request.GET.get(key, "") for key in ("modality", "vocal", "since", "until")},
        "api_url": reverse("api-campaign-agreement", args=[campaign.pk])
        + ("?" + request.GET.urlencode() if request.GET else ""),
        "is_large": is_large,
        "charts": {
            "confidence": charts.confidence_histogram(report["confidence"]),
            "agreement_by_confidence": charts.agreement_by_confidence(report["confidence"]),
            "annotators": charts.annotator_scatter(report["annotators"]),
            "position_bias": charts.position_bias(report["annotators"]),
        },
    }
    return render(request, "agreement/dashboard.html", context)


@require_POST
@staff_required
def refresh(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
    try:
        agreement_snapshot_request_refresh(campaign_id=campaign.pk)
    except BrokerUnavailable as exc:
        messages.error(request, f"The refresh could not be queued: {exc}")
    else:
        messages.info(request, "A snapshot refresh is queued; reload in a moment.")
    return HttpResponseRedirect(reverse("agreement-dashboard", args=[campaign.pk]))
