from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    name = "annotate.onboarding"
    label = "onboarding"
    default_auto_field = "django.db.models.BigAutoField"
