from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from annotate.broker import broker_ping
from annotate.catalog.selectors import campaign_list_for_user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    campaigns = campaign_list_for_user(user=request.user)
    return render(request, "home.html", {"campaigns": campaigns})


def healthz(request: HttpRequest) -> JsonResponse:
    """Database and broker checked separately, for load balancers and compose health checks.

    Each check is bounded (the database connect timeout, ``REDIS_TIMEOUT_S`` for the broker), so the
    answer comes within about two seconds; 503 when either is down, with the reason per component.
    """
    checks = {"database": _check(_database_ping), "broker": _check(_broker_ping)}
    healthy = all(check["status"] == "ok" for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503)


def _check(probe: Callable[[], None]) -> dict[str, object]:
    started = time.monotonic()
    try:
        probe()
    except Exception as exc:  # any failure of a dependency is a "down", never a 500
        result: dict[str, object] = {"status": "down", "error": type(exc).__name__}
    else:
        result = {"status": "ok"}
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def _database_ping() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker_ping() -> None:
    broker_ping(timeout=settings.REDIS_TIMEOUT_S)
