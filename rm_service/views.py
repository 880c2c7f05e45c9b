"""Staff pages of the reward-model service: training, the registry, the model-vs-human dashboard."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from annotate.catalog.selectors import campaign_get_for_staff
from annotate.permissions import staff_required
from rm_service import selectors, services
from rm_service.models import ModelVersion
from rm_service.presets import ENCODERS, PRESETS

TRAIN_FIELDS = ("train_jsonl", "validation_jsonl", "test_jsonl", "dataset_root", "pseudo_jsonl", "name")


def _exports_for(campaign_id: int) -> list[Any]:
    """The campaign's finished exports, newest first: what a training run can be built from."""
    from annotate.exports.models import Export

    return list(Export.objects.filter(campaign_id=campaign_id, status=Export.Status.SUCCEEDED)[:50])


@staff_required
def registry(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "rm_service/registry.html",
        {
            "versions": ModelVersion.objects.select_related("campaign")[:100],
            "runs": selectors.training_run_list()[:50],
            "unavailable": selectors.rm_unavailable_reason(),
        },
    )


@staff_required
def campaign_models(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
    if request.method == "POST":
        return _start_training(request, campaign)
    return render(
        request,
        "rm_service/campaign_models.html",
        {
            "campaign": campaign,
            "runs": selectors.training_run_list(campaign=campaign)[:50],
            "versions": ModelVersion.objects.select_related("campaign")[:100],
            "exports": _exports_for(campaign.pk),
            "presets": list(PRESETS),
            "encoders": ENCODERS,
            "unavailable": selectors.rm_unavailable_reason(),
        },
    )


def _start_training(request: HttpRequest, campaign: Any) -> HttpResponse:
    post = request.POST
    reason = selectors.rm_unavailable_reason()
    if reason:
        messages.error(request, reason)
        return redirect("rm_service:campaign-models", campaign_id=campaign.pk)
    try:
        config = json.loads(post.get("config") or "{}")
        text = {f: post.get(f, "").strip() for f in TRAIN_FIELDS}
        run = services.training_run_create(
            user=request.user if isinstance(request.user, User) else None,
            campaign=campaign,
            export_id=int(post["export_id"]) if post.get("export_id") else None,
            encoder=post.get("encoder", "builtin"),
            preset=post.get("preset", "tiny"),
            config=config,
            train_jsonl=text["train_jsonl"],
            validation_jsonl=text["validation_jsonl"],
            test_jsonl=text["test_jsonl"],
            dataset_root=text["dataset_root"],
            pseudo_jsonl=text["pseudo_jsonl"],
            name=text["name"],
        )
    except (services.RmServiceError, services.RmUnavailable, json.JSONDecodeError, ValueError) as exc:
        messages.error(request, f"Training run not started: {exc}")
        return redirect("rm_service:campaign-models", campaign_id=campaign.pk)
    messages.success(request, f"Training run {run.pk} queued.")
    return redirect("rm_service:run-detail", run_id=run.pk)


@staff_required
@require_POST
def campaign_pretrain(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Queue stage-1 pretraining on the campaign's own clips (a training run on the rm-batch queue)."""
    campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
    reason = selectors.rm_unavailable_reason()
    if reason:
        messages.error(request, reason)
        return redirect("rm_service:campaign-models", campaign_id=campaign.pk)
    try:
        run = services.training_run_create_pretrain(
            user=request.user if isinstance(request.user, User) else None,
            campaign=campaign,
            pairs=_int_field(request, "pairs", 300),
            steps=_int_field(request, "steps", 600),
            name=request.POST.get("name", "").strip(),
        )
    except (services.RmServiceError, services.RmUnavailable) as exc:
        messages.error(request, f"Stage-1 pretraining not started: {exc}")
        return redirect("rm_service:campaign-models", campaign_id=campaign.pk)
    messages.success(request, f"Stage-1 pretraining run {run.pk} queued.")
    return redirect("rm_service:run-detail", run_id=run.pk)


def _int_field(request: HttpRequest, name: str, default: int) -> int:
    raw = request.POST.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise services.RmServiceError(f"{name} must be a whole number, got {raw[:40]!r}", field=name) from None


@staff_required
def model_version_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    """One model version: what it was trained on, its test accuracies and its evaluation panel."""
    version = selectors.model_version_get(user=request.user, version_id=version_id)
    test = (version.metrics or {}).get("test") or {}
    return render(
        request,
        "rm_service/version_detail.html",
        {
            "version": version,
            "test": test,
            "panel": test.get("panel"),
            "training_data": json.dumps(version.training_data, indent=2, sort_keys=True),
        },
    )


@staff_required
def training_run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = selectors.training_run_get(user=request.user, run_id=run_id)
    return render(request, "rm_service/run_detail.html", {"run": run})


@staff_required
@require_POST
def training_run_action(request: HttpRequest, run_id: int, action: str) -> HttpResponse:
    run = selectors.training_run_get(user=request.user, run_id=run_id)
    try:
        if action == "cancel":
            services.training_run_cancel(run=run)
        elif action == "resume":
            services.training_run_resume(run=run)
        else:
            raise Http404(f"unknown action {action!r}")
    except (services.RmServiceError, services.RmUnavailable) as exc:
        messages.error(request, str(exc))
    return redirect("rm_service:run-detail", run_id=run.pk)


@staff_required
@require_POST
def model_version_action(request: HttpRequest, version_id: int, action: str) -> HttpResponse:
    version = selectors.model_version_get(user=request.user, version_id=version_id)
    try:
        if action == "activate":
            services.model_version_activate(version=version)
            messages.success(request, f"{version} is active; its predictions are being computed.")
        elif action == "deactivate":
            services.model_version_deactivate(version=version)
        elif action == "predict":
            campaign_id = request.POST.get("campaign", "")
            if not campaign_id.isdigit():
                raise Http404("no campaign given")
            campaign = campaign_get_for_staff(user=request.user, campaign_id=int(campaign_id))
            services.predictions_request(version=version, campaign=campaign)
            messages.success(request, f"Predictions of {version} for {campaign} queued.")
        else:
            raise Http404(f"unknown action {action!r}")
    except (services.RmServiceError, services.RmUnavailable) as exc:
        messages.error(request, str(exc))
    return redirect(_safe_next(request) or "rm_service:registry")


def _safe_next(request: HttpRequest) -> str:
    """The ``next`` field when it points back into this site, else "" (no open redirect)."""
    target = request.POST.get("next", "")
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else ""


@staff_required
def campaign_agreement(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
    versions = list(selectors.model_versions_with_predictions(campaign=campaign))
    version_id = request.GET.get("model_version")
    version = (
        selectors.model_version_get(user=request.user, version_id=int(version_id))
        if version_id
        else selectors.model_version_active() or (versions[0] if versions else None)
    )
    # Honest by default: held-out votes of unflagged annotators; the page's filters widen it on purpose.
    held_out_only = request.GET.get("votes") != "all"
    exclude_flagged = request.GET.get("flagged") != "include"
    agreement = (
        selectors.model_agreement(
            campaign=campaign, version=version, held_out_only=held_out_only, exclude_flagged=exclude_flagged
        )
        if version
        else None
    )
    return render(
        request,
        "rm_service/agreement.html",
        {
            "campaign": campaign,
            "version": version,
            "versions": versions,
            "agreement": agreement,
            "held_out_only": held_out_only,
            "exclude_flagged": exclude_flagged,
        },
    )
