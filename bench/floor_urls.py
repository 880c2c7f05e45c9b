"""The app's URLs plus one trivial DRF view, the floor ``bench/vote_submit.py`` measures beside the vote path.

``POST /bench/floor`` goes through the same gunicorn, middleware, DRF token authentication, permission
and throttling as the real API, then answers a constant: what any token-auth API call costs here.
Served only by ``bench/floor_wsgi.py``; the application's own URLs never include it.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.urls import urlpatterns as app_urlpatterns


class FloorApi(APIView):
    def post(self, request: Request) -> Response:
        return Response({"ok": True, "user": request.user.pk}, status=201)


urlpatterns: list[URLPattern | URLResolver] = [path("bench/floor", FloorApi.as_view())]
urlpatterns += app_urlpatterns  # type: ignore[arg-type]  # annotate.urls builds its list without a type
