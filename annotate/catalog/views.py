"""Staff pages for campaigns: the list with progress, create, settings and status, import, gold items.

Forms are read with the API's own input serializers and written through the same services as the API.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from annotate.catalog.apis import (
    CampaignDetailApi,
    CampaignImportSerializer,
    CampaignListApi,
    OnboardingStepsSerializer,
)
from annotate.catalog.models import AssignmentStrategy, Campaign
from annotate.catalog.selectors import (
    campaign_get_for_staff,
    campaign_import_list,
    campaign_list_for_user,
    campaign_progress,
    comparison_get_for_staff,
    comparison_list_for_campaign,
)
from annotate.catalog.services import (
    campaign_create,
    campaign_import_create,
    campaign_status_set,
    campaign_update,
    comparison_gold_set,
    import_server_folders,
)
from annotate.errors import ApplicationError
from annotate.onboarding.models import CampaignOnboarding
from annotate.onboarding.services import campaign_onboarding_update
from annotate.permissions import staff_required

FormErrors = dict[str, str]


def _serializer_errors(errors: dict[str, Any]) -> FormErrors:
    return {name: str(reasons[0]) if isinstance(reasons, list) else str(reasons) for name, reasons in errors.items()}


def _application_errors(exc: ApplicationError) -> FormErrors:
    return {exc.field or "form": exc.message}


@staff_required
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = list(campaign_list_for_user(user=request.user))
    progress = campaign_progress(campaigns=campaigns)
    rows = [(campaign, progress[campaign.pk]) for campaign in campaigns]
    return render(request, "catalog/campaign_list.html", {"rows": rows})


@staff_required
def campaign_new(request: HttpRequest) -> HttpResponse:
    """GET: the form with the defaults. POST: create a draft (same service as the API), then go to its import."""
    errors: FormErrors = {}
    if request.method == "POST":
        serializer = CampaignListApi.InputSerializer(data=request.POST)
        steps = OnboardingStepsSerializer(data=request.POST)
        if all([serializer.is_valid(), steps.is_valid()]):  # both run, so both report their errors
            data = {k: v for k, v in serializer.validated_data.items() if k != "onboarding"}
            try:
                with transaction.atomic():
                    campaign = campaign_create(**data)
                    campaign_onboarding_update(campaign=campaign, steps=steps.validated_data)
            except ApplicationError as exc:
                errors = _application_errors(exc)
            else:
                messages.success(request, f"Campaign “{campaign.name}” created as a draft. Import its comparisons.")
                return redirect("catalog:campaign-import", campaign_id=campaign.pk)
        else:
            errors = _serializer_errors({**serializer.errors, **steps.errors})
    context = {
        "campaign": Campaign(),
        "onboarding": CampaignOnboarding(),
        "form": request.POST or None,
        "strategies": AssignmentStrategy.choices,
    }
    return render(request, "catalog/campaign_form.html", {**context, "errors": errors}, status=400 if errors else 200)


@staff_required
def campaign_settings(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """GET: the settings form. POST: save the settings, or (``action=status``) open, close or reopen."""
    campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
    errors: FormErrors = {}
    if request.method == "POST":
        errors = (_status_post if request.POST.get("action") == "status" else _settings_post)(request, campaign)
        if not errors:
            return redirect("catalog:campaign-settings", campaign_id=campaign.pk)
        campaign.refresh_from_db()
    context = {
        "campaign": campaign,
        "onboarding": CampaignOnboarding.objects.filter(campaign=campaign).first() or CampaignOnboarding(),
        "progress": campaign_progress(campaigns=[campaign])[campaign.pk],
        "form": request.POST if errors else None,
        "errors": errors,
        "strategies": AssignmentStrategy.choices,
    }
    return render(request, "catalog/campaign_form.html", context, status=400 if errors else 200)


def _settings_post(request: HttpRequest, campaign: Campaign) -> FormErrors:
    serializer = CampaignDetailApi.InputSerializer(data=request.POST)
    steps = OnboardingStepsSerializer(data=request.POST)
    if not all([serializer.is_valid(), steps.is_valid()]):
        return _serializer_errors({**serializer.errors, **steps.errors})
    changes = {k: v for k, v in serializer.validated_data.items() if k not in ("onboarding", "status")}
    try:
        with transaction.atomic():
            campaign_update(campaign=campaign, changes=changes)
            campaign_onboarding_update(campaign=campaign, steps=steps.validated_data)
    except ApplicationError as exc:
        return _application_errors(exc)
    messages.success(request, "Settings saved.")
    return {}


def _status_post(request: HttpRequest, campaign: Campaign) -> FormErrors:
    try:
        campaign_status_set(campaign=campaign, status=request.POST.get("status", ""))
    except ApplicationError as exc:
        return _application_errors(exc)
    messages.success(request, f"The campaign is now {campaign.get_status_display().lower()}.")
    return {}


@staff_required
def campaign_import_page(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """GET: the upload form and the imports with live progress. POST: stage and queue an import."""
    campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
    errors: FormErrors = {}
    if request.method == "POST":
        try:
            campaign_import_create(
                campaign=campaign,
                requested_by=request.user if request.user.is_authenticated else None,
                manifest=request.FILES.get("manifest"),
                archive=request.FILES.get("archive"),
                server_folder=request.POST.get("server_folder", "").strip(),
            )
        except ApplicationError as exc:
            errors = _application_errors(exc)
        else:
            messages.success(request, "Import queued; its progress shows below.")
            return redirect("catalog:campaign-import", campaign_id=campaign.pk)
    imports = list(campaign_import_list(campaign=campaign)[:20])
    context = {
        "campaign": campaign,
        "imports": imports,
        "imports_json": CampaignImportSerializer(imports, many=True).data,
        "server_folders": import_server_folders(),
        "errors": errors,
    }
    return render(request, "catalog/campaign_import.html", context, status=400 if errors else 200)


@staff_required
def campaign_comparisons(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """GET: every comparison with players and its gold answers. POST: set one comparison's gold answers."""
    campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
    errors: FormErrors = {}
    if request.method == "POST":
        comparison = comparison_get_for_staff(user=request.user, comparison_id=_int(request.POST.get("comparison")))
        if comparison.campaign_id != campaign.pk:
            errors = {"comparison": "This comparison belongs to another campaign."}
        else:
            try:
                comparison_gold_set(
                    comparison=comparison,
                    gold_alignment=request.POST.get("gold_alignment", ""),
                    gold_musicality=request.POST.get("gold_musicality", ""),
                    is_attention_check=request.POST.get("is_attention_check") == "on",
                )
            except ApplicationError as exc:
                errors = {**_application_errors(exc), "comparison": str(comparison.pk)}
            else:
                messages.success(request, f"Comparison {comparison.pk} saved.")
                page = request.GET.get("page")
                return redirect(f"{request.path}{f'?page={page}' if page else ''}#comparison-{comparison.pk}")
    pages = Paginator(comparison_list_for_campaign(campaign=campaign), 200)
    comparisons = pages.get_page(request.GET.get("page"))
    context = {"campaign": campaign, "comparisons": comparisons, "errors": errors}
    return render(request, "catalog/campaign_comparisons.html", context, status=400 if errors else 200)


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        return 0
