"""The Django admin never creates a clip: only the import service probes, hashes and stores audio."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from annotate.catalog.models import Clip
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(alice: User, settings, tmp_path: Path) -> Client:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    client = Client()
    client.force_login(alice)
    return client


def _files() -> list[Path]:
    return sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())


def test_it_offers_no_way_to_add_a_clip_and_writes_no_file(admin: Client, tmp_path: Path) -> None:
    changelist = admin.get("/admin/catalog/clip/")
    assert changelist.status_code == 200
    assert "/admin/catalog/clip/add/" not in changelist.content.decode()
    assert admin.get("/admin/catalog/clip/add/").status_code == 403
    wav = factories.write_tone(tmp_path / "upload.wav")
    before = _files()
    posted = admin.post(
        "/admin/catalog/clip/add/",
        {"file": SimpleUploadedFile("upload.wav", wav.read_bytes()), "format": "WAV", "sample_rate": "16000"},
    )
    assert posted.status_code == 403
    assert not Clip.objects.exists() and _files() == before


def test_it_shows_an_imported_clip_without_letting_its_file_be_replaced(admin: Client) -> None:
    clip = factories.make_clip()
    url = f"/admin/catalog/clip/{clip.pk}/change/"
    page = admin.get(url)
    assert page.status_code == 200 and 'type="file"' not in page.content.decode()
    before = _files()
    response = admin.post(url, {"is_vocal": "true", "file": SimpleUploadedFile("x.wav", io.BytesIO(b"RIFF").read())})
    assert response.status_code == 302
    clip.refresh_from_db()
    assert clip.is_vocal is True and _files() == before
