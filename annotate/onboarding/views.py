"""Onboarding pages: overview, consent, instructions, headphone check, practice, and withdrawal.

Plain forms with native controls (no page script), so every step works with a keyboard alone.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from annotate.catalog.models import Campaign
from annotate.catalog.selectors import campaign_get_for_annotator
from annotate.errors import NotFoundError
from annotate.labeling.services import LabelingError
from annotate.onboarding import stimuli
from annotate.onboarding.selectors import (
    GLOSSARY,
    campaign_get_for_withdrawal,
    headphone_check_get_for_annotator,
    onboarding_for,
    onboarding_status,
    practice_feedback,
    practice_item_get,
    practice_items,
    withdrawal_active,
)
from annotate.onboarding.services import (
    consent_accept,
    headphone_check_start,
    headphone_check_submit,
    instructions_acknowledge,
    practice_submit,
    withdrawal_create,
)


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User), "login_required runs first"
    return request.user


def _campaign(request: HttpRequest, campaign_id: int) -> Campaign:
    try:
        return campaign_get_for_annotator(user=request.user, campaign_id=campaign_id)
    except NotFoundError:
        raise Http404("No such campaign open for listening.") from None


def _after_step(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    """Straight on to the next missing step, or to real work when none is left."""
    missing = onboarding_status(annotator=_user(request), campaign=campaign).missing
    if missing is not None:
        return redirect(missing.url)
    return redirect("labeling:campaign-next", campaign_id=campaign.pk)


@login_required
@require_GET
def overview(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    status = onboarding_status(annotator=_user(request), campaign=campaign)
    return render(request, "onboarding/overview.html", {"campaign": campaign, "status": status})


@login_required
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    config = onboarding_for(campaign=campaign)
    if config is None:
        raise Http404("This campaign asks for no consent.")
    error = ""
    if request.method == "POST":
        if request.POST.get("agree") != "yes":
            error = "Tick the box to say you agree, or leave this page if you don't."
        else:
            try:
                consent_accept(annotator=_user(request), campaign=campaign, version=request.POST.get("version", ""))
                return _after_step(request, campaign)
            except LabelingError as exc:
                error = exc.message
    context = {"campaign": campaign, "config": config, "error": error}
    return render(request, "onboarding/consent.html", context, status=400 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def instructions(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    if request.method == "POST":
        instructions_acknowledge(annotator=_user(request), campaign=campaign)
        return _after_step(request, campaign)
    context = {"campaign": campaign, "config": onboarding_for(campaign=campaign), "glossary": GLOSSARY}
    return render(request, "onboarding/instructions.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def headphones(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    config = onboarding_for(campaign=campaign)
    if config is None:
        raise Http404("This campaign has no headphone check.")
    error = ""
    if request.method == "POST":
        try:
            check = headphone_check_submit(
                annotator=_user(request), check_id=request.POST.get("check", ""), responses=_trial_answers(request)
            )
        except LabelingError as exc:
            error = exc.message
        else:
            result = {"campaign": campaign, "check": check, "config": config}
            return render(request, "onboarding/headphones_result.html", result)
    check = headphone_check_start(annotator=_user(request), campaign=campaign)
    trials = [
        {
            "number": n,
            "urls": [reverse("onboarding:headphone-audio", args=[check.public_id, n, i]) for i in (1, 2, 3)],
        }
        for n in range(1, len(check.trials) + 1)
    ]
    context: dict[str, object] = {
        "campaign": campaign,
        "check": check,
        "trials": trials,
        "config": config,
        "error": error,
    }
    return render(request, "onboarding/headphones.html", context, status=400 if error else 200)


def _trial_answers(request: HttpRequest) -> dict[str, str]:
    return {key.removeprefix("trial_"): request.POST.get(key, "") for key in request.POST if key.startswith("trial_")}


@login_required
@require_GET
def headphone_audio(request: HttpRequest, check_id: UUID, trial: int, interval: int) -> HttpResponse:
    """One interval of one trial, synthesised on request from the check's seed (about 88 kB)."""
    check = headphone_check_get_for_annotator(annotator=request.user, check_id=check_id)
    if check is None or not 1 <= trial <= len(check.trials) or interval not in (1, 2, 3):
        raise Http404("No such stimulus.")
    plan = check.trials[trial - 1]
    samples = stimuli.interval_samples(
        seed=check.seed, trial=trial, interval=interval, f0=plan["f0"], target=plan["target"] == interval
    )
    response = HttpResponse(stimuli.wav_bytes(samples), content_type="audio/wav")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def practice(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    config = onboarding_for(campaign=campaign)
    items = list(practice_items(campaign=campaign))
    if config is None or not items:
        raise Http404("This campaign has no practice comparisons.")
    error = ""
    if request.method == "POST":
        answers = {
            str(item.pk): {q: request.POST.get(f"{q}_{item.pk}") for q in ("alignment", "musicality")} for item in items
        }
        try:
            attempt = practice_submit(annotator=_user(request), campaign=campaign, answers=answers)
        except LabelingError as exc:
            error = exc.message
        else:
            context = {"campaign": campaign, "attempt": attempt, "rows": practice_feedback(attempt=attempt)}
            return render(request, "onboarding/practice_result.html", context)
    context = {"campaign": campaign, "items": items, "config": config, "error": error, "posted": request.POST}
    return render(request, "onboarding/practice.html", context, status=400 if error else 200)


@login_required
@require_GET
def practice_audio(request: HttpRequest, campaign_id: int, item_id: int, side: str) -> FileResponse:
    campaign = _campaign(request, campaign_id)
    item = practice_item_get(campaign=campaign, item_id=item_id)
    if item is None or side not in ("A", "B"):
        raise Http404("No such practice clip.")
    clip = item.clip_a if side == "A" else item.clip_b
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / str(clip.file.name)).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise Http404("Audio file missing.")
    return FileResponse(path.open("rb"), content_type="audio/wav" if clip.format == "WAV" else None)


@login_required
@require_http_methods(["GET", "POST"])
def withdraw(request: HttpRequest, campaign_id: int) -> HttpResponse:
    try:
        campaign = campaign_get_for_withdrawal(user=request.user, campaign_id=campaign_id)
    except NotFoundError:
        raise Http404("No such campaign.") from None
    active = withdrawal_active(annotator=_user(request), campaign=campaign)
    if request.method == "POST" and active is None:
        try:
            active = withdrawal_create(
                annotator=_user(request), campaign=campaign, reason=request.POST.get("reason", "")
            )
        except LabelingError as exc:
            messages.error(request, exc.message)
        else:
            messages.info(request, "You have withdrawn. Your votes are no longer counted; thank you for your time.")
            return redirect("onboarding:withdraw", campaign_id=campaign.pk)
    return render(request, "onboarding/withdraw.html", {"campaign": campaign, "withdrawal": active})
