from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from annotate.catalog.demo import ACCOUNTS, DEMO_CAMPAIGN
from annotate.catalog.models import Campaign, Clip, ClipRendition, Comparison
from tests.factories import write_tone

pytestmark = pytest.mark.django_db


def test_it_imports_from_the_command_line_and_prints_a_summary(tmp_path: Path) -> None:
    write_tone(tmp_path / "a.wav", seed=1, seconds=3)
    write_tone(tmp_path / "b.wav", seed=2, seconds=3)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        json.dumps(
            {"prompt": "p", "lyrics": "la", "audio-path": "a.wav", "audio2": "b.wav", "model_a": "x", "model_b": "y"}
        )
        + "\n"
    )
    out = StringIO()
    call_command(
        "import_campaign", str(manifest), "--audio-root", str(tmp_path), "--campaign", "CLI", "--activate", stdout=out
    )
    text = out.getvalue()
    assert "comparisons imported: 1" in text
    assert "T=0, L=1, A=0, C=0" in text
    assert "x (1), y (1)" in text
    assert "0 min 6 s" in text
    assert Campaign.objects.get(name="CLI").status == "active"


def test_it_exits_with_every_problem_on_a_bad_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"prompt": "p"}\nnot json\n')
    err = StringIO()
    with pytest.raises(CommandError, match="3 problem"):
        call_command("import_campaign", str(manifest), "--audio-root", str(tmp_path), "--campaign", "CLI", stderr=err)
    assert "line 1: missing required field 'audio-path'" in err.getvalue()
    assert "line 2: malformed JSON" in err.getvalue()
    assert not Campaign.objects.exists()


def test_it_builds_the_demo_campaign_deterministically(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.VAR_DIR = tmp_path
    out = StringIO()
    call_command("demo", stdout=out)
    campaign = Campaign.objects.get(name=DEMO_CAMPAIGN)
    assert campaign.status == "active"
    modalities = sorted(Comparison.objects.filter(campaign=campaign).values_list("instruction__modality", flat=True))
    assert modalities == ["A"] * 4 + ["C"] * 4 + ["L"] * 4 + ["T"] * 4
    systems = {name for pair in campaign.comparisons.values_list("system_a", "system_b") for name in pair}
    assert systems == {"clean-gen", "detune-gen", "noisy-gen", "shaky-gen", "clipped-gen"}
    assert Clip.objects.filter(format="OGG").exists() and Clip.objects.filter(channels=2).exists()
    for account in ACCOUNTS:
        user = User.objects.get(username=account.username)
        assert user.check_password(account.password) and user.is_staff == account.is_staff
        assert account.password in out.getvalue()
    hashes = sorted(Clip.objects.values_list("sha256", flat=True))
    # Simulated votes from eight personas, six per comparison, each marked as simulated.
    from annotate.agreement.services import SYNTHETIC_FEEDBACK
    from annotate.labeling.models import Vote

    votes = Vote.objects.filter(comparison__campaign=campaign)
    assert votes.count() == 96 and votes.values("annotator").distinct().count() == 8
    assert set(votes.values_list("feedback", flat=True)) == {SYNTHETIC_FEEDBACK}
    assert "Simulated votes: 96 added" in out.getvalue()
    # The simulated votes leave room: each demo annotator is handed work.
    from annotate.labeling.services import assignment_next

    for account in (a for a in ACCOUNTS if not a.is_staff):
        given = assignment_next(annotator=User.objects.get(username=account.username), campaign=campaign)
        assert given is not None and given.comparison.campaign_id == campaign.pk
    # A second run changes nothing.
    call_command("demo", stdout=StringIO())
    assert sorted(Clip.objects.values_list("sha256", flat=True)) == hashes
    assert Comparison.objects.filter(campaign=campaign).count() == 16 and votes.count() == 96


def test_make_renditions_makes_the_missing_ones_with_progress_and_is_idempotent() -> None:
    from tests import factories

    campaign = factories.make_campaign(name="Old campaign")
    factories.make_comparison(campaign, modality="A")  # clip_a, clip_b and a reference: 3 clips
    out = StringIO()
    call_command("make_renditions", "Old campaign", stdout=out)
    text = out.getvalue()
    assert "[1/3]" in text and "[3/3]" in text and "made (" in text
    assert "renditions: 3 made, 0 already present, 0 failed" in text
    assert ClipRendition.objects.filter(target_lufs=-18.0, ceiling_dbtp=-1.0).count() == 3
    again = StringIO()
    call_command("make_renditions", stdout=again)  # every campaign
    assert "renditions: 0 made, 3 already present, 0 failed" in again.getvalue()
    assert ClipRendition.objects.count() == 3
    with pytest.raises(CommandError, match="no campaign"):
        call_command("make_renditions", "No such campaign")


def test_make_renditions_fails_loudly_when_an_original_is_missing() -> None:
    from tests import factories

    campaign = factories.make_campaign(name="Broken")
    comparison = factories.make_comparison(campaign)
    Clip.objects.filter(pk=comparison.clip_a_id).update(file="clips/gone.wav")
    err = StringIO()
    with pytest.raises(CommandError, match="1 clip"):
        call_command("make_renditions", str(campaign.pk), stdout=StringIO(), stderr=err)
    assert "FAILED (the original of" in err.getvalue()
    assert ClipRendition.objects.filter(clip_id=comparison.clip_b_id).exists()
