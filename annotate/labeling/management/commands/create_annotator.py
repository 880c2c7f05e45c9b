"""``manage.py create_annotator <username>``: an annotator account with a one-time password printed once, which
must be changed at first login."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from annotate.labeling.services import annotator_profile_ensure
from annotate.people.services import password_change_require


class Command(BaseCommand):
    help = (
        "Create an annotator (non-staff) account and print its one-time password. The password is not stored "
        "anywhere in clear text: hand it over, then it can't be shown again (rerun with --reset for a new one). The "
        "annotator must change it at first login."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--reset", action="store_true", help="Set a new password for an existing annotator.")

    def handle(self, *args: Any, username: str, email: str, reset: bool, **options: Any) -> None:
        user_model = get_user_model()
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            user = user_model.objects.filter(username=username).first()
            if user is not None and not reset:
                raise CommandError(f"User {username!r} already exists; use --reset to issue a new password.")
            if user is not None and user.is_staff:
                raise CommandError(f"User {username!r} is staff; reset staff passwords with changepassword.")
            if user is None:
                user = user_model.objects.create_user(username=username, email=email, password=password)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            profile = annotator_profile_ensure(user=user)
            password_change_require(user=user)
        self.stdout.write(
            f"annotator: {username}\npseudonym: {profile.pseudonym}\none-time password: {password}\n"
            "It must be changed at first login: the annotator is sent to the password change page until then."
        )
