from django.apps import AppConfig


class RmServiceConfig(AppConfig):
    name = "rm_service"
    label = "rm_service"
    verbose_name = "Reward model service"
    default_auto_field = "django.db.models.BigAutoField"
