from django.urls import URLPattern, URLResolver, path

from annotate.onboarding import apis, views

app_name = "onboarding"

urlpatterns: list[URLPattern | URLResolver] = [
    path("campaigns/<int:campaign_id>/onboarding/", views.overview, name="overview"),
    path("campaigns/<int:campaign_id>/onboarding/consent/", views.consent, name="consent"),
    path("campaigns/<int:campaign_id>/onboarding/instructions/", views.instructions, name="instructions"),
    path("campaigns/<int:campaign_id>/onboarding/headphones/", views.headphones, name="headphones"),
    path(
        "onboarding/headphones/<uuid:check_id>/<int:trial>/<int:interval>.wav",
        views.headphone_audio,
        name="headphone-audio",
    ),
    path("campaigns/<int:campaign_id>/onboarding/practice/", views.practice, name="practice"),
    path(
        "campaigns/<int:campaign_id>/onboarding/practice/<int:item_id>/<str:side>",
        views.practice_audio,
        name="practice-audio",
    ),
    path("campaigns/<int:campaign_id>/withdraw/", views.withdraw, name="withdraw"),
    path("api/v1/campaigns/<int:campaign_id>/onboarding", apis.OnboardingStatusApi.as_view(), name="api-status"),
    path("api/v1/campaigns/<int:campaign_id>/consent", apis.ConsentAcceptApi.as_view(), name="api-consent"),
    path("api/v1/campaigns/<int:campaign_id>/withdrawal", apis.WithdrawalCreateApi.as_view(), name="api-withdraw"),
]
