"""CMI-Pref rows with labels: votes of external annotators, ties as ties, ignored labels reported with why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import authenticate
from rest_framework.test import APIClient

from annotate.catalog.models import Campaign
from annotate.catalog.services import ImportValidationError, campaign_import
from annotate.errors import PermissionDeniedError
from annotate.labeling.models import AnnotatorProfile, Choice, ExternalAnnotator, Vote
from annotate.labeling.services import assignment_next
from tests.factories import write_tone

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_media_root(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def audio_root(tmp_path: Path) -> Path:
    root = tmp_path / "audio"
    for n in range(4):
        write_tone(root / f"c{n}.wav", seed=n, seconds=1.0)
    return root


def labelled(user: str, alignment: str = "model_a", musicality: str = "model_b", **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "prompt": "Calm piano",
        "prompt id": "p1",
        "audio-path": "c0.wav",
        "audio2": "c1.wav",
        "model_a": "gen-x",
        "model_b": "gen-y",
        "source": "cmi-arena-annotation",
        "user id": user,
        "preference-alignment": alignment,
        "preference-musicality": musicality,
        "confidence_preference-alignment": 4,
        "confidence_preference-musicality": 2,
        "feedback": f"feedback of {user}",
        "split": "train",
    }
    row.update(extra)
    return row


def import_rows(tmp_path: Path, audio_root: Path, rows: list[dict[str, Any]], name: str = "Seeded"):  # type: ignore[no-untyped-def]
    manifest = tmp_path / "labels.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return campaign_import(manifest_path=manifest, audio_root=audio_root, campaign_name=name)


def test_it_imports_two_annotators_labels_on_one_pair_as_one_comparison_with_two_votes(
    tmp_path: Path, audio_root: Path
) -> None:
    report = import_rows(tmp_path, audio_root, [labelled("u1"), labelled("u2", "model_b", "model_b")])
    assert (report.comparisons_created, report.votes_created, report.external_annotators_created) == (1, 2, 2)
    comparison = report.campaign.comparisons.get()
    assert (comparison.system_a, comparison.system_b, comparison.source_split) == ("gen-x", "gen-y", "train")
    votes = Vote.objects.filter(comparison=comparison).order_by("annotator__external_annotator__external_id")
    assert [(v.alignment_choice, v.musicality_choice) for v in votes] == [("a", "b"), ("b", "b")]
    assert [(v.alignment_confidence, v.musicality_confidence, v.feedback) for v in votes][0] == (4, 2, "feedback of u1")


def test_it_stores_both_and_neither_as_ties(tmp_path: Path, audio_root: Path) -> None:
    report = import_rows(
        tmp_path, audio_root, [labelled("u1", "both", "model_a"), labelled("u2", "model_b", "neither")]
    )
    assert (report.votes_created, report.ties) == (2, 2)
    choices = set(Vote.objects.values_list("alignment_choice", "musicality_choice"))
    assert choices == {(Choice.TIE, "a"), ("b", Choice.TIE)}


def test_it_turns_labels_to_the_stored_comparisons_orientation(tmp_path: Path, audio_root: Path) -> None:
    import_rows(tmp_path, audio_root, [labelled("u1")])
    swapped = labelled(
        "u2",
        "model_a",
        "model_a",
        **{"audio-path": "c1.wav", "audio2": "c0.wav", "model_a": "gen-y", "model_b": "gen-x"},
    )
    report = import_rows(tmp_path, audio_root, [swapped])
    assert (report.comparisons_existing, report.votes_created) == (1, 1)
    vote = Vote.objects.get(annotator__external_annotator__external_id="u2")
    # u2 preferred c1.wav, which the stored comparison holds as clip_b.
    assert (vote.alignment_choice, vote.musicality_choice) == ("b", "b")


def test_it_reports_rows_whose_labels_it_ignored_and_why(tmp_path: Path, audio_root: Path) -> None:
    no_user = labelled("")
    arena = {k: v for k, v in labelled("u3").items() if not k.startswith(("preference-", "confidence_"))}
    arena["preference"] = "model_a"
    one_question = labelled("u4")
    del one_question["preference-musicality"]
    no_confidence = labelled("u5")
    del no_confidence["confidence_preference-alignment"]
    duplicate = labelled("u1", "model_b", "model_b")
    report = import_rows(tmp_path, audio_root, [labelled("u1"), no_user, arena, one_question, no_confidence, duplicate])
    assert report.comparisons_created == 1 and report.votes_created == 1 and report.labels_ignored_count == 5
    assert report.labels_ignored == {
        "no `user id`: labels can't be given to an annotator": [2],
        "only an overall `preference` (Music Arena style); a vote needs both questions": [3],
        "no preference-musicality: a vote needs both questions": [4],
        "no confidence_preference-alignment": [5],
        "a second label by the same user id on the same comparison": [6],
    }


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("preference-alignment", "model_c", "preference-alignment must be model_a, model_b, both or neither"),
        ("confidence_preference-musicality", 7, "must be a whole number from 1 to 5"),
        ("confidence_preference-musicality", "high", "must be a number from 1 to 5"),
        ("split", "dev", "split must be one of train, validation, test"),
        ("vote_time", "yesterday", "vote_time must be an ISO 8601 time"),
    ],
)
def test_it_refuses_a_malformed_label_with_its_line_and_imports_nothing(
    tmp_path: Path, audio_root: Path, field: str, value: object, expected: str
) -> None:
    with pytest.raises(ImportValidationError) as excinfo:
        import_rows(tmp_path, audio_root, [labelled("u1"), {**labelled("u2"), field: value}])
    assert [p.line for p in excinfo.value.problems] == [2] and expected in excinfo.value.problems[0].message
    assert not Campaign.objects.exists() and not Vote.objects.exists()


def test_external_annotators_can_not_log_in_and_are_never_offered_work(tmp_path: Path, audio_root: Path) -> None:
    report = import_rows(tmp_path, audio_root, [labelled("u1")])
    external = ExternalAnnotator.objects.get()
    assert (external.source, external.external_id) == ("cmi-arena-annotation", "u1")
    user = external.user
    assert not user.is_active and not user.has_usable_password() and "u1" not in user.username
    assert AnnotatorProfile.objects.filter(user=user).exists()
    assert authenticate(username=user.username, password="") is None
    campaign = report.campaign
    campaign.status = Campaign.Status.ACTIVE
    campaign.save()
    with pytest.raises(PermissionDeniedError):
        assignment_next(annotator=user, campaign=campaign)
    client = APIClient()
    client.force_authenticate(user)  # even with credentials forged for it
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/next-assignment").status_code in (401, 403)


def test_it_keeps_the_rows_vote_time(tmp_path: Path, audio_root: Path) -> None:
    import_rows(tmp_path, audio_root, [labelled("u1", vote_time="2025-05-01T12:00:00Z")])
    assert Vote.objects.get().created_at.isoformat() == "2025-05-01T12:00:00+00:00"
