from django.urls import URLPattern, URLResolver, path

from annotate.catalog import apis, views

app_name = "catalog"

urlpatterns: list[URLPattern | URLResolver] = [
    path("campaigns/manage/", views.campaign_list, name="campaign-list"),
    path("campaigns/new/", views.campaign_new, name="campaign-new"),
    path("campaigns/<int:campaign_id>/settings/", views.campaign_settings, name="campaign-settings"),
    path("campaigns/<int:campaign_id>/import/", views.campaign_import_page, name="campaign-import"),
    path("campaigns/<int:campaign_id>/comparisons/", views.campaign_comparisons, name="campaign-comparisons"),
    path("api/v1/campaigns", apis.CampaignListApi.as_view(), name="api-campaigns"),
    path("api/v1/campaigns/<int:campaign_id>", apis.CampaignDetailApi.as_view(), name="api-campaign"),
    path("api/v1/campaigns/<int:campaign_id>/imports", apis.CampaignImportCreateApi.as_view(), name="api-imports"),
    path(
        "api/v1/campaigns/<int:campaign_id>/server-imports",
        apis.CampaignServerImportCreateApi.as_view(),
        name="api-server-imports",
    ),
    path("api/v1/imports/<int:campaign_import_id>", apis.CampaignImportDetailApi.as_view(), name="api-import-detail"),
    path("api/v1/campaigns/<int:campaign_id>/comparisons", apis.ComparisonListApi.as_view(), name="api-comparisons"),
    path("api/v1/comparisons/<int:comparison_id>", apis.ComparisonUpdateApi.as_view(), name="api-comparison"),
]
