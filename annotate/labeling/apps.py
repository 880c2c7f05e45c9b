from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "annotate.labeling"
    label = "labeling"
    default_auto_field = "django.db.models.BigAutoField"
