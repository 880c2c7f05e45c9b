from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from annotate.catalog.selectors import campaign_list_for_user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    campaigns = campaign_list_for_user(user=request.user)
    return render(request, "home.html", {"campaigns": campaigns})


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness plus a database round trip, for load balancers and compose health checks."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
