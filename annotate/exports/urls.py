from django.urls import URLPattern, URLResolver, path

from annotate.exports import apis, views

app_name = "exports"

urlpatterns: list[URLPattern | URLResolver] = [
    path("campaigns/<int:campaign_id>/exports/", views.campaign_exports, name="campaign"),
    path("api/v1/campaigns/<int:campaign_id>/exports", apis.ExportCreateApi.as_view(), name="api-create"),
    path("api/v1/exports", apis.ExportListApi.as_view(), name="api-list"),
    path("api/v1/exports/<int:export_id>", apis.ExportDetailApi.as_view(), name="api-detail"),
    path("api/v1/exports/<int:export_id>/download", apis.ExportDownloadApi.as_view(), name="api-download"),
    path("api/v1/exports/<int:export_id>/files/<str:name>", apis.ExportFileApi.as_view(), name="api-file"),
]
