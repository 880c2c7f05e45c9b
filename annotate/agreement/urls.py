from django.urls import URLPattern, URLResolver, path

from annotate.agreement import apis, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("campaigns/<int:campaign_id>/agreement/", views.dashboard, name="agreement-dashboard"),
    path("campaigns/<int:campaign_id>/agreement/refresh", views.refresh, name="agreement-refresh"),
    path("campaigns/<int:campaign_id>/leaderboard/", views.campaign_leaderboard, name="campaign-leaderboard"),
    path("leaderboard/", views.leaderboard, name="leaderboard"),
    path(
        "api/v1/campaigns/<int:campaign_id>/leaderboard",
        apis.CampaignLeaderboardApi.as_view(),
        name="api-campaign-leaderboard",
    ),
    path("api/v1/leaderboard", apis.LeaderboardApi.as_view(), name="api-leaderboard"),
    path(
        "api/v1/campaigns/<int:campaign_id>/agreement", apis.AgreementReportApi.as_view(), name="api-campaign-agreement"
    ),
]
