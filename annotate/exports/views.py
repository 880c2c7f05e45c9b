"""Staff pages: a campaign's exports, with the parameter form and live progress."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from annotate.broker import BrokerUnavailable
from annotate.catalog.selectors import campaign_get_for_staff
from annotate.exports.apis import ExportParametersSerializer, ExportSerializer
from annotate.exports.params import ExportParameterError, ExportParameters
from annotate.exports.selectors import export_list_for_campaign
from annotate.exports.services import export_create
from annotate.permissions import staff_required


@staff_required
def campaign_exports(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """GET: the form and the export list. POST: create an export (same service as the API), then redirect."""
    campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
    errors: dict[str, str] = {}
    if request.method == "POST":
        serializer = ExportParametersSerializer(data=request.POST)
        if serializer.is_valid():
            try:
                requested_by = request.user if request.user.is_authenticated else None
                export = export_create(
                    campaign=campaign, requested_by=requested_by, parameters=serializer.validated_data
                )
            except ExportParameterError as exc:
                errors = exc.errors
            except BrokerUnavailable as exc:
                messages.error(request, f"The export could not be queued and was marked failed: {exc}")
                return redirect("exports:campaign", campaign_id=campaign.pk)
            else:
                messages.success(request, f"Export {export.pk} queued.")
                return redirect("exports:campaign", campaign_id=campaign.pk)
        else:
            errors = {name: str(reason[0]) for name, reason in serializer.errors.items()}
    exports = export_list_for_campaign(user=request.user, campaign=campaign)[:50]
    context = {
        "campaign": campaign,
        "exports": exports,
        "exports_json": ExportSerializer(exports, many=True).data,
        "defaults": ExportParameters(),
        "form": request.POST if request.method == "POST" else None,
        "errors": errors,
    }
    return render(request, "exports/campaign_exports.html", context, status=400 if errors else 200)
