"""The catalog's REST API: campaigns, imports (upload, archive attacks, problems by line), gold items."""

from __future__ import annotations

import io
import json
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.catalog.models import Campaign, CampaignImport, Comparison
from annotate.catalog.services import campaign_import_run
from annotate.onboarding.models import CampaignOnboarding
from tests import factories
from tests.factories import write_tone

pytestmark = pytest.mark.django_db


def client_for(user: User | None, *, token: bool = False) -> APIClient:
    client = APIClient()
    if user is not None and token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    elif user is not None:
        client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def _roots(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.IMPORT_WORK_ROOT = tmp_path / "imports"


def manifest_rows(*, bad_line: int | None = None) -> bytes:
    rows: list[dict[str, object]] = [
        {"prompt id": f"p{i}", "prompt": f"Prompt {i}", "audio-path": f"a/{i}.wav", "audio2": f"b/{i}.wav"}
        for i in range(1, 4)
    ]
    rows[0]["gold-alignment"] = "model_a"
    rows[0]["attention_check"] = True
    if bad_line is not None:
        rows[bad_line - 1]["audio2"] = "b/missing.wav"
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def audio_zip(tmp_path: Path) -> bytes:
    folder = tmp_path / "audio-src"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(1, 4):
            for side, seed in (("a", i), ("b", 100 + i)):
                path = write_tone(folder / side / f"{i}.wav", seed=seed, seconds=1.0)
                archive.write(path, f"{side}/{i}.wav")
    return buffer.getvalue()


def upload(client: APIClient, campaign_id: int, manifest: bytes, archive: bytes, name: str = "audio.zip"):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/campaigns/{campaign_id}/imports",
        {
            "manifest": SimpleUploadedFile("manifest.jsonl", manifest),
            "archive": SimpleUploadedFile(name, archive),
        },
        format="multipart",
    )


# --- Campaigns ---------------------------------------------------------------------------


