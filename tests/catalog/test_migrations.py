"""catalog 0003: the generating system moves from the stored clip to the comparison side, losing nothing."""

from __future__ import annotations

import pytest

BEFORE = [("catalog", "0002_presentation_renditions")]
AFTER = [("catalog", "0003_system_on_comparison_side")]


@pytest.mark.django_db(transaction=True)
def test_it_copies_each_clips_system_to_the_comparisons_that_use_it(migrator) -> None:  # type: ignore[no-untyped-def]
    apps = migrator(BEFORE)
    Campaign, Clip = apps.get_model("catalog", "Campaign"), apps.get_model("catalog", "Clip")
    Instruction, Comparison = apps.get_model("catalog", "Instruction"), apps.get_model("catalog", "Comparison")
    campaign = Campaign.objects.create(name="old")
    clips = [
        Clip.objects.create(
            sha256=f"{n}" * 64,
            file=f"clips/{n}.wav",
            format="WAV",
            duration_s=1.0,
            sample_rate=8000,
            channels=1,
            system=f"gen-{n}",
        )  # fmt: skip
        for n in range(3)
    ]
    instruction = Instruction.objects.create(text="calm piano", content_hash="c" * 64)
    Comparison.objects.create(campaign=campaign, instruction=instruction, clip_a=clips[0], clip_b=clips[1])
    Comparison.objects.create(campaign=campaign, instruction=instruction, clip_a=clips[2], clip_b=clips[0])

    apps = migrator(AFTER)
    Comparison = apps.get_model("catalog", "Comparison")
    pairs = sorted(Comparison.objects.values_list("system_a", "system_b"))
    assert pairs == [("gen-0", "gen-1"), ("gen-2", "gen-0")]
    assert "system" not in {f.name for f in apps.get_model("catalog", "Clip")._meta.get_fields()}
