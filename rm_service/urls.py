from django.urls import URLPattern, URLResolver, path

from rm_service import apis, views

app_name = "rm_service"

urlpatterns: list[URLPattern | URLResolver] = [
    # Pages (staff)
    path("rm/", views.registry, name="registry"),
    path("rm/campaigns/<int:campaign_id>/", views.campaign_models, name="campaign-models"),
    path("rm/campaigns/<int:campaign_id>/pretrain/", views.campaign_pretrain, name="campaign-pretrain"),
    path("rm/campaigns/<int:campaign_id>/agreement/", views.campaign_agreement, name="campaign-agreement"),
    path("rm/runs/<int:run_id>/", views.training_run_detail, name="run-detail"),
    path("rm/runs/<int:run_id>/<str:action>/", views.training_run_action, name="run-action"),
    path("rm/versions/<int:version_id>/", views.model_version_detail, name="version-detail"),
    path("rm/versions/<int:version_id>/<str:action>/", views.model_version_action, name="version-action"),
    # REST API
    path("api/v1/score", apis.ScoringJobScoreApi.as_view(), name="api-score"),
    path("api/v1/rank", apis.ScoringJobRankApi.as_view(), name="api-rank"),
    path("api/v1/jobs/<uuid:public_id>", apis.ScoringJobDetailApi.as_view(), name="api-job"),
    path("api/v1/training-runs", apis.TrainingRunCreateApi.as_view(), name="api-training-runs"),
    path("api/v1/training-runs/<int:run_id>", apis.TrainingRunDetailApi.as_view(), name="api-training-run"),
    path("api/v1/training-runs/<int:run_id>/cancel", apis.TrainingRunCancelApi.as_view(), name="api-run-cancel"),
    path("api/v1/training-runs/<int:run_id>/resume", apis.TrainingRunResumeApi.as_view(), name="api-run-resume"),
    path("api/v1/model-versions", apis.ModelVersionListApi.as_view(), name="api-model-versions"),
    path(
        "api/v1/model-versions/<int:version_id>/activate",
        apis.ModelVersionActivateApi.as_view(),
        name="api-version-activate",
    ),
    path(
        "api/v1/campaigns/<int:campaign_id>/model-agreement",
        apis.CampaignModelAgreementApi.as_view(),
        name="api-model-agreement",
    ),
    path("api/v1/clips/<int:clip_id>/audio", apis.ClipAudioApi.as_view(), name="clip-audio"),
]
