from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from annotate.catalog.demo import ACCOUNTS, DEMO_CAMPAIGN
from annotate.catalog.models import Campaign, Clip, Comparison
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
    systems = set(Clip.objects.exclude(system="").values_list("system", flat=True))
    assert systems == {"clean-gen", "detune-gen", "noisy-gen", "shaky-gen", "clipped-gen"}
    assert Clip.objects.filter(format="OGG").exists() and Clip.objects.filter(channels=2).exists()
    for account in ACCOUNTS:
        user = User.objects.get(username=account.username)
        assert user.check_password(account.password) and user.is_staff == account.is_staff
        assert account.password in out.getvalue()
    hashes = sorted(Clip.objects.values_list("sha256", flat=True))
    # A second run changes nothing.
    call_command("demo", stdout=StringIO())
    assert sorted(Clip.objects.values_list("sha256", flat=True)) == hashes
    assert Comparison.objects.filter(campaign=campaign).count() == 16
