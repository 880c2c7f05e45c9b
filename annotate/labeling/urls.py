from django.urls import URLPattern, URLResolver, path

from annotate.labeling import apis, views

app_name = "labeling"

urlpatterns: list[URLPattern | URLResolver] = [
    path("campaigns/<int:campaign_id>/listen/", views.campaign_next, name="campaign-next"),
    path("listen/<uuid:assignment_id>/", views.listen, name="listen"),
    path("listen/<uuid:assignment_id>/audio/<str:side>", views.assignment_audio, name="audio"),
    path("api/v1/campaigns/<int:campaign_id>/next-assignment", apis.AssignmentNextApi.as_view(), name="api-next"),
    path("api/v1/assignments/<uuid:assignment_id>/vote", apis.VoteSubmitApi.as_view(), name="api-vote"),
    path("api/v1/assignments/<uuid:assignment_id>/skip", apis.SkipSubmitApi.as_view(), name="api-skip"),
    path("comparisons/<int:comparison_id>/adjudicate/", views.comparison_adjudicate, name="adjudicate"),
    path(
        "api/v1/comparisons/<int:comparison_id>/adjudication",
        apis.ComparisonAdjudicationApi.as_view(),
        name="api-adjudication",
    ),
]
