"""Small builders for test data. Audio is synthesised, short and written under MEDIA_ROOT."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import soundfile as sf
from django.conf import settings
from django.contrib.auth.models import User

from annotate.catalog.audio import probe_audio
from annotate.catalog.models import Campaign, Clip, Comparison, Instruction
from annotate.catalog.services import instruction_content_hash
from annotate.labeling.models import Assignment, AudioDelivery, Vote

_counter = itertools.count(1)


def write_tone(
    path: Path, *, seconds: float = 2.0, sr: int = 16000, freq: float = 440.0, channels: int = 1, seed: int = 0
) -> Path:
    """A short tone with a little seeded noise, so every seed gives different bytes."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    mono = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.shape[0])
    audio = np.stack([mono] * channels, axis=1) if channels > 1 else mono
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio.astype(np.float32), sr)
    return path


def make_clip(*, seconds: float = 2.0, is_vocal: bool | None = False) -> Clip:
    # The tone stays well under the 8 kHz Nyquist limit: past it, it aliases down towards DC, which no
    # loudness meter hears, and the clip could not be loudness-matched (a suite makes thousands of clips).
    n = next(_counter)
    relative = Path("clips") / "test" / f"clip-{n}-{np.random.randint(1 << 30)}.wav"
    path = write_tone(Path(settings.MEDIA_ROOT) / relative, seconds=seconds, freq=200 + 7 * (n % 400), seed=n)
    info = probe_audio(path)
    return Clip.objects.create(
        sha256=info.sha256,
        file=str(relative),
        format=info.format,
        duration_s=info.duration_s,
        sample_rate=info.sample_rate,
        channels=info.channels,
        is_vocal=is_vocal,
        original_name=path.name,
        peaks=info.peaks,
    )


def make_instruction(*, modality: str = "T", prompt_id: str = "") -> Instruction:
    n = next(_counter)
    lyrics = "la la la\nsecond line" if modality in ("L", "C") else ""
    reference = make_clip() if modality in ("A", "C") else None
    text = f"An upbeat piano piece number {n}"
    # The import's own identity, so exported and re-imported instructions are the same rows.
    content_hash = instruction_content_hash(
        text=text, lyrics=lyrics, reference_sha=reference.sha256 if reference else ""
    )
    instruction = Instruction.objects.create(
        prompt_id=prompt_id or f"p{n}",
        text=text,
        lyrics=lyrics,
        reference_clip=reference,
        content_hash=content_hash,
    )
    instruction.refresh_from_db()
    return instruction


def make_campaign(*, name: str | None = None, status: str = Campaign.Status.ACTIVE, **fields: object) -> Campaign:
    return Campaign.objects.create(name=name or f"campaign {next(_counter)}", status=status, **fields)


def make_comparison(
    campaign: Campaign,
    *,
    modality: str = "T",
    seconds: float = 2.0,
    systems: tuple[str, str] = ("sys-a", "sys-b"),
    **fields: object,
) -> Comparison:
    instruction = make_instruction(modality=modality)
    return Comparison.objects.create(
        campaign=campaign,
        instruction=instruction,
        clip_a=make_clip(seconds=seconds),
        clip_b=make_clip(seconds=seconds),
        system_a=systems[0],
        system_b=systems[1],
        **fields,
    )


def make_annotator(username: str | None = None, *, is_staff: bool = False) -> User:
    return User.objects.create_user(
        username=username or f"annotator{next(_counter)}", password="pw-123456-x", is_staff=is_staff
    )


def make_vote(
    comparison: Comparison,
    annotator: User,
    *,
    alignment: str = "a",
    musicality: str = "a",
    alignment_confidence: int = 3,
    musicality_confidence: int = 3,
    swapped: bool = False,
    **fields: object,
) -> Vote:
    """A vote row written directly, for tests of readers (agreement, exports)."""
    defaults: dict[str, object] = {
        "listened_a_s": comparison.clip_a.duration_s,
        "listened_b_s": comparison.clip_b.duration_s,
        "time_on_task_s": 30.0,
    }
    defaults.update(fields)
    return Vote.objects.create(
        comparison=comparison,
        annotator=annotator,
        alignment_choice=alignment,
        musicality_choice=musicality,
        alignment_confidence=alignment_confidence,
        musicality_confidence=musicality_confidence,
        presented_swapped=swapped,
        **defaults,
    )


def deliver_audio(
    assignment: Assignment, *, sides: tuple[str, ...] = ("A", "B"), start_s: float = 0.0, end_s: float | None = None
) -> list[AudioDelivery]:
    """Record, through the real services, that the audio view delivered ``[start_s, end_s]`` of each side.

    The evidence a vote needs, for tests that call ``vote_submit`` directly rather than fetching the audio
    over HTTP. The clip's presentation rendition is made (for real) if it is missing.
    """
    from annotate.catalog.services import clip_rendition_ensure
    from annotate.labeling.selectors import assignment_clip
    from annotate.labeling.services import audio_delivery_record

    deliveries = []
    for side in sides:
        clip = assignment_clip(assignment=assignment, side=side)
        assert clip is not None
        rendition, _ = clip_rendition_ensure(clip=clip, campaign=assignment.comparison.campaign)
        end = rendition.duration_s if end_s is None else end_s
        first_byte = rendition.audio_offset_bytes + round(start_s * rendition.byte_rate)
        last_byte = rendition.audio_offset_bytes + round(end * rendition.byte_rate)
        deliveries.append(
            audio_delivery_record(
                assignment=assignment,
                side=side,
                rendition=rendition,
                first_byte=first_byte,
                length=last_byte - first_byte,
            )
        )
    return deliveries
