from django.apps import AppConfig


class PeopleConfig(AppConfig):
    name = "annotate.people"
    label = "people"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from annotate.people.middleware import remember_at_login

        user_logged_in.connect(remember_at_login, dispatch_uid="people.password_change_required")
