from django.urls import URLPattern, URLResolver, path

from annotate.agreement import apis, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("campaigns/<int:campaign_id>/agreement/", views.dashboard, name="agreement-dashboard"),
    path("campaigns/<int:campaign_id>/agreement/refresh", views.refresh, name="agreement-refresh"),
    path(
        "api/v1/campaigns/<int:campaign_id>/agreement", apis.AgreementReportApi.as_view(), name="api-campaign-agreement"
    ),
]
