"""manage.py create_annotator: a non-staff account, a printed one-time password, a pseudonym."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from annotate.labeling.models import AnnotatorProfile


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("create_annotator", *args, stdout=out)
    return out.getvalue()


def password_in(output: str) -> str:
    match = re.search(r"one-time password: (\S+)", output)
    assert match, output
    return match.group(1)


@pytest.mark.django_db
def test_it_creates_an_annotator_with_a_working_one_time_password() -> None:
    output = run("dana", "--email", "dana@example.org")
    user = User.objects.get(username="dana")
    assert not user.is_staff and user.email == "dana@example.org"
    assert authenticate(username="dana", password=password_in(output)) == user
    assert AnnotatorProfile.objects.get(user=user).pseudonym in output


@pytest.mark.django_db
def test_it_refuses_to_overwrite_an_existing_user_unless_asked(bob) -> None:
    with pytest.raises(CommandError, match="already exists"):
        run("bob")
    assert authenticate(username="bob", password="bob-pass-123") == bob
    new_password = password_in(run("bob", "--reset"))
    assert authenticate(username="bob", password=new_password) == bob


@pytest.mark.django_db
def test_it_never_resets_a_staff_password(alice) -> None:
    with pytest.raises(CommandError, match="staff"):
        run("alice", "--reset")