def test_it_creates_a_draft_campaign_with_its_settings_and_onboarding(alice: User) -> None:
    body = {
        "name": "  Batch 7 ",
        "overlap_target": 5,
        "min_listen_seconds": None,
        "min_listen_fraction": 0.8,
        "feedback_required": False,
        "allow_no_preference": True,
        "license": "CC-BY-4.0",
        "onboarding": {"consent_required": True, "headphone_check_required": True},
    }
    response = client_for(alice).post("/api/v1/campaigns", body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["name"] == "Batch 7" and data["status"] == "draft" and data["overlap_target"] == 5
    assert data["progress"] == {"comparisons": 0, "votes": 0, "complete": 0, "fraction": 0.0}
    assert data["onboarding"]["consent_required"] and data["onboarding"]["headphone_check_required"]
    campaign = Campaign.objects.get(pk=data["id"])
    assert (campaign.min_listen_seconds, campaign.min_listen_fraction, campaign.license) == (None, 0.8, "CC-BY-4.0")
    assert campaign.allow_no_preference and not campaign.feedback_required
    assert CampaignOnboarding.objects.get(campaign=campaign).headphone_check_required


def test_it_refuses_a_taken_name_and_out_of_range_settings_naming_the_field(alice: User, campaign: Campaign) -> None:
    client = client_for(alice)
    taken = client.post("/api/v1/campaigns", {"name": f" {campaign.name}"}, format="json")
    assert taken.status_code == 409 and taken.json()["error"]["field"] == "name"
    for field, value in (
        ("overlap_target", 0),
        ("min_listen_fraction", 1.5),
        ("presentation_loudness_lufs", 0),
        ("license", " \t"),
    ):
        response = client.post("/api/v1/campaigns", {"name": f"x-{field}", field: value}, format="json")
        assert response.status_code == 400 and response.json()["error"]["field"] == field
    blank = client.post("/api/v1/campaigns", {"name": "\u3000 "}, format="json")
    assert blank.status_code == 400 and blank.json()["error"]["field"] == "name"
    assert Campaign.objects.count() == 1


def test_it_lists_campaigns_with_progress(alice: User, campaign: Campaign) -> None:
    campaign.overlap_target = 2
    campaign.save()
    done, half = factories.make_comparison(campaign), factories.make_comparison(campaign)
    factories.make_comparison(campaign)
    for comparison, voters in ((done, 3), (half, 1)):
        for _ in range(voters):
            factories.make_vote(comparison, factories.make_annotator())
    data = client_for(alice).get("/api/v1/campaigns").json()
    row = next(item for item in data if item["id"] == campaign.pk)
    # Votes toward the target: min(3, 2) + 1 + 0 = 3 of 3 x 2 wanted.
    assert row["progress"] == {"comparisons": 3, "votes": 4, "complete": 1, "fraction": 0.5}


def test_it_changes_only_the_settings_given(alice: User, campaign: Campaign) -> None:
    response = client_for(alice).patch(
        f"/api/v1/campaigns/{campaign.pk}",
        {"overlap_target": 4, "onboarding": {"practice_required": False, "consent_required": False}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    campaign.refresh_from_db()
    assert campaign.overlap_target == 4 and campaign.name == "Test campaign" and campaign.min_listen_seconds == 10.0
    assert response.json()["onboarding"]["consent_required"] is False


def test_it_sets_the_assignment_strategy_and_refuses_an_unknown_one(alice: User, campaign: Campaign) -> None:
    client = client_for(alice)
    url = f"/api/v1/campaigns/{campaign.pk}"
    changed = client.patch(url, {"assignment_strategy": "informative"}, format="json")
    unknown = client.patch(url, {"assignment_strategy": "loudest"}, format="json")
    assert changed.status_code == 200 and changed.json()["assignment_strategy"] == "informative"
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "assignment_strategy"
    campaign.refresh_from_db()
    assert campaign.assignment_strategy == "informative"


def test_it_refuses_to_change_the_loudness_target_after_creation(alice: User, campaign: Campaign) -> None:
    response = client_for(alice).patch(
        f"/api/v1/campaigns/{campaign.pk}", {"presentation_loudness_lufs": -23}, format="json"
    )
    # Not an accepted field: ignored by the serializer, so nothing changes.
    assert response.status_code == 200
    campaign.refresh_from_db()
    assert campaign.presentation_loudness_lufs == -18.0


def test_it_activates_closes_and_reopens_a_campaign(alice: User) -> None:
    client = client_for(alice)
    campaign = factories.make_campaign(name="Drafty", status=Campaign.Status.DRAFT)
    empty = client.patch(f"/api/v1/campaigns/{campaign.pk}", {"status": "active"}, format="json")
    assert empty.status_code == 409 and "import a manifest" in empty.json()["error"]["message"]
    factories.make_comparison(campaign)
    for status in ("active", "closed", "active", "closed"):
        response = client.patch(f"/api/v1/campaigns/{campaign.pk}", {"status": status}, format="json")
        assert response.status_code == 200 and response.json()["status"] == status
    to_draft = client.patch(f"/api/v1/campaigns/{campaign.pk}", {"status": "draft"}, format="json")
    assert to_draft.status_code == 409
    campaign.refresh_from_db()
    assert campaign.status == "closed"


def test_it_rolls_back_settings_when_the_status_change_is_refused(alice: User) -> None:
    campaign = factories.make_campaign(name="Drafty", status=Campaign.Status.DRAFT)
    response = client_for(alice).patch(
        f"/api/v1/campaigns/{campaign.pk}", {"overlap_target": 9, "status": "active"}, format="json"
    )
    assert response.status_code == 409
    campaign.refresh_from_db()
    assert campaign.overlap_target == 3


@pytest.mark.parametrize("token", [False, True])
def test_it_keeps_every_catalog_endpoint_from_annotators(charlie: User, campaign: Campaign, token: bool) -> None:
    client = client_for(charlie, token=token)
    comparison = factories.make_comparison(campaign)
    row = CampaignImport.objects.create(campaign=campaign, manifest_name="m.jsonl", archive_name="a.zip")
    assert client.get("/api/v1/campaigns").status_code == 403
    assert client.post("/api/v1/campaigns", {"name": "mine"}, format="json").status_code == 403
    assert client.get(f"/api/v1/campaigns/{campaign.pk}").status_code == 403
    assert client.patch(f"/api/v1/campaigns/{campaign.pk}", {"status": "closed"}, format="json").status_code == 403
    assert upload(client, campaign.pk, b"{}", b"PK").status_code == 403
    assert client.get(f"/api/v1/imports/{row.pk}").status_code == 403
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/comparisons").status_code == 403
    server_import = client.post(
        f"/api/v1/campaigns/{campaign.pk}/server-imports", {"server_folder": "/"}, format="json"
    )
    assert server_import.status_code == 403
    assert (
        client.patch(f"/api/v1/comparisons/{comparison.pk}", {"gold_alignment": "a"}, format="json").status_code == 403
    )
    campaign.refresh_from_db()
    comparison.refresh_from_db()
    assert campaign.status == "active" and not Campaign.objects.filter(name="mine").exists()
    assert comparison.gold_alignment == "" and CampaignImport.objects.count() == 1


def test_it_refuses_anonymous_requests(campaign: Campaign) -> None:
    assert client_for(None).get("/api/v1/campaigns").status_code in (401, 403)


def test_it_answers_404_for_unknown_ids(alice: User) -> None:
    client = client_for(alice)
    assert client.get("/api/v1/campaigns/999999").status_code == 404
    assert client.get("/api/v1/imports/999999").status_code == 404
    assert client.patch("/api/v1/comparisons/999999", {}, format="json").status_code == 404


# --- Imports -------------------------------------------------------------------------------


def test_it_imports_an_uploaded_manifest_and_zip(alice: User, tmp_path: Path) -> None:
    campaign = factories.make_campaign(name="Upload", status=Campaign.Status.DRAFT)
    response = upload(client_for(alice), campaign.pk, manifest_rows(), audio_zip(tmp_path))
    assert response.status_code == 202, response.json()
    created = response.json()
    assert created["status"] == "queued" and created["detail_url"] == f"/api/v1/imports/{created['id']}"
    campaign_import_run(campaign_import_id=created["id"])  # what the worker does
    data = client_for(alice).get(created["detail_url"]).json()
    assert data["status"] == "succeeded" and data["progress"] == 1.0 and data["problems"] == []
    assert data["report"]["comparisons_created"] == 3 and data["report"]["clips_created"] == 6
    gold = Comparison.objects.get(campaign=campaign, instruction__prompt_id="p1")
    assert gold.gold_alignment == "a" and gold.is_attention_check
    # The staged upload and the unpacked audio are gone; the clips live under MEDIA_ROOT.
    assert not any(Path(settings.IMPORT_WORK_ROOT).iterdir())
    assert len(list((Path(settings.MEDIA_ROOT) / "clips").rglob("*.wav"))) == 6


def test_it_reports_every_problem_with_its_line_and_imports_nothing(alice: User, tmp_path: Path) -> None:
    campaign = factories.make_campaign(name="Upload", status=Campaign.Status.DRAFT)
    manifest = manifest_rows(bad_line=2) + b"not json\n"
    created = upload(client_for(alice), campaign.pk, manifest, audio_zip(tmp_path)).json()
    campaign_import_run(campaign_import_id=created["id"])
    data = client_for(alice).get(created["detail_url"]).json()
    assert data["status"] == "failed" and "nothing was imported" in data["error"]
    assert [(p["line"], p["message"]) for p in data["problems"]] == [
        (2, "audio2 'missing.wav': file not found"),
        (4, "malformed JSON: Expecting value at column 1"),
    ]
    assert not Comparison.objects.filter(campaign=campaign).exists()
    assert not (Path(settings.MEDIA_ROOT) / "clips").exists()


def test_it_runs_an_import_once(alice: User, tmp_path: Path) -> None:
    campaign = factories.make_campaign(name="Upload", status=Campaign.Status.DRAFT)
    created = upload(client_for(alice), campaign.pk, manifest_rows(), audio_zip(tmp_path)).json()
    first = campaign_import_run(campaign_import_id=created["id"])
    again = campaign_import_run(campaign_import_id=created["id"])
    assert first.status == again.status == "succeeded"
    assert Comparison.objects.filter(campaign=campaign).count() == 3


def _zip_with(name: str, data: bytes = b"x", *, symlink: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _tar_symlink() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        link = tarfile.TarInfo("a/1.wav")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("archive", "reason"),
    [
        (_zip_with("../../outside.wav"), "path traversal"),
        (_zip_with("/tmp/absolute.wav"), "absolute path"),
        (_zip_with("a/1.wav", b"/etc/passwd", symlink=True), "symbolic link"),
        (_tar_symlink(), "symbolic link"),
        (_zip_with("a/1.wav", bytes(8 * 1024 * 1024)), "zip bomb"),
        (b"definitely not an archive", "not a zip or tar"),
    ],
    ids=["traversal", "absolute", "zip-symlink", "tar-symlink", "bomb", "garbage"],
)
def test_it_refuses_an_unsafe_archive_at_once_with_a_clear_message(
    alice: User, campaign: Campaign, archive: bytes, reason: str
) -> None:
    response = upload(client_for(alice), campaign.pk, manifest_rows(), archive)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "archive_rejected" and reason in error["message"]
    assert not CampaignImport.objects.exists()
    assert not Path(settings.IMPORT_WORK_ROOT).exists() or not any(Path(settings.IMPORT_WORK_ROOT).iterdir())


def test_it_refuses_an_archive_over_the_unpacked_limit(alice: User, campaign: Campaign, settings) -> None:  # type: ignore[no-untyped-def]
    settings.IMPORT_ARCHIVE_MAX_UNPACKED_BYTES = 1000
    response = upload(client_for(alice), campaign.pk, manifest_rows(), _zip_with("a/1.wav", b"x" * 2000))
    assert response.status_code == 400 and "unpacks to more than 1000 bytes" in response.json()["error"]["message"]


def test_it_refuses_uploads_over_their_size_limits(alice: User, campaign: Campaign, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.IMPORT_MANIFEST_MAX_BYTES = 10
    too_big = upload(client_for(alice), campaign.pk, manifest_rows(), audio_zip(tmp_path))
    assert too_big.status_code == 413 and too_big.json()["error"]["field"] == "manifest"
    settings.IMPORT_MANIFEST_MAX_BYTES = 10**6
    settings.IMPORT_ARCHIVE_MAX_BYTES = 100
    too_big = upload(client_for(alice), campaign.pk, manifest_rows(), audio_zip(tmp_path))
    assert too_big.status_code == 413 and too_big.json()["error"]["field"] == "archive"
    assert not CampaignImport.objects.exists()


def test_it_needs_a_manifest_and_an_archive(alice: User, campaign: Campaign) -> None:
    client = client_for(alice)
    url = f"/api/v1/campaigns/{campaign.pk}/imports"
    no_audio = client.post(url, {"manifest": SimpleUploadedFile("m.jsonl", manifest_rows())}, format="multipart")
    assert no_audio.status_code == 400 and no_audio.json()["error"]["field"] == "archive"
    no_manifest = client.post(url, {"archive": SimpleUploadedFile("a.zip", _zip_with("a.wav"))}, format="multipart")
    assert no_manifest.status_code == 400 and no_manifest.json()["error"]["field"] == "manifest"
    assert not CampaignImport.objects.exists()


def test_it_imports_from_an_allowed_server_folder_only(alice: User, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "datasets"
    folder = root / "batch1"
    for i in range(1, 4):
        write_tone(folder / "a" / f"{i}.wav", seed=i, seconds=1.0)
        write_tone(folder / "b" / f"{i}.wav", seed=50 + i, seconds=1.0)
    (folder / "manifest.jsonl").write_bytes(manifest_rows())
    settings.IMPORT_SERVER_ROOTS = [str(root)]
    campaign = factories.make_campaign(name="Server", status=Campaign.Status.DRAFT)
    client = client_for(alice)
    url = f"/api/v1/campaigns/{campaign.pk}/server-imports"
    outside = client.post(url, {"server_folder": str(tmp_path)}, format="json")
    assert outside.status_code == 404 and outside.json()["error"]["field"] == "server_folder"
    assert client.post(url, {"server_folder": f"{folder}/../.."}, format="json").status_code == 404
    assert client.post(url, {"server_folder": str(root / "nope")}, format="json").status_code == 404
    assert not CampaignImport.objects.exists()
    response = client.post(url, {"server_folder": str(folder)}, format="json")
    assert response.status_code == 202, response.json()
    assert campaign_import_run(campaign_import_id=response.json()["id"]).status == "succeeded"
    assert Comparison.objects.filter(campaign=campaign).count() == 3
    assert (folder / "a" / "1.wav").exists()  # the server's files are left alone


# --- Gold items ---------------------------------------------------------------------------


def test_it_marks_a_comparison_gold_and_an_attention_check(alice: User, comparison: Comparison) -> None:
    client = client_for(alice)
    url = f"/api/v1/comparisons/{comparison.pk}"
    response = client.patch(url, {"gold_alignment": "b", "is_attention_check": True}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["gold_alignment"] == "b" and response.json()["is_attention_check"] is True
    comparison.refresh_from_db()
    assert (comparison.gold_alignment, comparison.gold_musicality, comparison.is_attention_check) == ("b", "", True)
    # Given fields only: musicality set, the rest kept.
    client.patch(url, {"gold_musicality": "a"}, format="json")
    comparison.refresh_from_db()
    assert (comparison.gold_alignment, comparison.gold_musicality, comparison.is_attention_check) == ("b", "a", True)


def test_it_refuses_an_attention_check_without_an_answer_and_bad_sides(alice: User, comparison: Comparison) -> None:
    client = client_for(alice)
    url = f"/api/v1/comparisons/{comparison.pk}"
    no_answer = client.patch(url, {"is_attention_check": True}, format="json")
    assert no_answer.status_code == 400 and no_answer.json()["error"]["field"] == "is_attention_check"
    bad_side = client.patch(url, {"gold_alignment": "c"}, format="json")
    assert bad_side.status_code == 400 and bad_side.json()["error"]["field"] == "gold_alignment"
    comparison.refresh_from_db()
    assert not comparison.is_gold and not comparison.is_attention_check


def test_it_fails_an_import_whose_worker_died_and_removes_its_files(alice: User, tmp_path: Path) -> None:
    import datetime as dt

    from django.utils import timezone

    from annotate.catalog.services import campaign_import_stale_reap

    campaign = factories.make_campaign(name="Upload", status=Campaign.Status.DRAFT)
    created = upload(client_for(alice), campaign.pk, manifest_rows(), audio_zip(tmp_path)).json()
    staged = Path(settings.IMPORT_WORK_ROOT) / f"import-{created['id']}"
    assert staged.is_dir()
    long_ago = timezone.now() - dt.timedelta(hours=1)
    CampaignImport.objects.filter(pk=created["id"]).update(status="running", started_at=long_ago, heartbeat_at=long_ago)
    fresh = CampaignImport.objects.create(
        campaign=campaign, manifest_name="m", archive_name="a", status="running", heartbeat_at=timezone.now()
    )
    assert campaign_import_stale_reap(stale_after_s=900) == 1
    data = client_for(alice).get(created["detail_url"]).json()
    assert data["status"] == "failed" and "worker stopped" in data["error"]
    assert not staged.exists()
    fresh.refresh_from_db()
    assert fresh.status == "running"
    # A late run of the dead import's message finds it no longer queued and does nothing.
    assert campaign_import_run(campaign_import_id=created["id"]).status == "failed"


def test_it_refuses_to_require_practice_without_practice_items(alice: User, campaign: Campaign) -> None:
    response = client_for(alice).patch(
        f"/api/v1/campaigns/{campaign.pk}",
        {"overlap_target": 7, "onboarding": {"practice_required": True}},
        format="json",
    )
    assert response.status_code == 409 and response.json()["error"]["field"] == "practice_required"
    campaign.refresh_from_db()
    assert campaign.overlap_target == 3 and not CampaignOnboarding.objects.filter(campaign=campaign).exists()


def test_it_lists_a_campaigns_comparisons_a_page_at_a_time(alice: User, campaign: Campaign) -> None:
    comparisons = [factories.make_comparison(campaign) for _ in range(5)]
    factories.make_comparison(factories.make_campaign(name="Other"))
    comparisons[3].gold_musicality = "b"
    comparisons[3].save()
    client = client_for(alice)
    url = f"/api/v1/campaigns/{campaign.pk}/comparisons"
    page = client.get(url, {"offset": 1, "limit": 2}).json()
    assert [item["id"] for item in page] == [c.pk for c in comparisons[1:3]]
    assert page[0]["campaign"] == campaign.pk and page[0]["gold_alignment"] == ""
    gold = client.get(url, {"gold": "true"}).json()
    assert [(item["id"], item["gold_musicality"]) for item in gold] == [(comparisons[3].pk, "b")]
    assert len(client.get(url, {"gold": "false"}).json()) == 4
    assert client.get(url, {"limit": 5000}).status_code == 400
    assert client.get("/api/v1/campaigns/999999/comparisons").status_code == 404
