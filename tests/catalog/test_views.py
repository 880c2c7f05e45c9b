"""Staff pages for campaigns: list with progress, create, settings and status, import form, gold items."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from annotate.catalog.models import Campaign, CampaignImport, Comparison
from annotate.onboarding.models import CampaignOnboarding
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _roots(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.IMPORT_WORK_ROOT = tmp_path / "imports"


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _settings_form(**overrides: str) -> dict[str, str]:
    form = {
        "name": "Batch 2",
        "license": "CC-BY-4.0",
        "description": "",
        "overlap_target": "4",
        "min_listen_seconds": "",
        "min_listen_fraction": "0.25",
        "presentation_loudness_lufs": "-20",
        "presentation_true_peak_dbtp": "-1",
        "consent_required": "on",
    }
    return {**form, **overrides}


def test_it_forbids_every_campaign_page_to_annotators(charlie: User, comparison: Comparison) -> None:
    client = client_for(charlie)
    campaign_id = comparison.campaign_id
    for url in (
        "/campaigns/manage/",
        "/campaigns/new/",
        f"/campaigns/{campaign_id}/settings/",
        f"/campaigns/{campaign_id}/import/",
        f"/campaigns/{campaign_id}/comparisons/",
    ):
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"name": "x", "status": "closed", "action": "status"}).status_code == 403, url
    assert Campaign.objects.count() == 1 and Campaign.objects.get().status == "active"


def test_it_sends_anonymous_visitors_to_the_login_page() -> None:
    response = Client().get("/campaigns/manage/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_it_lists_campaigns_with_progress_and_links_them_from_home(alice: User, comparison: Comparison) -> None:
    factories.make_vote(comparison, factories.make_annotator())
    client = client_for(alice)
    html = client.get("/campaigns/manage/").content.decode()
    assert "Test campaign" in html and f"/campaigns/{comparison.campaign_id}/import/" in html
    assert "1 / 1 (target 3)" not in html and "0 / 1 (target 3)" in html  # one vote of three
    assert "33%" in html
    assert "/campaigns/manage/" in client.get("/").content.decode()


def test_it_creates_a_campaign_from_the_form_with_unticked_boxes_as_false(alice: User) -> None:
    response = client_for(alice).post("/campaigns/new/", _settings_form())
    campaign = Campaign.objects.get(name="Batch 2")
    assert response.status_code == 302 and response["Location"] == f"/campaigns/{campaign.pk}/import/"
    assert campaign.status == "draft" and campaign.overlap_target == 4
    assert campaign.min_listen_seconds is None and campaign.min_listen_fraction == 0.25
    assert campaign.feedback_required is False and campaign.allow_no_preference is False
    assert campaign.presentation_loudness_lufs == -20
    onboarding = CampaignOnboarding.objects.get(campaign=campaign)
    assert onboarding.consent_required and not onboarding.instructions_required


def test_it_shows_why_a_campaign_was_not_created(alice: User, campaign: Campaign) -> None:
    response = client_for(alice).post("/campaigns/new/", _settings_form(name=campaign.name))
    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    response = client_for(alice).post("/campaigns/new/", _settings_form(overlap_target="0"))
    assert response.status_code == 400 and "overlap_target" in response.content.decode()
    assert Campaign.objects.count() == 1


def test_it_saves_settings_and_changes_the_status(alice: User, comparison: Comparison) -> None:
    client = client_for(alice)
    url = f"/campaigns/{comparison.campaign_id}/settings/"
    assert client.get(url).status_code == 200
    assert 'value="informative"' in client.get(url).content.decode()
    response = client.post(
        url,
        _settings_form(
            name="Renamed", feedback_required="on", allow_no_preference="on", assignment_strategy="uncertain"
        ),
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get(pk=comparison.campaign_id)
    assert (campaign.name, campaign.overlap_target, campaign.feedback_required) == ("Renamed", 4, True)
    assert campaign.assignment_strategy == "uncertain"
    assert campaign.presentation_loudness_lufs == -18.0  # fixed once created
    assert client.post(url, {"action": "status", "status": "closed"}).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "closed"
    refused = client.post(url, {"action": "status", "status": "draft"})
    assert refused.status_code == 400 and "cannot become draft" in refused.content.decode()


def test_it_queues_an_upload_and_refuses_an_unsafe_archive_with_its_reason(alice: User, campaign: Campaign) -> None:
    client = client_for(alice)
    url = f"/campaigns/{campaign.pk}/import/"
    bad = io.BytesIO()
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("../../escape.wav", b"x")
    refused = client.post(
        url,
        {
            "manifest": SimpleUploadedFile("m.jsonl", b"{}\n"),
            "archive": SimpleUploadedFile("a.zip", bad.getvalue()),
        },
    )
    assert refused.status_code == 400 and "path traversal" in refused.content.decode()
    assert not CampaignImport.objects.exists()
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("a/1.wav", b"x")
    queued = client.post(
        url,
        {
            "manifest": SimpleUploadedFile("m.jsonl", b"{}\n"),
            "archive": SimpleUploadedFile("a.zip", good.getvalue()),
        },
    )
    assert queued.status_code == 302
    row = CampaignImport.objects.get()
    assert (row.status, row.manifest_name, row.archive_name, row.requested_by) == ("queued", "m.jsonl", "a.zip", alice)
    page = client.get(url).content.decode()
    assert f'data-import="{row.pk}"' in page and "catalog/imports.js" in page


def test_it_shows_each_problem_of_a_failed_import_with_its_line(alice: User, campaign: Campaign) -> None:
    CampaignImport.objects.create(
        campaign=campaign,
        manifest_name="m.jsonl",
        archive_name="a.zip",
        status="failed",
        error="2 problem(s) in the manifest; nothing was imported",
        problems=[{"line": 3, "message": "audio2 'x.wav': file not found"}, {"line": 0, "message": "empty"}],
    )
    html = client_for(alice).get(f"/campaigns/{campaign.pk}/import/").content.decode()
    assert "line 3</span>: audio2 &#x27;x.wav&#x27;: file not found" in html
    assert "manifest</span>: empty" in html


def test_it_sets_gold_answers_from_the_comparisons_page(alice: User, comparison: Comparison) -> None:
    client = client_for(alice)
    url = f"/campaigns/{comparison.campaign_id}/comparisons/"
    page = client.get(url).content.decode()
    assert f'data-comparison="{comparison.pk}"' in page and f"/api/v1/clips/{comparison.clip_a_id}/audio" in page
    form = {"comparison": str(comparison.pk), "gold_alignment": "a", "gold_musicality": "", "is_attention_check": "on"}
    assert client.post(url, form).status_code == 302
    comparison.refresh_from_db()
    assert (comparison.gold_alignment, comparison.gold_musicality, comparison.is_attention_check) == ("a", "", True)
    refused = client.post(url, {"comparison": str(comparison.pk), "is_attention_check": "on"})
    assert refused.status_code == 400 and "attention check needs" in refused.content.decode()


def test_it_refuses_a_comparison_of_another_campaign_on_the_gold_page(alice: User, comparison: Comparison) -> None:
    other = factories.make_campaign(name="Other")
    response = client_for(alice).post(
        f"/campaigns/{other.pk}/comparisons/", {"comparison": str(comparison.pk), "gold_alignment": "a"}
    )
    assert response.status_code == 400
    comparison.refresh_from_db()
    assert comparison.gold_alignment == ""
