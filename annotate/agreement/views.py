"""Staff pages of the agreement app."""

from __future__ import annotations

import contextlib

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotate.agreement import charts
from annotate.agreement.apis import FiltersSerializer, LeaderboardParamsSerializer
from annotate.agreement.leaderboard import LeaderboardQuery, system_leaderboard
from annotate.agreement.selectors import AgreementFilters, campaign_agreement, live_max_votes
from annotate.agreement.services import agreement_snapshot_request_refresh, agreement_snapshot_schedule
from annotate.broker import BrokerUnavailable
from annotate.catalog.models import Campaign
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


def _leaderboard_page(request: HttpRequest, *, campaign: Campaign | None) -> HttpResponse:
    form = LeaderboardParamsSerializer(data=request.GET)
    valid = form.is_valid()
    ids = None if campaign is None else (campaign.pk,)
    query = form.to_query(ids) if valid else LeaderboardQuery(campaign_ids=ids)
    board = system_leaderboard(query=query)
    api_url = (
        reverse("api-leaderboard") if campaign is None else reverse("api-campaign-leaderboard", args=[campaign.pk])
    )
    context = {
        "campaign": campaign,
        "board": board,
        "filter_errors": form.errors,
        "query": {key: request.GET.get(key, "") for key in ("modality", "vocal", "since", "until", "min_votes")},
        "api_url": api_url + ("?" + request.GET.urlencode() if request.GET else ""),
        "questions": [
            {"name": name, "board": board["questions"][name], "chart": charts.leaderboard(q["systems"], name)}
            for name, q in board["questions"].items()
        ],
    }
    return render(request, "agreement/leaderboard.html", context)


@require_GET
@staff_required
def campaign_leaderboard(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
    return _leaderboard_page(request, campaign=campaign)


@require_GET
@staff_required
def leaderboard(request: HttpRequest) -> HttpResponse:
    return _leaderboard_page(request, campaign=None)
