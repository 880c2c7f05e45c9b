"""/api/docs/ works offline: Swagger UI, its styles, icon and initialiser all come from this site."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db

_EXTERNAL = re.compile(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


def test_it_references_no_external_url_from_the_docs_page(admin_client: Client) -> None:
    html = admin_client.get("/api/docs/").content.decode()
    references = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(references) >= 4  # icon, stylesheet, bundle, preset, initialiser
    assert all(ref.startswith("/") and not ref.startswith("//") for ref in references), references
    assert not _EXTERNAL.search(html), _EXTERNAL.search(html)
    for ref in references:
        if ref.startswith("/static/"):
            assert finders.find(ref.removeprefix("/static/")), ref


def test_it_initialises_swagger_ui_without_any_external_service(admin_client: Client) -> None:
    html = admin_client.get("/api/docs/").content.decode()
    (initialiser,) = [src for src in re.findall(r'<script[^>]*src="([^"]+)"', html) if "static" not in src]
    script = admin_client.get(initialiser).content.decode()
    assert "swaggerSettings" in script and not _EXTERNAL.search(script), _EXTERNAL.search(script)
    # The validator badge would send the schema's address to validator.swagger.io.
    assert '"validatorUrl": null' in script
